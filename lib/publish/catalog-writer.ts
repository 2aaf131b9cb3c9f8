/**
 * Writes file catalogs (schema 2.5, revision 7) from the scanned source tree, bottom-up so that every parent can
 * record its nested catalogs' hashes. A nested catalog whose rows are unchanged since the previous revision is
 * kept as it was (same object, same revision counter), as the genuine publisher keeps untouched catalogs.
 * @module
 */
import type { Database, SqlValue, Statement } from 'sql.js';
import { sqlite } from '../catalog/sqlite.js';
import { encodeContentFlags, Flag, type Compression } from '../format/flags.js';
import { hashToBytes, hashToString, type ContentHash, type HashAlgorithm } from '../format/hash.js';
import { pathKey, type PathKey } from '../format/pathhash.js';
import { serializeXattrs } from '../format/xattr.js';
import { encodeName } from '../format/byte-names.js';
import type { DeflateThread } from './deflate-thread.js';
import type { ObjectWriter } from './object-writer.js';
import { CatalogRows } from './same-rows.js';
import { COUNTER_NAMES, type Counters, type Row, type RowSink, type WrittenCatalog } from './catalog-types.js';
import { entryKey, type SourceEntry } from './source.js';

export { COUNTER_NAMES };

/** The catalog DDL exactly as `cvmfs_server` creates it (catalog_sql.cc), so sqlite_master matches byte for byte. */
export const CATALOG_DDL: readonly string[] = [
  'CREATE TABLE properties (key TEXT, value TEXT, CONSTRAINT pk_properties PRIMARY KEY (key))',
  'CREATE TABLE catalog (md5path_1 INTEGER, md5path_2 INTEGER, parent_1 INTEGER, parent_2 INTEGER, hardlinks INTEGER, hash BLOB, size INTEGER, mode INTEGER, mtime INTEGER, mtimens INTEGER, flags INTEGER, name TEXT, symlink TEXT, uid INTEGER, gid INTEGER, xattr BLOB,  CONSTRAINT pk_catalog PRIMARY KEY (md5path_1, md5path_2))',
  'CREATE INDEX idx_catalog_parent ON catalog (parent_1, parent_2)',
  'CREATE TABLE chunks (md5path_1 INTEGER, md5path_2 INTEGER, offset INTEGER, size INTEGER,  hash BLOB,  CONSTRAINT pk_chunks PRIMARY KEY (md5path_1, md5path_2, offset, size),  FOREIGN KEY (md5path_1, md5path_2) REFERENCES    catalog(md5path_1, md5path_2))',
  'CREATE TABLE nested_catalogs (path TEXT, sha1 TEXT, size INTEGER, CONSTRAINT pk_nested_catalogs PRIMARY KEY (path))',
  'CREATE TABLE bind_mountpoints (path TEXT, sha1 TEXT, size INTEGER, CONSTRAINT pk_bind_mountpoints PRIMARY KEY (path))',
  'CREATE TABLE statistics (counter TEXT, value INTEGER, CONSTRAINT pk_statistics PRIMARY KEY (counter))',
];

function zeroCounters(): Counters {
  return Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as Counters;
}

function addCounters(into: Counters, a: Counters): void {
  for (const n of COUNTER_NAMES) into[n] += a[n];
}

/** What the null hash prints as: the genuine writes it as `previous_revision` of a brand-new nested catalog. */
const NULL_HASH = '0'.repeat(40);
const DIR_SIZE = 4096;
const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** One catalog to write: the directory it starts at and the nested catalogs below it. */
export interface CatalogPlan {
  /** `''` for the root catalog, else the nested catalog's path. */
  readonly path: string;
  readonly root: SourceEntry;
  readonly children: CatalogPlan[];
}

/** Splits the tree into catalogs at every directory marked as a nested catalog. */
export function planCatalogs(root: SourceEntry): CatalogPlan {
  const make = (dir: SourceEntry): CatalogPlan => {
    const plan: CatalogPlan = { path: dir.path, root: dir, children: [] };
    const visit = (d: SourceEntry): void => {
      for (const c of d.children) {
        if (c.kind !== 'dir') continue;
        if (c.nestedCatalog) plan.children.push(make(c));
        else visit(c);
      }
    };
    visit(dir);
    return plan;
  };
  return make(root);
}

/** A catalog of the previous revision, for keeping unchanged nested catalogs. */
export interface PreviousCatalog {
  readonly hash: ContentHash;
  readonly size: number;
  readonly revision: number;
  /** The decompressed catalog database. */
  load(): Promise<Uint8Array>;
}

