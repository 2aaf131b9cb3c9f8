/**
 * The history database (tags) of a repository.
 * @module
 */
import { sqlite } from './catalog/sqlite.js';
import { parseHash, type ContentHash } from './format/hash.js';
import { ioError } from './errors.js';

/** One row of the history database's tags table. */
export interface Tag {
  readonly name: string;
  readonly hash: ContentHash;
  readonly revision: number;
  readonly timestamp: number;
  readonly channel: number;
  readonly description: string;
  readonly size: number;
  readonly branch: string;
}

/** Reads all tags from a decompressed history database, newest revision first. */
export async function readTags(bytes: Uint8Array): Promise<Tag[]> {
  const SQL = await sqlite();
  let db;
  try {
    db = new SQL.Database(bytes);
  } catch (e) {
    throw ioError('catalog-format', 'history database is not an SQLite database', e);
  }
  try {
    const res = db.exec('SELECT name, hash, revision, timestamp, channel, description, size, branch FROM tags ORDER BY revision DESC, name');
    return (res[0]?.values ?? []).map((r) => ({
      name: String(r[0]),
      hash: parseHash(String(r[1])),
      revision: Number(r[2]),
      timestamp: Number(r[3]),
      channel: Number(r[4] ?? 0),
      description: String(r[5] ?? ''),
      size: Number(r[6] ?? 0),
      branch: String(r[7] ?? ''),
    }));
  } finally {
    db.close();
  }
}
