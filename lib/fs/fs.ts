/**
 * The read-only, `node:fs/promises`-shaped view of one repository revision.
 * @module
 */
import type { Readable } from 'node:stream';
import { lazyStream } from '../lazy.js';
import { constants } from 'node:fs';
import { fsError } from '../errors.js';
import type { ObjectStore } from '../store/object-store.js';
import { ContentReader, type PieceFile } from './content.js';
import type { Entry } from './entry.js';
import { CvmfsFileHandle, streamRange, type ReadStreamOptions } from './file-handle.js';
import { permits } from './permissions.js';
import { abortError, argError, encodingArgument, integerArgument, pathArgument } from './arguments.js';
import { CvmfsDir } from './dir.js';
import { changeError, changesFile, makeError, openError, openFlags, removeError } from './read-only.js';
import { magicNames, magicValue, type MagicContext, type MagicVisibility } from './magic-xattrs.js';
import type { Namespace } from './namespace.js';
import { CvmfsDirent, statsOf, type CvmfsBigIntStats, type CvmfsStats } from './stats.js';
import { splitUserPath, Walker } from './walker.js';
import type { ContentHash } from '../format/hash.js';
import { parseXattrs } from '../format/xattr.js';
import { Flag } from '../format/flags.js';
import { nameAs } from '../format/byte-names.js';

/**
 * A path as the API takes it: `/a/b`, `a/b`, or `/cvmfs/<fqrn>/a/b`; a string, or a Buffer holding the path's
 * bytes (as node:fs takes them, for names that are not UTF-8). Names that are not valid UTF-8 come back, in
 * string form, with each byte that is not part of a valid sequence as the lone surrogate U+DC80 + byte (Python's
 * surrogateescape); such a string, passed back, names the same entry. Ask for Buffers with `encoding: 'buffer'`.
 */
export type PathLike = string | Buffer;

/** Options of {@link CvmfsFs.readdir}. */
export interface ReaddirOptions extends AbortOptions {
  withFileTypes?: boolean;
  /** Every entry below, named relative to the directory (as node:fs's `recursive`). */
  recursive?: boolean;
  /** `'buffer'`: names as their bytes. */
  encoding?: BufferEncoding | 'buffer' | null;
}

/** Options of {@link CvmfsFs.stat} and {@link CvmfsFs.lstat}. */
export interface StatOptions extends AbortOptions {
  /** Every number a bigint, and times also in nanoseconds (`fs.BigIntStats`). */
  bigint?: boolean;
}

/** Options of {@link CvmfsFs.opendir}. */
export interface OpendirOptions {
  /** Entries read from the catalog at a time (default 32, as Node's). */
  bufferSize?: number;
  /** `'buffer'`: names as their bytes; another encoding: the bytes in it. */
  encoding?: BufferEncoding | 'buffer' | null;
  /** Also every entry below, each with its own directory as `parentPath`. */
  recursive?: boolean;
}

/**
 * Options shared by calls that can be aborted. Content reads pass the signal down to their downloads; a
 * metadata call stops waiting at once, while a catalog download it started goes on for whoever else needs it
 * (catalogs are shared between concurrent calls) and lands in the cache.
 */
export interface AbortOptions {
  signal?: AbortSignal;
}

/** `p`, or Node's AbortError as soon as `signal` fires. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  if (!(signal instanceof AbortSignal)) {
    p.catch(() => undefined);
    return Promise.reject(abortError(signal));
  }
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v); }, (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e as Error); });
  });
}

/** Where the fs view gets its data. */
export interface FsBackend {
  readonly fqrn: string;
  namespace(): Namespace;
  store(): ObjectStore;
  magic: MagicContext;
  magicVisibility: MagicVisibility;
  /** Chunks a sequential read fetches ahead (default 2). */
  readAhead?: number;
}

/** Errors that mean a path names nothing: {@link CvmfsFs.exists} says false for them. */
const NOT_THERE = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'ERR_INVALID_ARG_VALUE']);


/** Read-only file system calls over a repository; every write rejects with EROFS. */
export class CvmfsFs {
  /** Files opened so far (`user.nopen`). */
  opens = 0;

  constructor(private readonly b: FsBackend) {}

  private walker(): Walker {
    return new Walker(this.b.namespace(), this.b.fqrn);
  }

