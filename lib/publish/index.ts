/**
 * A publisher: turns a local directory into a CernVM-FS repository exactly as a Stratum-0 web server serves it
 * (`.cvmfspublished`, `.cvmfswhitelist`, `data/…`), readable by the genuine client. Publishing again into the
 * same directory makes the next revision and keeps the history.
 *
 * ```ts
 * import { publish } from './publish/index.js';
 * const r = await publish('./content', { fqrn: 'sw.example.org', out: '/srv/cvmfs/sw.example.org' });
 * // serve /srv/cvmfs/sw.example.org at http://host/cvmfs/sw.example.org; clients need r.publicKeyPath
 * ```
 * @module
 */
import { isRepositoryName } from '../format/names.js';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { HASH_ALGORITHMS, hashToString, type HashAlgorithm } from '../format/hash.js';
import type { Manifest } from '../format/manifest.js';
import type { Compression } from '../format/flags.js';
import { checkChunkSizes, DEFAULT_CHUNK_SIZES, type ChunkSizes } from './chunker.js';
import { planCatalogs, writeCatalogTree } from './catalog-writer.js';
import { DeflateThread } from './deflate-thread.js';
import { SMALL_FILE_LIMIT, storeFileContent, storeSmallFileSync, type FileContent } from './content.js';
import { buildHistory, hasTag, RESERVED_TAGS } from './history-writer.js';
import { loadOrCreateKeys } from './keys.js';
import { buildManifest, buildWhitelist } from './letters.js';
import { ObjectWriter, type WriteStats } from './object-writer.js';
import { readPreviousRevision, type KeptPrevious } from './previous.js';
import type { PreviousContents } from './unchanged.js';
import { forEachEntry, NESTED_CATALOG_MARKER, scanSource, type SourceEntry } from './source.js';
import { readEntriesXattrs, readTreeXattrs } from './source-xattrs.js';
import { serializeXattrs } from '../format/xattr.js';

export { Xor32Chunker, DEFAULT_CHUNK_SIZES, type ChunkSizes } from './chunker.js';
export { CATALOG_DDL, COUNTER_NAMES } from './catalog-writer.js';
export { HISTORY_DDL } from './history-writer.js';
export { certificateFingerprint } from './letters.js';
export { createSelfSignedCertificate } from './x509.js';
export { parseGetfattrOutput } from './source-xattrs.js';

/** Options of {@link publish}. */
export interface PublishOptions {
  /** Repository name, e.g. `sw.example.org`. */
  fqrn: string;
  /** Repository directory as served (will contain `.cvmfspublished` and `data/`). */
  out: string;
  /** Where the keys live (created when missing); default `${out}.keys`. */
  keysDir?: string;
  /** Content hash algorithm; default `'sha1'`. */
  hashAlgorithm?: HashAlgorithm;
  /** Storage of file objects; default `'zlib'`. Catalogs, history and certificate are always zlib. */
  compression?: Compression;
  /**
   * External data (the genuine server's `CVMFS_EXTERNAL_DATA`): regular files are flagged external and stored
   * uncompressed by hash only; their content is not written among the objects, and clients fetch each file from
   * an external server by its path (CVMFS_EXTERNAL_URL), verified by its hash. Default false.
   */
  externalData?: boolean;
  /** Chunk sizes in bytes for content-defined chunking, or false to store every file whole; default 4/8/16 MiB. */
  chunking?: ChunkSizes | false;
  /** Manifest time to live in seconds; default 240. */
  ttl?: number;
  /**
   * A membership requirement (the genuine server's `CVMFS_VOMS_AUTHZ`): written as the root catalog's
   * `voms_authz` property, which clients check against a process's credentials.
   */
  vomsAuthz?: string;
  /** Whitelist validity in days from the publish time; default 30. Negative values make an expired whitelist. */
  whitelistDays?: number;
  /** A named tag for this revision, in addition to `trunk`. */
  tag?: { name: string; description?: string };
  /** Publish time (Unix seconds) instead of the clock. */
  timestamp?: number;
  /** Extended attributes to add or override, by path relative to the source (`''` is the root). */
  xattrs?: Record<string, Record<string, Buffer | string>>;
  /** Read `user.*` xattrs of the source with getfattr when installed; default true. */
  readSourceXattrs?: boolean;
  /** Record nanosecond mtimes (the catalog's mtimens column, as CVMFS_ENABLE_MTIME_NS=true); default true. */
  mtimeNs?: boolean;
  /**
   * Read every file again. By default a file whose size and mtime (to the nanosecond) are those the previous
   * revision recorded for its path keeps its stored content without being read (see unchanged.ts).
   */
  rescan?: boolean;
  /**
   * Paths (relative to the source, `''` the whole tree) that may have changed since the previous revision; the
   * rest is taken to be as it was. A nested catalog of the previous revision that neither holds one of them nor
   * lies below one is kept as it is, its subtree neither scanned nor read, so that a publish costs what changed
   * rather than what the repository holds (as the genuine `cvmfs_server` publishes what its overlay's upper
   * layer holds). Its top directory is checked (mode, owner, mtime, extended attributes, marker): one that
   * differs fails the publish rather than go unseen. Paths of {@link xattrs} below a top count as changed. Without a
   * previous revision, or with another hash algorithm than it, everything is scanned; kept catalogs keep their
   * compression and chunking.
   */
  changed?: readonly string[];
}

