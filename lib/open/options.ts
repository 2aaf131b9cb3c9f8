/**
 * The options of opening a repository, apart from the code that opens it, so that the steps of the open
 * (settings.ts, storage.ts) and repository.ts all read them from here.
 * @module
 */
import type { ObjectStore } from '../store/object-store.js';
import type { MagicVisibility } from '../fs/magic-xattrs.js';

/** Options of `openRepository` (lib/repository.ts). Unset ones come from the genuine client's environment variables. */
export interface OpenOptions {
  /** Stratum-1 URLs, `@fqrn@`/`@org@` substituted (default: `CVMFS_SERVER_URL`, `;`-separated). */
  serverUrls?: readonly string[];
  /** Master public key files or PEM texts (default: `CVMFS_PUBLIC_KEY`, `:`-separated files). */
  publicKeys?: readonly string[];
  /** Cache base directory (default: `CVMFS_CACHE_BASE`, else `$XDG_CACHE_HOME/ucvmfs` or `~/.cache/ucvmfs`). */
  cacheDir?: string;
  /**
   * Like CVMFS_SHARED_CACHE (default `yes`): objects of all repositories in `<cacheDir>/shared/`; with false,
   * in `<cacheDir>/<fqrn>/`, which is also how the genuine client lays out a cache it does not share, so such a
   * cache can be read as it is.
   */
  sharedCache?: boolean;
  /**
   * Like CVMFS_ALIEN_CACHE: a directory (typically on a shared file system) that holds the objects directly
   * (`xx/…`, `txn/`), read and filled by every node, with no quota or bookkeeping. Overrides the layout above;
   * `cacheDir` then only holds per-node state (the last trusted revision, the connector's shadow tree).
   */
  alienCache?: string;
  /**
   * Treat the cache directory (or the alien cache) as writable by other users: keep in it only the objects as the
   * server serves them, verify each by its content hash whenever it is read, and keep the verified, decompressed
   * copies and all state in this user's own cache (`~/.cache/ucvmfs`, else `<tmp>/ucvmfs-<uid>`). Default:
   * whether users other than this one (and root) can write the directory (world-writable, another owner, or
   * group-writable by a group that is not this user's private group).
   */
  verifySharedCache?: boolean;
  /**
   * Like CVMFS_QUOTA_LIMIT: the most the cache's objects may take, in MB (default 4000, as the genuine
   * client; -1 or 0 for no limit; never for an alien cache). Least recently used objects are removed down to
   * three quarters of it.
   */
  quotaLimitMb?: number;
  /** Variables for variant symlinks `$(VAR)` (default: process.env). */
  variables?: Readonly<Record<string, string | undefined>>;
  /** Open catalogs kept in memory at most (default 64). `catalogMemoryBytes` applies as well. */
  maxOpenCatalogs?: number;
  /**
   * Memory the open catalogs may take, in bytes (default: `UCVMFS_CATALOG_MEMORY` in MiB, else 64 MiB). A catalog
   * counts its database file's size (read in place, the file is all it holds); the least recently used catalogs
   * are closed to stay under it. A single catalog larger than the budget is still
   * opened (alone).
   */
  catalogMemoryBytes?: number;
  /** Resolved entries kept in memory at most (default 200 000). `entryCacheBytes` applies as well. */
  entryCacheSize?: number;
  /**
   * Memory the resolved-entry cache may take, estimated, in bytes (default: `CVMFS_MEMCACHE_SIZE` in MiB,
   * as the genuine client's metadata caches, else 16 MiB). See lib/fs/entry-size.ts for the estimate.
   */
  entryCacheBytes?: number;
  /** Directory listings kept in memory at most (default 20 000). `listingCacheBytes` applies as well. */
  listingCacheSize?: number;
  /** Memory the directory-listing cache may take, estimated, in bytes (default: as `entryCacheBytes`). */
  listingCacheBytes?: number;
  /**
   * Timeout through a proxy, ms: to connect, for the headers, and the time a transfer may stay under
   * CVMFS_LOW_SPEED_LIMIT bytes/s (default: `CVMFS_TIMEOUT` seconds, else 5 s). Also the direct timeout unless
   * that is given.
   */
  timeoutMs?: number;
  /** The same without a proxy (default: `timeoutMs`, else `CVMFS_TIMEOUT_DIRECT` seconds, else 10 s). */
  timeoutDirectMs?: number;
  /** First backoff before a same-URL retry, ms (default: `CVMFS_BACKOFF_INIT` seconds, else 2 s). */
  backoffInitMs?: number;
  /** Order the servers through the Stratum-1s' geo API (default: `CVMFS_USE_GEOAPI`). */
  useGeoApi?: boolean;
  /** Same-URL retries after transfer errors, per request (default: `CVMFS_MAX_RETRIES`, else 1). */
  maxRetries?: number;
  /** Magic xattr visibility in listxattr (default: `CVMFS_MAGIC_XATTRS_VISIBILITY`, else rootonly). */
  magicXattrs?: MagicVisibility;
  /** Mount a named tag from the history database instead of HEAD (default: `CVMFS_REPOSITORY_TAG`). */
  tag?: string;
  /**
   * Mount the revision current at this date: the newest tag published at or before it (default:
   * `CVMFS_REPOSITORY_DATE`, e.g. `2026-11-24T23:22:30Z`). A tag, if also given, wins.
   */
  date?: string | Date;
  /** Reuse a cached, re-verified manifest younger than its TTL without asking the network (default true). */
  reuseCachedManifest?: boolean;
  /**
   * Called with a warning, e.g. when no server answers and the repository opens offline from its cached (and
   * re-verified) manifest. Default: `process.emitWarning`.
   */
  onWarning?: (message: string) => void;
  /**
   * Do not load the root catalog at open (the connector: a job whose shadow tree is complete never needs a
   * catalog). A repository whose catalogs are broken then fails on first use instead.
   */
  lazyRoot?: boolean;
  /**
   * Called with the object store as soon as it exists, before the trust chain is fetched and checked: for
   * fetching content-addressed objects ahead (an access profile). Each is kept only if it matches its hash; none
   * is served before the repository is open.
   */
  onObjectStore?: (store: ObjectStore) => void;
  /**
   * Look for a newer revision by itself once the manifest's TTL has run out (default true). The connector turns
   * it off: a job sees one revision from start to end.
   */
  autoReload?: boolean;
  /** Where the genuine client's configuration files are (default `UCVMFS_CONFIG_DIR`, else `/etc/cvmfs`). */
  configRoot?: string;
  /** Proxy chain as CVMFS_HTTP_PROXY writes it (default: that parameter; CVMFS_FALLBACK_PROXY is appended). */
  proxies?: string;
  /**
   * Servers of external data (files a repository publishes by path only, `CVMFS_EXTERNAL_DATA` on the server):
   * each file is fetched from `<url><path>`, a chunk as a byte range, and verified by its hash (default:
   * `CVMFS_EXTERNAL_URL`, `;`-separated; none: external files fail with EIO).
   */
  externalUrls?: readonly string[];
  /**
   * Read CVMFS_CONFIG_REPOSITORY when the configuration names one (default true). The configuration repository
   * is opened with its own configuration; when it fails, that is an error if CVMFS_CONFIG_REPO_REQUIRED is on,
   * else a warning.
   */
  configRepository?: boolean;
  /**
   * Chunks of a chunked file fetched ahead of a sequential read, with bounded parallelism (default 2; 0 turns
   * it off).
   */
  readAhead?: number;
  /** Clock, for tests of expiry. */
  now?: () => Date;
}