/** Settings shared by all catalogs of one publish. */
export interface CatalogContext {
  readonly writer: ObjectWriter;
  readonly algorithm: HashAlgorithm;
  readonly compression: Compression;
  /** Regular files are external data (flag 128): their content is not among the repository's objects. */
  readonly externalData?: boolean;
  /** Unix seconds, for `last_modified`. */
  readonly timestamp: number;
  readonly ttl: number;
  /** The root catalog's `voms_authz` property (a membership requirement), if any. */
  readonly vomsAuthz?: string;
  /** Revision of the repository being published (the root catalog's revision). */
  readonly revision: number;
  /** Root catalog of the previous revision, if any. */
  readonly previousRoot?: ContentHash;
  /** Nested catalogs of the previous revision by path. */
  readonly previous: ReadonlyMap<string, PreviousCatalog>;
  /** Whether to fill the mtimens column (else NULL, as without CVMFS_ENABLE_MTIME_NS). */
  readonly mtimeNs: boolean;
  /**
   * True for a regular file whose row certainly differs from the previous revision's (new path, other size or
   * mtime): a nested catalog holding one is written without making its rows twice to compare them with its
   * previous version (same-rows.ts). When absent, every nested catalog is compared.
   */
  readonly changed?: (e: SourceEntry) => boolean;
  /**
   * Deflates catalogs' databases into standard zlib's bytes in another thread (deflate-thread.ts) while this one
   * builds the next catalog; in this thread when absent.
   */
  readonly deflater?: Pick<DeflateThread, 'reserve' | 'deflate'>;
}



/** Entries whose content is a device number rather than a size. */
function isDevice(mode: number): boolean {
  const t = mode & S_IFMT;
  return t === S_IFCHR || t === S_IFBLK;
}

const ROOT_PARENT: PathKey = [0n, 0n];


/** Rows inserted into a catalog database being built. */
class DatabaseSink implements RowSink {
  private readonly insertEntry: Statement;
  private readonly insertChunk: Statement;

  constructor(db: Database) {
    // Names and symlink targets go in as bytes cast to TEXT: the genuine catalogs hold the bytes the publisher
    // read, UTF-8 or not (sql.js would store a JS string as UTF-8, a Buffer as a BLOB).
    this.insertEntry = db.prepare('INSERT INTO catalog (md5path_1, md5path_2, parent_1, parent_2, hardlinks, hash, size, mode, mtime, mtimens, flags, name, symlink, uid, gid, xattr) VALUES (?,?,?,?,?,?,?,?,?,?,?,CAST(? AS TEXT),CAST(? AS TEXT),?,?,?)');
    this.insertChunk = db.prepare('INSERT INTO chunks (md5path_1, md5path_2, offset, size, hash) VALUES (?,?,?,?,?)');
  }

  entry(values: Row[]): void {
    this.insertEntry.run(values as unknown as SqlValue[]);
  }

  chunk(values: Row[]): void {
    this.insertChunk.run(values as unknown as SqlValue[]);
  }

  free(): void {
    this.insertEntry.free();
    this.insertChunk.free();
  }
}

class CatalogBuilder {
  readonly self = zeroCounters();
  private nextGroup = 1;

  constructor(private readonly sink: RowSink, private readonly ctx: CatalogContext) {}

  /** Adds the catalog's own directory and everything below it down to the nested catalogs' mountpoints. */
  addTree(plan: CatalogPlan): void {
    const isRootCatalog = plan.path === '';
    const key = this.addRow(plan.root, isRootCatalog ? ROOT_PARENT : pathKey(parentOf(plan.path)), isRootCatalog ? 0 : Flag.NestedRoot, 1);
    this.addChildren(plan.root, key);
  }

  /** Adds the entries below `dir`, whose path key is `dirKey` (computed once, as every child's parent key). */
  private addChildren(dir: SourceEntry, dirKey: PathKey): void {
    // Hardlinks are only kept within one directory (CVMFS_IGNORE_XDIR_HARDLINKS): same inode, same directory.
    const byInode = new Map<string, SourceEntry[]>();
    for (const c of dir.children) {
      if (c.kind === 'dir' || c.nlink < 2) continue;
      const g = byInode.get(c.inode);
      if (g) g.push(c);
      else byInode.set(c.inode, [c]);
    }
    const groupOf = new Map<SourceEntry, bigint>();
    for (const members of byInode.values()) {
      if (members.length < 2) continue;
      const value = (BigInt(this.nextGroup++) << 32n) | BigInt(members.length);
      for (const m of members) groupOf.set(m, value);
    }
    for (const c of dir.children) {
      if (c.kind === 'dir') {
        const key = this.addRow(c, dirKey, c.nestedCatalog ? Flag.NestedMountpoint : 0, 1);
        if (!c.nestedCatalog) this.addChildren(c, key);
      } else this.addRow(c, dirKey, 0, groupOf.get(c) ?? 1);
    }
  }

