/**
 * One HTTP GET, over node:http and node:https with pooled keep-alive connections: direct, through a plain HTTP
 * proxy (the absolute URL sent to the proxy, no tunnel, so that a site squid can cache), or through a CONNECT
 * tunnel for https. It returns the status, the headers and the body as a Readable, and nothing else: what a
 * status or an error means is decided by failure.ts and the fetcher.
 *
 * Why not undici: undici 7 kills the whole process with an uncatchable assertion when a server ends the
 * connection while the body is paused under backpressure (nodejs/undici#5360, fixed only in undici 8, which needs
 * Node 22). HTTP/1.0 servers, `Connection: close` and many proxies end every response that way. Node's own client
 * has handled close-delimited bodies for as long as it exists, is as fast here (bench rows 6n/6o) and costs no
 * module load at start.
 *
 * What this layer guarantees, whatever the peer does: every failure is an error on the returned promise (before
 * the headers) or on the body stream (after), never an exception thrown into the event loop; headers have to
 * arrive within the timeout (connect included), however slowly they trickle; a body cut short of its length or of
 * its last chunk is an error, never a short success; a `Content-Encoding` that a proxy added is undone (the
 * content hash checks the result).
 * @module
 */
import * as http from 'node:http';
import type * as https from 'node:https';
import type * as tls from 'node:tls';
import { createRequire } from 'node:module';
import type { Duplex, Readable } from 'node:stream';
import { lazyStream, lazyZlib } from '../lazy.js';
import { ioError } from '../errors.js';
import { deferredCaContext } from './tls-trust.js';

/** What {@link httpGet} needs to know about one request. */
export interface GetRequest {
  /** `http://` or `https://` URL. */
  url: string;
  /** `DIRECT`, or the proxy's URL (`http://host:port`). */
  proxy: string;
  /** Connect plus headers must complete within this many ms. */
  timeoutMs: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Follow 301/302/303/307/308 (CVMFS_FOLLOW_REDIRECTS), at most 4 times as the genuine client. */
  followRedirects?: boolean;
  /** Certificate authorities (PEM) trusted for https; default Node's bundled roots. */
  ca?: readonly string[];
}

/** The answer: status, headers, and the body (already decoded if a proxy encoded it). */
export interface GetResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Readable;
  /** The URL that answered (differs from the request's after redirects). */
  url: string;
}

/** A redirect chain longer than the genuine client allows (curl's CURLE_TOO_MANY_REDIRECTS). */
export class TooManyRedirectsError extends Error {
  readonly code = 'ETOOMANYREDIRECTS';
  constructor(url: string) {
    super(`more than ${MAX_REDIRECTS} redirects from ${url}`);
    this.name = 'TooManyRedirectsError';
  }
}

const MAX_REDIRECTS = 4;

/**
 * Host and port of a proxy as CVMFS_HTTP_PROXY writes it: `http://host:port`, or `host:port` without a scheme
 * (curl, under the genuine client, takes both, and 1080 when no port is given).
 */
export function proxyAddress(proxy: string): { hostname: string; port: number } {
  const u = new URL(proxy.includes('://') ? proxy : `http://${proxy}`);
  return { hostname: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : 1080 };
}
// Far above what Stratum-1s and squids send, far below what would cost memory: past it the answer is refused.
const MAX_HEADER_BYTES = 64 * 1024;
// Idle pooled connections are closed after this, so that a server's own keep-alive timeout rarely races a reuse.
const IDLE_MS = 30_000;

// https and tls are loaded on the first https request: a plain-http client (most sites, and every start) does not
// pay their ~5 ms of module loading.
const require = createRequire(import.meta.url);
const httpsModule = (): typeof https => require('node:https') as typeof https;
const tlsModule = (): typeof tls => require('node:tls') as typeof tls;

const agents = new Map<string, http.Agent>();
let caIds = new WeakMap<readonly string[], number>();
let nextCaId = 0;

// What one https connection trusts: the CAs given, else Node's default store (with NODE_EXTRA_CA_CERTS when the
// CLI kept it from Node's start).
function trust(ca: readonly string[] | undefined): { ca?: string[]; secureContext?: tls.SecureContext } {
  if (ca) return { ca: [...ca] };
  const secureContext = deferredCaContext(tlsModule());
  return secureContext ? { secureContext } : {};
}

function agentFor(kind: 'http' | 'https', ca: readonly string[] | undefined): http.Agent {
  let caId = 0;
  if (ca) {
    caId = caIds.get(ca) ?? ++nextCaId;
    caIds.set(ca, caId);
  }
  const key = `${kind} ${caId}`;
  let a = agents.get(key);
  if (!a) {
    const opts = { keepAlive: true, maxSockets: 32, timeout: IDLE_MS, scheduling: 'lifo' as const };
    a = kind === 'http' ? new http.Agent(opts) : new (httpsModule().Agent)({ ...opts, ...trust(ca) });
    agents.set(key, a);
  }
  return a;
}