  /**
   * The objects that hold a file's content, in order: its one object, or its chunks (object-name suffix `P`).
   * Downloads nothing: for fetching ahead what a program will read (an access profile, a preload).
   */
  async contentObjects(e: Entry): Promise<readonly { readonly hash: ContentHash; readonly size: number; readonly suffix: '' | 'P' }[]> {
    return new ContentReader(e, this.b.store(), this.b.namespace()).layout();
  }

  /** Resolves a path to its entry (following a final symlink when `follow`). */
  async entry(path: PathLike, follow = true, syscall = follow ? 'stat' : 'lstat', signal?: AbortSignal): Promise<Entry> {
    return abortable(this.walker().resolve(pathArgument(path), follow, syscall), signal);
  }

  /** Like fs.promises.stat; with `bigint`, an `fs.BigIntStats`-like object. */
  async stat(path: PathLike, options: StatOptions & { bigint: true }): Promise<CvmfsBigIntStats>;
  async stat(path: PathLike, options?: StatOptions & { bigint?: false }): Promise<CvmfsStats>;
  async stat(path: PathLike, options: StatOptions = {}): Promise<CvmfsStats | CvmfsBigIntStats> {
    return statsOf(await this.entry(path, true, 'stat', options.signal), options.bigint);
  }

  /** Like fs.promises.lstat; with `bigint`, an `fs.BigIntStats`-like object. */
  async lstat(path: PathLike, options: StatOptions & { bigint: true }): Promise<CvmfsBigIntStats>;
  async lstat(path: PathLike, options?: StatOptions & { bigint?: false }): Promise<CvmfsStats>;
  async lstat(path: PathLike, options: StatOptions = {}): Promise<CvmfsStats | CvmfsBigIntStats> {
    return statsOf(await this.entry(path, false, 'lstat', options.signal), options.bigint);
  }

  /**
   * Like fs.promises.opendir: a directory handle that reads `bufferSize` entries at a time, so that going through
   * a large directory holds a slice of it, not the listing. Hidden entries are not listed.
   */
  async opendir(path: PathLike, options: OpendirOptions | null = {}): Promise<CvmfsDir> {
    options ??= {};
    const encoding = encodingArgument(options);
    const bufferSize = options.bufferSize === undefined ? 32 : integerArgument(options.bufferSize, 'options.bufferSize', 1, 4294967295);
    const p = pathArgument(path);
    const dir = await this.entry(p, true, 'opendir');
    if (dir.type !== 'dir') throw fsError('ENOTDIR', 'opendir', p);
    const source = { slices: (d: Entry, size: number) => this.b.namespace().slices(d, size), lookup: (q: string) => this.entry(q, false, 'opendir') };
    return new CvmfsDir(p, dir, source, { bufferSize, encoding, recursive: options.recursive === true });
  }

  /** Like fs.promises.readdir: names, or Dirents with `withFileTypes`. Hidden entries are not listed. */
  async readdir(path: PathLike, options: { withFileTypes: true; encoding: 'buffer' } & ReaddirOptions): Promise<CvmfsDirent<Buffer>[]>;
  async readdir(path: PathLike, options: { withFileTypes: true } & ReaddirOptions): Promise<CvmfsDirent[]>;
  async readdir(path: PathLike, options: ({ withFileTypes?: false; encoding: 'buffer' } & ReaddirOptions) | 'buffer'): Promise<Buffer[]>;
  async readdir(path: PathLike, options?: ({ withFileTypes?: false } & ReaddirOptions) | BufferEncoding): Promise<string[]>;
  async readdir(path: PathLike, options?: ReaddirOptions | BufferEncoding | 'buffer'): Promise<string[] | Buffer[] | CvmfsDirent<string | Buffer>[]> {
    const o: ReaddirOptions = typeof options === 'object' && options !== null ? options : {};
    const signal = o.signal;
    const encoding = encodingArgument(options);
    const top = pathArgument(path);
    const dir = await this.entry(top, true, 'scandir', signal);
    if (dir.type !== 'dir') throw fsError('ENOTDIR', 'scandir', top);
    // `recursive`: every entry below, named relative to `path`, directories listed before what they hold
    // (symlinks to directories are not followed), as node:fs does.
    const recursive = o.recursive === true;
    const found: Array<{ rel: string; parent: string; e: Entry }> = [];
    const pending: Array<{ rel: string; dir: Entry }> = [{ rel: '', dir }];
    while (pending.length > 0) {
      const { rel, dir: d } = pending.shift()!;
      const list = (await abortable(this.b.namespace().list(d), signal)).filter((e) => !(e.flags & Flag.Hidden));
      for (const e of list) {
        const name = rel ? `${rel}/${e.name}` : e.name;
        found.push({ rel: name, parent: rel ? `${top.replace(/\/+$/, '')}/${rel}` : top, e });
        // Looked up again by path: a nested catalog's mountpoint as its parent lists it holds no children.
        if (recursive && e.type === 'dir') pending.push({ rel: name, dir: await this.entry(`${top.replace(/\/+$/, '')}/${name}`, false, 'scandir', signal) });
      }
    }
    if (o.withFileTypes) return found.map(({ parent, e }) => new CvmfsDirent(nameAs(e.name, encoding), parent, e.mode));
    return found.map(({ rel }) => nameAs(rel, encoding)) as string[] | Buffer[];
  }

