/**
 * A /cvmfs directory bound into a container started inside a job (`bwrap --ro-bind /cvmfs/<fqrn>/<dir> /opt/x`,
 * a root file system unpacked on /cvmfs): the container reads the shadow tree under paths of its own, which the
 * tracer does not translate, so nothing there may still be a placeholder. Before the mount is made, the source's
 * whole subtree is completed: every directory listed, every file filled with verified content. A subtree larger
 * than a bound (entries, bytes) fails the mount instead, before anything is downloaded.
 * @module
 */
import type { Entry } from '../fs/entry.js';
import { Flag } from '../format/flags.js';
import { CvmfsError } from '../errors.js';

/** Bounds of a subtree that may become a bind source. */
export interface BindBounds {
  entries: number;
  bytes: number;
}

/** Defaults: a small image tree (an unpacked base image is some 10^4 entries and a few hundred MB). */
export const DEFAULT_BIND_BOUNDS: BindBounds = { entries: 100_000, bytes: 4 * 1024 ** 3 };

/** The bounds from `UCVMFS_BIND_MAX_ENTRIES` and `UCVMFS_BIND_MAX_BYTES`, or the defaults. */
export function bindBounds(env: NodeJS.ProcessEnv = process.env): BindBounds {
  const num = (v: string | undefined, d: number) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : d);
  return { entries: num(env.UCVMFS_BIND_MAX_ENTRIES, DEFAULT_BIND_BOUNDS.entries), bytes: num(env.UCVMFS_BIND_MAX_BYTES, DEFAULT_BIND_BOUNDS.bytes) };
}

/** What completing a subtree needs from the shadow tree (one repository). */
export interface SubtreeOps {
  /** Lists a directory in the shadow tree (once) and returns its entries. */
  list(parts: readonly string[]): Promise<Entry[]>;
  /** Writes a file's verified content over its placeholder. */
  fill(parts: readonly string[], e: Entry): Promise<void>;
}

/** What a completion did. */
export interface SubtreeStats {
  entries: number;
  bytes: number;
  files: number;
}

/** Fills run this many at a time (the downloads overlap; the writes are the kernel's). */
const FILL_CONCURRENCY = 8;

/**
 * Completes the subtree of `top` (a directory or a file at `parts` of one repository). Every directory is listed
 * first, counting, so that a subtree over the bounds fails (EIO, with the figures) before any content is fetched.
 * Hidden entries (the genuine client keeps them out of listings) are neither listed nor filled.
 */
export async function completeSubtree(path: string, parts: readonly string[], top: Entry, ops: SubtreeOps, bounds: BindBounds): Promise<SubtreeStats> {
  const stats: SubtreeStats = { entries: 1, bytes: 0, files: 0 };
  const files: Array<[readonly string[], Entry]> = [];
  const dirs: Array<readonly string[]> = [];
  if (top.type === 'dir') dirs.push(parts);
  else if (top.type === 'file') files.push([parts, top]);
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    for (const e of await ops.list(dir)) {
      if (e.flags & Flag.Hidden) continue;
      stats.entries++;
      if (e.type === 'dir') dirs.push([...dir, e.name]);
      else if (e.type === 'file') files.push([[...dir, e.name], e]);
      stats.bytes += e.type === 'file' ? e.size : 0;
      if (stats.entries > bounds.entries || stats.bytes > bounds.bytes) {
        throw new CvmfsError('EIO', `cannot be a container's bind source: its subtree holds more than ${bounds.entries} entries or ${bounds.bytes} bytes ` +
          `(${stats.entries} entries, ${stats.bytes} bytes counted so far; every file is made complete before the container may see it; ` +
          'raise UCVMFS_BIND_MAX_ENTRIES / UCVMFS_BIND_MAX_BYTES, or bind the cache directory and use /cvmfs paths inside)', { path });
      }
    }
  }
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const [p, e] = files[next++]!;
      await ops.fill(p, e);
      stats.files++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILL_CONCURRENCY, files.length) }, worker));
  return stats;
}