  /** Inserts one row under the parent whose key is `parentKey` ((0, 0) for the repository root); returns its key. */
  private addRow(e: SourceEntry, parentKey: PathKey, extraFlags: number, linkInfo: bigint | number): PathKey {
    const { algorithm, compression } = this.ctx;
    let flags = extraFlags;
    let hash: Uint8Array | null = null;
    let size = e.size;
    let hardlinks: Row = linkInfo;
    const content = e.content;
    switch (e.kind) {
      case 'dir':
        flags |= Flag.Directory;
        size = DIR_SIZE;
        hardlinks = e.kept ? e.kept.hardlinks : 2 + e.children.filter((c) => c.kind === 'dir').length;
        this.self.dir++;
        break;
      case 'symlink':
        flags |= Flag.File | Flag.Link;
        size = encodeName(e.target ?? '').length;
        this.self.symlink++;
        break;
      case 'special':
        flags |= Flag.File | Flag.FileSpecial;
        size = isDevice(e.mode) ? e.rdev : 0;
        this.self.special++;
        break;
      case 'file': {
        if (!content) throw new Error(`publish: content of ${e.path} was not stored`);
        const chunked = content.chunks.length > 0;
        flags |= Flag.File | encodeContentFlags(algorithm, compression) | (chunked ? Flag.FileChunk : 0) | (this.ctx.externalData ? Flag.FileExternal : 0);
        size = content.size;
        if (content.hash) hash = hashToBytes(content.hash);
        this.self.regular++;
        this.self.file_size += size;
        if (chunked) {
          this.self.chunked++;
          this.self.chunked_size += size;
        }
        break;
      }
    }
    const xattr = e.xattrs ? serializeXattrs(e.xattrs) : null;
    if (xattr) this.self.xattr++;
    const key = entryKey(e);
    // A million keys need not stay: the pass that writes a catalog compared with its previous version (rarely
    // needed) computes them again.
    e.key = undefined;
    this.sink.entry([
      key[0], key[1], parentKey[0], parentKey[1], hardlinks, hash, size, e.mode, e.mtime,
      this.ctx.mtimeNs ? e.mtimeNs : null, flags, encodeName(e.name), encodeName(e.kind === 'symlink' ? e.target! : ''), e.uid, e.gid, xattr,
    ]);
    if (e.kind === 'file' && content) {
      for (const c of content.chunks) {
        this.sink.chunk([key[0], key[1], c.offset, c.size, hashToBytes(c.hash)]);
        this.self.chunks++;
      }
    }
    return key;
  }
}

/** Parent of a repository path (`/a/b` → `/a`, `/a` → `''`). */
function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/'));
}

/** A catalog's own counters (with its nested catalogs counted) and its subtree's, from its nested catalogs'. */
function countersOf(self: Counters, nested: readonly WrittenCatalog[]): { self: Counters; subtree: Counters } {
  const subtree = zeroCounters();
  self.nested = nested.length;
  for (const n of nested) {
    addCounters(subtree, n.self);
    addCounters(subtree, n.subtree);
  }
  return { self, subtree };
}

/** The rows of `nested_catalogs` and `statistics`, values in column order. */
function summaryRows(nested: readonly WrittenCatalog[], c: { self: Counters; subtree: Counters }): { nested: Row[][]; statistics: Row[][] } {
  return {
    nested: nested.map((n) => [encodeName(n.path), hashToString(n.hash), n.size]),
    statistics: [...COUNTER_NAMES.map((name) => [`self_${name}`, c.self[name]]), ...COUNTER_NAMES.map((name) => [`subtree_${name}`, c.subtree[name]])],
  };
}

/** Whether a regular file in `dir` or below, down to nested catalogs, certainly changed (CatalogContext.changed). */
function holdsChangedFile(dir: SourceEntry, changed: CatalogContext['changed']): boolean {
  return changed !== undefined && dir.children.some((c) => (c.kind === 'dir' ? !c.nestedCatalog && holdsChangedFile(c, changed) : c.kind === 'file' && changed(c)));
}

