/**
 * CVMFS_CONFIG_REPOSITORY: a repository (e.g. cvmfs-config.cern.ch) whose `/etc/cvmfs` holds configuration and
 * keys for others. The genuine client reads it through its mount; here it is opened as a repository like any
 * other (its own configuration must reach it), its files for the repository at hand are read into the
 * configuration in their genuine places, and paths below `<CVMFS_MOUNT_DIR>/<config repo>/` (a keys
 * directory, a public key file) are read from it.
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CvmfsError, ioError } from '../errors.js';
import { configRepositoryPaths, loadConfig, type Config } from './load.js';
import { BUILTIN_KEYS } from './builtin.js';

/** What is needed of an open configuration repository. */
export interface ConfigRepositoryHandle {
  readFile(path: string): Promise<Buffer>;
  readdir(path: string): Promise<string[]>;
  close(): void;
}

/** A resolved configuration, and a reader for the files it names. */
export interface ResolvedConfig {
  config: Config;
  /** The configuration repository's name, when one was read. */
  configRepository?: string;
  /** The `*.pub` keys of a keys directory (CVMFS_KEYS_DIR), as PEM texts with where each came from. */
  keysIn(dir: string): Promise<{ source: string; pem: string }[]>;
  /** A file named by the configuration (a public key), from disk or from the configuration repository. */
  readFile(path: string): Promise<string>;
  /** Closes the configuration repository. */
  close(): void;
}

/**
 * Reads the configuration of `fqrn`, then, when CVMFS_CONFIG_REPOSITORY names another repository, opens it
 * with `open` and reads the configuration again with its files. When it cannot be opened, that is an error if
 * CVMFS_CONFIG_REPO_REQUIRED is on, else a warning and the local files alone count (as with the genuine
 * client when the config repository's directory does not exist).
 */
export async function resolveConfig(
  fqrn: string,
  opts: { root?: string; open?: (name: string) => Promise<ConfigRepositoryHandle>; onWarning?: (m: string) => void },
): Promise<ResolvedConfig> {
  let config = loadConfig(fqrn, { root: opts.root });
  const name = config.get('CVMFS_CONFIG_REPOSITORY');
  const mountDir = (config.get('CVMFS_MOUNT_DIR') || '/cvmfs').replace(/\/+$/, '');
  let handle: ConfigRepositoryHandle | undefined;
  if (name && name !== fqrn && opts.open) {
    try {
      handle = await opts.open(name);
      const texts = new Map<string, string>();
      for (const rel of configRepositoryPaths(fqrn)) {
        const text = await handle.readFile(`/etc/cvmfs/${rel}`).catch((e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
          throw e;
        });
        if (text) texts.set(rel, text.toString('utf8'));
      }
      config = loadConfig(fqrn, { root: opts.root, configRepository: { fqrn: name, dir: `${mountDir}/${name}/etc/cvmfs`, texts } });
    } catch (e) {
      handle?.close();
      handle = undefined;
      if (/^(yes|on|1|true)$/i.test(config.get('CVMFS_CONFIG_REPO_REQUIRED') ?? '')) {
        throw ioError('config-repository', `configuration repository ${name} (required for ${fqrn}) cannot be read: ${(e as Error).message}`, e);
      }
      (opts.onWarning ?? ((m: string) => process.emitWarning(m)))(`configuration repository ${name} cannot be read, using local configuration only: ${(e as Error).message}`);
    }
  }
  // A path below the config repository's mount point is read from it, as a mounted client would.
  const inRepo = (path: string): string | undefined => {
    const prefix = `${mountDir}/${name}`;
    return handle && name && (path === prefix || path.startsWith(`${prefix}/`)) ? path.slice(prefix.length) || '/' : undefined;
  };
  return {
    config,
    ...(handle ? { configRepository: name } : {}),
    async keysIn(dir) {
      const rel = inRepo(dir);
      if (rel !== undefined) {
        // No such directory there: no keys from it. A failure to fetch or verify is not "no keys": it is thrown.
        const names = (await handle!.readdir(rel).catch((e: { code?: string }) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? [] : Promise.reject(e))))
          .filter((f) => f.endsWith('.pub')).sort();
        return Promise.all(names.map(async (f) => ({ source: `${dir}/${f}`, pem: (await handle!.readFile(`${rel}/${f}`)).toString('utf8') })));
      }
      let names: string[];
      try {
        names = readdirSync(dir).filter((f) => f.endsWith('.pub')).sort();
      } catch {
        // Not on this machine: the keys a cvmfs-config package would have put there, if it is one of theirs.
        return (BUILTIN_KEYS[dir.replace(/\/+$/, '')] ?? []).map((pem, i) => ({ source: `built-in ${dir} #${i + 1}`, pem }));
      }
      return names.map((f) => ({ source: join(dir, f), pem: readFileSync(join(dir, f), 'utf8') }));
    },
    async readFile(path) {
      const rel = inRepo(path);
      try {
        return rel !== undefined ? (await handle!.readFile(rel)).toString('utf8') : readFileSync(path, 'utf8');
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code === 'EIO') throw e;
        // Its own code where it is one of ours (EACCES, EISDIR, ENOTDIR, ELOOP ...): a key that cannot be read is not a missing one.
        const kept = code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG' ? code : 'ENOENT';
        throw new CvmfsError(kept, `cannot read public key file ${path}: ${(e as Error).message}`, { path, cause: e });
      }
    },
    close: () => handle?.close(),
  };
}
