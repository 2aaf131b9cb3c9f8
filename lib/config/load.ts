/**
 * The genuine client's configuration, read in its order so that a node with cvmfs-config packages just works:
 * `default.conf`, `default.d/*.conf`, `default.local`, `domain.d/<domain>.conf` and `.local`,
 * `config.d/<fqrn>.conf` and `.local`, under a root (default `/etc/cvmfs`, or `UCVMFS_CONFIG_DIR`); later files
 * override earlier ones, and environment variables override files. Unknown parameters are kept.
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAssignments } from './shell.js';

/** Effective parameters of one repository, with where each came from. */
export interface Config {
  /** The value of a parameter, if set anywhere. */
  get(name: string): string | undefined;
  /** Every parameter set: value and source (a file path, or `environment`). */
  readonly params: ReadonlyMap<string, { value: string; source: string }>;
  /** The files read, in order. */
  readonly files: readonly string[];
}

/** The configuration directory: `UCVMFS_CONFIG_DIR`, else `/etc/cvmfs`. */
export function defaultConfigRoot(): string {
  return process.env.UCVMFS_CONFIG_DIR ?? '/etc/cvmfs';
}

function readIf(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Reads the configuration of `fqrn` (synchronously: a handful of small files). */
export function loadConfig(fqrn: string, options: { root?: string; env?: NodeJS.ProcessEnv } = {}): Config {
  const root = options.root ?? defaultConfigRoot();
  const env = options.env ?? process.env;
  const domain = fqrn.split('.').slice(1).join('.');
  const candidates = [
    join(root, 'default.conf'),
    ...(() => {
      try {
        return readdirSync(join(root, 'default.d')).filter((f) => f.endsWith('.conf')).sort().map((f) => join(root, 'default.d', f));
      } catch {
        return [];
      }
    })(),
    join(root, 'default.local'),
    ...(domain ? [join(root, 'domain.d', `${domain}.conf`), join(root, 'domain.d', `${domain}.local`)] : []),
    join(root, 'config.d', `${fqrn}.conf`),
    join(root, 'config.d', `${fqrn}.local`),
  ];
  // Expansion sees the environment and what earlier files set, as a shell sourcing them in turn would.
  const vars = new Map<string, string>(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  vars.set('CVMFS_FQRN', fqrn);
  const params = new Map<string, { value: string; source: string }>();
  const files: string[] = [];
  for (const f of candidates) {
    const text = readIf(f);
    if (text === undefined) continue;
    files.push(f);
    for (const a of parseAssignments(text, f, vars)) params.set(a.name, { value: a.value, source: `${f}:${a.line}` });
  }
  for (const [k, v] of Object.entries(env)) if (k.startsWith('CVMFS_') && v !== undefined) params.set(k, { value: v, source: 'environment' });
  return { get: (n) => params.get(n)?.value, params, files };
}
