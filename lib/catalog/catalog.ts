/**
 * One file catalog (an SQLite database), read in place by the B-tree reader of sqlite-tables.ts. Rows are looked up by MD5 path key,
 * listed by parent key; older schemas lacking some columns read those as NULL.
 * @module
 */
import { ioError } from '../errors.js';
import { parseHash, type ContentHash } from '../format/hash.js';
import { pathKey } from '../format/pathhash.js';
import { decodeName } from '../format/byte-names.js';
import { SqliteTables, type Row, type SqliteTable } from './sqlite-tables.js';
import { FilePages, memoryPages, type PageSource } from './sqlite-pages.js';
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
  /** The content hash's bytes: a view of the catalog's page, to be read at once, not kept. */
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
  /** The database and its catalog table; let go of at close. */
  private tables: { db: SqliteTables; catalog: SqliteTable } | undefined;
  /** Where each of {@link COLUMNS} is in a row, or -1 where this schema lacks it. */
  private readonly at: Record<Column, number>;
  /** The catalog table's columns a row is not built from (the path keys), which lookups leave undecoded. */
  private readonly unused: readonly boolean[];
  /** Nested catalogs referenced from this one, by path. */
  readonly nested: ReadonlyMap<string, CatalogRef>;
  /** Bind mountpoints (e.g. `/.cvmfs/snapshots/<tag>`), by path. */
  readonly bindMountpoints: ReadonlyMap<string, CatalogRef>;
  /** The properties table. */
  readonly properties: ReadonlyMap<string, string>;
  /** Largest rowid, used to give every entry a distinct inode. */
  readonly maxRowid: number;
  /**
   * Memory this catalog holds while open, in bytes: the database's bytes when opened from them, its page cache
   * when read from its file.
   */
  readonly memoryBytes: number;

  private constructor(db: SqliteTables, readonly hash: ContentHash, readonly mountpoint: string) {
    this.memoryBytes = db.source.memoryBytes;
    const table = db.table('catalog');
    if (!table || !table.columns.includes('name') || !table.columns.includes('md5path_1')) throw ioError('catalog-format', 'no usable catalog table');
    this.tables = { db, catalog: table };
    this.at = Object.fromEntries(COLUMNS.map((c) => [c, table.columns.indexOf(c)])) as Record<Column, number>;
    this.unused = table.columns.map((c) => !(COLUMNS as readonly string[]).includes(c));
    this.properties = new Map(rows(db, 'properties', ['key', 'value']).map((r) => [textOf(r[0]), textOf(r[1])]));
    this.nested = refs(db, 'nested_catalogs');
    this.bindMountpoints = refs(db, 'bind_mountpoints');
    this.maxRowid = Number(table.maxRowid());
  }

  /** Opens a decompressed catalog database (kept, not copied: do not change `bytes` while it is open). */
  static async open(bytes: Uint8Array, hash: ContentHash, mountpoint: string): Promise<Catalog> {
    return Catalog.from(() => memoryPages(bytes), hash, mountpoint);
  }

  /**
   * Opens a decompressed catalog from its file, read a page at a time as lookups need them (a descriptor is held
   * until {@link Catalog.close}); throws as `open(2)` does if the file is gone.
   */
  static openFile(path: string, hash: ContentHash, mountpoint: string): Catalog {
    return Catalog.from(() => new FilePages(path), hash, mountpoint);
  }

  private static from(pages: () => PageSource, hash: ContentHash, mountpoint: string): Catalog {
    const source = pages();
    try {
      return new Catalog(new SqliteTables(source), hash, mountpoint);
    } catch (e) {
      source.close();
      throw ioError('catalog-format', `catalog ${hash.hex} for '${mountpoint || '/'}' is unreadable: ${(e as Error).message}`, e);
    }
  }

  /** Schema version (`schema` property), 2.5 for current catalogs. */
  get schema(): number {
    return Number(this.properties.get('schema') ?? '0');
  }

  /** The row at a catalog-tree path (`''` is the tree root). */
  lookup(path: string): CatalogRow | undefined {
    for (const r of this.live().catalog.find(KEY, pathKey(path), this.unused)) return this.toRow(r);
    return undefined;
  }

  /** All rows whose parent is `path`. */
  children(path: string): CatalogRow[] {
    return [...this.eachChild(path)];
  }

  /**
   * The rows whose parent is `path`, one at a time: a directory of 50,000 entries need not be in memory at once.
   * The walk keeps the catalog's pages readable until it ends, even if the catalog is closed meanwhile.
   */
  *eachChild(path: string): Generator<CatalogRow> {
    for (const r of this.live().catalog.find(PARENT, pathKey(path), this.unused)) yield this.toRow(r);
  }

  /** The chunk list of a chunked file, ordered by offset. */
  chunks(path: string): ChunkRow[] {
    // Found on first use (the tables' statements are parsed then): most commands read no chunked file.
    const t = this.live().db.table('chunks');
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
    const t = this.live();
    return new Map(rows(t.db, 'statistics', ['counter', 'value']).map((r) => [textOf(r[0]), Number(r[1] ?? 0)]));
  }

  /** Lets go of the database (its descriptor closes once a listing still streaming from it ends). */
  close(): void {
    this.tables?.db.source.close();
    this.tables = undefined;
  }

  private live(): { db: SqliteTables; catalog: SqliteTable } {
    if (!this.tables) throw ioError('catalog-format', `catalog ${this.hash.hex} was used after it was closed`);
    return this.tables;
  }

  private toRow(r: Row): CatalogRow {
    const at = this.at;
    const values = r.values;
    // Written out column by column: this runs once per entry of every listing.
    const hardlinks = column(values, at.hardlinks);
    const mtimens = column(values, at.mtimens);
    return {
      rowid: Number(r.rowid),
      hardlinkGroup: hardlinks === null ? 0 : high32(hardlinks),
      linkcount: hardlinks === null ? 1 : low32(hardlinks),
      hash: view(column(values, at.hash)),
      size: Number(column(values, at.size) ?? 0),
      mode: Number(column(values, at.mode) ?? 0),
      mtime: Number(column(values, at.mtime) ?? 0),
      mtimens: mtimens === null ? null : Number(mtimens),
      flags: Number(column(values, at.flags) ?? 0),
      name: textOf(column(values, at.name)),
      symlink: textOf(column(values, at.symlink)),
      uid: Number(column(values, at.uid) ?? 0),
      gid: Number(column(values, at.gid) ?? 0),
      xattr: blob(column(values, at.xattr)),
    };
  }
}