/**
 * The previous revision's catalog of `plan`, kept as it was (object, revision, previous revision), when it holds
 * the very rows this publish would write (same-rows.ts); undefined when it must be written again.
 */
async function keptIfSame(plan: CatalogPlan, ctx: CatalogContext, prev: PreviousCatalog, nested: readonly WrittenCatalog[]): Promise<WrittenCatalog | undefined> {
  if (holdsChangedFile(plan.root, ctx.changed)) return undefined;
  const rows = new CatalogRows();
  const builder = new CatalogBuilder(rows, ctx);
  builder.addTree(plan);
  const counters = countersOf(builder.self, nested);
  const summary = summaryRows(nested, counters);
  for (const r of summary.nested) rows.add('nested_catalogs', r);
  for (const r of summary.statistics) rows.add('statistics', r);
  if (!rows.heldBy(await prev.load())) return undefined;
  return { path: plan.path, hash: prev.hash, size: prev.size, revision: prev.revision, ...counters, reused: true, catalogs: 1 + nested.reduce((s, n) => s + n.catalogs, 0) };
}

/** The properties of a catalog written at `revision`. */
function propertiesOf(plan: CatalogPlan, ctx: CatalogContext, revision: number, prev: PreviousCatalog | undefined): [string, string][] {
  const isRoot = plan.path === '';
  const props: [string, string][] = [['schema', '2.5'], ['schema_revision', '7']];
  props.push(isRoot ? ['TTL', String(ctx.ttl)] : ['root_prefix', plan.path]);
  props.push(['last_modified', String(ctx.timestamp)], ['revision', String(revision)]);
  if (isRoot) {
    if (ctx.previousRoot) props.push(['previous_revision', hashToString(ctx.previousRoot)]);
    if (ctx.vomsAuthz) props.push(['voms_authz', ctx.vomsAuthz]);
  } else props.push(['previous_revision', prev ? hashToString(prev.hash) : NULL_HASH]);
  return props;
}

/** Writes the catalog of `plan` and, first, all catalogs below it. */
export async function writeCatalogTree(plan: CatalogPlan, ctx: CatalogContext): Promise<WrittenCatalog> {
  // Not scanned: the previous revision's catalog as it is.
  if (plan.root.kept) return plan.root.kept.written;
  // Side by side: each catalog's database is built in this thread, then deflated in another while the next
  // sibling's is built.
  const nested = await Promise.all(plan.children.map((child) => writeCatalogTree(child, ctx)));
  const isRoot = plan.path === '';
  const prev = isRoot ? undefined : ctx.previous.get(plan.path);
  const kept = prev ? await keptIfSame(plan, ctx, prev, nested) : undefined;
  if (kept) return kept;

  const SQL = await sqlite();
  const release = await ctx.deflater?.reserve();
  const db = new SQL.Database();
  let closed = false;
  try {
    for (const ddl of CATALOG_DDL) db.run(ddl);
    db.run('BEGIN');
    const sink = new DatabaseSink(db);
    const builder = new CatalogBuilder(sink, ctx);
    try {
      builder.addTree(plan);
    } finally {
      sink.free();
    }
    const counters = countersOf(builder.self, nested);
    const summary = summaryRows(nested, counters);
    for (const r of summary.nested) db.run('INSERT INTO nested_catalogs (path, sha1, size) VALUES (CAST(? AS TEXT),?,?)', r as SqlValue[]);
    for (const r of summary.statistics) db.run('INSERT INTO statistics (counter, value) VALUES (?,?)', r as SqlValue[]);
    const revision = isRoot ? ctx.revision : prev ? prev.revision + 1 : 1;
    for (const [k, v] of propertiesOf(plan, ctx, revision, prev)) db.run('INSERT INTO properties (key, value) VALUES (?,CAST(? AS TEXT))', [k, encodeName(v)]);
    db.run('COMMIT');

    const bytes = db.export();
    // Closed before the deflate is awaited: one catalog's pages at a time in SQLite's memory.
    db.close();
    closed = true;
    const stored = ctx.deflater ? await ctx.writer.putStored(await ctx.deflater.deflate(bytes), 'C', bytes.length) : await ctx.writer.put(bytes, 'C', 'zlib');
    return { path: plan.path, hash: stored.hash, size: bytes.length, revision, ...counters, reused: false, catalogs: 1 + nested.reduce((s, n) => s + n.catalogs, 0) };
  } finally {
    if (!closed) db.close();
    release?.();
  }
}
