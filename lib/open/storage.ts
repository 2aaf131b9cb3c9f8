/**
 * Opening a repository, step 2: where its objects come from and go: the disk cache (with a verified mirror in
 * front when others can write the cache directory), the proxies (`auto` ones discovered), the fetcher and the
 * object store that verifies what the fetcher brings.
 * @module
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ioError } from '../errors.js';
import { Fetcher } from '../net/fetcher.js';
import { trustedCas } from '../net/tls-trust.js';
import { DiskCache } from '../cache/disk-cache.js';
import { cacheDirs } from '../cache/location.js';
import { SharedMirror } from '../cache/shared-mirror.js';
import { ObjectStore } from '../store/object-store.js';
import { debug } from '../debug.js';
import type { RepositorySettings } from './settings.js';
import { lazyCrypto } from '../lazy.js';

/** What step 2 makes. */
export interface Storage {
  cache: DiskCache;
  fetcher: Fetcher;
  store: ObjectStore;
}

/**
 * This client's id for the geo API when it has no proxy, kept in the cache base (as the genuine client keeps
 * its uuid in the cache) so that one node asks as one client; a fresh one when the file cannot be written.
 */
async function clientUuid(base: string): Promise<string> {
  const file = join(base, 'uuid');
  try {
    const s = readFileSync(file, 'utf8').trim(); // 37 bytes: a synchronous read costs less than its round trips
    if (/^[0-9a-f-]{36}$/.test(s)) return s;
  } catch {
    // not there yet
  }
  const id = lazyCrypto().randomUUID();
  try {
    await fsp.mkdir(base, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await fsp.writeFile(tmp, `${id}\n`);
    await fsp.rename(tmp, file);
  } catch {
    // a read-only base: this process's id only
  }
  return id;
}

/** The proxy chain, with `auto` groups resolved (PAC discovery; what was found is kept beside the cache). */
async function proxyChain(s: RepositorySettings, cacheDir: string): Promise<string | undefined> {
  const setting = s.net.proxies;
  if (!setting?.includes('auto')) return setting;
  const { resolveProxyDescription } = await import('../net/pac.js');
  const found = await resolveProxyDescription(setting, { servers: s.servers, pacUrls: s.net.pacUrls, httpProxy: process.env.http_proxy, timeoutMs: s.net.timeoutDirectMs, fallbackFile: join(cacheDir, `proxies.${s.fqrn}`) });
  if (found === '') throw ioError('proxy-discovery', `failed to discover HTTP proxy servers for ${s.fqrn}: CVMFS_HTTP_PROXY is '${setting}', and no PAC file of CVMFS_PAC_URLS ('${s.net.pacUrls ?? ''}') named one`);
  return found;
}

/** Sets up cache, fetcher and object store for the settings `s`. */
export async function openStorage(s: RepositorySettings): Promise<Storage> {
  const { base, shared, alien, verifyShared, quotaMb } = s.cache;
  // A cache directory others can write is used as a verified mirror in front of this user's own cache.
  const dirs = cacheDirs(base, s.fqrn, { shared, alien, verify: verifyShared });
  const mirror = dirs.mirror ? new SharedMirror(dirs.mirror) : undefined;
  const cache = new DiskCache(dirs.cache);
  if (mirror) debug(`${s.fqrn}: ${mirror.dir} is writable by others: verified on every read, into ${cache.dir}`);
  await cache.init();
  if ((!alien || mirror) && Number.isFinite(quotaMb) && quotaMb > 0) cache.setQuota(quotaMb * 1024 * 1024);
  const { net } = s;
  const fetcher = new Fetcher(s.servers, {
    timeoutMs: net.timeoutMs,
    timeoutDirectMs: net.timeoutDirectMs,
    maxRetries: net.maxRetries,
    lowSpeedLimit: net.lowSpeedLimit,
    backoffInitMs: net.backoffInitMs,
    backoffMaxMs: net.backoffMaxMs,
    proxies: await proxyChain(s, cache.dir),
    fallbackProxies: net.fallbackProxies,
    hostResetAfter: net.hostResetAfter,
    proxyResetAfter: net.proxyResetAfter,
    useGeoApi: net.useGeoApi,
    proxyTemplate: net.proxyTemplate,
    // Only the geo API asks for it; made on a cold cache, it would load node:crypto before the first request.
    ...(net.useGeoApi ? { clientId: await clientUuid(base) } : {}),
    followRedirects: net.followRedirects,
    ca: () => trustedCas(net.tls),
  });
  // External data's servers: a fetcher of their own (their failover is apart from the Stratum-1s'), made on the
  // first external file; with none configured, such a file fails (EIO) as in the genuine client.
  const x = s.external;
  let externalFetcher: Fetcher | undefined;
  const external = x.servers.length === 0 ? undefined : () => (externalFetcher ??= new Fetcher(x.servers, {
    timeoutMs: x.timeoutMs, timeoutDirectMs: x.timeoutDirectMs, maxRetries: net.maxRetries, lowSpeedLimit: net.lowSpeedLimit,
    backoffInitMs: net.backoffInitMs, backoffMaxMs: net.backoffMaxMs, proxies: x.proxies, followRedirects: net.followRedirects,
    ca: () => trustedCas(net.tls),
  }));
  return { cache, fetcher, store: new ObjectStore(fetcher, cache, mirror, external) };
}
