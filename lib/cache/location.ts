/**
 * Where caches live by default (a module of its own so that the CLI can know it without loading the client).
 * @module
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** `CVMFS_CACHE_BASE`, else `$XDG_CACHE_HOME/ucvmfs` or `~/.cache/ucvmfs`: per user, so no user locks out another. */
export function defaultCacheBase(): string {
  if (process.env.CVMFS_CACHE_BASE) return process.env.CVMFS_CACHE_BASE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ucvmfs');
}
