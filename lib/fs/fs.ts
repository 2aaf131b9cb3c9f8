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
import { CvmfsFileHandle, type ReadStreamOptions } from './file-handle.js';
import { magicNames, magicValue, type MagicContext, type MagicVisibility } from './magic-xattrs.js';
import type { Namespace } from './namespace.js';
import { CvmfsDirent, CvmfsStats } from './stats.js';
import { Walker } from './walker.js';
import type { ContentHash } from '../format/hash.js';
import { parseXattrs } from '../format/xattr.js';
import { Flag } from '../format/flags.js';
import { encodeName, pathFromArg } from '../format/byte-names.js';

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
  /** `'buffer'`: names as their bytes. */
  encoding?: BufferEncoding | 'buffer' | null;
}

/**
 * Options shared by calls that can be aborted. Content reads pass the signal down to their downloads; a
 * metadata call stops waiting at once, while a catalog download it started goes on for whoever else needs it
 * (catalogs are shared between concurrent calls) and lands in the cache.
 */
export interface AbortOptions {
  signal?: AbortSignal;
}

/** `p`, or an AbortError as soon as `signal` fires. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
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

const WRITE_FLAGS = constants.O_WRONLY | constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_APPEND;

function flagsWrite(flags: string | number): boolean {
  if (typeof flags === 'number') return (flags & WRITE_FLAGS) !== 0;
  return /[wa+]/.test(flags);
}

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
    return abortable(this.walker().resolve(pathFromArg(path), follow, syscall), signal);
  }

  /** Like fs.promises.stat. */
  async stat(path: PathLike, options: AbortOptions = {}): Promise<CvmfsStats> {
    return new CvmfsStats(await this.entry(path, true, 'stat', options.signal));
  }

  /** Like fs.promises.lstat. */
  async lstat(path: PathLike, options: AbortOptions = {}): Promise<CvmfsStats> {
    return new CvmfsStats(await this.entry(path, false, 'lstat', options.signal));
  }

  /** Like fs.promises.readdir: names, or Dirents with `withFileTypes`. Hidden entries are not listed. */
  async readdir(path: PathLike, options: { withFileTypes: true } & ReaddirOptions): Promise<CvmfsDirent[]>;
  async readdir(path: PathLike, options: ({ withFileTypes?: false; encoding: 'buffer' } & ReaddirOptions) | 'buffer'): Promise<Buffer[]>;
  async readdir(path: PathLike, options?: ({ withFileTypes?: false } & ReaddirOptions) | BufferEncoding): Promise<string[]>;
  async readdir(path: PathLike, options?: ReaddirOptions | BufferEncoding | 'buffer'): Promise<string[] | Buffer[] | CvmfsDirent[]> {
    const signal = typeof options === 'object' ? options.signal : undefined;
    const asBuffers = options === 'buffer' || (typeof options === 'object' && options.encoding === 'buffer');
    const dir = await this.entry(path, true, 'scandir', signal);
    if (dir.type !== 'dir') throw fsError('ENOTDIR', 'scandir', pathFromArg(path));
    const list = (await abortable(this.b.namespace().list(dir), signal)).filter((e) => !(e.flags & Flag.Hidden));
    if (typeof options === 'object' && options.withFileTypes) return list.map((e) => new CvmfsDirent(e.name, pathFromArg(path), e.mode));
    return asBuffers ? list.map((e) => encodeName(e.name)) : list.map((e) => e.name);
  }

  /** Like fs.promises.readFile. */
  async readFile(path: PathLike, options?: { encoding?: BufferEncoding | null; signal?: AbortSignal } | BufferEncoding | null): Promise<Buffer | string>;
  async readFile(path: PathLike, options?: { encoding?: BufferEncoding | null; signal?: AbortSignal } | BufferEncoding | null): Promise<Buffer | string> {
    const signal = typeof options === 'object' && options ? options.signal : undefined;
    const fh = await this.open(path, 'r', signal ? { signal } : {});
    try {
      return await fh.readFile(options);
    } finally {
      await fh.close();
    }
  }

  /** Like fs.promises.readlink; the target is shown after variant-symlink expansion. */
  async readlink(path: PathLike, options?: AbortOptions & { encoding?: BufferEncoding | null }): Promise<string>;
  async readlink(path: PathLike, options: AbortOptions & { encoding: 'buffer' }): Promise<Buffer>;
  async readlink(path: PathLike, options: AbortOptions & { encoding?: BufferEncoding | 'buffer' | null } = {}): Promise<string | Buffer> {
    const e = await this.entry(path, false, 'readlink', options.signal);
    if (e.type !== 'symlink') throw fsError('EINVAL', 'readlink', pathFromArg(path), 'not a symbolic link');
    return options.encoding === 'buffer' ? encodeName(e.target!) : e.target!;
  }

  /** Like fs.promises.realpath: the canonical path, in the style it was asked (`/a` or `/cvmfs/<fqrn>/a`). */
  async realpath(path: PathLike, options: AbortOptions = {}): Promise<string> {
    const e = await this.entry(path, true, 'realpath', options.signal);
    path = pathFromArg(path);
    const mount = `/cvmfs/${this.b.fqrn}`;
    if (path === mount || path.startsWith(mount + '/')) return e.path === '/' ? mount : mount + e.path;
    return e.path;
  }

  /** Like fs.promises.access: W_OK fails with EROFS; R_OK/X_OK check the permission bits. */
  async access(path: PathLike, mode: number = constants.F_OK, options: AbortOptions = {}): Promise<void> {
    const e = await this.entry(path, true, 'access', options.signal);
    if (mode & constants.W_OK) throw fsError('EROFS', 'access', pathFromArg(path));
    if (mode & constants.R_OK && (e.mode & 0o444) === 0) throw fsError('EACCES', 'access', pathFromArg(path));
    if (mode & constants.X_OK && (e.mode & 0o111) === 0) throw fsError('EACCES', 'access', pathFromArg(path));
  }

  /** True if the path resolves (following symlinks). */
  async exists(path: PathLike): Promise<boolean> {
    try {
      await this.entry(path, true, 'access');
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT' || (e as { code?: string }).code === 'ENOTDIR') return false;
      throw e;
    }
  }

  /** Like fs.promises.open, read-only. */
  async open(path: PathLike, flags: string | number = 'r', options: AbortOptions = {}): Promise<CvmfsFileHandle> {
    if (flagsWrite(flags)) throw fsError('EROFS', 'open', pathFromArg(path));
    const e = await this.entry(path, true, 'open', options.signal);
    if (e.type === 'dir') throw fsError('EISDIR', 'open', pathFromArg(path));
    if (e.type !== 'file') throw fsError('EINVAL', 'open', pathFromArg(path), `cannot read a ${e.type}`);
    const reader = new ContentReader(e, this.b.store(), this.b.namespace(), options.signal, this.b.readAhead);
    this.opens++;
    await abortable(reader.layout(), options.signal);
    return new CvmfsFileHandle(reader, pathFromArg(path));
  }

  /** Like fs.createReadStream, with inclusive `start`/`end`. */
  createReadStream(path: PathLike, options: ReadStreamOptions = {}): Readable {
    const self = this;
    async function* gen(): AsyncGenerator<Buffer> {
      const fh = await self.open(path, 'r', options.signal ? { signal: options.signal } : {});
      try {
        for await (const chunk of fh.createReadStream(options)) yield chunk as Buffer;
      } finally {
        await fh.close();
      }
    }
    return lazyStream().Readable.from(gen(), { objectMode: false });
  }

  /**
   * The verified cache files that hold a regular file's content, in order, each with its offset: one for a
   * whole-file object, one per chunk, fetched ahead as a sequential read would. For copying the content in the
   * kernel instead of reading it.
   */
  async *pieceFiles(path: PathLike, options: AbortOptions = {}): AsyncGenerator<PieceFile> {
    const e = await this.entry(path, true, 'open', options.signal);
    if (e.type !== 'file') throw fsError(e.type === 'dir' ? 'EISDIR' : 'EINVAL', 'open', pathFromArg(path));
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
    throw fsError('ENODATA', 'getxattr', pathFromArg(path), `no attribute ${name}`);
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
    if (dir.type !== 'dir') throw fsError('ENOTDIR', 'scandir', pathFromArg(path));
    return this.b.namespace().list(dir);
  }

  /**
   * The entries of a directory in slices of at most `size`, hidden ones included, in no particular order and
   * without keeping the listing: what a tool that goes through a large directory once needs in memory is a slice.
   */
  async *entrySlices(path: PathLike, size = 2048): AsyncGenerator<Entry[]> {
    const dir = await this.entry(path, true, 'scandir');
    if (dir.type !== 'dir') throw fsError('ENOTDIR', 'scandir', pathFromArg(path));
    yield* this.b.namespace().slices(dir, size);
  }

  /** Stored (non-magic) extended attributes of an entry, as name → bytes. */
  async xattrs(path: PathLike, options: { noFollow?: boolean } = {}): Promise<Map<string, Buffer>> {
    const e = await this.entry(path, !options.noFollow, 'listxattr');
    return e.xattrBlob ? parseXattrs(e.xattrBlob) : new Map();
  }

  private rofs(syscall: string, path: PathLike): Promise<never> {
    return Promise.reject(fsError('EROFS', syscall, pathFromArg(path)));
  }

  /** Always EROFS. */ writeFile(path: PathLike, ..._a: unknown[]): Promise<never> { return this.rofs('open', path); }
  /** Always EROFS. */ appendFile(path: PathLike, ..._a: unknown[]): Promise<never> { return this.rofs('open', path); }
  /** Always EROFS. */ mkdir(path: PathLike, ..._a: unknown[]): Promise<never> { return this.rofs('mkdir', path); }
  /** Always EROFS. */ rmdir(path: PathLike, ..._a: unknown[]): Promise<never> { return this.rofs('rmdir', path); }
  /** Always EROFS. */ rm(path: PathLike, ..._a: unknown[]): Promise<never> { return this.rofs('rm', path); }
  /** Always EROFS. */ unlink(path: PathLike): Promise<never> { return this.rofs('unlink', path); }
  /** Always EROFS. */ rename(path: PathLike, _to: PathLike): Promise<never> { return this.rofs('rename', path); }
  /** Always EROFS. */ symlink(_target: string, path: PathLike): Promise<never> { return this.rofs('symlink', path); }
  /** Always EROFS. */ link(_existing: PathLike, path: PathLike): Promise<never> { return this.rofs('link', path); }
  /** Always EROFS. */ chmod(path: PathLike, _mode: number): Promise<never> { return this.rofs('chmod', path); }
  /** Always EROFS. */ chown(path: PathLike, _uid: number, _gid: number): Promise<never> { return this.rofs('chown', path); }
  /** Always EROFS. */ lchown(path: PathLike, _uid: number, _gid: number): Promise<never> { return this.rofs('lchown', path); }
  /** Always EROFS. */ utimes(path: PathLike, ..._a: unknown[]): Promise<never> { return this.rofs('utime', path); }
  /** Always EROFS. */ lutimes(path: PathLike, ..._a: unknown[]): Promise<never> { return this.rofs('lutime', path); }
  /** Always EROFS. */ truncate(path: PathLike, ..._a: unknown[]): Promise<never> { return this.rofs('open', path); }
  /** Always EROFS. */ setxattr(path: PathLike, ..._a: unknown[]): Promise<never> { return this.rofs('setxattr', path); }
  /** Always EROFS. */ removexattr(path: PathLike, ..._a: unknown[]): Promise<never> { return this.rofs('removexattr', path); }
}
