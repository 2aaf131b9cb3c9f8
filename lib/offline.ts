/**
 * For sites that must run without the network: `preload` fills the cache with the objects of selected paths
 * (resumable: what is cached is not fetched again), `exportTree` writes selected paths as a plain directory
 * tree (modes, symlinks, hardlinks, mtimes kept).
 * @module
 */
import { nsToSeconds as seconds } from './format/names.js';
import { nativePath as at } from './format/byte-names.js';
import { createWriteStream, mkdirSync, rmSync, linkSync, symlinkSync, chmodSync, utimesSync, lutimesSync, renameSync, existsSync } from 'node:fs';
import { mkfifo } from './fs/mkfifo.js';
import { posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Entry } from './fs/entry.js';
import type { Repository } from './repository.js';
import { selectEntries, type Spec } from './select.js';


/** Progress of a preload or export. */
export interface OfflineProgress {
  /** Files done and selected. */
  files: number;
  totalFiles: number;
  /** File bytes done and selected. */
  bytes: number;
  totalBytes: number;
  /** Objects downloaded so far (the rest came from the cache). */
  downloaded: number;
  /** Seconds since the start. */
  elapsed: number;
}

/** Options of {@link preload} and {@link exportTree}. */
export interface OfflineOptions {
  /** Files worked on at once (default 8). */
  concurrency?: number;
  onProgress?: (p: OfflineProgress) => void;
  signal?: AbortSignal;
}

async function collect(repo: Repository, spec: Spec): Promise<Entry[]> {
  const all: Entry[] = [];
  for await (const e of selectEntries(repo, spec)) all.push(e);
  return all;
}

/** Runs `work` over items with bounded concurrency, in order of start. */
async function pool<T>(items: readonly T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, run));
}

function progressOf(repo: Repository, files: Entry[], start: number, base: number): OfflineProgress {
  return {
    files: 0,
    totalFiles: files.length,
    bytes: 0,
    totalBytes: files.reduce((a, e) => a + e.size, 0),
    downloaded: repo.stats().objectsDownloaded - base,
    elapsed: (Date.now() - start) / 1000,
  };
}

/** Downloads and verifies into the cache every object of the selected files; resolves to the final progress. */
export async function preload(repo: Repository, spec: Spec, options: OfflineOptions = {}): Promise<OfflineProgress> {
  const start = Date.now();
  const base = repo.stats().objectsDownloaded;
  const files = (await collect(repo, spec)).filter((e) => e.type === 'file');
  const p = progressOf(repo, files, start, base);
  await pool(files, options.concurrency ?? 8, async (e) => {
    await repo.fs.prefetch(e.path, { signal: options.signal });
    p.files++;
    p.bytes += e.size;
    p.downloaded = repo.stats().objectsDownloaded - base;
    p.elapsed = (Date.now() - start) / 1000;
    options.onProgress?.(p);
  });
  return p;
}

/**
 * Writes the selected paths below `to` as plain files: directories, files (verified content), symlinks (their
 * targets as the repository shows them), hardlink groups as hardlinks, FIFOs; modes and mtimes as stored.
 * Files are written to a temporary name and renamed, so an interrupted export leaves no partial file.
 */
export async function exportTree(repo: Repository, spec: Spec, to: string, options: OfflineOptions = {}): Promise<OfflineProgress> {
  const start = Date.now();
  const base = repo.stats().objectsDownloaded;
  const entries = await collect(repo, spec);
  const files = entries.filter((e) => e.type === 'file');
  const p = progressOf(repo, files, start, base);
  // Paths in the library's string form; `at` gives node:fs the same bytes (a name need not be UTF-8).
  const outS = (e: Entry) => posix.join(to, e.path);
  const out = (e: Entry) => at(outS(e));
  mkdirSync(to, { recursive: true });
  // Directories first (writable until their content is in), with parents of selected paths made as needed.
  for (const e of entries) {
    if (e.type === 'dir') mkdirSync(out(e), { recursive: true, mode: 0o700 });
    else mkdirSync(at(posix.dirname(outS(e))), { recursive: true, mode: 0o700 });
  }
  const firstOfInode = new Map<number, string | Buffer>();
  const linked = new Set<Entry>();
  for (const e of files) {
    if (e.nlink > 1 && firstOfInode.has(e.ino)) linked.add(e);
    else if (e.nlink > 1) firstOfInode.set(e.ino, out(e));
  }
  const primaries = files.filter((e) => !linked.has(e));
  let temporaries = 0;
  await pool(primaries, options.concurrency ?? 8, async (e) => {
    const dest = out(e);
    // A short name of its own: one made from the file's would pass 255 bytes for a long name.
    const tmp = at(posix.join(posix.dirname(outS(e)), `.ucvmfs-${process.pid}-${++temporaries}.tmp`));
    try {
      await pipeline(repo.fs.createReadStream(e.path, { signal: options.signal }), createWriteStream(tmp, { mode: 0o600 }));
      chmodSync(tmp, e.mode & 0o7777);
      utimesSync(tmp, seconds(e.mtimeNs), seconds(e.mtimeNs));
      renameSync(tmp, dest);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    p.files++;
    p.bytes += e.size;
    p.downloaded = repo.stats().objectsDownloaded - base;
    p.elapsed = (Date.now() - start) / 1000;
    options.onProgress?.(p);
  });
  for (const e of linked) {
    rmSync(out(e), { force: true });
    linkSync(firstOfInode.get(e.ino)!, out(e));
    p.files++;
    p.bytes += e.size;
  }
  for (const e of entries) {
    const dest = out(e);
    const t = seconds(e.mtimeNs);
    if (e.type === 'symlink') {
      rmSync(dest, { force: true });
      symlinkSync(at(e.target ?? ''), dest);
      lutimesSync(dest, t, t);
    } else if (e.type === 'fifo') {
      if (!existsSync(dest)) mkfifo(outS(e), e.mode);
      utimesSync(dest, t, t);
    }
  }
  // Directory modes and mtimes last, deepest first (writing into a directory changes its mtime).
  for (const e of entries.filter((x) => x.type === 'dir').reverse()) {
    chmodSync(out(e), e.mode & 0o7777);
    utimesSync(out(e), seconds(e.mtimeNs), seconds(e.mtimeNs));
  }
  return p;
}