  /** Like fs.promises.readFile. */
  async readFile(path: PathLike, options?: { encoding?: BufferEncoding | null; signal?: AbortSignal; flag?: string | number } | BufferEncoding | null): Promise<Buffer | string>;
  async readFile(path: PathLike, options?: { encoding?: BufferEncoding | null; signal?: AbortSignal; flag?: string | number } | BufferEncoding | null): Promise<Buffer | string> {
    const signal = typeof options === 'object' && options ? options.signal : undefined;
    const flag = typeof options === 'object' && options?.flag !== undefined ? options.flag : 'r';
    const fh = await this.open(path, flag, signal ? { signal } : {});
    try {
      return await fh.readFile(options);
    } finally {
      await fh.close();
    }
  }

  /** Like fs.promises.readlink; the target is shown after variant-symlink expansion. */
  async readlink(path: PathLike, options?: (AbortOptions & { encoding?: BufferEncoding | null }) | BufferEncoding | null): Promise<string>;
  async readlink(path: PathLike, options: (AbortOptions & { encoding: 'buffer' }) | 'buffer'): Promise<Buffer>;
  async readlink(path: PathLike, options?: (AbortOptions & { encoding?: BufferEncoding | 'buffer' | null }) | BufferEncoding | 'buffer' | null): Promise<string | Buffer> {
    const encoding = encodingArgument(options);
    const e = await this.entry(path, false, 'readlink', typeof options === 'object' && options !== null ? options.signal : undefined);
    if (e.type !== 'symlink') throw fsError('EINVAL', 'readlink', pathArgument(path), 'not a symbolic link');
    return nameAs(e.target!, encoding);
  }

  /** Like fs.promises.realpath: the canonical path, in the style it was asked (`/a` or `/cvmfs/<fqrn>/a`). */
  async realpath(path: PathLike, options?: (AbortOptions & { encoding?: BufferEncoding | null }) | BufferEncoding | null): Promise<string>;
  async realpath(path: PathLike, options: (AbortOptions & { encoding: 'buffer' }) | 'buffer'): Promise<Buffer>;
  async realpath(path: PathLike, options?: (AbortOptions & { encoding?: BufferEncoding | 'buffer' | null }) | BufferEncoding | 'buffer' | null): Promise<string | Buffer> {
    const encoding = encodingArgument(options);
    const e = await this.entry(path, true, 'realpath', typeof options === 'object' && options !== null ? options.signal : undefined);
    path = pathArgument(path);
    const mount = `/cvmfs/${this.b.fqrn}`;
    const inMount = path === mount || path.startsWith(mount + '/');
    return nameAs(inMount ? (e.path === '/' ? mount : mount + e.path) : e.path, encoding);
  }

  /** Like fs.promises.access: W_OK fails with EROFS; R_OK/X_OK check the permission bits. */
  async access(path: PathLike, mode: number = constants.F_OK, options: AbortOptions = {}): Promise<void> {
    integerArgument(mode, 'mode', 0, 7);
    const e = await this.entry(path, true, 'access', options.signal);
    if (mode & constants.W_OK) throw fsError('EROFS', 'access', pathArgument(path));
    if (!permits(e, mode)) throw fsError('EACCES', 'access', pathArgument(path));
  }

  /**
   * True if the path resolves (following symlinks); false where a mount says it does not (ENOENT, ENOTDIR, ELOOP,
   * ENAMETOOLONG, a NUL byte), as fs.existsSync. A failure to fetch or verify still throws (EIO): never "absent".
   */
  async exists(path: PathLike): Promise<boolean> {
    try {
      await this.entry(path, true, 'access');
      return true;
    } catch (e) {
      if (NOT_THERE.has((e as { code?: string }).code ?? '')) return false;
      throw e;
    }
  }

