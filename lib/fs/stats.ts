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
    this.blocks = Math.ceil(e.size / 512);
    this.mtimeNs = e.mtimeNs;
    const ms = Number(e.mtimeNs / 1_000_000n) + Number(e.mtimeNs % 1_000_000n) / 1e6;
    this.atimeMs = this.mtimeMs = this.ctimeMs = this.birthtimeMs = ms;
  }

  get atime(): Date { return new Date(this.atimeMs); }
  get mtime(): Date { return new Date(this.mtimeMs); }
  get ctime(): Date { return new Date(this.ctimeMs); }
  get birthtime(): Date { return new Date(this.birthtimeMs); }

}

/** Mirrors `fs.Dirent`. */
export class CvmfsDirent extends TypedByMode {
  constructor(readonly name: string, readonly parentPath: string, private readonly mode: number) {
    super();
  }
  protected get typeMode(): number { return this.mode; }
  /** Same as parentPath (Node 20 name). */
  get path(): string { return this.parentPath; }
}
