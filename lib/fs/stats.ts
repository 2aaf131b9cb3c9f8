/**
 * `fs.Stats`-like objects for entries, so that code written for node:fs reads them unchanged.
 * @module
 */
import type { Entry } from './entry.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from './entry.js';

/** The `st_dev` reported for every entry (there is no device; this is a stable made-up number). */
export const CVMFS_DEV = 0xc7f5;

/** The type tests `fs.Stats` and `fs.Dirent` share, from a mode. */
abstract class TypedByMode {
  protected abstract readonly typeMode: number;
  isFile(): boolean { return (this.typeMode & S_IFMT) === S_IFREG; }
  isDirectory(): boolean { return (this.typeMode & S_IFMT) === S_IFDIR; }
  isSymbolicLink(): boolean { return (this.typeMode & S_IFMT) === S_IFLNK; }
  isFIFO(): boolean { return (this.typeMode & S_IFMT) === S_IFIFO; }
  isSocket(): boolean { return (this.typeMode & S_IFMT) === S_IFSOCK; }
  isCharacterDevice(): boolean { return (this.typeMode & S_IFMT) === S_IFCHR; }
  isBlockDevice(): boolean { return (this.typeMode & S_IFMT) === S_IFBLK; }
}

/** Mirrors `fs.Stats` for one entry. */
export class CvmfsStats extends TypedByMode {
  readonly dev = CVMFS_DEV;
  readonly ino: number;
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly rdev: number;
  readonly size: number;
  readonly blksize = 4096;
  readonly blocks: number;
  readonly atimeMs: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly birthtimeMs: number;
  /** Modification time in nanoseconds, like `fs.BigIntStats.mtimeNs`. */
  readonly mtimeNs: bigint;

  protected get typeMode(): number { return this.mode; }

  constructor(e: Entry) {
    super();
    this.ino = e.ino;
    this.mode = e.mode;
    this.nlink = e.nlink;
    this.uid = e.uid;
    this.gid = e.gid;
    this.rdev = e.rdev;
    this.size = e.size;
    this.blocks = genuineBlocks(e.size);
    this.mtimeNs = e.mtimeNs;
    const ms = Number(e.mtimeNs / 1_000_000n) + Number(e.mtimeNs % 1_000_000n) / 1e6;
    this.atimeMs = this.mtimeMs = this.ctimeMs = this.birthtimeMs = ms;
  }

  // Node rounds the milliseconds for its Dates (Date itself would cut them).
  get atime(): Date { return new Date(Math.round(this.atimeMs)); }
  get mtime(): Date { return new Date(Math.round(this.mtimeMs)); }
  get ctime(): Date { return new Date(Math.round(this.ctimeMs)); }
  get birthtime(): Date { return new Date(Math.round(this.birthtimeMs)); }
}

/**
 * Blocks of 512 bytes as the genuine client reports them (`1 + size / 512`, cvmfs's directory_entry.h), so that
 * `du` of the library's answers sums as on a mount; the connector shows the same (addon/modes.h).
 */
export function genuineBlocks(size: number): number {
  return 1 + Math.floor(Math.max(0, size) / 512);
}

/** Mirrors `fs.BigIntStats` (`stat(p, { bigint: true })`): every number a bigint, times also in nanoseconds. */
export class CvmfsBigIntStats extends TypedByMode {
  readonly dev = BigInt(CVMFS_DEV);
  readonly ino: bigint;
  readonly mode: bigint;
  readonly nlink: bigint;
  readonly uid: bigint;
  readonly gid: bigint;
  readonly rdev: bigint;
  readonly size: bigint;
  readonly blksize = 4096n;
  readonly blocks: bigint;
  readonly atimeMs: bigint;
  readonly mtimeMs: bigint;
  readonly ctimeMs: bigint;
  readonly birthtimeMs: bigint;
  readonly atimeNs: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly birthtimeNs: bigint;

  protected get typeMode(): number { return Number(this.mode); }

  constructor(e: Entry) {
    super();
    this.ino = BigInt(e.ino);
    this.mode = BigInt(e.mode);
    this.nlink = BigInt(e.nlink);
    this.uid = BigInt(e.uid);
    this.gid = BigInt(e.gid);
    this.rdev = BigInt(e.rdev);
    this.size = BigInt(e.size);
    this.blocks = BigInt(genuineBlocks(e.size));
    this.atimeNs = this.mtimeNs = this.ctimeNs = this.birthtimeNs = e.mtimeNs;
    const ms = e.mtimeNs / 1_000_000n; // as Node divides: toward zero
    this.atimeMs = this.mtimeMs = this.ctimeMs = this.birthtimeMs = ms;
  }

  get atime(): Date { return new Date(Number(this.atimeMs)); }
  get mtime(): Date { return new Date(Number(this.mtimeMs)); }
  get ctime(): Date { return new Date(Number(this.ctimeMs)); }
  get birthtime(): Date { return new Date(Number(this.birthtimeMs)); }
}

/** Stats of an entry, as numbers or, with `bigint`, as bigints. */
export function statsOf(e: Entry, bigint: boolean | undefined): CvmfsStats | CvmfsBigIntStats {
  return bigint === true ? new CvmfsBigIntStats(e) : new CvmfsStats(e);
}

/** Mirrors `fs.Dirent`. The name is a string, or its bytes when the listing was asked for with `encoding: 'buffer'`. */
export class CvmfsDirent<N extends string | Buffer = string> extends TypedByMode {
  constructor(readonly name: N, readonly parentPath: string, private readonly mode: number) {
    super();
  }
  protected get typeMode(): number { return this.mode; }
  /** Same as parentPath (Node 20 name). */
  get path(): string { return this.parentPath; }
}
