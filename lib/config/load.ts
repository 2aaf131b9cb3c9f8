/**
 * The genuine client's configuration, read in its order so that a node with cvmfs-config packages just works:
 * built-in defaults (the genuine `default.conf` and, for the public domains, what cvmfs-config-default
 * installs), then `default.conf`, `default.d/*.conf`, `default.local`, `domain.d/<domain>.conf` and `.local`,
 * `config.d/<fqrn>.conf` and `.local`, under a root (default `/etc/cvmfs`, or `UCVMFS_CONFIG_DIR`), with the
 * config repository's `default.conf`, `domain.d/<domain>.conf` and `config.d/<fqrn>.conf` in their genuine
 * places when CVMFS_CONFIG_REPOSITORY is set; later files override earlier ones, and environment variables
 * override files. Unknown parameters are kept.
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAssignments } from './shell.js';
import { evalWithShell, needsShell } from './sh-eval.js';
import { BUILTIN_DEFAULTS, BUILTIN_DOMAINS } from './builtin.js';

/** Effective parameters of one repository, with where each came from. */
export interface Config {
  /** The value of a parameter, if set anywhere. */
  get(name: string): string | undefined;
  /** Every parameter set: value and source (a file path and line, `environment` or `built-in`). */
  readonly params: ReadonlyMap<string, { value: string; source: string }>;
  /** The files read, in order. */
  readonly files: readonly string[];
}

/** Files of a configuration repository, already read (it is itself a repository, opened by the caller). */
export interface ConfigRepositoryFiles {
  /** Its name (CVMFS_CONFIG_REPOSITORY). */
  fqrn: string;
  /** Where its files are shown in sources, e.g. `/cvmfs/cvmfs-config.cern.ch/etc/cvmfs`. */
  dir: string;
  /** Text of `default.conf`, `domain.d/<domain>.conf`, `config.d/<fqrn>.conf` below its `etc/cvmfs`, if present. */
  texts: ReadonlyMap<string, string>;
}

/** The files a configuration repository may hold for `fqrn`, relative to its `/etc/cvmfs`. */
export function configRepositoryPaths(fqrn: string): string[] {
  const domain = fqrn.split('.').slice(1).join('.');
  return ['default.conf', `domain.d/${domain}.conf`, `config.d/${fqrn}.conf`];
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

/**
 * Reads the configuration of `fqrn` (synchronously: a handful of small files; a file that is more than
 * assignments costs one `/bin/sh`). `configRepository` holds the config repository's files once the caller
 * has opened it (see {@link Config} CVMFS_CONFIG_REPOSITORY).
 */
export function loadConfig(fqrn: string, options: { root?: string; env?: NodeJS.ProcessEnv; configRepository?: ConfigRepositoryFiles; builtins?: boolean } = {}): Config {
  const root = options.root ?? defaultConfigRoot();
  const env = options.env ?? process.env;
  const domain = fqrn.split('.').slice(1).join('.');
  const repo = options.configRepository;
  const fromRepo = (rel: string) => (repo && repo.fqrn !== fqrn && repo.texts.has(rel) ? [{ path: `${repo.dir}/${rel}`, text: repo.texts.get(rel) }] : []);
  const local = (path: string) => [{ path, text: undefined as string | undefined }];
  let defaultD: string[] = [];
  try {
    defaultD = readdirSync(join(root, 'default.d')).filter((f) => f.endsWith('.conf')).sort().map((f) => join(root, 'default.d', f));
  } catch {
    // no default.d
  }
  const [repoDefault, repoDomain, repoConfig] = configRepositoryPaths(fqrn);
  const sources = [
    ...local(join(root, 'default.conf')),
    ...defaultD.flatMap(local),
    { path: '', text: undefined, protect: true },
    ...fromRepo(repoDefault!),
    ...local(join(root, 'default.local')),
    ...(domain ? [...fromRepo(repoDomain!), ...local(join(root, 'domain.d', `${domain}.conf`)), ...local(join(root, 'domain.d', `${domain}.local`))] : []),
    ...fromRepo(repoConfig!),
    ...local(join(root, 'config.d', `${fqrn}.conf`)),
    ...local(join(root, 'config.d', `${fqrn}.local`)),
  ];
  // Expansion sees the environment and what earlier files set, as a shell sourcing them in turn would.
  const vars = new Map<string, string>(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  vars.set('CVMFS_FQRN', fqrn);
  const params = new Map<string, { value: string; source: string }>();
  if (options.builtins !== false) {
    for (const [k, v] of Object.entries({ ...BUILTIN_DEFAULTS, ...BUILTIN_DOMAINS[domain] })) {
      params.set(k, { value: v, source: 'built-in' });
      if (!vars.has(k)) vars.set(k, v);
    }
  }
  const files: string[] = [];
  const setByFiles = new Set<string>();
  // As the genuine client does, CVMFS_CONFIG_REPOSITORY is fixed once default.d is read.
  let protectedRepo: string | undefined;
  for (const s of sources) {
    if ('protect' in s) {
      protectedRepo = params.get('CVMFS_CONFIG_REPOSITORY')?.value ?? '';
      continue;
    }
    const text = s.text ?? readIf(s.path);
    if (text === undefined) continue;
    files.push(s.path);
    const assigned = needsShell(text) ? evalWithShell(text, s.path, vars, setByFiles) : parseAssignments(text, s.path, vars);
    for (const a of assigned) {
      if (a.name === 'CVMFS_CONFIG_REPOSITORY' && protectedRepo !== undefined && a.value !== protectedRepo) {
        vars.set(a.name, protectedRepo);
        continue;
      }
      params.set(a.name, { value: a.value, source: `${s.path}:${a.line}` });
      setByFiles.add(a.name);
    }
  }
  for (const [k, v] of Object.entries(env)) if (k.startsWith('CVMFS_') && v !== undefined) params.set(k, { value: v, source: 'environment' });
  return { get: (n) => params.get(n)?.value, params, files };
}
