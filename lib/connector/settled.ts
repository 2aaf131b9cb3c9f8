/**
 * Answers the shadow tree settles by itself, without the catalogs: a name complete in the tree, or one known to be
 * absent (lib/connector/shadow.ts writes the markers; the tracer and the preload library read the same ones).
 * @module
 */
import { existsSync, lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { nativePath } from '../format/byte-names.js';

/** The hidden top-level directory of a repository (snapshots), which lives beside the tree. */
export const HIDDEN_TOP = '.cvmfs';

/** Where a shadow area keeps a repository's revision and its markers. */
export interface ShadowLayout {
  /** The shadow area (`rev/`, `root/`, sessions). */
  readonly base: string;
  /** The revision directory of a mounted repository. */
  revisionOf(fqrn: string): string;
  /** The marker file of `kind` for a repository path. */
  marker(fqrn: string, kind: 'l' | 'n' | 'a' | 'f' | 'x' | 't', key: string): string;
}

export function realpathOrNull(p: string): string | null {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
}

export function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(nativePath(p));
  } catch {
    return null;
  }
}

/**
 * Whether the shadow tree alone settles a lookup or open of `path` (under a mounted `/cvmfs/<fqrn>`): an entry
 * already complete (a listed directory, a written file, a link out of /cvmfs), or a name that is not there: its deepest
 * existing directory, as the kernel resolves it within this revision, was listed completely (its marker) and
 * does not hold the next name. Programs probe many names that are not there (Python at every start); answering
 * those from the tree spares a warm job the catalogs, and so SQLite, altogether. False whenever unsure (`..`,
 * the hidden `/.cvmfs`, names that are not UTF-8, links into other repositories): the catalog decides then.
 */
export function settledByListing(t: ShadowLayout, fqrn: string, path: string, op: string): boolean {
  const rev = t.revisionOf(fqrn);
  const rel = path.slice(`/cvmfs/${fqrn}`.length);
  if (!rel.startsWith('/') || /[\uD800-\uDFFF]/.test(path)) return false;
  // The shadow tree has the repository's shape, so the kernel resolves `..` and links in it as a mount would;
  // only never above the repository's root, and not into the hidden /.cvmfs (it lives beside the tree).
  let depth = 0;
  for (const c of rel.split('/')) {
    if (c === '..') {
      if (--depth < 0) return false;
    } else if (c !== '' && c !== '.') {
      if (depth === 0 && c === HIDDEN_TOP) return false;
      depth++;
    }
  }
  const inside = (p: string) => p === rev || p.startsWith(rev + '/');
  const listed = (dir: string | null) => dir !== null && inside(dir) && existsSync(t.marker(fqrn, 'l', dir.slice(rev.length) || '/'));
  // An entry is final once its directory's listing is complete, or once it was made on its own (its `n`
  // marker): another job may be creating it now (a placeholder is empty until it gets its size).
  const final = (p: string) => {
    const dir = realpathOrNull(posix.dirname(p));
    if (listed(dir)) return true;
    if (dir === null || !inside(dir)) return false;
    const key = posix.join('/', dir.slice(rev.length), posix.basename(p));
    return existsSync(t.marker(fqrn, 'n', key)) || existsSync(t.marker(fqrn, 'f', key));
  };
  const full = rev + rel;
  if (lstatOrNull(full)) {
    if (!final(full)) return false;
    const real = realpathOrNull(full);
    if (real === null) return false;
    // Out of /cvmfs altogether (`sitecustomize.py -> /etc/...`): nothing for us to prepare; into another
    // repository or revision: the walk.
    if (!inside(real)) return !(real === t.base || real.startsWith(t.base + '/'));
    if (real !== rev && !final(real)) return false;
    const st = statSync(real);
    const key = real.slice(rev.length) || '/';
    if (st.isDirectory()) return existsSync(t.marker(fqrn, 'l', key));
    // Content is there only when its marker says so (an empty file has none: the walk then decides).
    if (op === 'o' && st.isFile()) return existsSync(t.marker(fqrn, 'f', key));
    return true;
  }
  // Not there: the deepest directory on the way that is (the kernel resolving `..` on the way), listed, without
  // the next name.
  let dir = posix.dirname(full);
  let child = posix.basename(full);
  while (inside(posix.normalize(dir))) {
    const real = realpathOrNull(dir);
    if (real === null) {
      child = posix.basename(dir);
      dir = posix.dirname(dir);
      if (child === '..' || child === '.') return false;
      continue;
    }
    if (!inside(real) || !statSync(real).isDirectory()) return false;
    if (existsSync(t.marker(fqrn, 'a', posix.join('/', real.slice(rev.length), child)))) return true;
    return existsSync(t.marker(fqrn, 'l', real.slice(rev.length) || '/')) && !lstatOrNull(posix.join(real, child));
  }
  return false;
}
