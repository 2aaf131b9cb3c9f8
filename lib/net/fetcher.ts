/**
 * HTTP transport: GETs objects from an ordered list of servers (CVMFS_SERVER_URL semantics, `@fqrn@` and
 * `@org@` substituted), failing over to the next server on connection errors, timeouts, 5xx and on a body the
 * caller rejects (hash mismatch, truncation). Uses undici's pooled, keep-alive dispatcher.
 * @module
 */
import type { Agent, Dispatcher } from 'undici';
import { debug, debugEnabled } from '../debug.js';
import type { Readable } from 'node:stream';
import { ioError, CvmfsError } from '../errors.js';

/** Options of a {@link Fetcher}. */
export interface FetcherOptions {
  /** Per-request timeout for connect, headers and each body read, milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** How many extra rounds over the whole server list before giving up. Default 1. */
  maxRetries?: number;
  /** Dispatcher to use; default a shared keep-alive Agent. */
  dispatcher?: Dispatcher;
  /** Called when a server fails and the next is tried. */
  onFailover?: (from: string, error: unknown) => void;
  /** Seconds after a failover to another server before the first is tried again (CVMFS_HOST_RESET_AFTER, default 1800). */
  hostResetAfter?: number;
  /** The same for proxies (CVMFS_PROXY_RESET_AFTER, default 1800). */
  proxyResetAfter?: number;
  /**
   * Proxies as CVMFS_HTTP_PROXY writes them: `;` separates groups tried in order, `|` separates members of one
   * group (load-balanced: each process starts at a random member), `DIRECT` means no proxy. Default DIRECT.
   */
  proxies?: string;
}

/** The proxy chain of a CVMFS_HTTP_PROXY value (plus CVMFS_FALLBACK_PROXY groups appended by the caller). */
export function parseProxies(value: string | undefined): string[] {
  const out: string[] = [];
  for (const group of (value ?? '').split(';').map((g) => g.trim()).filter(Boolean)) {
    const members = group.split('|').map((m) => m.trim()).filter(Boolean);
    const start = Math.floor(Math.random() * members.length);
    for (let i = 0; i < members.length; i++) out.push(members[(start + i) % members.length]!);
  }
  return out.length > 0 ? out.map((p) => (p.toUpperCase() === 'DIRECT' ? 'DIRECT' : p)) : ['DIRECT'];
}

/** Substitutes `@fqrn@` and `@org@` (first label of the fqrn) in a server URL and strips trailing slashes. */
export function expandServerUrl(url: string, fqrn: string): string {
  return url.replace(/@fqrn@/g, fqrn).replace(/@org@/g, fqrn.split('.')[0] ?? fqrn).replace(/\/+$/, '');
}

/** Splits a CVMFS_SERVER_URL value (`;`-separated) into URLs. */
export function splitServerList(value: string): string[] {
  return value.split(';').map((s) => s.trim()).filter(Boolean);
}

/**
 * undici, loaded on the first request: a process working from a warm cache (a job under `ucvmfs exec`) never
 * needs it, and loading it costs ~50 ms here.
 */
let undici: Promise<typeof import('undici')> | undefined;
let sharedAgent: Agent | undefined;
const proxyAgents = new Map<string, Dispatcher>();
async function client(proxy = 'DIRECT'): Promise<{ request: (typeof import('undici'))['request']; agent: Dispatcher }> {
  const u = await (undici ??= import('undici'));
  if (proxy !== 'DIRECT') {
    let a = proxyAgents.get(proxy);
    if (!a) {
      // Plain HTTP through the proxy (no CONNECT tunnel): that is what lets a site squid cache the objects.
      a = new u.ProxyAgent({ uri: proxy, proxyTunnel: false, keepAliveTimeout: 30_000, connections: 32 });
      proxyAgents.set(proxy, a);
    }
    return { request: u.request, agent: a };
  }
  sharedAgent ??= new u.Agent({ keepAliveTimeout: 30_000, connections: 32 });
  return { request: u.request, agent: sharedAgent };
}

/** Statistics of one fetcher. */
export interface FetcherStats {
  requests: number;
  bytes: number;
  failovers: number;
}

/** A body consumer: returns the result, or throws to make the fetcher try the next server. */
export type BodyConsumer<T> = (body: Readable, url: string) => Promise<T>;

/** Downloads from a list of servers with failover. */
export class Fetcher {
  readonly servers: readonly string[];
  private current = 0;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly onFailover: ((from: string, error: unknown) => void) | undefined;
  readonly stats: FetcherStats = { requests: 0, bytes: 0, failovers: 0 };
  private readonly proxies: readonly string[];
  private currentProxy = 0;
  private readonly hostResetMs: number;
  private readonly proxyResetMs: number;
  private hostMovedAt = 0;
  private proxyMovedAt = 0;

