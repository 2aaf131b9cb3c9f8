/**
 * HTTP transport with the genuine client's failover: GETs objects from an ordered list of Stratum-1 servers
 * (CVMFS_SERVER_URL, `@fqrn@` and `@org@` substituted) through a proxy chain (proxy-chain.ts). What happens
 * after a failure depends on its class (failure.ts): transfer errors are retried on the same URL after a
 * randomised, doubling backoff (CVMFS_MAX_RETRIES times per request in all, CVMFS_BACKOFF_INIT/MAX), bad data
 * once more with no-cache headers, proxy errors move to the next proxy and, when all proxies failed, to the
 * next server; host errors move to the next server. The timeout is CVMFS_TIMEOUT through a proxy and
 * CVMFS_TIMEOUT_DIRECT without one, for connecting, for the headers, and as the time a transfer may stay under
 * CVMFS_LOW_SPEED_LIMIT bytes/s. With CVMFS_USE_GEOAPI the servers are ordered by the geo API of the
 * Stratum-1s before the first request. Requests go through http.ts (node:http, pooled keep-alive connections).
 * @module
 */
import { pipeInto } from '../pipe-into.js';
import type { Readable, TransformCallback } from 'node:stream';
import { lazyStream } from '../lazy.js';
import { debug, debugEnabled } from '../debug.js';
import { ioError, CvmfsError } from '../errors.js';
import { VERSION } from '../version.js';
import { classify, HttpStatusError, isTransfer, TooSlowError, type FailureKind } from './failure.js';
import { ProxyChain } from './proxy-chain.js';
import { geoPath, geoQuery, parseGeoReply } from './geo.js';
import type * as HttpModule from './http.js';
import { nowMs } from '../clock.js';

// node:http (with net and zlib) loads on the first request: a warm command that answers from the cache never
// makes one, and skips their ~7 ms of module loading.
let httpModule: Promise<typeof HttpModule> | undefined;
const http = (): Promise<typeof HttpModule> => (httpModule ??= import('./http.js'));

export { HttpStatusError } from './failure.js';

/** Options of a {@link Fetcher}. */
export interface FetcherOptions {
  /** Timeout through a proxy (CVMFS_TIMEOUT), milliseconds: connect, headers, and time under the low-speed limit. Default 5 000. */
  timeoutMs?: number;
  /** The same without a proxy (CVMFS_TIMEOUT_DIRECT). Default 10 000. */
  timeoutDirectMs?: number;
  /** Bytes per second under which a transfer counts as stalled (CVMFS_LOW_SPEED_LIMIT). Default 1024. */
  lowSpeedLimit?: number;
  /** Same-URL retries after transfer errors, per request in all (CVMFS_MAX_RETRIES). Default 1. */
  maxRetries?: number;
  /** First backoff before a retry is random in [0, this] ms, then doubles (CVMFS_BACKOFF_INIT × 1000). Default 2 000. */
  backoffInitMs?: number;
  /** Cap of the backoff (CVMFS_BACKOFF_MAX × 1000). Default 10 000. */
  backoffMaxMs?: number;
  /** Follow HTTP redirects, at most 4 (CVMFS_FOLLOW_REDIRECTS); without it a redirect is a host error. */
  followRedirects?: boolean;
  /**
   * Certificate authorities (PEM texts) for https servers, asked for on the first https request (tls-trust.ts
   * reads X509_CERT_DIR, X509_CERT_BUNDLE and CVMFS_USE_SSL_SYSTEM_CA). Default: Node's bundled roots.
   */
  ca?: () => Promise<readonly string[] | undefined>;
  /** Called when a server or proxy fails and another is tried. */
  onFailover?: (from: string, error: unknown) => void;
  /** Seconds after a failover to another server before the first is tried again (CVMFS_HOST_RESET_AFTER, default 1800; 0 never). */
  hostResetAfter?: number;
  /** The same for proxy groups (CVMFS_PROXY_RESET_AFTER, default 300). */
  proxyResetAfter?: number;
  /** Proxies as CVMFS_HTTP_PROXY writes them (`;` groups in order, `|` load-balanced members, `DIRECT`). Default DIRECT. */
  proxies?: string;
  /** CVMFS_FALLBACK_PROXY: groups tried after the regular ones (DIRECT not allowed there). */
  fallbackProxies?: string;
  /** Order the servers by the Stratum-1s' geo API before the first request (CVMFS_USE_GEOAPI). */
  useGeoApi?: boolean;
  /** The requester name sent to the geo API: CVMFS_PROXY_TEMPLATE, else the proxy's host, else this id. */
  clientId?: string;
  /** CVMFS_PROXY_TEMPLATE. */
  proxyTemplate?: string;
  /** Random source (tests). */
  random?: () => number;
}

