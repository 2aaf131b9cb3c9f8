/**
 * The file filler: a file's verified content takes its placeholder's place in the shadow tree. The content is
 * written to a temporary file beside the tree, given the entry's mode, mtime and attributes, and renamed over the
 * placeholder, so that no process ever sees the file half written or open for writing: another job that executes
 * it at that moment would get ETXTBSY ("Text file busy"), and a job reading it before the marker exists is sent
 * here first. Whoever renames last wins; every candidate holds the same verified bytes.
 * @module
 */
import { chmodSync, lstatSync, readdirSync, renameSync, rmSync, utimesSync, linkSync, mkdirSync, createWriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { chmod, copyFile, constants, rm, stat, utimes } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CvmfsError } from '../errors.js';
import { nativePath } from '../format/byte-names.js';
import { pidAlive } from '../cache/claim.js';

/** Where a file goes and what it must look like there. */
export interface FillTarget {
  /** The placeholder's path in the shadow tree (string form: nativePath gives its bytes). */
  file: string;
  /** What the shadow tree shows for it (see shadowMode) and its mtime, seconds. */
  mode: number;
  mtime: number;
  /** Its size in the catalog: the content must have exactly this many bytes. */
  size: number;
  /** The directory's shadow mode and mtime, restored after the rename (which changes both for a moment). */
  dir: { mode: number; mtime: number };
  /** Other names of its hardlink group (same directory), given the filled inode too. */
  links: readonly string[];
  /** A directory on the same file system as the tree for temporaries (see {@link removeDeadTemporaries}). */
  tmpDir: string;
  /** Sets the entry's stored attributes on a path (the temporary, before it is renamed into place). */
  attributes?: (path: string) => void;
}

/** The content: a verified object file of the cache (copied by the kernel), or a stream of verified bytes. */
export type FillSource = string | (() => Readable);

/**
 * Temporaries are named `<pid>.<random>.<host>`: the pid tells which are a dead process's, the host whose pid it
 * is (a cache in a home directory is often shared by the nodes of a cluster).
 */
function temporary(dir: string): string {
  return posix.join(dir, `${process.pid}.${randomBytes(6).toString('hex')}.${hostname()}`);
}

/** Writes `source` into a fresh temporary file of exactly `size` bytes; its path. */
async function writeTemporary(t: FillTarget, source: FillSource): Promise<string> {
  mkdirSync(t.tmpDir, { recursive: true, mode: 0o700 });
  const tmp = temporary(t.tmpDir);
  try {
    // A reflink where the file system has them (the bytes then exist once on disk), else copy_file_range: the
    // kernel copies, nothing passes through this process.
    if (typeof source === 'string') await copyFile(source, tmp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    else await pipeline(source(), createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
    const got = (await stat(tmp)).size;
    if (got !== t.size) throw new CvmfsError('EIO', `${t.file}: content of ${got} bytes where the catalog gives ${t.size}`);
    // Attributes first: setting one needs write permission, which the mode below takes away.
    t.attributes?.(tmp);
    await chmod(tmp, t.mode);
    await utimes(tmp, t.mtime, t.mtime);
    return tmp;
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * Runs a change of a shadow directory's names, making the directory writable for a moment when it is read-only
 * (as every filled shadow directory is), then restores its mode and mtime (a rename changes the mtime).
 */
function inDirectory(dir: string, shown: { mode: number; mtime: number }, change: () => void): void {
  const ndir = nativePath(dir);
  for (let attempt = 0; ; attempt++) {
    try {
      change();
      break;
    } catch (e) {
      // Another process restored the mode between our chmod and our change: once more.
      if ((e as NodeJS.ErrnoException).code !== 'EACCES' || attempt >= 16) throw e;
      chmodSync(ndir, (lstatSync(ndir).mode & 0o777) | 0o700);
    }
  }
  chmodSync(ndir, shown.mode);
  utimesSync(ndir, shown.mtime, shown.mtime);
}

/** Puts the verified content of `source` in place of the placeholder `t.file` (and of its hardlinks). */
export async function fillFile(t: FillTarget, source: FillSource): Promise<void> {
  const tmp = await writeTemporary(t, source);
  const dir = posix.dirname(t.file);
  try {
    const linked = t.links.map((name) => {
      const l = temporary(t.tmpDir);
      linkSync(nativePath(tmp), nativePath(l));
      return [l, name] as const;
    });
    inDirectory(dir, t.dir, () => {
      renameSync(nativePath(tmp), nativePath(t.file));
      for (const [l, name] of linked) renameSync(nativePath(l), nativePath(name));
    });
  } catch (e) {
    rmSync(nativePath(tmp), { force: true });
    throw e;
  }
}

/**
 * Removes the temporaries of processes that died while filling (killed jobs), so that nothing is left for a
 * later job to clean by hand. Temporaries of live processes are theirs.
 */
export function removeDeadTemporaries(tmpDir: string): void {
  let names: string[];
  try {
    names = readdirSync(tmpDir);
  } catch {
    return;
  }
  const me = hostname();
  for (const name of names) {
    const [pid, , ...host] = name.split('.');
    if (host.join('.') !== me || Number(pid) === process.pid || !(Number(pid) > 0) || pidAlive(Number(pid))) continue;
    rmSync(posix.join(tmpDir, name), { force: true });
  }
}
