/**
 * Path resolution with POSIX semantics: components one by one, `..` taken physically after symlinks, symlinks
 * followed (relative to their directory, or absolute within `/cvmfs/<fqrn>`), at most 40 of them (ELOOP).
 * Paths may be given as `/a/b`, `a/b` or `/cvmfs/<fqrn>/a/b`.
 * @module
 */
import { fsError } from '../errors.js';
import { encodeName } from '../format/byte-names.js';
import type { Entry } from './entry.js';
import type { Namespace } from './namespace.js';

const MAX_SYMLINKS = 40;
/** Linux's limits on a path and on one name, in bytes (ENAMETOOLONG beyond). */
const PATH_MAX = 4096;
const NAME_MAX = 255;

/**
 * Whether a path is longer than Linux allows (PATH_MAX, or one name over NAME_MAX), counted in the bytes of its names:
 * an escaped byte (U+DC80 + b) is one byte. A character is at most 3 bytes, so short paths are never looked at.
 */
function tooLong(p: string): boolean {
  return encodeName(p).length >= PATH_MAX || p.split('/').some((c) => c.length * 3 > NAME_MAX && encodeName(c).length > NAME_MAX);
}

/** Turns a user path into repository components, stripping a leading `/cvmfs/<fqrn>`. */
export function splitUserPath(p: string, fqrn: string): string[] {
  let s = p;
  const mount = `/cvmfs/${fqrn}`;
  if (s === mount || s.startsWith(mount + '/')) s = s.slice(mount.length);
  return s.split('/').filter((c) => c !== '' && c !== '.');
}

/** Resolves paths to entries. */
export class Walker {
  constructor(private readonly ns: Namespace, private readonly fqrn: string) {}

  /** Repository path of a user path without resolving anything (for messages and the fast path). */
  display(p: string): string {
    return '/' + splitUserPath(p, this.fqrn).join('/');
  }

  /**
   * The entry a path names. With `follow`, a final symlink is followed too (stat); without, it is returned
   * (lstat, readlink).
   */
  async resolve(p: string, follow: boolean, syscall: string): Promise<Entry> {
    if (p.includes('\0')) throw fsError('EINVAL', syscall, p, 'path contains NUL');
    if (p === '') throw fsError('ENOENT', syscall, p);
    if (p.length * 3 > NAME_MAX && tooLong(p)) throw fsError('ENAMETOOLONG', syscall, p);
    // A trailing slash, `.` or `..` names a directory: the last component is followed, and must be one.
    const dirOnly = /(^|\/)(\.\.?)?$/.test(p) && p !== '/';
    const parts = splitUserPath(p, this.fqrn);
    let e: Entry | undefined;
    if (!parts.includes('..')) {
      const direct = await this.ns.lookup(parts.length === 0 ? '' : '/' + parts.join('/'));
      if (direct && !((follow || dirOnly) && direct.type === 'symlink')) e = direct;
    }
    e ??= await this.walk(p, parts, follow || dirOnly, syscall);
    if (dirOnly && e.type !== 'dir') throw fsError('ENOTDIR', syscall, p);
    return e;
  }

  private async walk(original: string, parts: string[], follow: boolean, syscall: string): Promise<Entry> {
    const stack: Entry[] = [];
    const todo = parts.slice().reverse();
    let links = 0;
    let current = (await this.ns.lookup(''))!;
    while (todo.length > 0) {
      const comp = todo.pop()!;
      // An empty or `.` name after a name (a link to `one/` or `one/.`) needs that name to be a directory.
      if (comp === '.' || comp === '') {
        if (current.type !== 'dir') throw fsError('ENOTDIR', syscall, original);
        continue;
      }
      if (comp === '..') {
        if (current.type !== 'dir') throw fsError('ENOTDIR', syscall, original);
        current = stack.pop() ?? current;
        continue;
      }
      if (current.type !== 'dir') throw fsError('ENOTDIR', syscall, original);
      const path = current.path === '/' ? `/${comp}` : `${current.path}/${comp}`;
      const next = await this.ns.lookup(path);
      if (!next) throw fsError('ENOENT', syscall, original);
      const last = todo.length === 0;
      if (next.type === 'symlink' && (!last || follow)) {
        if (++links > MAX_SYMLINKS) throw fsError('ELOOP', syscall, original);
        const target = next.target ?? '';
        if (target.startsWith('/')) {
          const mount = `/cvmfs/${this.fqrn}`;
          if (target !== mount && !target.startsWith(mount + '/')) {
            throw fsError('ENOENT', syscall, original, `symlink ${next.path} leads outside the repository, to ${target}`);
          }
          stack.length = 0;
          current = (await this.ns.lookup(''))!;
          todo.push(...target.slice(mount.length).split('/').reverse());
        } else {
          todo.push(...target.split('/').reverse());
        }
        continue;
      }
      stack.push(current);
      current = next;
    }
    return current;
  }
}