  /**
   * Like fs.promises.open, read-only: flags that would change the file fail as on a read-only mount (EROFS, or
   * first ENOENT, EEXIST, EISDIR); O_CREAT alone opens an existing file.
   */
  async open(path: PathLike, flags: string | number | null = 'r', options: AbortOptions = {}): Promise<CvmfsFileHandle> {
    return this.openAs(path, flags, options, true);
  }

  /**
   * Opens a file for reading whatever its mode says: the connector reads the first bytes of a program that the
   * kernel may execute without read permission (mode 0711), as the kernel itself does.
   * @internal
   */
  openProgram(path: string): Promise<CvmfsFileHandle> {
    return this.openAs(path, 'r', {}, false);
  }

  private async openAs(path: PathLike, flags: string | number | null, options: AbortOptions, checked: boolean): Promise<CvmfsFileHandle> {
    const f = openFlags(flags ?? 'r');
    if (changesFile(f)) {
      const err = await abortable(openError(this.lookup, pathArgument(path), f), options.signal);
      if (err) throw err;
    }
    const e = await this.entry(path, !(f & constants.O_NOFOLLOW), 'open', options.signal);
    if (f & constants.O_DIRECTORY && e.type !== 'dir') throw fsError('ENOTDIR', 'open', pathArgument(path));
    if (e.type === 'symlink') throw fsError('ELOOP', 'open', pathArgument(path));
    if (e.type !== 'file' && e.type !== 'dir') throw fsError('EINVAL', 'open', pathArgument(path), `cannot read a ${e.type}`);
    if (checked && !permits(e, constants.R_OK)) throw fsError('EACCES', 'open', pathArgument(path));
    // A directory opens for reading, as with node:fs: its handle stats, and its reads fail with EISDIR.
    const reader = new ContentReader(e, this.b.store(), this.b.namespace(), options.signal, this.b.readAhead);
    this.opens++;
    if (e.type === 'file') await abortable(reader.layout(), options.signal);
    return new CvmfsFileHandle(reader, pathArgument(path));
  }

  /**
   * Like fs.createReadStream, with inclusive `start`/`end`; `options` may be an encoding, and `flags` that would
   * change the file fail the stream as on a read-only mount.
   */
  createReadStream(path: PathLike, options: (ReadStreamOptions & { flags?: string | number }) | BufferEncoding = {}): Readable {
    const self = this;
    const p = pathArgument(path);
    const o = typeof options === 'string' ? { encoding: options } : options ?? {};
    streamRange(o); // wrong ranges throw here, as in node:fs
    const { encoding, flags, ...raw } = o;
    async function* gen(): AsyncGenerator<Buffer> {
      const fh = await self.open(p, flags ?? 'r', o.signal ? { signal: o.signal } : {});
      try {
        for await (const chunk of fh.createReadStream(raw)) yield chunk as Buffer;
      } finally {
        await fh.close();
      }
    }
    const r = lazyStream().Readable.from(gen(), { objectMode: false });
    if (encoding) r.setEncoding(encoding);
    // An abort ends the stream at once (what it had read ahead is not delivered), as node:fs's does.
    if (o.signal) lazyStream().addAbortSignal(o.signal, r);
    return r;
  }

  /**
   * The verified cache files that hold a regular file's content, in order, each with its offset: one for a
   * whole-file object, one per chunk, fetched ahead as a sequential read would. For copying the content in the
   * kernel instead of reading it.
   */
  async *pieceFiles(path: PathLike, options: AbortOptions = {}): AsyncGenerator<PieceFile> {
    const e = await this.entry(path, true, 'open', options.signal);
    if (e.type !== 'file') throw fsError(e.type === 'dir' ? 'EISDIR' : 'EINVAL', 'open', pathArgument(path));
    const reader = new ContentReader(e, this.b.store(), this.b.namespace(), options.signal, this.b.readAhead);
    try {
      yield* reader.pieceFiles();
    } finally {
      await reader.close();
    }
  }

  /** The value of an extended attribute (stored or magic). ENODATA if there is none. */
  async getxattr(path: PathLike, name: string, options: { noFollow?: boolean } & AbortOptions = {}): Promise<Buffer> {
    const e = await this.entry(path, !options.noFollow, 'getxattr', options.signal);
    if (e.xattrBlob) {
      const v = parseXattrs(e.xattrBlob).get(name);
      if (v) return v;
    }
    const m = await abortable(magicValue(name, e, this.b.namespace(), this.b.magic), options.signal);
    if (m !== undefined) return Buffer.from(m, 'utf8');
    throw fsError('ENODATA', 'getxattr', pathArgument(path), `no attribute ${name}`);
  }

