/**
 * A resolved directory entry: what a catalog row means once its catalog, tree and variables are known. Plain data,
 * so that it outlives the catalog it came from.
 * @module
 */
import type { ContentHash } from '../format/hash.js';
import type { Compression } from '../format/flags.js';

/** Kinds of file system objects. */
export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

/** Where an entry's row lives, to come back for chunks, listings and counters. */
export interface EntryLocation {
  /** Root catalog of the tree the entry is in (the repository's, or a bind-mounted snapshot's). */
  readonly treeRoot: ContentHash;
  /** Repository path where that tree is mounted (`''` for the main tree). */
  readonly treePrefix: string;
  /** The catalog holding the row. */
  readonly catalog: ContentHash;
  /** That catalog's mountpoint inside its tree. */
  readonly catalogMount: string;
  /** The entry's path inside its tree. */
  readonly rel: string;
}

/** A resolved entry. */
export interface Entry {
  /** Repository path, `/` for the root. */
  readonly path: string;
  readonly name: string;
  readonly type: EntryType;
  readonly mode: number;
  readonly size: number;
  readonly mtime: number;
  /** Modification time in nanoseconds since the epoch. */
  readonly mtimeNs: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly ino: number;
  readonly rdev: number;
  readonly flags: number;
  /** Content hash (whole file), absent for chunked files without a bulk hash and for non-files. */
  readonly hash?: ContentHash;
  readonly compression: Compression;
  readonly chunked: boolean;
  /** Symlink target as stored (may contain `$(VAR)`). */
  readonly rawTarget?: string;
  /** Symlink target after variant expansion. */
  readonly target?: string;
  readonly xattrBlob: Uint8Array | null;
  /** For a bind mountpoint: the root catalog of the tree mounted there. */
  readonly bind?: ContentHash;
  readonly loc: EntryLocation;
}

/** File-type bits of st_mode. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/** The entry type for an st_mode. */
export function typeOfMode(mode: number): EntryType {
  switch (mode & S_IFMT) {
    case S_IFDIR: return 'dir';
    case S_IFLNK: return 'symlink';
    case S_IFIFO: return 'fifo';
    case S_IFSOCK: return 'socket';
    case S_IFCHR: return 'chardev';
    case S_IFBLK: return 'blockdev';
    default: return 'file';
  }
}
