/**
 * Where caches live by default (a module of its own so that the CLI can know it without loading the client).
 * @module
 */
import { mkdirSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CvmfsError } from '../errors.js';
import { othersCanWrite } from './shared-mirror.js';

/** A yes/no parameter as the genuine client reads it: anything but no/false/0/off is on. */
export function isOn(value: string): boolean {
  return !/^(no|false|0|off)$/i.test(value.trim());
}

/** CVMFS_SHARED_CACHE from the environment (default yes), for tools that do not open a repository. */
export function sharedCacheFromEnv(): boolean {
  return isOn(process.env.CVMFS_SHARED_CACHE ?? 'yes');
}

/** `CVMFS_CACHE_BASE`, else `$XDG_CACHE_HOME/ucvmfs` or `~/.cache/ucvmfs`: per user, so no user locks out another. */
export function defaultCacheBase(): string {
  if (process.env.CVMFS_CACHE_BASE) return process.env.CVMFS_CACHE_BASE;
  return userCacheBase();
}

/** `$XDG_CACHE_HOME/ucvmfs` or `~/.cache/ucvmfs`, whatever CVMFS_CACHE_BASE says. */
export function userCacheBase(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ucvmfs');
}

/**
 * Where this user's verified objects and state go when `base` is writable by others (a cache shared by a group,
 * see shared-mirror.ts): `base` itself when only this user can write it, else the per-user cache base, else
 * `<tmpdir>/ucvmfs-<uid>` (made mode 0700 and checked to be this user's alone).
 */
export function privateCacheBase(base: string): string {
  if (!othersCanWrite(base)) return base;
  const mine = userCacheBase();
  if (resolve(mine) !== resolve(base) && !othersCanWrite(mine)) return mine;
  const uid = process.getuid?.() ?? 0;
  const dir = join(tmpdir(), `ucvmfs-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (st.uid !== uid || othersCanWrite(dir, st)) {
    throw new CvmfsError('EACCES', `no private cache directory: ${dir} is not this user's alone (set XDG_CACHE_HOME)`, { path: dir });
  }
  return dir;
}

/**
 * The directories one repository uses: `cache`, this user's verified objects and state; `mirror`, when the
 * objects' directory (`<base>/shared`, `<base>/<fqrn>`, or an alien cache) is writable by others and so is only
 * read through verification (see shared-mirror.ts).
 */
export function cacheDirs(base: string, fqrn: string, o: { shared: boolean; alien?: string | undefined; verify?: boolean | undefined }): { cache: string; mirror?: string } {
  const objects = o.alien || join(base, o.shared ? 'shared' : fqrn);
  // The objects' own directory counts too: a private base may hold a group-writable `shared/`.
  const verify = o.verify ?? (othersCanWrite(o.alien || base) || othersCanWrite(objects));
  return verify ? { cache: join(privateCacheBase(base), o.shared ? 'shared' : fqrn), mirror: objects } : { cache: objects };
}
