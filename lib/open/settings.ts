/**
 * Opening a repository, step 1: every setting it needs, resolved once into a typed object from the options,
 * then the environment and the genuine client's configuration files, then built-in defaults; the public keys
 * read and parsed. Nothing here touches the network or the cache.
 * @module
 */
import { accessSync, constants } from 'node:fs';
import { CvmfsError } from '../errors.js';
import { rsaKeysFromPem, type RsaPublicKey } from '../crypto/rsa.js';
import { expandServerUrl, splitServerList } from '../net/fetcher.js';
import { defaultCacheBase, isOn } from '../cache/location.js';
import type { ResolvedConfig } from '../config/config-repository.js';
import type { MagicVisibility } from '../fs/magic-xattrs.js';
import type { OpenOptions } from './options.js';

/** What {@link resolveSettings} decides for one repository. */
export interface RepositorySettings {
  readonly fqrn: string;
  /** Stratum-1 URLs, `@fqrn@` expanded, in configured order. */
  readonly servers: string[];
  readonly keys: RsaPublicKey[];
  readonly net: {
    timeoutMs: number;
    timeoutDirectMs: number;
    maxRetries: number;
    lowSpeedLimit?: number;
    backoffInitMs?: number;
    backoffMaxMs?: number;
    /** CVMFS_HTTP_PROXY as written (`auto` groups are resolved with the cache at hand, see storage.ts). */
    proxies?: string;
    pacUrls?: string;
    fallbackProxies?: string;
    hostResetAfter?: number;
    proxyResetAfter?: number;
    useGeoApi: boolean;
    proxyTemplate?: string;
    followRedirects: boolean;
    tls: { certDir?: string; bundle?: string; useSystemCa: boolean };
  };
  /** External data: servers (`@fqrn@` expanded), proxies, timeouts and how many servers are used (see README). */
  readonly external: { servers: string[]; proxies: string; timeoutMs: number; timeoutDirectMs: number };
  readonly cache: { base: string; shared: boolean; alien?: string; verifyShared?: boolean; quotaMb: number };
  /** A named tag or a date picking the revision, else HEAD ('' and undefined). */
  readonly tag: string;
  readonly date?: string | Date;
  readonly magicXattrs: MagicVisibility;
  /** CVMFS_MAX_TTL in seconds (0: the manifest's TTL alone). */
  readonly maxTtlSeconds: number;
  /** Byte budgets of what is kept in memory (see README, Memory). */
  readonly memory: MemoryBudgets;
}

/** Byte budgets of the in-memory caches. */
export interface MemoryBudgets {
  /** Open catalogs (`catalogMemoryBytes`, `UCVMFS_CATALOG_MEMORY` MiB). */
  readonly catalogBytes: number;
  /** Resolved entries (`entryCacheBytes`, `CVMFS_MEMCACHE_SIZE` MiB). */
  readonly entryBytes: number;
  /** Directory listings (`listingCacheBytes`, `CVMFS_MEMCACHE_SIZE` MiB). */
  readonly listingBytes: number;
}

/** Defaults of {@link MemoryBudgets}, in MiB. */
export const DEFAULT_MEMORY_MIB = { catalog: 64, memcache: 16 } as const;

/**
 * The byte budgets: the options, else the parameters in MiB (UCVMFS_CATALOG_MEMORY from the environment or the
 * files, as X509_* below; CVMFS_MEMCACHE_SIZE, the genuine client's budget for its metadata caches, for the entry
 * and listing caches each), else the defaults. A value that is not a positive number is ignored.
 */
function memoryBudgets(options: OpenOptions, param: (name: string) => string | undefined): MemoryBudgets {
  const mib = (v: string | undefined, dflt: number) => (Number(v) > 0 ? Number(v) : dflt) * 2 ** 20;
  const memcache = mib(param('CVMFS_MEMCACHE_SIZE'), DEFAULT_MEMORY_MIB.memcache);
  return {
    catalogBytes: options.catalogMemoryBytes ?? mib(process.env.UCVMFS_CATALOG_MEMORY || param('UCVMFS_CATALOG_MEMORY'), DEFAULT_MEMORY_MIB.catalog),
    entryBytes: options.entryCacheBytes ?? memcache,
    listingBytes: options.listingCacheBytes ?? memcache,
  };
}

