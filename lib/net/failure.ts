/**
 * Why a request failed, in the genuine client's classes, which decide what it does next: a host error moves to
 * the next Stratum-1, a proxy error to the next proxy, a transfer error (connection, too slow, cut short) is
 * first retried on the same URL after a backoff, bad data (hash or zlib) once more on the same URL with
 * no-cache headers, and anything else (a cache this machine cannot write, too) ends the request.
 *
 * HTTP statuses: 404, 400, 5xx and a redirect not followed are the host's (whatever proxy passed them on), 429 is
 * a transfer error of the host, any other non-2xx is the proxy's when there is one; a response that a squid made
 * itself (`X-Squid-Error`, or `Proxy-Status` with `error=`) is the proxy's.
 *
 * Where this differs from the genuine client, on purpose: an answer that is not HTTP (a garbage status line,
 * headers past 64 KiB, a broken chunk header before the body) and a TLS handshake or certificate that fails are
 * errors of whoever sent them, the host (or the proxy that sent the bytes), and move to the next one at once.
 * The genuine client gives up on the first kind (curl's WEIRD_SERVER_REPLY and SSL_CONNECT_ERROR end in its
 * kFailOther) and retries the same URL after a backoff on a bad certificate; neither can go better a second time.
 * @module
 */
import { CvmfsError } from '../errors.js';

/** The class of a failed request. */
export type FailureKind = 'host-resolve' | 'host-http' | 'host-transfer' | 'proxy-resolve' | 'proxy-http' | 'proxy-transfer' | 'bad-data' | 'other';

/** A non-2xx HTTP answer. */
export class HttpStatusError extends Error {
  constructor(readonly status: number, readonly url: string, readonly headers: Readonly<Record<string, string | string[] | undefined>> = {}) {
    super(`HTTP ${status} from ${url}`);
    this.name = 'HttpStatusError';
  }
}

/** A transfer slower than the low-speed limit for the whole timeout (curl's LOW_SPEED_LIMIT/TIME). */
export class TooSlowError extends Error {
  constructor(readonly url: string, limit: number, seconds: number) {
    super(`transfer from ${url} slower than ${limit} B/s for ${seconds} s`);
    this.name = 'TooSlowError';
  }
}

const REDIRECT = new Set([301, 302, 303, 307, 308]);

/** OpenSSL's and Node's codes for a handshake or a certificate that failed. */
function isTlsFailure(code: string): boolean {
  return code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('CERT_') || code.includes('_CERT') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' || code === 'EPROTO';
}

function codes(e: unknown): string[] {
  const out: string[] = [];
  for (let x = e as { code?: unknown; cause?: unknown } | undefined, i = 0; x && i < 5; x = x.cause as typeof x, i++) {
    if (typeof x.code === 'string') out.push(x.code);
  }
  return out;
}

/** Classifies an error of a request made through `proxy` (`DIRECT` for none). */
export function classify(e: unknown, proxy: string): FailureKind {
  const viaProxy = proxy !== 'DIRECT';
  if (e instanceof HttpStatusError) {
    const h = e.headers;
    if (viaProxy && (h['x-squid-error'] !== undefined || /error=/.test(String(h['proxy-status'] ?? '')))) return 'proxy-http';
    if (e.status === 429) return 'host-transfer';
    if (REDIRECT.has(e.status)) return 'host-http';
    if (e.status === 404 || e.status === 400 || (e.status >= 500 && e.status < 600)) return 'host-http';
    return viaProxy ? 'proxy-http' : 'host-http';
  }
  if (e instanceof CvmfsError && (e.reason === 'hash-mismatch' || e.reason === 'decompression')) return 'bad-data';
  // A full or unwritable cache is this machine's fault: no server or proxy does better, and none is to blame.
  if (e instanceof CvmfsError && e.reason === 'cache-write') return 'other';
  const transfer = viaProxy ? 'proxy-transfer' : 'host-transfer';
  if (e instanceof TooSlowError) return transfer;
  if (e instanceof CvmfsError && e.reason === 'download') return transfer; // cut short
  const c = codes(e);
  if (c.some((x) => x === 'ENOTFOUND' || x === 'EAI_AGAIN' || x === 'EAI_NONAME')) {
    // Through a proxy, the proxy's own name is what this client resolves.
    return viaProxy ? 'proxy-resolve' : 'host-resolve';
  }
  if (c.includes('EPROXYTUNNEL')) return 'proxy-http';
  if (c.some((x) => x.startsWith('HPE_'))) return viaProxy ? 'proxy-http' : 'host-http';
  if (c.some(isTlsFailure)) return 'host-http';
  if (c.some((x) => x === 'ETOOMANYREDIRECTS' || /^E(CONN|PIPE|HOSTUNREACH|NETUNREACH|TIMEDOUT|ADDRNOTAVAIL|PROTO)/.test(x))) return transfer;
  return 'other';
}

/** Whether a failure of this kind may be retried on the same URL after a backoff. */
export function isTransfer(kind: FailureKind): boolean {
  return kind === 'host-transfer' || kind === 'proxy-transfer';
}
