/**
 * One file catalog (an SQLite database) opened read-only in WASM SQLite. Rows are looked up by MD5 path key,
 * listed by parent key; older schemas lacking some columns read those as NULL.
 * @module
 */
import type { Database, Statement, SqlValue } from 'sql.js';
import { ioError } from '../errors.js';
import { parseHash, type ContentHash } from '../format/hash.js';
import { pathKey } from '../format/pathhash.js';
import { decodeName } from '../format/byte-names.js';
import { sqlite } from './sqlite.js';

/** A catalog row, as stored. */
export interface CatalogRow {
  readonly rowid: number;
  readonly name: string;
  readonly flags: number;
  readonly mode: number;
  readonly size: number;
  readonly mtime: number;
  /** Nanosecond part of the mtime, or null where the column is absent or empty. */
  readonly mtimens: number | null;
  readonly uid: number;
  readonly gid: number;
  /** Hardlink group (upper 32 bits of the hardlinks column). */
  readonly hardlinkGroup: number;
  /** Link count (lower 32 bits). */
  readonly linkcount: number;
  readonly hash: Uint8Array | null;
  readonly symlink: string;
  readonly xattr: Uint8Array | null;
}

/** A row of the chunks table. */
export interface ChunkRow {
  readonly offset: number;
  readonly size: number;
  readonly hash: Uint8Array;
}

/** A nested catalog or bind mountpoint reference. */
export interface CatalogRef {
  /** Catalog-tree path of the mountpoint, e.g. `/nested`. */
  readonly path: string;
  readonly hash: ContentHash;
  readonly size: number;
}

/** SQLite page cache of one open catalog, at most (SQLite's default is 2000 KiB). */
export const PAGE_CACHE_BYTES = 256 * 1024;
/** Bookkeeping per cached page beyond the page itself (PgHdr and PgHdr1, rounded up). */
const PAGE_OVERHEAD = 256;

const COLUMNS = ['hardlinks', 'hash', 'size', 'mode', 'mtime', 'mtimens', 'flags', 'name', 'symlink', 'uid', 'gid', 'xattr'] as const;

/** An open catalog. Call {@link Catalog.close} to free its WASM memory. */
export class Catalog {
  private readonly lookupStmt: Statement;
  private readonly childrenStmt: Statement;
  private chunksStmt: Statement | undefined;
  /** Nested catalogs referenced from this one, by path. */
  readonly nested: ReadonlyMap<string, CatalogRef>;
  /** Bind mountpoints (e.g. `/.cvmfs/snapshots/<tag>`), by path. */
  readonly bindMountpoints: ReadonlyMap<string, CatalogRef>;
  /** The properties table. */
  readonly properties: ReadonlyMap<string, string>;
  /** Largest rowid, used to give every entry a distinct inode. */
  readonly maxRowid: number;
  /**
   * Memory this catalog holds while open, in bytes: sql.js keeps the whole database file in memory (its
   * in-memory file system), and SQLite's page cache, capped at {@link PAGE_CACHE_BYTES}, copies pages of it into
   * the WASM heap.
   */
  readonly memoryBytes: number;
  private closed = false;

  private constructor(private readonly db: Database, readonly hash: ContentHash, readonly mountpoint: string, fileBytes: number) {
    // The file is already in memory: a large page cache would only hold a second copy of it in the WASM heap,
    // which never shrinks.
    db.exec(`PRAGMA cache_size = -${PAGE_CACHE_BYTES / 1024}`);
    this.memoryBytes = fileBytes + Math.min(fileBytes, PAGE_CACHE_BYTES) + PAGE_OVERHEAD * Math.ceil(Math.min(fileBytes, PAGE_CACHE_BYTES) / 4096);
    const have = new Set<string>();
    for (const r of db.exec('PRAGMA table_info(catalog)')[0]?.values ?? []) have.add(String(r[1]));
    if (!have.has('name') || !have.has('md5path_1')) throw ioError('catalog-format', `catalog ${hash.hex} has no usable catalog table`);
    const cols = COLUMNS.map((c) => {
      if (c === 'hardlinks') return have.has(c) ? '(hardlinks >> 32) & 4294967295, hardlinks & 4294967295' : '0, 1';
      // Names and targets are bytes (TEXT that need not be UTF-8): read them as such, never through a lossy decode.
      if (c === 'name' || c === 'symlink') return have.has(c) ? `CAST(${c} AS BLOB)` : 'NULL';
      return have.has(c) ? c : 'NULL';
    }).join(', ');
    const select = `SELECT rowid, ${cols} FROM catalog`;
    this.lookupStmt = db.prepare(`${select} WHERE md5path_1 = ? AND md5path_2 = ?`);
    this.childrenStmt = db.prepare(`${select} WHERE parent_1 = ? AND parent_2 = ?`);
    this.properties = new Map(this.all('SELECT key, value FROM properties', true).map((r) => [String(r[0]), String(r[1])]));
    this.nested = this.refs('nested_catalogs');
    this.bindMountpoints = this.refs('bind_mountpoints');
    this.maxRowid = Number(this.all('SELECT max(rowid) FROM catalog')[0]?.[0] ?? 0);
  }

