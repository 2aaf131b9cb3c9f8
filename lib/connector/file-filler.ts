/**
 * The file filler: a file's verified content goes into its placeholder in the shadow tree, in place. The inode a
 * program saw before (`cp -a` stats a file, opens it, and refuses it when the inode changed between the two) stays
 * the one it reads; hardlinked names share it. Nobody reads, maps or executes a placeholder before its marker says
 * it is complete (lib/connector/shadow.ts, the tracer, the preload library), so nobody sees it half written, and
 * nobody executes it while it is open for writing (ETXTBSY). A crash half way leaves no marker: the next fill
 * writes it again. Jobs filling the same file at once write the same verified bytes at the same offsets.
 * @module
 */
import { chmodSync, constants, fchmodSync, fstatSync, ftruncateSync, lstatSync, openSync, closeSync, readdirSync, renameSync, rmSync, linkSync, createWriteStream } from 'node:fs';
import { hostname } from 'node:os';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { lazyCrypto, lazyStream, lazyStreamPromises } from '../lazy.js';
import { CvmfsError } from '../errors.js';
import { nativePath } from '../format/byte-names.js';
import { pidAlive, removeDeadGuards } from '../cache/claim.js';
import { inWritable } from './entry-maker.js';
import { setTimes } from './times.js';

/** Where a file goes and what it must look like there. */
export interface FillTarget {
  /** The placeholder's path in the shadow tree (string form: nativePath gives its bytes). */
  file: string;
  /** What the shadow tree shows for it (see shadowMode) and its mtime, nanoseconds. */
  mode: number;
  mtimeNs: bigint;
  /** Its size in the catalog: the content must have exactly this many bytes. */
  size: number;
  /** The directory's shadow mode and mtime, restored after a hardlink is repaired (which changes both). */
  dir: { mode: number; mtimeNs: bigint };
  /** Other names of its hardlink group (same directory): they must end up naming the filled inode. */
  links: readonly string[];
  /** A directory on the same file system as the tree for temporaries (see {@link removeDeadTemporaries}). */
  tmpDir: string;
}

/** Copies a whole file over the start of an open one, in the kernel (the native module's); bytes copied. */
export type CopyInto = (src: string, fd: number) => Promise<number>;

/** Copies a whole file into an open one from `offset` on, in the kernel (the native module's); bytes copied. */
export type CopyAt = (src: string, fd: number, offset: number) => Promise<number>;

/** One verified cache file of a chunked file's content and its place there (see CvmfsFs.pieceFiles). */
export interface FillPiece {
  path: string;
  offset: number;
  size: number;
  /** The piece fetched again, for a cache file evicted before it was copied. */
  again(): Promise<string>;
}

/**
 * The content: a verified object file of the cache (copied by the kernel), the cache files of a chunked file's
 * pieces (each copied by the kernel into its place), or a stream of verified bytes.
 */
export type FillSource = string | { pieces: AsyncIterable<FillPiece> } | (() => Readable);

/** How the native module copies: a whole file, and (if it can) a file into a place in another. */
export interface Copier {
  into: CopyInto;
  at?: CopyAt | undefined;
}

/**
 * Temporaries are named `<pid>.<random>.<host>`: the pid tells which are a dead process's, the host whose pid it
 * is (a cache in a home directory is often shared by the nodes of a cluster).
 */
function temporary(dir: string): string {
  return posix.join(dir, `${process.pid}.${lazyCrypto().randomBytes(6).toString('hex')}.${hostname()}`);
}

/** Something to wait on for a pause (never notified). */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * Opens the read-only placeholder for writing. Only the owner's write bit is added, for the two calls between
 * the chmod and the open: the descriptor keeps its access once the mode is back (a marked mode reads the same
 * with or without that bit, lib/connector/modes.ts).
 */
function openForFill(file: string, mode: number): number {
  const p = nativePath(file);
  if (!lstatSync(p).isFile()) throw new CvmfsError('EIO', `${file}: the placeholder is not a regular file`, { path: file });
  for (let attempt = 0; ; attempt++) {
    chmodSync(p, mode | 0o200);
    let fd: number | undefined;
    try {
      fd = openSync(p, constants.O_RDWR | constants.O_NOFOLLOW);
      fchmodSync(fd, mode);
      return fd;
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      chmodSync(p, mode);
      // Another job filling the same file (files that are no program are filled without a lock) took the write
      // bit away between our chmod and our open: once more, after a random pause that grows, so that jobs that
      // keep meeting there (several at once on a loaded node) draw apart instead of running out of attempts.
      if ((e as NodeJS.ErrnoException).code !== 'EACCES' || attempt >= 16) throw e;
      Atomics.wait(PAUSE, 0, 0, Math.random() * Math.min(16, 2 ** attempt));
    }
  }
}