/**
 * The external data servers as the genuine client takes them: CVMFS_EXTERNAL_URL (at most
 * CVMFS_EXTERNAL_MAX_SERVERS of them), through CVMFS_EXTERNAL_HTTP_PROXY (default DIRECT), with
 * CVMFS_EXTERNAL_TIMEOUT and CVMFS_EXTERNAL_TIMEOUT_DIRECT, else the repository's own timeouts.
 */
function externalSettings(fqrn: string, options: OpenOptions, param: (name: string) => string | undefined, seconds: (name: string) => number | undefined): RepositorySettings['external'] {
  const max = seconds('CVMFS_EXTERNAL_MAX_SERVERS') ?? 0;
  const listed = options.externalUrls ?? param('CVMFS_EXTERNAL_URL')?.split(';').map((x) => x.trim()).filter(Boolean) ?? [];
  const servers = listed.flatMap((u) => splitServerList(u)).map((u) => expandServerUrl(u, fqrn).replace(/\/+$/, ''));
  const timeout = (seconds('CVMFS_EXTERNAL_TIMEOUT') ?? seconds('CVMFS_TIMEOUT') ?? 5) * 1000;
  return {
    servers: max > 0 ? servers.slice(0, max) : servers,
    proxies: param('CVMFS_EXTERNAL_HTTP_PROXY') ?? 'DIRECT',
    timeoutMs: timeout,
    timeoutDirectMs: (seconds('CVMFS_EXTERNAL_TIMEOUT_DIRECT') ?? seconds('CVMFS_TIMEOUT_DIRECT') ?? 10) * 1000,
  };
}

/** Whether this user can write `dir`. */
function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function parseKeys(texts: readonly { source: string; pem: string }[]): RsaPublicKey[] {
  return texts.flatMap(({ source, pem }) => {
    const found = rsaKeysFromPem(pem);
    if (found.length === 0) throw new CvmfsError('EINVAL', `no RSA public key in ${source}`);
    return found;
  });
}

/** The public keys: the options' files or PEM texts, else CVMFS_PUBLIC_KEY's files, else CVMFS_KEYS_DIR's. */
async function readKeys(fqrn: string, options: OpenOptions, resolved: ResolvedConfig): Promise<RsaPublicKey[]> {
  const cfg = resolved.config;
  const list = cfg.get('CVMFS_PUBLIC_KEY')?.split(':').map((x) => x.trim()).filter(Boolean);
  const keyTexts = options.publicKeys
    ? await Promise.all(options.publicKeys.map(async (s) => ({ source: s.includes('-----BEGIN') ? 'the given PEM text' : s, pem: s.includes('-----BEGIN') ? s : await resolved.readFile(s) })))
    : list
      ? await Promise.all(list.map(async (s) => ({ source: s, pem: await resolved.readFile(s) })))
      : await resolved.keysIn(cfg.get('CVMFS_KEYS_DIR') || '');
  if (keyTexts.length === 0) throw new CvmfsError('EINVAL', `no public key for ${fqrn} (publicKeys, CVMFS_PUBLIC_KEY or CVMFS_KEYS_DIR)`);
  return parseKeys(keyTexts);
}

/**
 * Resolves the settings of `fqrn` from `options` and the configuration `resolved` (which it closes: the
 * configuration repository is needed only for the keys).
 */
