/**
 * Small naming facts shared across modules.
 * @module
 */

/** A repository name as CernVM-FS allows it (it becomes a directory name and part of URLs). */
export function isRepositoryName(fqrn: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(fqrn);
}

/** A name directly under /cvmfs that may be a repository: a fully qualified name, so with a dot (not `lib`). */
export function mayBeRepository(name: string): boolean {
  return isRepositoryName(name) && name.includes('.');
}

/** Nanoseconds since the epoch as the seconds `utimes` takes. */
export function nsToSeconds(ns: bigint): number {
  return Number(ns / 1000n) / 1e6;
}