/** Closes every pooled connection (they are unref'd and never keep a process alive; this is for tests). */
export function closeConnections(): void {
  for (const a of agents.values()) a.destroy();
  agents.clear();
  caIds = new WeakMap();
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GETs `req.url`; see the module comment for what it guarantees. */
export async function httpGet(req: GetRequest): Promise<GetResponse> {
  let url = req.url;
  for (let hops = 0; ; hops++) {
    const res = await getOnce(url, req);
    const location = res.headers.location;
    if (!req.followRedirects || !REDIRECTS.has(res.status) || !location) return res;
    res.body.destroy();
    if (hops >= MAX_REDIRECTS) throw new TooManyRedirectsError(req.url);
    url = new URL(location, url).href;
    if (!/^https?:$/.test(new URL(url).protocol)) throw new TooManyRedirectsError(req.url);
  }
}

const RETRY_ON_REUSE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

async function getOnce(url: string, req: GetRequest): Promise<GetResponse> {
  try {
    return await attempt(url, req);
  } catch (e) {
    // A pooled connection the server closed while it sat idle fails at once; that says nothing about the server,
    // so once more on a new connection, as curl does, before anyone counts a failure.
    if ((e as { reusedSocket?: boolean }).reusedSocket && RETRY_ON_REUSE.has((e as { code?: string }).code ?? '')) return attempt(url, req);
    throw e;
  }
}

function attempt(url: string, req: GetRequest): Promise<GetResponse> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  if (!secure && target.protocol !== 'http:') return Promise.reject(new Error(`unsupported protocol in ${url}`));
  const headers: Record<string, string> = { ...req.headers, host: target.host };
  const common = { method: 'GET', headers, maxHeaderSize: MAX_HEADER_BYTES, signal: req.signal };
  const direct = req.proxy === 'DIRECT';
  return new Promise<GetResponse>((resolve, reject) => {
    let done = false;
    const fail = (e: Error) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      reject(e);
    };
    let cr: http.ClientRequest | undefined;
    let tunnel: http.ClientRequest | undefined;
    const deadline = setTimeout(() => {
      const e = Object.assign(new Error(`no answer from ${url}${direct ? '' : ` via ${req.proxy}`} within ${req.timeoutMs / 1000} s`), { code: 'ETIMEDOUT' });
      tunnel?.destroy(e);
      cr?.destroy(e);
      fail(e);
    }, req.timeoutMs);

    const start = (createConnection?: () => Duplex) => {
      if (done) return;
      let options: http.RequestOptions | https.RequestOptions;
      if (direct || createConnection) {
        options = {
          ...common,
          protocol: target.protocol, hostname: target.hostname.replace(/^\[|\]$/g, ''), port: target.port || (secure ? 443 : 80),
          path: `${target.pathname}${target.search}`,
          ...(createConnection
            ? { createConnection: createConnection as unknown as http.RequestOptions['createConnection'], agent: false }
            : { agent: agentFor(secure ? 'https' : 'http', req.ca) }),
          ...(secure ? { servername: tlsServername(target.hostname) } : {}),
        };
      } else {
        const p = proxyAddress(req.proxy);
        options = { ...common, protocol: 'http:', hostname: p.hostname, port: p.port, path: url, agent: agentFor('http', undefined) };
      }
      const r = (secure && (direct || createConnection) ? httpsModule().request : http.request)(options);
      cr = r;
      // Node may report a parse error after the answer was handed over (bytes past the body on a kept-alive
      // connection); this listener stays for the request's whole life, so no error can ever go unhandled.
      r.on('error', (e: Error) => {
        (e as { reusedSocket?: boolean }).reusedSocket = r.reusedSocket;
        if (!done) fail(e);
        else if (answer && !answer.complete) answer.destroy(e);
      });
      let answer: http.IncomingMessage | undefined;
      r.on('response', (res) => {
        answer = res;
        res.on('error', () => { /* surfaced to whoever reads the body */ });
        if (done) {
          res.destroy();
          return;
        }
        done = true;
        clearTimeout(deadline);
        let body: Readable;
        try {
          body = decoded(res, url);
        } catch (e) {
          res.destroy();
          reject(e);
          return;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, url });
      });
      r.end();
    };

    if (!secure || direct) {
      start();
      return;
    }
    // https through a proxy: a CONNECT tunnel (the proxy cannot cache what it cannot read), TLS end to end.
    const p = proxyAddress(req.proxy);
    const authority = `${target.hostname}:${target.port || 443}`;
    tunnel = http.request({ hostname: p.hostname, port: p.port, method: 'CONNECT', path: authority, headers: { host: authority }, agent: false, signal: req.signal });
    tunnel.on('error', fail);
    tunnel.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        fail(Object.assign(new Error(`proxy ${req.proxy} refused a tunnel to ${authority}: HTTP ${res.statusCode}`), { code: 'EPROXYTUNNEL', status: res.statusCode, headers: res.headers }));
        return;
      }
      start(() => tlsModule().connect({ socket, servername: tlsServername(target.hostname), ...trust(req.ca) }));
    });
    tunnel.end();
  });
}

/** SNI takes host names only, never IP literals. */
function tlsServername(hostname: string): string | undefined {
  const h = hostname.replace(/^\[|\]$/g, '');
  return /^[\d.]+$/.test(h) || h.includes(':') ? undefined : h;
}

/**
 * The body as the server meant it: nothing is asked for with Accept-Encoding, but a proxy may compress anyway.
 * Decoding errors are bad data (the no-cache retry, then the next server), as a hash mismatch would be.
 */
function decoded(res: http.IncomingMessage, url: string): Readable {
  const enc = String(res.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (enc === '' || enc === 'identity') return res;
  const zlib = lazyZlib();
  const decoder = enc === 'gzip' || enc === 'x-gzip' ? zlib.createGunzip() : enc === 'deflate' ? zlib.createInflate() : enc === 'br' ? zlib.createBrotliDecompress() : undefined;
  if (!decoder) throw ioError('decompression', `${url} came with Content-Encoding '${enc}', which this client cannot undo`);
  // pipeline ties the two: an error of either, or the reader destroying the decoder, ends both.
  lazyStream().pipeline(res, decoder, () => { /* surfaced to whoever reads the body */ });
  return decoder;
}