/** Substitutes `@fqrn@` and `@org@` (first label of the fqrn) in a server URL and strips trailing slashes. */
export function expandServerUrl(url: string, fqrn: string): string {
  return url.replace(/@fqrn@/g, fqrn).replace(/@org@/g, fqrn.split('.')[0] ?? fqrn).replace(/\/+$/, '');
}

/** Splits a CVMFS_SERVER_URL value (`;`-separated) into URLs. */
export function splitServerList(value: string): string[] {
  return value.split(';').map((s) => s.trim()).filter(Boolean);
}

/** Counters of one fetcher. */
export interface FetcherStats {
  /** HTTP requests sent. */
  requests: number;
  /** Body bytes received from successful requests. */
  bytes: number;
  /** Moves to another server or proxy. */
  failovers: number;
  /** Moves to another server. */
  hostFailovers: number;
  /** Moves to another proxy. */
  proxyFailovers: number;
  /** Same-URL retries (after a backoff, or with no-cache headers after bad data). */
  retries: number;
  /** Milliseconds slept in backoffs. */
  backoffMs: number;
}

/** A body consumer: returns the result, or throws to make the fetcher try again (hash mismatch, zlib error). */
/**
 * Whether an answer holds exactly the bytes a Range request asked for: 206 with that Content-Range. A server that
 * ignores Range answers 200 with the whole resource, which is not the piece asked for (a failure of that server).
 */
function rangeAnswered(status: number, contentRange: string | undefined, [first, last]: readonly [number, number]): boolean {
  const m = /^bytes\s+(\d+)-(\d+)\//i.exec(contentRange ?? '');
  return status === 206 && m !== null && Number(m[1]) === first && Number(m[2]) === last;
}

export type BodyConsumer<T> = (body: Readable, url: string) => Promise<T>;

/** Downloads from a list of servers through a proxy chain, with the genuine client's failover. */
export class Fetcher {
  /** The servers, in the order used (geo-sorted once that is done). */
  servers: readonly string[];
  private current = 0;
  private hostMovedAt = 0;
  private readonly o: Required<Omit<FetcherOptions, 'ca' | 'onFailover' | 'proxies' | 'fallbackProxies' | 'proxyTemplate'>> & FetcherOptions;
  readonly stats: FetcherStats = { requests: 0, bytes: 0, failovers: 0, hostFailovers: 0, proxyFailovers: 0, retries: 0, backoffMs: 0 };
  /** Times to the response headers of the last requests (ms), a ring. */
  private readonly latencies: number[] = [];
  private latencyAt = 0;
  readonly proxyChain: ProxyChain;
  private geo: Promise<void> | undefined;
  private caList: Promise<readonly string[] | undefined> | undefined;

  constructor(servers: readonly string[], opts: FetcherOptions = {}) {
    if (servers.length === 0) throw new CvmfsError('EINVAL', 'no server URL configured (CVMFS_SERVER_URL or serverUrls)');
    this.servers = servers;
    this.o = {
      timeoutMs: 5_000, timeoutDirectMs: 10_000, lowSpeedLimit: 1024, maxRetries: 1, backoffInitMs: 2_000, backoffMaxMs: 10_000,
      hostResetAfter: 1800, proxyResetAfter: 300, useGeoApi: false, followRedirects: false, clientId: 'ucvmfs', random: Math.random,
      ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    } as Fetcher['o'];
    this.proxyChain = new ProxyChain(opts.proxies, opts.fallbackProxies, this.o.proxyResetAfter * 1000, this.o.random);
  }

