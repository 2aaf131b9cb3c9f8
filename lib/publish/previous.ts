/**
 * What the next revision needs from the revision already in the output directory: its manifest, its catalogs
 * (to keep unchanged nested catalogs and to link `previous_revision`), its files' stored content (to keep that
 * of unchanged files) and its history database.
 * @module
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { sqlite } from '../catalog/sqlite.js';
import { decodeName } from '../format/byte-names.js';
import { hashBytes, objectPath, parseHash, type ContentHash, type ObjectSuffix } from '../format/hash.js';
import { parseManifest, type Manifest } from '../format/manifest.js';
import type { PreviousCatalog } from './catalog-writer.js';
import { PreviousContents } from './unchanged.js';

/** The revision currently published in a repository directory. */
export interface PreviousRevision {
  readonly manifest: Manifest;
  /** Nested catalogs (not the root) by path. */
  readonly catalogs: ReadonlyMap<string, PreviousCatalog>;
  /** The decompressed history database, if the manifest names one. */
  readonly history?: Uint8Array;
  /** Its regular files' stored content, to keep for files that did not change. */
  readonly contents: PreviousContents;
}

/** Reads and decompresses an object of the repository, checking its hash. */
async function readObject(repoDir: string, hash: ContentHash, suffix: ObjectSuffix): Promise<Uint8Array> {
  const stored = await readFile(join(repoDir, objectPath(hash, suffix)));
  if (hashBytes(stored, hash.algorithm).hex !== hash.hex) throw new Error(`publish: object ${objectPath(hash, suffix)} in ${repoDir} is corrupt`);
  return inflateSync(stored);
}

/** Returns undefined when `repoDir` has no manifest yet; throws if it holds another repository. */
export async function readPreviousRevision(repoDir: string, fqrn: string): Promise<PreviousRevision | undefined> {
  const manifestPath = join(repoDir, '.cvmfspublished');
  if (!existsSync(manifestPath)) return undefined;
  const manifest = parseManifest(await readFile(manifestPath));
  if (manifest.fqrn !== fqrn) throw new Error(`publish: ${repoDir} holds repository ${manifest.fqrn}, not ${fqrn}`);

  const SQL = await sqlite();
  const catalogs = new Map<string, PreviousCatalog>();
  const contents = new PreviousContents();
  // Walk the catalog tree once for hashes and revisions; the databases are loaded again only when compared.
  const queue: { path: string; hash: ContentHash; size: number }[] = [{ path: '', hash: manifest.rootCatalog, size: 0 }];
  while (queue.length > 0) {
    const { path, hash, size } = queue.shift()!;
    const db = new SQL.Database(await readObject(repoDir, hash, 'C'));
    try {
      if (path !== '') {
        const revision = Number(db.exec("SELECT value FROM properties WHERE key = 'revision'")[0]?.values[0]?.[0] ?? 0);
        catalogs.set(path, { hash, size, revision, load: () => readObject(repoDir, hash, 'C') });
      }
      contents.add(db);
      for (const row of db.exec('SELECT CAST(path AS BLOB), sha1, size FROM nested_catalogs')[0]?.values ?? []) {
        queue.push({ path: decodeName(row[0] as Uint8Array), hash: parseHash(String(row[1])), size: Number(row[2]) });
      }
    } finally {
      db.close();
    }
  }
  const history = manifest.history ? await readObject(repoDir, manifest.history, 'H') : undefined;
  return { manifest, catalogs, contents, ...(history ? { history } : {}) };
}