/** What {@link publish} produced. */
export interface PublishResult {
  fqrn: string;
  revision: number;
  /** Root catalog hash as the manifest writes it. */
  rootHash: string;
  manifestPath: string;
  /** The master public key clients must trust. */
  publicKeyPath: string;
  /** Catalogs in this revision (root and nested, kept ones included). */
  catalogs: number;
  /** Entries (paths) in this revision, the root directory included. */
  entries: number;
  /** Objects written and deduplicated by this run. */
  objects: WriteStats;
  /** Regular files whose content was kept from the previous revision without being read. */
  unchangedFiles: number;
  /** Entries read from the source (all of them unless {@link PublishOptions.changed} left subtrees out). */
  scannedEntries: number;
}

/**
 * Large files whose content is read, compressed and written at once: each costs file system round trips, which
 * the thread pool runs side by side while the main thread compresses. Small files are stored synchronously.
 */
const CONTENT_CONCURRENCY = 16;

type Stored = FileContent | Promise<FileContent>;

/**
 * Stores every regular file's content (`store`, synchronous for small files), several large ones at a time; files
 * sharing an inode share one content.
 */
async function storeContents(root: SourceEntry, store: (f: SourceEntry) => Stored): Promise<void> {
  const byInode = new Map<string, Stored>();
  const files: SourceEntry[] = [];
  forEachEntry(root, (e) => { if (e.kind === 'file') files.push(e); });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const f = files[next++]!;
      let content = f.nlink > 1 ? byInode.get(f.inode) : undefined;
      if (!content) {
        content = store(f);
        if (f.nlink > 1) byInode.set(f.inode, content);
      }
      f.content = content instanceof Promise ? await content : content;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONTENT_CONCURRENCY, files.length) }, worker));
}

/** What {@link storeAllContents} found. */
interface ContentsStored {
  /** Regular files whose content was kept from the previous revision. */
  reused: number;
  /** Files whose catalog row certainly differs from the previous revision's (see CatalogContext.changed). */
  changed: WeakSet<SourceEntry>;
}

/**
 * Stores every regular file's content: kept from the previous revision when `reuse` says it is unchanged, else
 * small files synchronously with their objects written by a worker thread, large ones streamed.
 */
async function storeAllContents(root: SourceEntry, writer: ObjectWriter, previous: PreviousContents | undefined, reuse: PreviousContents | undefined,
  s: { algorithm: HashAlgorithm; compression: Compression; chunking: ChunkSizes | false }): Promise<ContentsStored> {
  const kept = new WeakSet<FileContent>();
  const changed = new WeakSet<SourceEntry>();
  writer.startBackground();
  try {
    await storeContents(root, (f) => {
      const c = reuse?.reuse(f, writer, s);
      if (c) kept.add(c);
      else if (previous?.differs(f)) changed.add(f);
      const small = !c && f.size <= SMALL_FILE_LIMIT ? storeSmallFileSync(f.abs, f.size, writer, s.compression, s.chunking) : undefined;
      // The background writer's queue is bounded: wait for it rather than hold every small file in memory.
      if (small && writer.backgroundBacklogged()) return writer.backgroundReady().then(() => small);
      return c ?? small ?? storeFileContent(f.abs, f.size, writer, s.compression, s.chunking);
    });
  } catch (e) {
    await writer.endBackground(false);
    throw e;
  }
  await writer.endBackground();
  let reused = 0;
  forEachEntry(root, (e) => { if (e.content && kept.has(e.content)) reused++; });
  return { reused, changed };
}