  /**
   * Names of the extended attributes: the stored ones, plus the magic ones as the visibility setting says
   * (`never`, `rootonly` (default), `always`), or as `options.magic` overrides.
   */
  async listxattr(path: PathLike, options: { noFollow?: boolean; magic?: boolean } & AbortOptions = {}): Promise<string[]> {
    const e = await this.entry(path, !options.noFollow, 'listxattr', options.signal);
    const names = e.xattrBlob ? [...parseXattrs(e.xattrBlob).keys()] : [];
    const vis = this.b.magicVisibility;
    const showMagic = options.magic ?? (vis === 'always' || (vis === 'rootonly' && e.path === '/'));
    if (showMagic) for (const n of magicNames(e)) if (!names.includes(n)) names.push(n);
    return names;
  }

  /**
   * Puts a regular file's content in the cache (verified) without reading it; resolves to the number of
   * objects it has. For preloading.
   */
  async prefetch(path: PathLike, options: AbortOptions = {}): Promise<number> {
    const e = await this.entry(path, false, 'open', options.signal);
    if (e.type !== 'file') return 0;
    const reader = new ContentReader(e, this.b.store(), this.b.namespace(), options.signal, this.b.readAhead);
    try {
      return await reader.fetchAll();
    } finally {
      await reader.close();
    }
  }

  /** All entries of a directory, hidden ones included, as resolved entries (for tools that walk a tree). */
  async entries(path: PathLike): Promise<readonly Entry[]> {
    const dir = await this.entry(path, true, 'scandir');
    if (dir.type !== 'dir') throw fsError('ENOTDIR', 'scandir', pathArgument(path));
    return this.b.namespace().list(dir);
  }

  /**
   * The entries of a directory in slices of at most `size`, hidden ones included, in no particular order and
   * without keeping the listing: what a tool that goes through a large directory once needs in memory is a slice.
   */
  async *entrySlices(path: PathLike, size = 2048): AsyncGenerator<Entry[]> {
    const dir = await this.entry(path, true, 'scandir');
    if (dir.type !== 'dir') throw fsError('ENOTDIR', 'scandir', pathArgument(path));
    yield* this.b.namespace().slices(dir, size);
  }

  /** Stored (non-magic) extended attributes of an entry, as name → bytes. */
  async xattrs(path: PathLike, options: { noFollow?: boolean } = {}): Promise<Map<string, Buffer>> {
    const e = await this.entry(path, !options.noFollow, 'listxattr');
    return e.xattrBlob ? parseXattrs(e.xattrBlob) : new Map();
  }

  /** Looks a path up for the read-only answers (lib/fs/read-only.ts). */
  private readonly lookup = (path: string, follow: boolean, syscall: string): Promise<Entry> => this.entry(path, follow, syscall);

