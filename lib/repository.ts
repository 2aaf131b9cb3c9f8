/**
 * Opening a repository: configuration, the trust chain, the revision to show, and the objects that serve it.
 * @module
 */
import { isRepositoryName } from './format/names.js';
import { CvmfsError, ioError } from './errors.js';
import { hashToString, type ContentHash } from './format/hash.js';
import type { Manifest } from './format/manifest.js';
import type { Whitelist } from './format/whitelist.js';
import type { RsaPublicKey } from './crypto/rsa.js';
import type { Fetcher } from './net/fetcher.js';
import type { ObjectStore } from './store/object-store.js';
import { CatalogCache } from './catalog/catalog-cache.js';
import { Namespace } from './fs/namespace.js';
import { CvmfsFs } from './fs/fs.js';
import type { MagicContext } from './fs/magic-xattrs.js';
import type { OpenOptions } from './open/options.js';
import { readTags, type Tag } from './history.js';
import { VERSION } from './version.js';

export type { OpenOptions } from './open/options.js';

/** Counters of a repository object. */
export interface RepositoryStats {
  objectsDownloaded: number;
  bytesDownloaded: number;
  cacheHits: number;
  cacheMisses: number;
  hashMismatches: number;
  /** Objects taken, verified, from a cache directory other users can write. */
  sharedHits: number;
  /** Objects of such a directory that failed verification (removed, then fetched again). */
  quarantined: number;
  /** Moves to another server or proxy after a failure. */
  failovers: number;
  /** Of which to another server. */
  hostFailovers: number;
  /** Of which to another proxy. */
  proxyFailovers: number;
  /** Same-URL retries (after a backoff, or with no-cache headers after bad data). */
  retries: number;
  httpRequests: number;
  catalogsLoaded: number;
  catalogsOpen: number;
  /** Memory the open catalogs take now, in bytes (as `catalogMemoryBytes` counts it). */
  catalogBytes: number;
  /** Catalogs closed to stay within `maxOpenCatalogs` and `catalogMemoryBytes`. */
  catalogEvictions: number;
  /** Approximate bytes of the resolved-entry cache now (as `entryCacheBytes` counts them). */
  entryCacheBytes: number;
  /** Approximate bytes of the listing cache now (as `listingCacheBytes` counts them). */
  listingCacheBytes: number;
}

export { defaultCacheBase } from './cache/location.js';
import { appendStats, statsLogPath } from './cache/stats-log.js';
import { resolveConfig, type ResolvedConfig } from './config/config-repository.js';
import { debug } from './debug.js';
import { resolveSettings, type MemoryBudgets } from './open/settings.js';
import { openStorage } from './open/storage.js';
import { TrustChain } from './open/trust-chain.js';
import { pickRevision } from './open/revision.js';
import { nowMs } from './clock.js';

/** An open, verified repository. Its {@link Repository.fs} serves one revision. */
export class Repository {
  /** The read-only file system view. */
  readonly fs: CvmfsFs;
  private ns: Namespace;
  private readonly catalogs: CatalogCache;
  private checked = Date.now();
  private reloading: Promise<boolean> | undefined;
  private closed = false;
  private closing: Promise<void> = Promise.resolve();

  /** @internal use {@link openRepository} */
  constructor(
    readonly fqrn: string,
    /** The verified HEAD manifest (replaced when a newer revision is picked up). */
    public manifest: Manifest,
    /** The verified whitelist. */
    public whitelist: Whitelist,
    /** Root catalog being shown (HEAD's, or a tag's). */
    public rootHash: ContentHash,
    /** Revision being shown. */
    public revision: number,
    /** Tag being shown, or '' for HEAD. */
    readonly tag: string,
    private readonly fetcher: Fetcher,
    private readonly store: ObjectStore,
    private readonly keys: readonly RsaPublicKey[],
    private readonly opts: Required<Pick<OpenOptions, 'maxOpenCatalogs' | 'entryCacheSize' | 'listingCacheSize' | 'magicXattrs'>> & {
      memory: MemoryBudgets;
      variables: (n: string) => string | undefined;
      /** Fetches and verifies the newest manifest (the whole trust chain) and records it as trusted. */
      latest?: () => Promise<{ manifest: Manifest; whitelist: Whitelist }>;
      /** Seconds between looks for a new revision (the manifest's TTL, capped by CVMFS_MAX_TTL); 0: never by itself. */
      ttl: number;
      /** Where {@link Repository.close} appends this process's counters. */
      statsLog?: string;
      readAhead?: number;
    },
  ) {
    this.catalogs = new CatalogCache(store, opts.maxOpenCatalogs, opts.memory.catalogBytes);
    this.ns = this.namespaceFor(rootHash);
    const magic: MagicContext = {
      fqrn,
      version: VERSION,
      revision: () => this.revision,
      rootHash: () => hashToString(this.rootHash),
      host: () => fetcher.host,
      proxy: () => fetcher.proxy,
      hostList: () => [...fetcher.servers],
      pubkeys: () => keys.map((k) => k.pem).join(''),
      tag: () => this.tag,
      whitelistExpiry: () => this.whitelist.expires,
      openCatalogs: () => this.catalogs.size,
      downloads: () => store.stats.misses,
      timeoutSeconds: () => Math.round(fetcher.proxyTimeoutMs / 1000),
      timeoutDirectSeconds: () => Math.round(fetcher.directTimeoutMs / 1000),
      opens: () => this.fs.opens,
      externalHost: () => store.externalHost(),
    };
    this.fs = new CvmfsFs({
      fqrn,
      namespace: () => {
        // A call that starts after the TTL ran out sees the new revision once it is verified; this one goes on
        // with the revision it started with (as do open file handles, which hold their entries).
        if (this.opts.latest && this.opts.ttl > 0 && !this.tag && Date.now() - this.checked > this.opts.ttl * 1000) void this.reload().catch(() => undefined);
        return this.ns;
      },
      store: () => this.store,
      magic,
      magicVisibility: opts.magicXattrs,
      ...(opts.readAhead !== undefined ? { readAhead: opts.readAhead } : {}),
    });
  }