const MASTER_REPLICA_TEXT = 'This file marks the repository as replicatable to stratum 1 servers\n';

function checkOptions(o: PublishOptions): void {
  if (!isRepositoryName(o.fqrn)) throw new TypeError(`publish: invalid repository name '${o.fqrn}'`);
  if (o.hashAlgorithm !== undefined && !HASH_ALGORITHMS.includes(o.hashAlgorithm)) throw new TypeError(`publish: unknown hash algorithm '${o.hashAlgorithm}'`);
  if (o.compression !== undefined && o.compression !== 'zlib' && o.compression !== 'none') throw new TypeError(`publish: unknown compression '${o.compression as string}'`);
  if (o.ttl !== undefined && !(Number.isSafeInteger(o.ttl) && o.ttl > 0)) throw new RangeError('publish: ttl must be a positive integer');
  if (o.whitelistDays !== undefined && !Number.isFinite(o.whitelistDays)) throw new RangeError('publish: whitelistDays must be a number');
  if (o.timestamp !== undefined && !(Number.isSafeInteger(o.timestamp) && o.timestamp > 0)) throw new RangeError('publish: timestamp must be positive Unix seconds');
  if (o.chunking) checkChunkSizes(o.chunking);
  if (o.tag) {
    if (!o.tag.name || /[\s/]/.test(o.tag.name)) throw new TypeError(`publish: invalid tag name '${o.tag.name}'`);
    if (RESERVED_TAGS.has(o.tag.name)) throw new TypeError(`publish: tag name '${o.tag.name}' is reserved`);
  }
}

/** `a/b`, `/a/b/`, `./a/b` → `/a/b`; the root is `''`. */
function normalizeRelative(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  return parts.length === 0 ? '' : '/' + parts.join('/');
}

function applyXattrs(root: SourceEntry, fromSource: Map<string, Map<string, Buffer>>, extra: PublishOptions['xattrs']): void {
  const byPath = new Map<string, SourceEntry>();
  forEachEntry(root, (e) => byPath.set(e.path, e));
  for (const [rel, attrs] of fromSource) {
    const e = byPath.get(normalizeRelative(rel));
    if (e) e.xattrs = new Map(attrs);
  }
  for (const [rel, attrs] of Object.entries(extra ?? {})) {
    const e = byPath.get(normalizeRelative(rel));
    if (!e) throw new Error(`publish: xattrs given for '${rel}', which is not in the source`);
    e.xattrs ??= new Map();
    for (const [name, value] of Object.entries(attrs)) e.xattrs.set(name, typeof value === 'string' ? Buffer.from(value, 'utf8') : value);
  }
}

/**
 * A changed path as the catalogs name it: relative to the source, or absolute within it (`/src/a/b` → `/a/b`).
 * One that leaves the source is refused: matching nothing, it would let a changed catalog be kept.
 */
function changedPath(source: string, p: string): string {
  const rel = relative(source, resolve(source, p.startsWith(source + '/') || p === source ? p : p.replace(/^\/+/, '')));
  if (rel === '..' || rel.startsWith('../') || isAbsolute(rel)) throw new TypeError(`publish: changed path '${p}' is not in the source ${source}`);
  return normalizeRelative(rel);
}

/** Fails a publish whose kept catalog's top directory is not as the previous revision has it. */
function changedOutside(path: string, what: string): Error {
  return new Error(`publish: ${path} is not as the previous revision has it (${what}), yet no changed path holds it: name it among the changed paths, or publish without them`);
}

/**
 * Whether a directory of the source is the top of a nested catalog kept unread (`prev`): then it is marked so and
 * its subtree is not scanned. Throws when it is no longer what that catalog's top row says.
 */
