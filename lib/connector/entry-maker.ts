/**
 * The entry maker: one repository entry as a real one in the shadow tree (a directory, a symlink, a sparse
 * placeholder file of the right size, mode and mtime with the stored attributes, a hardlink, a FIFO), made fresh
 * or repaired from what a process that died half-way left.
 * @module
 */
import { posix } from 'node:path';
import type { Stats } from 'node:fs';
import {
  chmodSync, closeSync, fchmodSync, ftruncateSync, linkSync, lstatSync, mkdirSync, openSync,
  readlinkSync, renameSync, rmSync, symlinkSync, truncateSync,
} from 'node:fs';
import { mkfifo } from '../fs/mkfifo.js';
import type { Entry } from '../fs/entry.js';
import { parseXattrs } from '../format/xattr.js';
import { encodeName, nativePath } from '../format/byte-names.js';
import { MODE_XATTR, modeAttribute, shadowMode, whileMade } from './modes.js';
import { lstatOrNull } from './settled.js';
import { setTimes } from './times.js';
import { VIRTUAL_ROOT, underVirtualRoot } from './virtual-root.js';
import { BatchKind, type EntryBatch } from './entry-batch.js';
import { mayBeRepository } from '../format/names.js';


/** Runs a create call that another process filling the same directory may have beaten us to. */
export function racing(create: () => void): void {
  try {
    create();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

/**
 * Runs a change inside a shadow directory, making the directory writable again first when another process
 * filling it at the same time has just made it read-only (shadow directories are read-only once filled).
 */
export function inWritable(dir: string, change: () => void): void {
  for (let attempt = 0; ; attempt++) {
    try {
      change();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EACCES' || attempt >= 16) throw e;
      chmodSync(nativePath(dir), whileMade(lstatSync(nativePath(dir)).mode, true));
    }
  }
}

/** Whether a relative target, followed from a directory `depth` levels below a repository's top, never climbs above it. */
function staysBelowTop(depth: number, target: string): boolean {
  for (const c of target.split('/')) {
    if (c === '..') {
      if (--depth < 0) return false;
    } else if (c !== '' && c !== '.') {
      depth++;
    }
  }
  return true;
}

/** Marks a target the shadow tree wrote in place of an absolute `/cvmfs` one; the tracer translates it back. */
export const REWRITTEN_LINK_MARK = './/';

/**
 * An absolute target into /cvmfs, rewritten as a relative path of exactly the same length (padded with `./`
 * and `/`), so that lstat reports the size the genuine client reports and the kernel follows it inside the
 * shadow tree. Null when the relative form is longer than the original (very deep links).
 */
export function sameLengthTarget(fqrn: string, parts: readonly string[], target: string, length = encodeName(target).length): string | null {
  let rest = posix.normalize(target.slice(VIRTUAL_ROOT.length)).replace(/^\/+/, '').replace(/\/$/, '');
  // From a directory of a revision (base/rev/<fqrn>@<hash>/<parts>): to its top, or to base/root/<other>.
  let up = parts.length;
  if (rest === fqrn || rest.startsWith(fqrn + '/')) rest = rest.slice(fqrn.length + 1);
  else {
    up += 2;
    rest = `root/${rest}`;
  }
  const rel = '../'.repeat(up) + rest || '.';
  // Lengths in bytes: lstat shows the size of the target's bytes.
  const pad = length - REWRITTEN_LINK_MARK.length - encodeName(rel).length;
  if (pad < 0) return null;
  return REWRITTEN_LINK_MARK + './'.repeat(Math.floor(pad / 2)) + (pad % 2 ? '/' : '') + rel;
}

/**
 * The real attributes a shadow entry gets: its stored ones (Linux allows user.* on files and directories, not
 * on symlinks), and a stored mode the on-disk bits cannot say (lib/connector/modes.ts).
 */
function attributesOf(e: Entry, own = false): Array<[string, Buffer]> {
  if (e.type === 'symlink' || e.type === 'fifo') return [];
  const out: Array<[string, Buffer]> = [];
  if (e.xattrBlob && (e.type === 'file' || e.type === 'dir')) {
    for (const [name, value] of parseXattrs(e.xattrBlob)) if (name !== MODE_XATTR) out.push([name, value]);
  }
  const mode = modeAttribute(e.mode, own);
  if (mode) out.push([MODE_XATTR, mode]);
  return out;
}

/**
 * Whether a file (not of a hardlink group) or directory has its type, size and final mode. A make sets the final
 * mode after the attributes and before the mtime, and never passes through it otherwise (a mode while made has
 * the owner's write bit, a final one never has), so only the mtime may be missing then.
 */
function modeSet(old: Stats, e: Entry): boolean {
  const type = e.type === 'file' && e.nlink <= 1 ? old.isFile() && old.size === e.size : e.type === 'dir' && old.isDirectory();
  return type && (old.mode & 0o7777) === shadowMode(e.mode);
}

/** Makes entries of one shadow area. */
export class EntryMaker {
  private fifos = 0;

  /**
   * @param base the shadow area (FIFOs are made there under a temporary name)
   * @param revisionOf the revision directory of a mounted repository (targets of links between repositories)
   * @param setxattr sets an extended attribute (the native module's; Node has none)
   * @param linksInto told of each repository a symlink of another one leads into (through `root/`)
   * @param variantMade told of each variant symlink made (its raw target), whose expansion the tree now holds
   */
  constructor(
    private readonly base: string,
    private readonly revisionOf: (fqrn: string) => string,
    private readonly setxattr: (path: string | Buffer, name: string, value: Buffer) => number,
    private readonly linksInto: (fqrn: string) => void = () => undefined,
    private readonly variantMade: (fqrn: string, raw: string) => void = () => undefined,
  ) {}

  /**
   * Stored attributes become real ones (Linux allows user.* on files and directories, not on symlinks), and so
   * does a stored mode the on-disk bits cannot say (lib/connector/modes.ts). Called while the entry is still
   * writable: setting a user.* attribute needs write permission (for anyone but root).
   */
  setAttributes(p: string, e: Entry, own = false): void {
    // A file system without user attributes: the stored mode shows as `disk | 0o200` (see the README).
    for (const [name, value] of attributesOf(e, own)) this.setxattr(nativePath(p), name, value);
  }

  /**
   * Adds an entry to the native batch (`makeEntries`: a file, directory or symlink with its size, mode, mtime,
   * target and attributes); false for what goes name by name (a hardlink group shares one inode; FIFOs and
   * devices are rare).
   */
  batchInto(batch: EntryBatch, e: Entry, fqrn: string, parts: readonly string[]): boolean {
    if (e.type === 'file' && e.nlink <= 1) batch.add(e.name, BatchKind.File, e.size, shadowMode(e.mode), e.mtimeNs, null, attributesOf(e));
    else if (e.type === 'dir') batch.add(e.name, BatchKind.Dir, 0, shadowMode(e.mode), e.mtimeNs, null, attributesOf(e));
    else if (e.type === 'symlink') batch.add(e.name, BatchKind.Symlink, 0, 0, e.mtimeNs, this.linkTarget(fqrn, parts, e), []);
    else return false;
    return true;
  }

  /**
   * Makes one entry, or repairs what a process that died half-way left (a listing without its marker is
   * redone; what exists is checked and fixed, not trusted).
   */
  make(path: string, e: Entry, fqrn: string, parts: readonly string[], firstOfInode: Map<number, string>): void {
    const t = e.mtimeNs;
    if (this.createFresh(path, e, fqrn, parts, firstOfInode)) return;
    const old = lstatOrNull(path);
    // What node:fs gets: the path's bytes when a name is not UTF-8.
    const p = nativePath(path);
    // Made already but perhaps for its mtime (another job made it while this one listed, or died setting it): left
    // as it is. A repair would make it writable for a moment, which a third job's stat would see.
    if (old && modeSet(old, e)) {
      if (lstatSync(p, { bigint: true }).mtimeNs !== e.mtimeNs) setTimes(p, t);
      return;
    }
    switch (e.type) {
      case 'dir':
        if (old && !old.isDirectory()) rmSync(p, { force: true });
        if (!old || !old.isDirectory()) racing(() => mkdirSync(p, this.writing(e) ? whileMade(shadowMode(e.mode), true) : shadowMode(e.mode)));
        // Made writable again by whoever lists it (doList).
        this.finish(path, e);
        break;
      case 'symlink': {
        const target = encodeName(this.linkTarget(fqrn, parts, e));
        const same = () => readlinkSync(p, { encoding: 'buffer' }).equals(target);
        if (old && !(old.isSymbolicLink() && same())) rmSync(p, { force: true, recursive: true });
        if (!old || !old.isSymbolicLink() || !same()) racing(() => symlinkSync(target, p));
        setTimes(p, t, true);
        break;
      }
      case 'file': {
        const first = e.nlink > 1 ? firstOfInode.get(e.ino) : undefined;
        if (first) {
          if (old && old.ino === lstatSync(nativePath(first)).ino) break;
          if (old) rmSync(p, { force: true, recursive: true });
          racing(() => linkSync(nativePath(first), p));
          break;
        }
        if (old && !old.isFile()) rmSync(p, { force: true, recursive: true });
        if (!old || !old.isFile()) racing(() => closeSync(openSync(p, 'wx', whileMade(shadowMode(e.mode)))));
        this.finish(path, e);
        if (e.nlink > 1) firstOfInode.set(e.ino, path);
        break;
      }
      case 'fifo':
        if (old && !old.isFIFO()) rmSync(p, { force: true, recursive: true });
        // Node has no mkfifo; FIFOs are rare enough for a child process.
        if (!old || !old.isFIFO()) {
          // Made under an ASCII name and renamed: a child's argv cannot carry a name that is not UTF-8.
          const tmp = posix.join(this.base, `.fifo.${process.pid}.${++this.fifos}`);
          rmSync(tmp, { force: true });
          mkfifo(tmp, e.mode);
          renameSync(tmp, p);
        }
        setTimes(p, t);
        break;
      default:
        // Devices and sockets cannot be made without privileges: an empty file keeps the name visible.
        if (!old) racing(() => closeSync(openSync(p, 'wx', whileMade(shadowMode(e.mode)))));
        this.finish(path, e);
    }
  }

  /** Whether an entry needs writing beyond its mode and times: attributes to set (which needs write permission). */
  private writing(e: Entry): boolean {
    return attributesOf(e).length > 0;
  }

  /**
   * Gives a file, directory or empty stand-in its size, attributes, final mode and mtime. It is made writable
   * ({@link whileMade}) only when there is something to write, so that another job's stat racing the repair of a
   * read-only entry sees its final mode throughout (and the owner's write bit of whileMade reads as the stored
   * mode whenever the final mode is marked: 0644, 0755 ...). A file is sized seen anew, writable first (another
   * job may have made it read-only since we looked), never shorter: another process may have written its content.
   */
  private finish(path: string, e: Entry): void {
    const p = nativePath(path);
    const final = shadowMode(e.mode);
    const size = e.type === 'dir' ? undefined : e.type === 'file' ? e.size : 0;
    if (this.writing(e) || (size !== undefined && lstatSync(p).size !== size)) {
      chmodSync(p, whileMade(final, e.type === 'dir'));
      if (size !== undefined && lstatSync(p).size !== size) truncateSync(p, size);
      this.setAttributes(path, e);
    }
    chmodSync(p, final);
    setTimes(p, e.mtimeNs);
  }

  /**
   * The common case of a first listing: the name is not there yet, so it is made in one go, through its
   * descriptor for a file (4 calls instead of 7 path lookups: this is most of a cold listing's time). False when
   * the name exists already (another process, or a listing that died half-way): {@link makeEntry} then checks it.
   */
  private createFresh(path: string, e: Entry, fqrn: string, parts: readonly string[], firstOfInode: Map<number, string>): boolean {
    const p = nativePath(path);
    try {
      if (e.type === 'file' && !(e.nlink > 1 && firstOfInode.has(e.ino))) {
        const fd = openSync(p, 'wx', 0o600);
        try {
          if (e.size > 0) ftruncateSync(fd, e.size);
          this.setAttributes(path, e);
          fchmodSync(fd, shadowMode(e.mode));
          setTimes(fd, e.mtimeNs);
        } finally {
          closeSync(fd);
        }
        if (e.nlink > 1) firstOfInode.set(e.ino, path);
        return true;
      }
      if (e.type === 'symlink') {
        symlinkSync(encodeName(this.linkTarget(fqrn, parts, e)), p);
        setTimes(p, e.mtimeNs, true);
        return true;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    return false;
  }

  /**
   * A symlink target as stored in the shadow tree: absolute targets into /cvmfs point into the shadow root;
   * relative ones that would climb above /cvmfs become absolute, since the shadow root has other parents.
   */
  private linkTarget(fqrn: string, parts: readonly string[], e: Entry): string {
    const target = e.target ?? '';
    if (e.rawTarget?.includes('$(')) this.variantMade(fqrn, e.rawTarget);
    let abs: string;
    if (target.startsWith('/')) {
      if (!underVirtualRoot(target)) return target;
      abs = target;
    } else {
      abs = posix.resolve(posix.join(VIRTUAL_ROOT, fqrn, ...parts), target);
      // Within the repository a relative target works as it is, unless it climbs above the repository's top on
      // the way (`../../<fqrn>/x`): in the shadow tree the top's parent is another directory.
      const within = abs === posix.join(VIRTUAL_ROOT, fqrn) || abs.startsWith(posix.join(VIRTUAL_ROOT, fqrn) + '/');
      if (within && staysBelowTop(parts.length, target)) return target;
      if (!underVirtualRoot(abs)) return abs;
    }
    const rest = abs.slice(VIRTUAL_ROOT.length + 1);
    const other = rest.split('/')[0]!;
    // A link into another repository leads through root/<other>: that repository starts no new generation.
    if (other !== fqrn && mayBeRepository(other)) this.linksInto(other);
    const same = sameLengthTarget(fqrn, parts, abs, encodeName(target).length);
    if (same) return same;
    if (other === fqrn) return posix.join(this.revisionOf(fqrn), rest.slice(fqrn.length));
    return posix.join(this.base, 'root', rest);
  }
}
