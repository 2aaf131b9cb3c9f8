/**
 * The history database (schema 1.0, revision 3; history_sql.cc): named tags pointing at root catalogs. Each
 * publish moves `trunk` to the new root catalog and the old `trunk` to `trunk-previous`, as `cvmfs_server` does.
 * @module
 */
import type { Database } from 'sql.js';
import { sqlite } from '../catalog/sqlite.js';

/** The history DDL exactly as the genuine creates it (properties first, from the generic database code). */
export const HISTORY_DDL: readonly string[] = [
  'CREATE TABLE properties (key TEXT, value TEXT, CONSTRAINT pk_properties PRIMARY KEY (key))',
  "CREATE TABLE branches (branch TEXT, parent TEXT, initial_revision INTEGER,  CONSTRAINT pk_branch PRIMARY KEY (branch),   FOREIGN KEY (parent) REFERENCES branches (branch),   CHECK ((branch <> '') OR (parent IS NULL)),   CHECK ((branch = '') OR (parent IS NOT NULL)))",
  'CREATE TABLE tags (name TEXT, hash TEXT, revision INTEGER,   timestamp INTEGER, channel INTEGER, description TEXT, size INTEGER,   branch TEXT, CONSTRAINT pk_tags PRIMARY KEY (name),   FOREIGN KEY (branch) REFERENCES branches (branch))',
  'CREATE TABLE recycle_bin (hash TEXT, flags INTEGER,   CONSTRAINT pk_hash PRIMARY KEY (hash))',
];

/** Tag names the publisher manages itself. */
export const RESERVED_TAGS: ReadonlySet<string> = new Set(['trunk', 'trunk-previous']);

/** What a tag points at. */
export interface TagTarget {
  /** Root catalog hash as text (with algorithm suffix). */
  readonly hash: string;
  readonly revision: number;
  readonly timestamp: number;
  /** Size of the uncompressed root catalog. */
  readonly size: number;
}

/** What to record for one publish. */
export interface HistoryUpdate {
  readonly fqrn: string;
  /** The previous history object's hash text, when there is one. */
  readonly previousHistory?: string;
  readonly head: TagTarget;
  readonly tag?: { readonly name: string; readonly description?: string };
}

/** True if the (decompressed) history database already has a tag of this name. */
export async function hasTag(history: Uint8Array, name: string): Promise<boolean> {
  const SQL = await sqlite();
  const db = new SQL.Database(history);
  try {
    return (db.exec('SELECT 1 FROM tags WHERE name = ?', [name])[0]?.values.length ?? 0) > 0;
  } finally {
    db.close();
  }
}

function insertTag(db: Database, name: string, t: TagTarget, description: string): void {
  db.run("INSERT INTO tags (name, hash, revision, timestamp, channel, description, size, branch) VALUES (?,?,?,?,0,?,?,'')",
    [name, t.hash, t.revision, t.timestamp, description, t.size]);
}

/**
 * Returns the new history database: the previous one (if given) with the tags moved, or a new one. Throws if
 * the requested tag name is taken or reserved.
 */
export async function buildHistory(previous: Uint8Array | undefined, u: HistoryUpdate): Promise<Uint8Array> {
  const SQL = await sqlite();
  const db = previous ? new SQL.Database(previous) : new SQL.Database();
  try {
    if (!previous) {
      for (const ddl of HISTORY_DDL) db.run(ddl);
      db.run("INSERT INTO branches (branch, parent, initial_revision) VALUES ('', NULL, 0)");
      db.run("INSERT INTO properties (key, value) VALUES ('schema', '1.0'), ('schema_revision', '3'), ('fqrn', ?)", [u.fqrn]);
    }
    db.run('BEGIN');
    if (u.previousHistory) db.run("INSERT OR REPLACE INTO properties (key, value) VALUES ('previous_revision', ?)", [u.previousHistory]);
    db.run("DELETE FROM tags WHERE name = 'trunk-previous'");
    db.run("UPDATE tags SET name = 'trunk-previous', description = 'default undo target' WHERE name = 'trunk'");
    insertTag(db, 'trunk', u.head, 'current HEAD');
    if (u.tag) {
      if (RESERVED_TAGS.has(u.tag.name)) throw new Error(`publish: tag name '${u.tag.name}' is reserved`);
      const taken = (db.exec('SELECT 1 FROM tags WHERE name = ?', [u.tag.name])[0]?.values.length ?? 0) > 0;
      if (taken) throw new Error(`publish: tag '${u.tag.name}' already exists`);
      insertTag(db, u.tag.name, u.head, u.tag.description ?? '');
    }
    db.run('COMMIT');
    return db.export();
  } finally {
    db.close();
  }
}
