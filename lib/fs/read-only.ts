/**
 * What a read-only mount answers to a call that would change it, in the kernel's order of checks, for the fs view
 * (the connector's addon/readonly.h answers the same for programs): a call on a name that must be there looks it
 * up first (ENOENT, ENOTDIR, ELOOP), one that makes a name looks its directory up and then finds the name there
 * (EEXIST), one that removes a name asks for write access right after its directory's lookup; EROFS comes last.
 * `mkdir -p` of an existing directory and `rm -f` of a missing name succeed, as on a mount.
 * @module
 */
import { constants } from 'node:fs';
import { fsError, type CvmfsError } from '../errors.js';
import type { Entry } from './entry.js';

/** Looks a path up as the fs view does (throws ENOENT, ENOTDIR, ELOOP ... as a mount would). */
export type Lookup = (path: string, follow: boolean, syscall: string) => Promise<Entry>;

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY, O_NOFOLLOW } = constants;
const O_ACCMODE = 3;

/** node:fs's string flags as numbers (its stringToFlags); ERR_INVALID_ARG_VALUE for others. */
export function openFlags(flags: string | number): number {
  if (typeof flags === 'number') return flags;
  const table: Record<string, number> = {
    r: O_RDONLY, rs: O_RDONLY, sr: O_RDONLY, 'r+': O_RDWR, 'rs+': O_RDWR, 'sr+': O_RDWR,
    w: O_TRUNC | O_CREAT | O_WRONLY, wx: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL, xw: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
    'w+': O_TRUNC | O_CREAT | O_RDWR, 'wx+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL, 'xw+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
    a: O_APPEND | O_CREAT | O_WRONLY, ax: O_APPEND | O_CREAT | O_WRONLY | O_EXCL, xa: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
    as: O_APPEND | O_CREAT | O_WRONLY, sa: O_APPEND | O_CREAT | O_WRONLY,
    'a+': O_APPEND | O_CREAT | O_RDWR, 'ax+': O_APPEND | O_CREAT | O_RDWR | O_EXCL, 'xa+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
    'as+': O_APPEND | O_CREAT | O_RDWR, 'sa+': O_APPEND | O_CREAT | O_RDWR,
  };
  const n = table[flags];
  if (n === undefined) {
    const e = new TypeError(`The argument 'flags' is invalid. Received ${JSON.stringify(flags)}`);
    Object.defineProperty(e, 'code', { value: 'ERR_INVALID_ARG_VALUE', enumerable: true });
    throw e;
  }
  return n;
}

/** Whether open flags ask for more than reading. */
export function changesFile(flags: number): boolean {
  return (flags & O_ACCMODE) !== O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_APPEND)) !== 0;
}

/** The lookup's error, or undefined when the path is there. */
async function lookupError(lookup: Lookup, path: string, follow: boolean, syscall: string): Promise<{ error?: CvmfsError; entry?: Entry }> {
  try {
    return { entry: await lookup(path, follow, syscall) };
  } catch (e) {
    // What a lookup answers; anything else (EIO: a catalog that cannot be fetched) is thrown as it is.
    if (LOOKUP_ERRORS.has((e as CvmfsError).code)) return { error: e as CvmfsError };
    throw e;
  }
}

const LOOKUP_ERRORS: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EACCES']);

/** The directory that holds (or would hold) the last name of `path`. */
function parentOf(path: string): string {
  const p = path.replace(/\/+$/, '');
  const i = p.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : p.slice(0, i);
}

/** The directory's error for a name made or removed there, or undefined. */
async function parentError(lookup: Lookup, path: string, syscall: string): Promise<CvmfsError | undefined> {
  const { error, entry } = await lookupError(lookup, parentOf(path), true, syscall);
  if (error) return fsError(error.code, syscall, path);
  return entry!.type === 'dir' ? undefined : fsError('ENOTDIR', syscall, path);
}

/** An open that asks for more than reading; undefined when it opens for reading (O_CREAT of a file that is there). */
export async function openError(lookup: Lookup, path: string, flags: number): Promise<CvmfsError | undefined> {
  const creat = (flags & O_CREAT) !== 0;
  const excl = creat && (flags & O_EXCL) !== 0;
  const write = (flags & O_ACCMODE) !== O_RDONLY || (flags & (O_TRUNC | O_APPEND)) !== 0;
  // The kernel refuses to create a name given with a trailing slash once it has found its directory.
  if (creat && path.endsWith('/')) return (await parentError(lookup, path, 'open')) ?? fsError('EISDIR', 'open', path);
  const { error, entry } = await lookupError(lookup, path, !(flags & O_NOFOLLOW) && !excl, 'open');
  if (error?.code === 'ENOENT' && creat) return (await parentError(lookup, path, 'open')) ?? fsError('EROFS', 'open', path);
  if (error) return error;
  const e = entry!;
  if (excl) return fsError('EEXIST', 'open', path);
  if (creat && e.type === 'dir') return fsError('EISDIR', 'open', path);
  if (flags & O_DIRECTORY && e.type !== 'dir') return fsError('ENOTDIR', 'open', path);
  if (e.type === 'symlink') return fsError('ELOOP', 'open', path);
  if (e.type === 'dir') return write ? fsError('EISDIR', 'open', path) : undefined;
  return write ? fsError('EROFS', 'open', path) : undefined;
}

/** mkdir, symlink's and link's new name: the directory's error, EEXIST where the name is, else EROFS. */
export async function makeError(lookup: Lookup, path: string, syscall: string): Promise<CvmfsError> {
  const p = await parentError(lookup, path, syscall);
  if (p) return p;
  const { error } = await lookupError(lookup, path, false, syscall);
  return fsError(error ? 'EROFS' : 'EEXIST', syscall, path);
}

/** unlink, rmdir, rename: write access is asked for right after the directory's lookup. */
export async function removeError(lookup: Lookup, path: string, syscall: string): Promise<CvmfsError> {
  return (await parentError(lookup, path, syscall)) ?? fsError('EROFS', syscall, path);
}

/** chmod, chown, utimes, truncate, the xattr calls: the name must be there. */
export async function changeError(lookup: Lookup, path: string, syscall: string, follow: boolean, truncate = false): Promise<CvmfsError> {
  const { error, entry } = await lookupError(lookup, path, follow, syscall);
  if (error) return error;
  if (truncate && entry!.type === 'dir') return fsError('EISDIR', syscall, path);
  if (truncate && entry!.type !== 'file') return fsError('EINVAL', syscall, path);
  return fsError('EROFS', syscall, path);
}
