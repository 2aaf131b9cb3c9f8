/**
 * One file catalog (an SQLite database), read in place by the B-tree reader of sqlite-tables.ts. Rows are looked up by MD5 path key,
 * listed by parent key; older schemas lacking some columns read those as NULL.
 * @module
 */
import { ioError } from '../errors.js';
import { parseHash, type ContentHash } from '../format/hash.js';
import { pathKey } from '../format/pathhash.js';
import { decodeName } from '../format/byte-names.js';
import { SqliteTables, type SqliteTable } from './sqlite-tables.js';
import type { Value } from './sqlite-record.js';

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

/** Catalog columns, in the order a row is built from. */
const COLUMNS = ['hardlinks', 'hash', 'size', 'mode', 'mtime', 'mtimens', 'flags', 'name', 'symlink', 'uid', 'gid', 'xattr'] as const;
type Column = (typeof COLUMNS)[number];

/** An open catalog. {@link Catalog.close} lets go of its bytes. */
export class Catalog {
  private readonly table: SqliteTable;
  private readonly chunkTable: SqliteTable | undefined;
  /** Where each of {@link COLUMNS} is in a row, or -1 where this schema lacks it. */
  private readonly at: Record<Column, number>;
  /** Nested catalogs referenced from this one, by path. */
  readonly nested: ReadonlyMap<string, CatalogRef>;
  /** Bind mountpoints (e.g. `/.cvmfs/snapshots/<tag>`), by path. */
  readonly bindMountpoints: ReadonlyMap<string, CatalogRef>;
  /** The properties table. */
  readonly properties: ReadonlyMap<string, string>;
  /** Largest rowid, used to give every entry a distinct inode. */
  readonly maxRowid: number;
  /**
   * Memory this catalog holds while open, in bytes: the database file, read in place (pages are decoded as
   * they are needed and nothing is copied into an engine's heap).
   */
  readonly memoryBytes: number;
  private closed = false;

  private constructor(private readonly db: SqliteTables, readonly hash: ContentHash, readonly mountpoint: string, fileBytes: number) {
    this.memoryBytes = fileBytes;
    const table = db.table('catalog');
    if (!table || !table.columns.includes('name') || !table.columns.includes('md5path_1')) throw ioError('catalog-format', `catalog ${hash.hex} has no usable catalog table`);
    this.table = table;
    this.chunkTable = db.table('chunks');
    this.at = Object.fromEntries(COLUMNS.map((c) => [c, table.columns.indexOf(c)])) as Record<Column, number>;
    this.properties = new Map([...this.rows('properties')].map((r) => [textOf(r[0]), textOf(r[1])]));
    this.nested = this.refs('nested_catalogs');
    this.bindMountpoints = this.refs('bind_mountpoints');
    this.maxRowid = table.maxRowid();
  }

  /** Opens a decompressed catalog database (kept, not copied: do not change `bytes` while it is open). */
  static async open(bytes: Uint8Array, hash: ContentHash, mountpoint: string): Promise<Catalog> {
    try {
      return new Catalog(new SqliteTables(bytes), hash, mountpoint, bytes.length);
    } catch (e) {
      throw e instanceof Error && 'code' in e && !/^malformed SQLite/.test(e.message) ? e : ioError('catalog-format', `catalog ${hash.hex} for '${mountpoint || '/'}' is unreadable: ${(e as Error).message}`, e);
    }
  }

  /** The values of a whole small table (properties, references, statistics); none where the schema lacks it. */
  private *rows(name: string): Generator<readonly Value[]> {
    const t = this.db.table(name);
    if (t) for (const r of t.scan()) yield r.values;
  }

  private refs(table: string): Map<string, CatalogRef> {
    const m = new Map<string, CatalogRef>();
    for (const r of this.rows(table)) {
      const path = textOf(r[0]);
      m.set(path, { path, hash: parseHash(textOf(r[1])), size: Number(r[2] ?? 0) });
    }
    return m;
  }

  /** Schema version (`schema` property), 2.5 for current catalogs. */
  get schema(): number {
    return Number(this.properties.get('schema') ?? '0');
  }

  /** The row at a catalog-tree path (`''` is the tree root). */
  lookup(path: string): CatalogRow | undefined {
    this.open();
    for (const r of this.table.find(KEY, pathKey(path))) return this.toRow(r);
    return undefined;
  }

  /** All rows whose parent is `path`. */
  children(path: string): CatalogRow[] {
    this.open();
    const out: CatalogRow[] = [];
    for (const r of this.table.find(PARENT, pathKey(path))) out.push(this.toRow(r));
    return out;
  }

  /** The chunk list of a chunked file, ordered by offset. */
  chunks(path: string): ChunkRow[] {
    this.open();
    const t = this.chunkTable;
    if (!t) return [];
    const [offset, size, hash] = ['offset', 'size', 'hash'].map((c) => t.columns.indexOf(c)) as [number, number, number];
    const out: ChunkRow[] = [];
    for (const { values: v } of t.find(KEY, pathKey(path))) {
      const h = v[hash];
      out.push({ offset: Number(v[offset] ?? 0), size: Number(v[size] ?? 0), hash: h instanceof Uint8Array ? h.slice() : new Uint8Array(0) });
    }
    // The primary key orders by path, offset and size; a table found without it is ordered here.
    return out.sort((a, b) => a.offset - b.offset);
  }

  /** The statistics table (`self_*`, `subtree_*` counters), empty on schemas without it. */
  statistics(): Map<string, number> {
    return new Map([...this.rows('statistics')].map((r) => [textOf(r[0]), Number(r[1] ?? 0)]));
  }

  /** Lets go of the database. */
  close(): void {
    this.closed = true;
  }

  private open(): void {
    if (this.closed) throw ioError('catalog-format', `catalog ${this.hash.hex} was used after it was closed`);
  }

  private toRow(r: { rowid: number; values: readonly Value[] }): CatalogRow {
    const v = (c: Column): Value => (this.at[c] < 0 ? null : r.values[this.at[c]] ?? null);
    const hardlinks = v('hardlinks');
    const blob = (x: Value) => (x instanceof Uint8Array && x.length > 0 ? x.slice() : null);
    const mtimens = v('mtimens');
    return {
      rowid: r.rowid,
      hardlinkGroup: hardlinks === null ? 0 : Number((BigInt(hardlinks as number | bigint) >> 32n) & 0xffffffffn),
      linkcount: hardlinks === null ? 1 : Number(BigInt(hardlinks as number | bigint) & 0xffffffffn),
      hash: blob(v('hash')),
      size: Number(v('size') ?? 0),
      mode: Number(v('mode') ?? 0),
      mtime: Number(v('mtime') ?? 0),
      mtimens: mtimens === null ? null : Number(mtimens),
      flags: Number(v('flags') ?? 0),
      name: textOf(v('name')),
      symlink: textOf(v('symlink')),
      uid: Number(v('uid') ?? 0),
      gid: Number(v('gid') ?? 0),
      xattr: blob(v('xattr')),
    };
  }
}

const KEY = ['md5path_1', 'md5path_2'];
const PARENT = ['parent_1', 'parent_2'];

/** A TEXT column read as bytes, in the library's string form (see format/byte-names.ts). */
function textOf(v: Value | undefined): string {
  if (v instanceof Uint8Array) return decodeName(v);
  return v === null || v === undefined ? '' : String(v);
}