/** Writes a stream at the start of an open file; the number of bytes it held. */
async function writeStream(source: () => Readable, fd: number): Promise<number> {
  let n = 0;
  const count = new (lazyStream().Transform)({
    transform(chunk: Buffer, _enc, done) {
      n += chunk.length;
      done(null, chunk);
    },
  });
  await lazyStreamPromises().pipeline(source(), count, createWriteStream('', { fd, start: 0, autoClose: false }));
  return n;
}

/**
 * Copies each piece into its place, in the kernel: the bytes pass through user space once, when they are written
 * to the cache, not a second time on the way into the shadow file. Pieces copied one after the other, while the
 * next ones download; the number of bytes copied.
 */
async function copyPieces(pieces: AsyncIterable<FillPiece>, fd: number, copyAt: CopyAt): Promise<number> {
  let n = 0;
  for await (const p of pieces) {
    let got: number;
    try {
      got = await copyAt(p.path, fd, p.offset);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      got = await copyAt(await p.again(), fd, p.offset); // evicted (quota) between its download and the copy
    }
    if (got !== p.size) throw new CvmfsError('EIO', `a piece of ${got} bytes at offset ${p.offset} where the catalog gives ${p.size}`);
    n += got;
  }
  return n;
}

/**
 * Runs a change of a shadow directory's names, making the directory writable for a moment when it is read-only
 * (as every filled shadow directory is), then restores its mode and mtime (a rename changes the mtime).
 */
function inDirectory(dir: string, shown: { mode: number; mtimeNs: bigint }, change: () => void): void {
  inWritable(dir, change);
  chmodSync(nativePath(dir), shown.mode);
  setTimes(nativePath(dir), shown.mtimeNs);
}

/**
 * Names of the group that do not share the filled inode (a tree made before placeholders of a group were
 * linked, or a name replaced by hand) are linked to it, each atomically.
 */
function relink(t: FillTarget): void {
  const ino = lstatSync(nativePath(t.file)).ino;
  const stray = t.links.filter((name) => lstatSync(nativePath(name), { throwIfNoEntry: false })?.ino !== ino);
  if (stray.length === 0) return;
  const linked = stray.map((name) => {
    const l = temporary(t.tmpDir);
    linkSync(nativePath(t.file), nativePath(l));
    return [l, name] as const;
  });
  try {
    inDirectory(posix.dirname(t.file), t.dir, () => {
      for (const [l, name] of linked) renameSync(nativePath(l), nativePath(name));
    });
  } finally {
    for (const [l] of linked) rmSync(nativePath(l), { force: true });
  }
}

/** Puts the verified content of `source` into the placeholder `t.file` (and so into its hardlinks). */
export async function fillFile(t: FillTarget, source: FillSource, copy: Copier): Promise<void> {
  const fd = openForFill(t.file, t.mode);
  try {
    const got = typeof source === 'string' ? await copy.into(source, fd)
      : typeof source === 'function' ? await writeStream(source, fd)
        : await copyPieces(source.pieces, fd, copy.at!);
    if (got !== t.size) throw new CvmfsError('EIO', `${t.file}: content of ${got} bytes where the catalog gives ${t.size}`);
    // A placeholder of another size (a tree left half made) keeps no tail.
    if (fstatSync(fd).size !== t.size) ftruncateSync(fd, t.size);
    fchmodSync(fd, t.mode);
    setTimes(fd, t.mtimeNs);
  } finally {
    closeSync(fd);
  }
  relink(t);
}

/**
 * Removes the temporaries of processes that died while filling (killed jobs), and the guards of their lock
 * takeovers, so that nothing is left for a later job to clean by hand. Temporaries of live processes are theirs.
 */
export function removeDeadTemporaries(tmpDir: string): void {
  let names: string[];
  try {
    names = readdirSync(tmpDir);
  } catch {
    return;
  }
  removeDeadGuards(tmpDir, names);
  const me = hostname();
  for (const name of names) {
    const [pid, , ...host] = name.split('.');
    if (host.join('.') !== me || Number(pid) === process.pid || !(Number(pid) > 0) || pidAlive(Number(pid))) continue;
    rmSync(posix.join(tmpDir, name), { force: true });
  }
}