  constructor(servers: readonly string[], opts: FetcherOptions = {}) {
    if (servers.length === 0) throw new CvmfsError('EINVAL', 'no server URL configured (CVMFS_SERVER_URL or serverUrls)');
    this.servers = servers;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.maxRetries = opts.maxRetries ?? 1;
    this.dispatcher = opts.dispatcher;
    this.proxies = parseProxies(opts.proxies);
    this.hostResetMs = (opts.hostResetAfter ?? 1800) * 1000;
    this.proxyResetMs = (opts.proxyResetAfter ?? 1800) * 1000;
    this.onFailover = opts.onFailover;
  }

  /** The proxy currently in use (`DIRECT` for none). */
  get proxy(): string {
    return this.proxies[this.currentProxy]!;
  }

  /** The server currently in use. */
  get host(): string {
    return this.servers[this.current]!;
  }

  /**
   * GETs `relPath` below the server root and hands the body to `consume`. A 404 from every server is
   * `not-found`; anything else that fails on every server is `download` (with the last cause).
   */
  async fetch<T>(relPath: string, consume: BodyConsumer<T>, signal?: AbortSignal): Promise<T> {
    // After a while on a fallback, the preferred server (and proxy) get another chance, as with the genuine client.
    const now = Date.now();
    if (this.current !== 0 && now - this.hostMovedAt > this.hostResetMs) this.current = 0;
    if (this.currentProxy !== 0 && now - this.proxyMovedAt > this.proxyResetMs) this.currentProxy = 0;
    let lastError: unknown;
    let notFound = 0;
    const attempts = this.servers.length * (this.maxRetries + 1);
    for (let i = 0; i < attempts; i++) {
      signal?.throwIfAborted();
      const idx = (this.current + i) % this.servers.length;
      const url = `${this.servers[idx]}/${relPath}`;
      // For each server, the proxy chain in order from the one that last worked; a 404 is the server's
      // answer (any proxy would pass it on), anything else may be the proxy's fault, so the next one is tried.
      let status404 = false;
      for (let k = 0; k < this.proxies.length; k++) {
        const p = (this.currentProxy + k) % this.proxies.length;
        try {
          const result = await this.once(url, consume, signal, this.proxies[p]!);
          if (idx !== this.current) {
            this.current = idx;
            this.hostMovedAt = Date.now();
          }
          if (p !== this.currentProxy) {
            this.currentProxy = p;
            this.proxyMovedAt = Date.now();
          }
          return result;
        } catch (e) {
          if (signal?.aborted) throw e;
          lastError = e;
          this.stats.failovers++;
          this.onFailover?.(this.proxies[p] === 'DIRECT' ? url : `${url} via ${this.proxies[p]}`, e);
          if (debugEnabled) debug(`failover: ${url}${this.proxies[p] === 'DIRECT' ? '' : ` via ${this.proxies[p]}`}: ${errText(e)}`);
          if (e instanceof HttpStatusError && e.status === 404) {
            status404 = true;
            break;
          }
        }
      }
      if (status404) notFound++;
    }
    if (notFound === attempts) {
      throw ioError('not-found', `object ${relPath} not found on any server (${this.servers.join(', ')})`, lastError);
    }
    if (lastError instanceof CvmfsError && (lastError.reason === 'hash-mismatch' || lastError.reason === 'decompression')) throw lastError;
    throw ioError('download', `cannot download ${relPath} from ${this.servers.join(', ')}: ${errText(lastError)}`, lastError);
  }

  private async once<T>(url: string, consume: BodyConsumer<T>, signal?: AbortSignal, proxy = 'DIRECT'): Promise<T> {
    this.stats.requests++;
    if (debugEnabled) debug(`GET ${url}${proxy === 'DIRECT' ? '' : ` via ${proxy}`}`);
    const { request, agent } = await client(proxy);
    const res = await request(url, {
      dispatcher: proxy === 'DIRECT' ? this.dispatcher ?? agent : agent,
      method: 'GET',
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      ...(signal ? { signal } : {}),
    });
    if (res.statusCode !== 200) {
      res.body.resume();
      throw new HttpStatusError(res.statusCode, url);
    }
    const expected = Number(res.headers['content-length'] ?? NaN);
    let got = 0;
    res.body.on('data', (c: Buffer) => { got += c.length; });
    try {
      const out = await consume(res.body, url);
      if (Number.isFinite(expected) && got !== expected) {
        throw ioError('download', `truncated transfer from ${url}: ${got} of ${expected} bytes`);
      }
      this.stats.bytes += got;
      return out;
    } finally {
      if (!res.body.destroyed) res.body.destroy();
    }
  }
}

/** A non-200 HTTP answer. */
export class HttpStatusError extends Error {
  constructor(readonly status: number, readonly url: string) {
    super(`HTTP ${status} from ${url}`);
    this.name = 'HttpStatusError';
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