export async function resolveSettings(fqrn: string, options: OpenOptions, resolved: ResolvedConfig): Promise<RepositorySettings> {
  const cfg = resolved.config;
  let keys: RsaPublicKey[];
  try {
    keys = await readKeys(fqrn, options, resolved);
  } finally {
    resolved.close();
  }
  const param = (name: string): string | undefined => cfg.get(name) || undefined;
  const seconds = (name: string) => (param(name) !== undefined && Number.isFinite(Number(param(name))) ? Number(param(name)) : undefined);
  const millis = (name: string) => (seconds(name) === undefined ? undefined : seconds(name)! * 1000);
  const onOff = (name: string) => /^(yes|on|1|true)$/i.test(param(name) ?? '');
  const servers = (options.serverUrls ?? param('CVMFS_SERVER_URL')?.split(';').map((x) => x.trim()).filter(Boolean) ?? [])
    .flatMap((u) => splitServerList(u)).map((u) => expandServerUrl(u, fqrn));
  // A cache base from the files (the genuine default is /var/lib/cvmfs) is used only where this user can write.
  const fileCacheBase = cfg.params.get('CVMFS_CACHE_BASE');
  const base = options.cacheDir ?? (fileCacheBase && (fileCacheBase.source === 'environment' || writable(fileCacheBase.value)) ? fileCacheBase.value : defaultCacheBase());
  const vis = options.magicXattrs ?? (param('CVMFS_MAGIC_XATTRS_VISIBILITY')?.toLowerCase() as MagicVisibility | undefined) ?? 'rootonly';
  return {
    fqrn,
    servers,
    keys,
    net: {
      timeoutMs: options.timeoutMs ?? (seconds('CVMFS_TIMEOUT') ?? 5) * 1000,
      timeoutDirectMs: options.timeoutDirectMs ?? options.timeoutMs ?? (seconds('CVMFS_TIMEOUT_DIRECT') ?? 10) * 1000,
      maxRetries: options.maxRetries ?? seconds('CVMFS_MAX_RETRIES') ?? 1,
      lowSpeedLimit: seconds('CVMFS_LOW_SPEED_LIMIT'),
      backoffInitMs: options.backoffInitMs ?? millis('CVMFS_BACKOFF_INIT'),
      backoffMaxMs: millis('CVMFS_BACKOFF_MAX'),
      proxies: options.proxies ?? param('CVMFS_HTTP_PROXY'),
      pacUrls: param('CVMFS_PAC_URLS'),
      fallbackProxies: param('CVMFS_FALLBACK_PROXY'),
      hostResetAfter: seconds('CVMFS_HOST_RESET_AFTER'),
      proxyResetAfter: seconds('CVMFS_PROXY_RESET_AFTER'),
      useGeoApi: options.useGeoApi ?? onOff('CVMFS_USE_GEOAPI'),
      proxyTemplate: param('CVMFS_PROXY_TEMPLATE'),
      followRedirects: onOff('CVMFS_FOLLOW_REDIRECTS'),
      // X509_* are the grid's environment variables; the genuine client exports its parameters, so a
      // configuration file may set them too.
      tls: { certDir: process.env.X509_CERT_DIR || param('X509_CERT_DIR'), bundle: process.env.X509_CERT_BUNDLE || param('X509_CERT_BUNDLE'), useSystemCa: onOff('CVMFS_USE_SSL_SYSTEM_CA') },
    },
    external: externalSettings(fqrn, options, param, seconds),
    cache: {
      base,
      shared: options.sharedCache ?? isOn(param('CVMFS_SHARED_CACHE') ?? 'yes'),
      alien: options.alienCache ?? param('CVMFS_ALIEN_CACHE'),
      verifyShared: options.verifySharedCache,
      quotaMb: options.quotaLimitMb ?? Number(param('CVMFS_QUOTA_LIMIT') ?? 4000),
    },
    tag: options.tag ?? param('CVMFS_REPOSITORY_TAG') ?? '',
    date: options.date ?? param('CVMFS_REPOSITORY_DATE'),
    magicXattrs: ['never', 'rootonly', 'always'].includes(vis) ? vis : 'rootonly',
    maxTtlSeconds: Number(param('CVMFS_MAX_TTL') ?? 0) * 60,
    memory: memoryBudgets(options, param),
  };
}