function keepUnread(dir: SourceEntry, prev: KeptPrevious | undefined, mtimeNs: boolean): boolean {
  if (!prev) return false;
  const t = prev.top;
  if (dir.mode !== t.mode || dir.uid !== t.uid || dir.gid !== t.gid) throw changedOutside(dir.path, 'mode or owner');
  if (dir.mtime !== t.mtime || (mtimeNs ? dir.mtimeNs : null) !== t.mtimens) throw changedOutside(dir.path, 'mtime');
  if (!existsSync(Buffer.concat([dir.abs, Buffer.from(`/${NESTED_CATALOG_MARKER}`)]))) throw changedOutside(dir.path, `its ${NESTED_CATALOG_MARKER} is gone`);
  dir.nestedCatalog = true;
  dir.kept = prev;
  return true;
}

/** The extended attributes of a kept catalog's top directory, read from the source, must be the ones it holds. */
function checkKeptXattrs(dir: SourceEntry, prev: KeptPrevious): void {
  const now = dir.xattrs ? serializeXattrs(dir.xattrs) : null;
  const before = prev.top.xattr;
  if ((now === null) !== (before === null) || (now && before && !now.equals(before))) throw changedOutside(dir.path, 'extended attributes');
}

/**
 * Checks the kept catalogs against the scanned source: each top's attributes, and every one still there whose parent
 * catalog's top is (a kept catalog's counters are worked out from its siblings': one gone unnamed would leave them
 * wrong). Returns the entries the kept catalogs stand for.
 */
function checkKept(root: SourceEntry, kept: ReadonlyMap<string, KeptPrevious>): number {
  const parents = new Set([...kept.values()].map((k) => k.parent));
  const present = new Set<string>();
  const found = new Set<string>();
  let entries = 0;
  forEachEntry(root, (e) => {
    if (e.kind === 'dir' && parents.has(e.path)) present.add(e.path);
    if (!e.kept) return;
    found.add(e.path);
    checkKeptXattrs(e, kept.get(e.path)!);
    entries += e.kept.entries;
  });
  for (const [path, k] of kept) if (present.has(k.parent) && !found.has(path)) throw changedOutside(path, 'gone from the source');
  return entries;
}

/** Where every scanned entry is (a kept catalog's top included, nothing below it). */
function scannedPaths(root: SourceEntry): Buffer[] {
  const out: Buffer[] = [];
  forEachEntry(root, (e) => out.push(e.abs));
  return out;
}

