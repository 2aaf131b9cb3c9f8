/**
 * Command-line parsing: global options may stand before or after the command name; repeatable options collect.
 * @module
 */

/** Parsed command line. */
export interface Args {
  command: string | undefined;
  positional: string[];
  /** Option name (without dashes) → values, in order. Flags get `'true'`. */
  options: Map<string, string[]>;
}

/** Options that take a value; everything else that starts with `-` is a flag. */
const WITH_VALUE = new Set(['server', 'key', 'cache', 'fqrn', 'out', 'tag', 'hash', 'compression', 'keys', 'port', 'var', 'repo', 'ttl', 'description', 'spec', 'to', 'chunk-sizes', 'profile', 'changed']);
const SHORT: Record<string, string> = { l: 'long', R: 'recursive', a: 'all', h: 'help', s: 'server', k: 'key', c: 'cache' };

/** Parses argv (without node and script). `--` ends option parsing. */
export function parseArgs(argv: readonly string[]): Args {
  const options = new Map<string, string[]>();
  const positional: string[] = [];
  const add = (k: string, v: string) => options.set(k, [...(options.get(k) ?? []), v]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    // After `exec`, the first word that is not an option starts the command line.
    if (positional[0] === 'exec' && positional.length === 1 && !a.startsWith('-')) {
      positional.push(...argv.slice(i));
      break;
    }
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (eq >= 0) add(name, a.slice(eq + 1));
      else if (WITH_VALUE.has(name)) {
        const v = argv[++i];
        if (v === undefined) throw new Error(`option --${name} needs a value`);
        add(name, v);
      } else add(name, 'true');
    } else if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      for (const ch of a.slice(1)) {
        const name = SHORT[ch] ?? ch;
        if (WITH_VALUE.has(name)) {
          const v = argv[++i];
          if (v === undefined) throw new Error(`option -${ch} needs a value`);
          add(name, v);
        } else add(name, 'true');
      }
    } else positional.push(a);
  }
  return { command: positional.shift(), positional, options };
}

/** Splits `fqrn[:path]` (path defaults to `/`). */
export function splitTarget(t: string): { fqrn: string; path: string } {
  const i = t.indexOf(':');
  if (i < 0) return { fqrn: t, path: '/' };
  const path = t.slice(i + 1) || '/';
  return { fqrn: t.slice(0, i), path: path.startsWith('/') ? path : '/' + path };
}