  /** The proxy currently in use (`DIRECT` for none). */
  get proxy(): string {
    return this.proxyChain.current;
  }

  /** The server currently in use. */
  get host(): string {
    return this.servers[this.current]!;
  }

  /** The timeout through a proxy (CVMFS_TIMEOUT), ms. */
  get proxyTimeoutMs(): number {
    return this.o.timeoutMs;
  }

  /** The timeout without one (CVMFS_TIMEOUT_DIRECT), ms. */
  get directTimeoutMs(): number {
    return this.o.timeoutDirectMs;
  }

  /**
   * Moves to the next server after something it served failed a check above this layer (the manifest's
   * signature, or a revision older than one already trusted: a Stratum-1 lagging behind), as the genuine client
   * does once for the manifest. False with a single server.
   */
  failoverHost(): boolean {
    if (this.servers.length < 2) return false;
    this.switchHost(this.current);
    return true;
  }

  /** Moves on from server `from`, counted, unless another request moved on from it already; whether it moved. */
  private switchHost(from: number): boolean {
    if (this.servers.length < 2 || this.current !== from) return false;
    this.current = (from + 1) % this.servers.length;
    this.hostMovedAt = Date.now();
    this.stats.failovers++;
    this.stats.hostFailovers++;
    return true;
  }

  /**
   * GETs `relPath` below the server root and hands the body to `consume`. When every server tried answered 404
   * the error is EIO with reason `not-found`; anything else that fails in the end is `download` (with the last
   * cause), or the consumer's own `hash-mismatch`/`decompression`.
   */
  /**
   * How long the server (or proxy) takes to answer, in ms: the shortest time from a request to its response
   * headers among the last 16 (the shortest, because a busy event loop only ever adds to what is measured here).
   * NaN before the first answer. Speculative fetching uses it: there is no point hiding round trips that cost
   * nothing.
   */
  get latencyMs(): number {
    return this.latencies.length ? Math.min(...this.latencies) : NaN;
  }