/** A row's value at `i`, or null where the schema lacks the column (`i` < 0). */
function column(values: readonly Value[], i: number): Value {
  return i < 0 ? null : values[i] ?? null;
}

/** A BLOB column as it is, or null when empty. */
function view(x: Value): Uint8Array | null {
  return x instanceof Uint8Array && x.length > 0 ? x : null;
}

/** A BLOB column as its own bytes (not a view of the page), or null when empty. */
function blob(x: Value): Uint8Array | null {
  return x instanceof Uint8Array && x.length > 0 ? x.slice() : null;
}

const TWO_32 = 2 ** 32;

/** The upper 32 bits of an integer column (the hardlink group), unsigned; without a bigint where none is needed. */
function high32(v: Value): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return Math.floor(v / TWO_32);
  return Number((int64(v) >> 32n) & 0xffffffffn);
}

/** The lower 32 bits of an integer column (the link count), unsigned. */
function low32(v: Value): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v % TWO_32;
  return Number(int64(v) & 0xffffffffn);
}

/** An integer column's value as SQLite's integer operators see it: a REAL truncated, TEXT or BLOB as 0. */
function int64(v: Value): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
  return 0n;
}

/** The named columns of every row of a small table (properties, references, statistics); none without it. */
function rows(db: SqliteTables, name: string, columns: readonly string[]): (Value | undefined)[][] {
  const t = db.table(name);
  if (!t) return [];
  const at = columns.map((c) => t.columns.indexOf(c));
  return [...t.scan()].map((r) => at.map((i) => (i < 0 ? undefined : r.values[i])));
}

function refs(db: SqliteTables, table: string): Map<string, CatalogRef> {
  const m = new Map<string, CatalogRef>();
  for (const r of rows(db, table, ['path', 'sha1', 'size'])) {
    const path = textOf(r[0]);
    m.set(path, { path, hash: parseHash(textOf(r[1])), size: Number(r[2] ?? 0) });
  }
  return m;
}

const KEY = ['md5path_1', 'md5path_2'];
const PARENT = ['parent_1', 'parent_2'];

/** A TEXT column read as bytes, in the library's string form (see format/byte-names.ts). */
function textOf(v: Value | undefined): string {
  if (v instanceof Uint8Array) return decodeName(v);
  return v === null || v === undefined ? '' : String(v);
}