  /** Fails as on a read-only mount (EROFS, or first what the lookups find: ENOENT, EEXIST, EISDIR ...). */
  async writeFile(path: PathLike, _data?: unknown, options?: { flag?: string | number } | string | null): Promise<never> {
    throw (await openError(this.lookup, pathArgument(path), openFlags((typeof options === 'object' && options?.flag) || 'w'))) ?? fsError('EROFS', 'open', pathArgument(path));
  }
  /** Fails as on a read-only mount. */
  async appendFile(path: PathLike, _data?: unknown, options?: { flag?: string | number } | string | null): Promise<never> {
    throw (await openError(this.lookup, pathArgument(path), openFlags((typeof options === 'object' && options?.flag) || 'a'))) ?? fsError('EROFS', 'open', pathArgument(path));
  }
  /** Fails as on a read-only mount; `recursive` succeeds where the directory is there (`mkdir -p`), as node:fs does. */
  async mkdir(path: PathLike, options?: { recursive?: boolean; mode?: number } | number): Promise<undefined> {
    const p = pathArgument(path);
    if (typeof options === 'object' && options?.recursive) {
      const there = await this.entry(p, true, 'mkdir').catch(() => undefined);
      if (there?.type === 'dir') return undefined;
      // The first missing directory on the way is the one that cannot be made; node:fs says ENOENT for it on a
      // read-only mount (its recursive mkdir reports the lookup that failed first).
      const parts = splitUserPath(p, this.b.fqrn);
      for (let i = 1; i <= parts.length; i++) {
        const q = '/' + parts.slice(0, i).join('/');
        const e = await this.entry(q, true, 'mkdir').catch((err: { code?: string }) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
        // A dangling link on the way is there (EEXIST when made) but leads to no directory.
        if (!e) throw fsError((await this.entry(q, false, 'mkdir').catch(() => undefined)) ? 'ENOTDIR' : 'ENOENT', 'mkdir', p);
        if (e.type !== 'dir') throw fsError(i === parts.length ? 'EEXIST' : 'ENOTDIR', 'mkdir', p);
      }
    }
    throw await makeError(this.lookup, p, 'mkdir');
  }
  /** Fails as on a read-only mount. */
  async rmdir(path: PathLike, ..._a: unknown[]): Promise<never> {
    const p = pathArgument(path);
    // The repository's top is the mount point: busy.
    if (splitUserPath(p, this.b.fqrn).length === 0 && (await this.entry(p, true, 'rmdir')).type === 'dir') throw fsError('EBUSY', 'rmdir', p);
    throw await removeError(this.lookup, p, 'rmdir');
  }
  /** Fails as on a read-only mount; with `force`, a missing name succeeds. */
  async rm(path: PathLike, options?: { force?: boolean; recursive?: boolean }): Promise<undefined> {
    const p = pathArgument(path);
    const e = await this.entry(p, false, 'lstat').catch((err: { code?: string }) => (options?.force && err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    if (!e) return undefined;
    // Node refuses a directory without `recursive` before it tries anything.
    if (e.type === 'dir' && !options?.recursive) {
      throw Object.assign(argError(Error, 'ERR_FS_EISDIR', `Path is a directory: rm returned EISDIR (is a directory) ${p}`), { errno: 21, syscall: 'rm', path: p });
    }
    throw fsError('EROFS', e.type === 'dir' ? 'rmdir' : 'unlink', p);
  }
  /** Fails as on a read-only mount. */
  async unlink(path: PathLike): Promise<never> { throw await removeError(this.lookup, pathArgument(path), 'unlink'); }
  /** Fails as on a read-only mount (within one repository: EROFS after both directories' lookups). */
  async rename(path: PathLike, to: PathLike): Promise<never> {
    const from = pathArgument(path);
    const err = await removeError(this.lookup, from, 'rename');
    throw err.code === 'EROFS' ? await removeError(this.lookup, pathArgument(to, 'newPath'), 'rename') : err;
  }
  /** Fails as on a read-only mount. */
  async symlink(_target: string, path: PathLike): Promise<never> { throw await makeError(this.lookup, pathArgument(path), 'symlink'); }
  /** Fails as on a read-only mount: the existing name is looked up first. */
  async link(existing: PathLike, path: PathLike): Promise<never> {
    await this.entry(existing, false, 'link');
    throw await makeError(this.lookup, pathArgument(path, 'newPath'), 'link');
  }
  /** Fails as on a read-only mount. */ async chmod(path: PathLike, _mode: number): Promise<never> { throw await changeError(this.lookup, pathArgument(path), 'chmod', true); }
  /** Fails as on a read-only mount. */ async chown(path: PathLike, _uid: number, _gid: number): Promise<never> { throw await changeError(this.lookup, pathArgument(path), 'chown', true); }
  /** Fails as on a read-only mount. */ async lchown(path: PathLike, _uid: number, _gid: number): Promise<never> { throw await changeError(this.lookup, pathArgument(path), 'lchown', false); }
  /** Fails as on a read-only mount. */ async utimes(path: PathLike, ..._a: unknown[]): Promise<never> { throw await changeError(this.lookup, pathArgument(path), 'utime', true); }
  /** Fails as on a read-only mount. */ async lutimes(path: PathLike, ..._a: unknown[]): Promise<never> { throw await changeError(this.lookup, pathArgument(path), 'lutime', false); }
  /** Fails as on a read-only mount. */ async truncate(path: PathLike, ..._a: unknown[]): Promise<never> { throw await changeError(this.lookup, pathArgument(path), 'open', true, true); }
  /** Fails as on a read-only mount. */ async setxattr(path: PathLike, ..._a: unknown[]): Promise<never> { throw await changeError(this.lookup, pathArgument(path), 'setxattr', true); }
  /** Fails as on a read-only mount. */ async removexattr(path: PathLike, ..._a: unknown[]): Promise<never> { throw await changeError(this.lookup, pathArgument(path), 'removexattr', true); }
}