  /**
   * GETs `relPath` from the current server (failing over as configured) and hands the body to `consume`.
   * @param range bytes `[first, last]` of the resource (a Range request; the answer must be 206 for exactly those)
   */
  async fetch<T>(relPath: string, consume: BodyConsumer<T>, signal?: AbortSignal, range?: readonly [number, number]): Promise<T> {
    const now = Date.now();
    // After a while on a fallback the preferred server (and proxy group) get another chance.
    if (this.current !== 0 && this.o.hostResetAfter > 0 && now - this.hostMovedAt > this.o.hostResetAfter * 1000) this.current = 0;
    this.proxyChain.maybeReset(now);
    if (this.o.useGeoApi) await (this.geo ??= this.geoSort());
    let retries = 0;
    let backoff = 0;
    let nocache = false;
    let usedHosts = 1;
    let usedProxies = 1;
    const hostsTried = new Set<number>();
    const hosts404 = new Set<number>();
    let lastError: unknown;
    for (;;) {
      signal?.throwIfAborted();
      const idx = this.current;
      const proxy = this.proxyChain.current;
      const url = `${this.servers[idx]}/${relPath}`;
      hostsTried.add(idx);
      let kind: FailureKind;
      try {
        return await this.once(url, consume, signal, proxy, nocache, range);
      } catch (e) {
        if (signal?.aborted) throw e;
        lastError = e;
        kind = classify(e, proxy);
        if (e instanceof HttpStatusError && e.status === 404) hosts404.add(idx);
        const where = proxy === 'DIRECT' ? url : `${url} via ${proxy}`;
        if (debugEnabled) debug(`failed (${kind}): ${where}: ${errText(e)}`);
        this.o.onFailover?.(where, e);
      }
      if (kind === 'bad-data' && !nocache) {
        // Perhaps a proxy holds a bad copy: once more, asking every cache on the way to fetch it afresh.
        nocache = true;
        this.stats.retries++;
        continue;
      }
      if (kind === 'bad-data') kind = 'host-http';
      nocache = false;
      if (kind === 'other') break;
      if (isTransfer(kind) && retries < this.o.maxRetries) {
        retries++;
        backoff = backoff === 0 ? Math.floor(this.o.random() * (this.o.backoffInitMs + 1)) : Math.min(backoff * 2, this.o.backoffMaxMs);
        this.stats.retries++;
        this.stats.backoffMs += backoff;
        if (backoff > 0) await sleep(backoff, signal);
        continue;
      }
      if (kind.startsWith('proxy')) {
        if (usedProxies < this.proxyChain.size) {
          if (this.proxyChain.switchFrom(proxy)) {
            this.stats.failovers++;
            this.stats.proxyFailovers++;
          }
          usedProxies++;
          continue;
        }
        // Every proxy failed on this server: the next server, from the first proxy group again.
        if (usedHosts >= this.servers.length) break;
        usedProxies = 1;
      } else if (usedHosts >= this.servers.length) {
        break;
      }
      // A request that failed with this one (the whitelist beside the manifest) may have moved on already, and
      // reset the proxies then: they are not reset again under it.
      if (this.switchHost(idx) && kind.startsWith('proxy')) this.proxyChain.resetToFirstGroup();
      usedHosts++;
    }
    if (hosts404.size > 0 && hosts404.size === hostsTried.size) {
      throw ioError('not-found', `object ${relPath} not found on any server (${this.servers.join(', ')})`, lastError);
    }
    if (lastError instanceof CvmfsError && (lastError.reason === 'hash-mismatch' || lastError.reason === 'decompression' || lastError.reason === 'cache-write')) throw lastError;
    throw ioError('download', `cannot download ${relPath} from ${this.servers.join(', ')}: ${errText(lastError)}`, lastError);
  }

