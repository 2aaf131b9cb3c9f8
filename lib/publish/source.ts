/**
 * Reads the source directory into a tree of entries with everything the catalogs need (lstat data, symlink
 * targets, xattrs, nested-catalog markers). Content is stored later, by the publisher.
 * @module
 */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { decodeName } from '../format/byte-names.js';
import type { FileContent } from './content.js';
import { pathKey, type PathKey } from '../format/pathhash.js';
import type { WrittenCatalog } from './catalog-types.js';

/** Kinds of entries a catalog distinguishes. */
export type SourceKind = 'dir' | 'file' | 'symlink' | 'special';

/** One entry of the source tree. */
export interface SourceEntry {
  /** Last path component; `''` for the root. Names are bytes, held in the form of format/byte-names.ts. */
  readonly name: string;
  /** Repository path: `''` for the root, else `/a/b`. */
  readonly path: string;
  /** Where it is on disk, as bytes (a name need not be UTF-8). */
  readonly abs: Buffer;
  readonly kind: SourceKind;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** st_size (for devices the catalog stores st_rdev instead, see the catalog writer). */
  readonly size: number;
  readonly rdev: number;
  readonly mtime: number;
  /** Nanosecond part of the mtime. */
  readonly mtimeNs: number;
  readonly nlink: number;
  /** `dev:ino`, to find hardlinks, where `nlink` is above 1; `''` otherwise. */
  readonly inode: string;
  /** Raw symlink target. */
  readonly target?: string;
  /** Sorted children of a directory. */
  readonly children: SourceEntry[];
  /** `user.*` extended attributes. */
  xattrs: Map<string, Buffer> | null;
  /** A directory (not the root) holding a regular file `.cvmfscatalog`: the root of a nested catalog. */
  nestedCatalog: boolean;
  /** Set once the content of a regular file is stored. */
  content?: FileContent;
  /** The catalog's MD5 key of {@link SourceEntry.path}, once {@link entryKey} computed it (dropped once its row is written). */
  key?: PathKey | undefined;
  /**
   * A nested catalog's mountpoint whose subtree was not scanned: the previous revision's catalog stands for it as
   * it is (PublishOptions.changed), with what its parent's row and counters need.
   */
  kept?: KeptCatalog;
}

/** A nested catalog of the previous revision kept unread (see SourceEntry.kept). */
export interface KeptCatalog {
  /** The catalog as the writer reports a written one. */
  readonly written: WrittenCatalog;
  /** Its top directory's link count (2 and one per subdirectory), which the parent's mountpoint row repeats. */
  readonly hardlinks: number;
  /** Entries below its top directory, in it and the catalogs below. */
  readonly entries: number;
}

/**
 * The MD5 path key of an entry, computed once: a publish needs it to find the previous revision's row, to tell
 * whether the file changed and to write its own row.
 */
export function entryKey(e: SourceEntry): PathKey {
  return (e.key ??= pathKey(e.path));
}

/** The name of the marker file that makes its directory a nested catalog. */
export const NESTED_CATALOG_MARKER = '.cvmfscatalog';

function kindOf(st: { isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }): SourceKind {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  return 'special';
}

function entryAt(abs: Buffer, name: string, path: string): SourceEntry {
  const st = lstatSync(abs, { bigint: true });
  const kind = kindOf(st);
  const nlink = Number(st.nlink);
  // One shape for every entry, the optional target set after: a spread would build each through V8's slow
  // object-clone path, into objects with their properties out of line (a million entries are held at once).
  const e: SourceEntry = {
    name,
    path,
    abs,
    kind,
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    rdev: Number(st.rdev),
    mtime: Number(st.mtimeNs / 1_000_000_000n),
    mtimeNs: Number(st.mtimeNs % 1_000_000_000n),
    nlink,
    inode: nlink > 1 ? `${st.dev}:${st.ino}` : '',
    children: [],
    xattrs: null,
    nestedCatalog: false,
    key: undefined,
  };
  if (kind === 'symlink') (e as { target?: string }).target = decodeName(readlinkSync(abs, { encoding: 'buffer' }));
  return e;
}

/**
 * Scans `root` recursively. Absolute paths in `exclude` (the output and keys directories, should they lie inside
 * the source) are left out; a directory for which `prune` returns true is not entered (it has set the entry's
 * `kept`). The walk is synchronous: one lstat at a time through the thread pool took four times as long for
 * 100,000 entries (bench group 13), and nothing else has work to do meanwhile. `count`: the entries scanned.
 */
export async function scanSource(root: string, exclude: ReadonlySet<string> = new Set(), prune?: (dir: SourceEntry) => boolean): Promise<{ root: SourceEntry; count: number }> {
  const absRoot = Buffer.from(resolve(root));
  const excluded = new Set([...exclude].map((p) => Buffer.from(p).toString('latin1')));
  const top = entryAt(absRoot, '', '');
  if (top.kind !== 'dir') throw new Error(`publish: source ${root} is not a directory`);
  let count = 1;
  const walk = (dir: SourceEntry, abs: Buffer): void => {
    // Names as bytes: a string readdir would turn a name that is not UTF-8 into one that does not exist.
    const raw = readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
    for (const bytes of raw) {
      const childAbs = Buffer.concat([abs, Buffer.from('/'), bytes]);
      if (excluded.has(childAbs.toString('latin1'))) continue;
      const name = decodeName(bytes);
      const child = entryAt(childAbs, name, `${dir.path}/${name}`);
      dir.children.push(child);
      count++;
      if (child.kind === 'dir' && !prune?.(child)) walk(child, childAbs);
      else if (child.kind === 'file' && name === NESTED_CATALOG_MARKER && dir.path !== '') dir.nestedCatalog = true;
    }
  };
  walk(top, absRoot);
  return { root: top, count };
}

/** Calls `fn` for every entry, parents before children. */
export function forEachEntry(root: SourceEntry, fn: (e: SourceEntry) => void): void {
  fn(root);
  for (const c of root.children) forEachEntry(c, fn);
}
