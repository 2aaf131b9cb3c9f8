/**
 * Path selection for preload and export: spec files in the style of the genuine shrinkwrap specs, and a walk
 * of a repository that yields the selected entries.
 *
 * A spec has one pattern per line. `/a/b` selects that path and everything below it; `*` matches within one
 * component, `**` any number of components; a line starting with `^` selects the path only, not what is below;
 * a line starting with `!` excludes (exclusions win, and prune whole subtrees). Empty lines and `#` comments
 * are ignored. No spec selects everything.
 * @module
 */
import type { Entry } from './fs/entry.js';
import { Flag } from './format/flags.js';
import type { Repository } from './repository.js';

/** A parsed spec. */
export interface Spec {
  /** Whether a repository path is selected. */
  selects(path: string): boolean;
  /** Whether anything at or below a directory may be selected (to prune the walk). */
  mayContain(dir: string): boolean;
}

interface Rule {
  re: RegExp;
  /** Matches any path that is a prefix of a possible match (for pruning). */
  prefix: RegExp;
  exclude: boolean;
  exact: boolean;
}

function globToRegExp(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return out;
}

/** Parses a spec's text. */
export function parseSpec(text: string): Spec {
  const rules: Rule[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const exclude = line.startsWith('!');
    if (exclude) line = line.slice(1);
    const exact = line.startsWith('^');
    if (exact) line = line.slice(1);
    if (!line.startsWith('/')) line = '/' + line;
    line = line.replace(/\/+$/, '') || '/';
    const body = line === '/' ? '' : globToRegExp(line);
    // `s`: a name may hold a newline, which `.` must match too.
    const re = new RegExp(exact ? `^${body || '/'}$` : `^${body}(?:/.*)?$`, 's');
    // A directory may contain matches when it is a prefix of the pattern (component-wise).
    const comps = line.split('/').filter(Boolean).map(globToRegExp);
    let prefix = '^/$';
    for (let i = 1; i <= comps.length; i++) prefix += `|^/${comps.slice(0, i).join('/')}$`;
    rules.push({ re, prefix: new RegExp(prefix, 's'), exclude, exact });
  }
  const includes = rules.filter((r) => !r.exclude);
  const excludes = rules.filter((r) => r.exclude);
  return {
    selects(path) {
      if (excludes.some((r) => r.re.test(path))) return false;
      return includes.length === 0 || includes.some((r) => r.re.test(path));
    },
    mayContain(dir) {
      if (excludes.some((r) => !r.exact && r.re.test(dir))) return false;
      return includes.length === 0 || includes.some((r) => r.re.test(dir) || r.prefix.test(dir) || /\*\*/.test(r.re.source));
    },
  };
}

/** Every selected entry of a repository, parents before children, hidden entries left out. */
export async function* selectEntries(repo: Repository, spec: Spec, from = '/'): AsyncGenerator<Entry> {
  const stack: string[] = [from];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    const self = await repo.fs.entry(dir, false);
    if (spec.selects(dir)) yield self;
    if (self.type !== 'dir') continue;
    const children = await repo.fs.entries(dir);
    for (let i = children.length - 1; i >= 0; i--) {
      const e = children[i]!;
      if (e.flags & Flag.Hidden) continue; // /.cvmfs: not listed, not exported
      const p = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
      if (e.type === 'dir') {
        if (spec.mayContain(p)) stack.push(p);
      } else if (spec.selects(p)) {
        yield e;
      }
    }
  }
}