  private async once<T>(url: string, consume: BodyConsumer<T>, signal: AbortSignal | undefined, proxy: string, nocache = false, range?: readonly [number, number]): Promise<T> {
    this.stats.requests++;
    if (debugEnabled) debug(`GET ${url}${proxy === 'DIRECT' ? '' : ` via ${proxy}`}${nocache ? ' (no-cache)' : ''}`);
    const timeout = proxy === 'DIRECT' ? this.o.timeoutDirectMs : this.o.timeoutMs;
    const ca = url.startsWith('https:') && this.o.ca ? await (this.caList ??= this.o.ca()) : undefined;
    const { httpGet } = await http();
    const asked = nowMs();
    const res = await httpGet({
      url,
      proxy,
      timeoutMs: timeout,
      headers: { 'user-agent': `ucvmfs ${VERSION}`, ...(nocache ? { pragma: 'no-cache', 'cache-control': 'no-cache' } : {}), ...(range ? { range: `bytes=${range[0]}-${range[1]}` } : {}) },
      followRedirects: this.o.followRedirects,
      ...(ca ? { ca } : {}),
      ...(signal ? { signal } : {}),
    });
    this.latencies[this.latencyAt++ % 16] = nowMs() - asked;
    if (res.status < 200 || res.status > 299 || (range && !rangeAnswered(res.status, res.headers['content-range'], range))) {
      res.body.destroy();
      const e = new HttpStatusError(res.status, url, res.headers);
      if (range && res.status >= 200 && res.status <= 299) {
        e.message += ` where bytes ${range[0]}-${range[1]} were asked for (206 with that Content-Range; got ${res.headers['content-range'] ?? 'none'})`;
      }
      throw e;
    }
    // The length on the wire; a body a proxy encoded is checked by its hash alone.
    const expected = res.headers['content-encoding'] ? NaN : Number(res.headers['content-length'] ?? NaN);
    let got = 0;
    // Counted on the way through (not with a 'data' listener, which would set the body flowing before a consumer
    // that awaits something first is attached, and lose what flowed meanwhile).
    const counted = new (lazyStream().Transform)({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        got += chunk.length;
        cb(null, chunk);
      },
    });
    res.body.on('error', (e) => counted.destroy(e));
    // A body that fails before its consumer reads (the connection reset right after the headers, while the consumer
    // opens its temporary file) must not be an unhandled 'error' that ends the process: the stream keeps the error,
    // and the consumer's read or pipeline throws it.
    counted.on('error', () => undefined);
    pipeInto(res.body, counted);
    // curl's LOW_SPEED_LIMIT/TIME: under the limit for the whole timeout is a stall, even if bytes still drip in;
    // with no limit, a body that stops for the whole timeout still is.
    const limit = this.o.lowSpeedLimit;
    let lastGot = 0;
    let slowSince = 0;
    const tick = Math.min(1000, timeout);
    const monitor = setInterval(() => {
      const now = Date.now();
      if (limit > 0 ? (got - lastGot) * 1000 / tick < limit : got === lastGot) slowSince ||= now - tick;
      else slowSince = 0;
      lastGot = got;
      if (slowSince && now - slowSince >= timeout) res.body.destroy(new TooSlowError(url, limit, timeout / 1000));
    }, tick);
    monitor.unref();
    try {
      const out = await consume(counted, url);
      if (Number.isFinite(expected) && got !== expected) {
        throw ioError('download', `truncated transfer from ${url}: ${got} of ${expected} bytes`);
      }
      this.stats.bytes += got;
      return out;
    } finally {
      clearInterval(monitor);
      if (!res.body.destroyed) res.body.destroy();
      if (!counted.destroyed) counted.destroy();
    }
  }

  /**
   * Asks up to three Stratum-1s, in random order, for the servers nearest to this client (or to its proxy) and
   * uses that order from then on. Any failure or an answer that is not a permutation keeps the configured order.
   */
  private async geoSort(): Promise<void> {
    if (this.servers.length < 2) return;
    const { names, serverOf } = geoQuery(this.servers);
    const proxy = this.proxyChain.current;
    // A fallback proxy is not asked for the geo API (the request goes direct, with this client's id).
    const direct = proxy === 'DIRECT' || this.proxyChain.onFallback;
    const requester = this.o.proxyTemplate || (direct ? this.o.clientId : (await http()).proxyAddress(proxy).hostname) || this.o.clientId;
    const order = [...this.servers.keys()];
    for (let k = order.length - 1; k > 0; k--) {
      const j = Math.floor(this.o.random() * (k + 1));
      [order[k], order[j]] = [order[j]!, order[k]!];
    }
    for (const i of order.slice(0, 3)) {
      const asked = this.servers[i]!;
      const url = `${asked}/${geoPath(requester, names)}`;
      try {
        const text = await this.once(url, async (body) => {
          let s = '';
          for await (const c of body) {
            s += (c as Buffer).toString('latin1');
            if (s.length > 64 * 1024) throw new Error('geo API reply too long');
          }
          return s;
        }, undefined, direct ? 'DIRECT' : proxy);
        const idx = parseGeoReply(text, names.length);
        if (!idx) {
          debug(`geo API of ${asked}: invalid reply ${JSON.stringify(text.slice(0, 100))}`);
          continue;
        }
        this.servers = idx.map((k) => this.servers[serverOf[k]!]!);
        this.current = 0;
        debug(`geo API of ${asked}: servers now ${this.servers.join(';')}`);
        return;
      } catch (e) {
        debug(`geo API: ${url}: ${errText(e)}`);
      }
    }
    debug('geo API: no Stratum-1 gave an order; keeping the configured one');
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