  /** Opens a decompressed catalog database. */
  static async open(bytes: Uint8Array, hash: ContentHash, mountpoint: string): Promise<Catalog> {
    const SQL = await sqlite();
    let db: Database;
    try {
      db = new SQL.Database(bytes);
    } catch (e) {
      throw ioError('catalog-format', `catalog ${hash.hex} is not an SQLite database`, e);
    }
    try {
      return new Catalog(db, hash, mountpoint, bytes.length);
    } catch (e) {
      db.close();
      throw e instanceof Error && 'code' in e ? e : ioError('catalog-format', `catalog ${hash.hex} for '${mountpoint || '/'}' is unreadable: ${(e as Error).message}`, e);
    }
  }

  private all(sql: string, optional = false): SqlValue[][] {
    try {
      return this.db.exec(sql)[0]?.values ?? [];
    } catch (e) {
      if (optional) return [];
      throw e;
    }
  }

  private refs(table: string): Map<string, CatalogRef> {
    const m = new Map<string, CatalogRef>();
    for (const r of this.all(`SELECT CAST(path AS BLOB), sha1, size FROM ${table}`, true)) {
      const path = textOf(r[0]);
      m.set(path, { path, hash: parseHash(String(r[1])), size: Number(r[2] ?? 0) });
    }
    return m;
  }

  /** Schema version (`schema` property), 2.5 for current catalogs. */
  get schema(): number {
    return Number(this.properties.get('schema') ?? '0');
  }

  /** The row at a catalog-tree path (`''` is the tree root). */
  lookup(path: string): CatalogRow | undefined {
    const s = this.lookupStmt;
    s.bind(pathKey(path) as unknown as SqlValue[]);
    try {
      return s.step() ? toRow(s.get()) : undefined;
    } finally {
      s.reset();
    }
  }

  /** All rows whose parent is `path`. */
  children(path: string): CatalogRow[] {
    const s = this.childrenStmt;
    s.bind(pathKey(path) as unknown as SqlValue[]);
    const out: CatalogRow[] = [];
    try {
      while (s.step()) out.push(toRow(s.get()));
    } finally {
      s.reset();
    }
    return out;
  }

  /** The chunk list of a chunked file, ordered by offset. */
  chunks(path: string): ChunkRow[] {
    this.chunksStmt ??= this.db.prepare('SELECT offset, size, hash FROM chunks WHERE md5path_1 = ? AND md5path_2 = ? ORDER BY offset');
    const s = this.chunksStmt;
    s.bind(pathKey(path) as unknown as SqlValue[]);
    const out: ChunkRow[] = [];
    try {
      while (s.step()) {
        const r = s.get();
        out.push({ offset: Number(r[0]), size: Number(r[1]), hash: r[2] as Uint8Array });
      }
    } finally {
      s.reset();
    }
    return out;
  }

  /** The statistics table (`self_*`, `subtree_*` counters), empty on schemas without it. */
  statistics(): Map<string, number> {
    return new Map(this.all('SELECT counter, value FROM statistics', true).map((r) => [String(r[0]), Number(r[1])]));
  }

  /** Frees the database. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.lookupStmt.free();
    this.childrenStmt.free();
    this.chunksStmt?.free();
    this.db.close();
  }
}

/** A TEXT column read as bytes, in the library's string form (see format/byte-names.ts). */
function textOf(v: SqlValue | undefined): string {
  if (v instanceof Uint8Array) return decodeName(v);
  return v === null || v === undefined ? '' : String(v);
}

function toRow(r: SqlValue[]): CatalogRow {
  const blob = (v: SqlValue) => (v instanceof Uint8Array && v.length > 0 ? v : null);
  return {
    rowid: Number(r[0]),
    hardlinkGroup: Number(r[1] ?? 0),
    linkcount: Number(r[2] ?? 1),
    hash: blob(r[3]!),
    size: Number(r[4] ?? 0),
    mode: Number(r[5] ?? 0),
    mtime: Number(r[6] ?? 0),
    mtimens: r[7] === null || r[7] === undefined ? null : Number(r[7]),
    flags: Number(r[8] ?? 0),
    name: textOf(r[9]),
    symlink: textOf(r[10]),
    uid: Number(r[11] ?? 0),
    gid: Number(r[12] ?? 0),
    xattr: blob(r[13]!),
  };
}