/** Writes a top-level file through data/txn, so that no temp file ever shows up where the server looks. */
async function writeAtomic(repoDir: string, name: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = join(repoDir, 'data', 'txn', `${name}.${process.pid}.${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, bytes, { mode: 0o644 });
  await rename(tmp, join(repoDir, name));
}

/**
 * Publishes `sourceDir` as the next revision of repository `opts.fqrn` in `opts.out` (revision 1 when `out` holds
 * no repository yet). The manifest is written last, so a reader sees either the old or the new revision. Only
 * one publish may run on a repository directory at a time.
 */
export async function publish(sourceDir: string, opts: PublishOptions): Promise<PublishResult> {
  checkOptions(opts);
  const deflater = new DeflateThread();
  deflater.warm();
  try {
    return await publishRevision(sourceDir, opts, deflater);
  } finally {
    await deflater.close();
  }
}

/** {@link publish}, with the thread that deflates catalogs started. */
async function publishRevision(sourceDir: string, opts: PublishOptions, deflater: DeflateThread): Promise<PublishResult> {
  const fqrn = opts.fqrn;
  const out = resolve(opts.out);
  const keysDir = resolve(opts.keysDir ?? `${out}.keys`);
  const algorithm = opts.hashAlgorithm ?? 'sha1';
  const externalData = opts.externalData === true;
  // External files are fetched by path and range, so they are stored as they are.
  const compression = externalData ? 'none' : opts.compression ?? 'zlib';
  const chunking = opts.chunking === undefined ? DEFAULT_CHUNK_SIZES : opts.chunking;
  const ttl = opts.ttl ?? 240;
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const now = new Date(timestamp * 1000);

  const changedPaths = opts.changed?.map((p) => changedPath(resolve(sourceDir), p));
  // Attributes given for a path below a kept catalog's top would not be seen (its own are checked).
  const givenBelow = Object.keys(opts.xattrs ?? {}).map(normalizeRelative);
  // A nested catalog with no changed path in it or above it, of a revision hashed as this one is (a catalog kept
  // from another algorithm would name its files' objects by that one).
  const untouched = (n: string, m: Manifest) => m.rootCatalog.algorithm === algorithm && !givenBelow.some((p) => p.startsWith(n + '/')) &&
    !changedPaths!.some((p) => p === '' || p === n || p.startsWith(n + '/') || n.startsWith(p + '/'));
  const previous = await readPreviousRevision(out, fqrn, changedPaths ? untouched : undefined);
  if (opts.tag && previous?.history && (await hasTag(previous.history, opts.tag.name))) {
    throw new Error(`publish: tag '${opts.tag.name}' already exists in ${fqrn}`);
  }
  const revision = previous ? previous.manifest.revision + 1 : 1;

  const source = resolve(sourceDir);
  const kept = previous?.kept.size ? previous.kept : undefined;
  // getfattr walks the tree in its own process while this one scans it (it took seconds for 100,000 entries);
  // with subtrees kept unread, it reads the scanned entries only, once they are known.
  const xattrsRead = opts.readSourceXattrs === false ? Promise.resolve(new Map<string, Map<string, Buffer>>()) : kept ? undefined : readTreeXattrs(source);
  xattrsRead?.catch(() => undefined); // awaited below; this only keeps a failing scan from leaving it unhandled
  const mtimeNs = opts.mtimeNs ?? true;
  const { root, count } = await scanSource(source, new Set([out, keysDir]), kept && ((dir) => keepUnread(dir, kept.get(dir.path), mtimeNs)));
  applyXattrs(root, await (xattrsRead ?? readEntriesXattrs(source, scannedPaths(root))), opts.xattrs);
  const entries = count + (kept ? checkKept(root, kept) : 0);

  await mkdir(out, { recursive: true });
  const writer = new ObjectWriter(out, algorithm, externalData);
  await writer.init();
  const keys = await loadOrCreateKeys(keysDir, fqrn, now);

  const { reused, changed } = await storeAllContents(root, writer, previous?.contents, opts.rescan ? undefined : previous?.contents, { algorithm, compression, chunking });

  const rootCatalog = await writeCatalogTree(planCatalogs(root), {
    writer, algorithm, compression, externalData, timestamp, ttl, revision,
    ...(opts.vomsAuthz ? { vomsAuthz: opts.vomsAuthz } : {}),
    ...(previous ? { previousRoot: previous.manifest.rootCatalog } : {}),
    previous: previous?.catalogs ?? new Map(),
    mtimeNs,
    changed: (e) => changed.has(e),
    deflater,
  });

  const certificate = await writer.put(Buffer.from(keys.certificatePem, 'utf8'), 'X', 'zlib');
  const historyDb = await buildHistory(previous?.history, {
    fqrn,
    ...(previous?.manifest.history ? { previousHistory: hashToString(previous.manifest.history) } : {}),
    head: { hash: hashToString(rootCatalog.hash), revision, timestamp, size: rootCatalog.size },
    ...(opts.tag ? { tag: opts.tag } : {}),
  });
  const history = await writer.put(historyDb, 'H', 'zlib');

  await writeAtomic(out, '.cvmfswhitelist', buildWhitelist({
    fqrn, algorithm, certificateDer: keys.certificateDer, created: now, days: opts.whitelistDays ?? 30, masterKey: keys.masterKey,
  }));
  if (!existsSync(join(out, '.cvmfs_master_replica'))) await writeAtomic(out, '.cvmfs_master_replica', MASTER_REPLICA_TEXT);
  const manifestPath = join(out, '.cvmfspublished');
  await writeAtomic(out, '.cvmfspublished', buildManifest({
    fqrn, algorithm, rootCatalog: rootCatalog.hash, rootCatalogSize: rootCatalog.size, ttl, revision,
    certificate: certificate.hash, history: history.hash, timestamp, certificateKey: keys.certificateKey,
  }));

  return {
    fqrn,
    revision,
    rootHash: hashToString(rootCatalog.hash),
    manifestPath,
    publicKeyPath: keys.paths.publicKey,
    catalogs: rootCatalog.catalogs,
    entries,
    objects: { ...writer.stats },
    unchangedFiles: reused,
    scannedEntries: count,
  };
}