  private namespaceFor(root: ContentHash): Namespace {
    return new Namespace(this.catalogs, root, {
      variables: this.opts.variables,
      entryCacheSize: this.opts.entryCacheSize,
      listingCacheSize: this.opts.listingCacheSize,
      entryCacheBytes: this.opts.memory.entryBytes,
      listingCacheBytes: this.opts.memory.listingBytes,
    });
  }

  /**
   * Looks for a newer revision now (it is also done by itself when the manifest's TTL has run out): verifies
   * the whole trust chain again and, if the revision is newer, shows it to calls that start from now on. A
   * lower revision is refused (EIO, reason `manifest-rollback`). Resolves to whether the revision changed. A
   * repository opened at a tag stays at it.
   */
  reload(): Promise<boolean> {
    this.reloading ??= (async () => {
      try {
        if (!this.opts.latest || this.tag) return false;
        const { manifest, whitelist } = await this.opts.latest();
        this.checked = Date.now();
        if (manifest.revision < this.manifest.revision) {
          throw ioError('manifest-rollback', `manifest of ${this.fqrn} has revision ${manifest.revision}, older than revision ${this.manifest.revision} already shown`);
        }
        if (manifest.revision === this.manifest.revision) return false;
        this.manifest = manifest;
        this.whitelist = whitelist;
        this.rootHash = manifest.rootCatalog;
        this.revision = manifest.revision;
        this.ns = this.namespaceFor(manifest.rootCatalog);
        debug(`${this.fqrn}: now showing revision ${manifest.revision}`);
        return true;
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  /** The history database's tags, newest first (empty if the repository has no history). */
  async tags(): Promise<Tag[]> {
    if (!this.manifest.history) return [];
    return readTags(await this.store.getBytes(this.manifest.history, 'H'));
  }

  /**
   * The membership requirement the root catalog declares (its `voms_authz` property, as `CVMFS_VOMS_AUTHZ` sets
   * it on the server), or undefined. The genuine client then serves only processes whose credentials satisfy it;
   * this client has no credentials to check, so the connector keeps such a repository to its own user.
   */
  async membershipRequirement(): Promise<string | undefined> {
    return (await this.catalogs.get(this.rootHash, '')).properties.get('voms_authz') || undefined;
  }

  /** Counters since the repository was opened. */
  stats(): RepositoryStats {
    return {
      objectsDownloaded: this.store.stats.misses,
      bytesDownloaded: this.fetcher.stats.bytes,
      cacheHits: this.store.stats.hits,
      cacheMisses: this.store.stats.misses,
      hashMismatches: this.store.stats.hashMismatches,
      sharedHits: this.store.stats.sharedHits,
      quarantined: this.store.stats.quarantined,
      failovers: this.fetcher.stats.failovers,
      hostFailovers: this.fetcher.stats.hostFailovers,
      proxyFailovers: this.fetcher.stats.proxyFailovers,
      retries: this.fetcher.stats.retries,
      httpRequests: this.fetcher.stats.requests,
      catalogsLoaded: this.catalogs.loads,
      catalogsOpen: this.catalogs.size,
      catalogBytes: this.catalogs.bytes,
      catalogEvictions: this.catalogs.evictions,
      entryCacheBytes: this.ns.cacheBytes.entries,
      listingCacheBytes: this.ns.cacheBytes.listings,
    };
  }

  /** The object store (fetch, verify, cache), for tools that work on objects. */
  /** A variable's value as variant symlinks of this repository expand it (`$(NAME)`; undefined when unset). */
  variable(name: string): string | undefined {
    return this.opts.variables(name);
  }

  get objects(): ObjectStore {
    return this.store;
  }

  /**
   * Frees the open catalogs. The promise (it never rejects) resolves once this process's pins are released in
   * the cache: wait for it before ending the process by `process.exit`.
   */
  close(): Promise<void> {
    if (this.closed) return this.closing;
    this.closed = true;
    const s = this.stats();
    // Counters for `ucvmfs stats`; catalogsOpen and the byte figures are levels, not counts, so they are left out.
    if (this.opts.statsLog && (s.httpRequests > 0 || s.cacheHits > 0)) {
      const { catalogsOpen: _open, catalogBytes: _c, entryCacheBytes: _e, listingCacheBytes: _l, ...counters } = s;
      appendStats(this.opts.statsLog, counters);
    }
    this.catalogs.closeAll();
    this.closing = this.store.cache.releasePins().catch(() => undefined);
    return this.closing;
  }
}

/**
 * The configuration `openRepository` would use for `fqrn`: files, environment, built-in defaults, and the
 * configuration repository's files when CVMFS_CONFIG_REPOSITORY names one (opened with its own configuration,
 * never with this one's servers or keys, and never looking for a configuration repository itself). Close it.
 */
export function resolveRepositoryConfig(fqrn: string, options: OpenOptions = {}): Promise<ResolvedConfig> {
  return resolveConfig(fqrn, {
    root: options.configRoot,
    onWarning: options.onWarning,
    ...(options.configRepository === false ? {} : {
      open: async (name: string) => {
        const r = await openRepository(name, { configRoot: options.configRoot, cacheDir: options.cacheDir, configRepository: false, onWarning: options.onWarning, now: options.now });
        return { readFile: async (p: string) => Buffer.from(await r.fs.readFile(p)), readdir: (p: string) => r.fs.readdir(p), close: () => r.close() };
      },
    }),
  });
}

/**
 * Opens a repository: fetches and verifies whitelist, certificate and manifest (or re-verifies a cached manifest
 * younger than its TTL), refuses a revision older than one this cache has trusted, and returns the file system
 * view of HEAD or of the requested tag. The steps (lib/open/) are timed in the debug log.
 */
export async function openRepository(fqrn: string, options: OpenOptions = {}): Promise<Repository> {
  if (!isRepositoryName(fqrn)) throw new CvmfsError('EINVAL', `not a repository name: '${fqrn}'`);
  const clock = new StepClock();
  const s = await resolveSettings(fqrn, options, await resolveRepositoryConfig(fqrn, options));
  clock.step('settings');
  const { cache, fetcher, store } = await openStorage(s);
  clock.step('storage');
  options.onObjectStore?.(store);
  // HEAD's root catalog is wanted unless a tag or date picks another: its download overlaps the certificate's.
  // Also when the root loads lazily (`ucvmfs exec`): a new revision needs it first thing, and a known one is a
  // cache hit (no request).
  const chain = new TrustChain(fqrn, s.keys, fetcher, store, cache, options.now ?? (() => new Date()), !s.tag && !s.date);
  const { whitelist, manifest, fresh } = await chain.atOpen(options.reuseCachedManifest !== false, options.onWarning ?? ((m: string) => process.emitWarning(m)));
  clock.step(fresh ? 'trust chain' : 'trust chain (cached)');
  const { root, revision, tag } = await pickRevision(fqrn, manifest, store, s.tag, s.date);
  const vars = options.variables ?? process.env;
  const repo = new Repository(fqrn, manifest, whitelist, root, revision, tag, fetcher, store, s.keys, {
    maxOpenCatalogs: options.maxOpenCatalogs ?? 64,
    entryCacheSize: options.entryCacheSize ?? 200_000,
    listingCacheSize: options.listingCacheSize ?? 20_000,
    magicXattrs: s.magicXattrs,
    memory: s.memory,
    variables: (n) => vars[n],
    latest: () => chain.latest(),
    statsLog: statsLogPath(cache.dir, fqrn),
    ...(options.readAhead !== undefined ? { readAhead: Math.max(0, Math.floor(options.readAhead)) } : {}),
    // The next look for a new revision, after the manifest's TTL (capped by CVMFS_MAX_TTL).
    ttl: options.autoReload === false ? 0 : s.maxTtlSeconds > 0 ? Math.min(manifest.ttl, s.maxTtlSeconds) : manifest.ttl,
  });
  // Load the root catalog now, as a mount would: a repository that cannot show its root fails at open.
  if (!options.lazyRoot) {
    await repo.fs.stat('/');
    clock.step('root catalog');
  }
  debug(`${fqrn}: opened revision ${revision}${tag ? ` (tag ${tag})` : ''}, root catalog ${hashToString(root)}, cache ${cache.dir}${fresh ? '' : ' (cached manifest)'}; ${clock}`);
  return repo;
}

/** Milliseconds per named step, for the debug log (start-up is measured step by step). */
class StepClock {
  private last = nowMs();
  private readonly steps: string[] = [];

  step(name: string): void {
    const now = nowMs();
    this.steps.push(`${name} ${(now - this.last).toFixed(1)} ms`);
    this.last = now;
  }

  toString(): string {
    return this.steps.join(', ');
  }
}
