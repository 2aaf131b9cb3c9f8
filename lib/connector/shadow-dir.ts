/**
 * Where the shadow area goes, and how its directories are made. A job may switch to another user (a root pilot
 * running its payload with `su`, `setpriv` or `runuser`): that user must read /cvmfs as on a mount, so the kernel
 * must be able to traverse every directory from `/` to the shadow tree, while nobody but this user can change
 * anything in it. Synchronous: a handful of calls at a job's start, each far cheaper than a trip through the thread
 * pool (they were a twentieth of `exec -- true`).
 * @module
 */
import { nameHash } from '../crypto/name-hash.js';
import { chmodSync, lstatSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CvmfsError } from '../errors.js';

/** Traversable by everyone, listable by none but the owner: how the shadow area's own directories are made. */
export const TRAVERSE = 0o711;

const uid = (): number => process.getuid?.() ?? 0;

/**
 * Makes a directory of the connector's own or checks the one there: programs are served the shadow tree without
 * further verification, so a directory another user owns or may write (and so could swap a file in) is refused
 * (EACCES, naming it). `mode`: the bits it is made with; an existing one gets the execute bits of `mode` it lacks
 * (shadow directories of earlier versions were 0700).
 */
export function privateDir(dir: string, follow = false, mode = 0o700): void {
  mkdirSync(dir, { recursive: true, mode });
  const st = follow ? statSync(dir) : lstatSync(dir);
  const me = uid();
  const why = !st.isDirectory() ? 'is not a directory' : st.uid !== me ? `is owned by uid ${st.uid}, not by this user (${me})` : st.mode & 0o022 ? `is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${(st.mode & 0o7777).toString(8)})` : '';
  if (why) throw new CvmfsError('EACCES', `the connector's directory ${dir} ${why}: remove it or make it this user's alone (chmod go-w)`, { path: dir });
  const missing = mode & 0o111 & ~st.mode;
  if (missing) chmodSync(dir, (st.mode & 0o7777) | missing);
}

/** Whether every directory from `/` down to `dir` (itself excluded) lets others through. */
function traversableAbove(dir: string): boolean {
  for (let d = dirname(resolve(dir)); ; d = dirname(d)) {
    const st = statSync(d, { throwIfNoEntry: false });
    if (!st || (st.mode & 0o001) === 0) return false;
    if (d === '/') return true;
  }
}

/**
 * The shadow area of a private cache base `own`: `explicit` (the `shadowDir` option, else `UCVMFS_SHADOW_DIR`)
 * when given; else `<own>/shadow` when the directories above `own` let other users through (`own` then gets
 * execute bits for them, never read or write ones: its `shared/` and the rest stay 0700); else
 * `${TMPDIR:-/tmp}/ucvmfs-shadow-<uid>/<hash of own>` (root's ~/.cache is under /root, 0700), one per cache so
 * that caches stay apart as before. Each directory is this user's alone and refused otherwise (a directory
 * another user made there first fails the job with EACCES).
 */
export function shadowArea(own: string, explicit = process.env.UCVMFS_SHADOW_DIR || undefined): string {
  if (explicit) {
    privateDir(explicit, true, TRAVERSE);
    return resolve(explicit);
  }
  if (traversableAbove(own)) {
    privateDir(own, true, TRAVERSE);
    const base = join(own, 'shadow');
    privateDir(base, false, TRAVERSE);
    return base;
  }
  const top = join(tmpdir(), `ucvmfs-shadow-${uid()}`);
  privateDir(top, false, TRAVERSE);
  const base = join(top, nameHash(resolve(own), 16));
  privateDir(base, false, TRAVERSE);
  return base;
}
