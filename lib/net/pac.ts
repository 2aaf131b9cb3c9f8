/**
 * `auto` in CVMFS_HTTP_PROXY: the site's proxies discovered through proxy auto-config (PAC), as the genuine client
 * does it (its wpad.cc). Opportunistic nodes often know no squid of their own; WLCG's WPAD service and sites'
 * `http://wpad/wpad.dat` tell them which to use.
 *
 * - Each group of CVMFS_HTTP_PROXY that is exactly `auto` is replaced by what discovery finds: the `http_proxy`
 *   environment variable if it is set, else the first PAC file of CVMFS_PAC_URLS (`;`-separated, `auto` standing
 *   for http://wpad/wpad.dat) that downloads, runs and names a proxy.
 * - PAC files are fetched without a proxy. The script is asked FindProxyForURL for each server's
 *   `.cvmfspublished`; the first server's answer is used. `PROXY host:port` entries become proxies, `DIRECT`
 *   stays, SOCKS and anything else are skipped, and each entry becomes a group of its own (tried in order).
 * - An `auto` that finds nothing is dropped. When that happens, the proxies last discovered for this repository
 *   (kept in the cache directory) are used instead of the whole setting. When discovery works, they are written
 *   there.
 * - The script runs in a sandbox (pac-sandbox.ts).
 * @module
 */
import { promises as fsp } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { networkInterfaces, hostname } from 'node:os';
import { debug } from '../debug.js';
import { VERSION } from '../version.js';
import { httpGet } from './http.js';
import { runPac } from './pac-sandbox.js';

/** Where `auto` in CVMFS_PAC_URLS points. */
export const AUTO_PAC_LOCATION = 'http://wpad/wpad.dat';

/** PAC files larger than this are refused (WLCG's are a few KiB). */
const MAX_PAC_BYTES = 1024 * 1024;

/**
 * A FindProxyForURL answer (`PROXY a:3128; PROXY b:3128; DIRECT`) in CVMFS_HTTP_PROXY's syntax (`a:3128;b:3128;DIRECT`).
 * An empty answer means DIRECT; an answer with nothing usable gives the empty string.
 */
export function pacAnswerToProxies(answer: string): string {
  if (answer === '') return 'DIRECT';
  const out: string[] = [];
  for (const raw of answer.split(';')) {
    const entry = raw.replace(/[ \t]/g, '');
    if (/^SOCKS/i.test(entry)) {
      debug(`PAC: no SOCKS proxies; skipped ${entry}`);
      continue;
    }
    if (entry === 'DIRECT') out.push(entry);
    else if (/^PROXY./i.test(entry)) out.push(entry.slice(5));
    else if (entry !== '') debug(`PAC: not a proxy: ${entry}`);
  }
  return out.join(';');
}

/** How discovery is done. */
export interface DiscoveryOptions {
  /** The Stratum-1 URLs (the PAC script is asked about each). */
  servers: readonly string[];
  /** CVMFS_PAC_URLS. */
  pacUrls?: string;
  /** The `http_proxy` environment variable, which takes PAC's place when set. */
  httpProxy?: string;
  /** Timeout for fetching a PAC file (the direct one: CVMFS_TIMEOUT_DIRECT), ms. */
  timeoutMs: number;
  /** Where the last discovered proxies are kept, or nothing to keep none. */
  fallbackFile?: string;
  /** Resolves names for the script's DNS functions (default the system's resolver, IPv4). */
  lookup?: (name: string) => Promise<string | null>;
}

/**
 * CVMFS_HTTP_PROXY with each `auto` group replaced by the discovered proxies (see the module's text). A value
 * without `auto` is returned as it is. The empty string means nothing was found and nothing was kept.
 */
export async function resolveProxyDescription(value: string, o: DiscoveryOptions): Promise<string> {
  if (!value.includes('auto')) return value;
  const groups = value.split(';');
  let emptyAuto = false;
  const out: string[] = [];
  for (const g of groups) {
    if (g.trim() !== 'auto') {
      out.push(g);
      continue;
    }
    const found = await autoProxy(o);
    if (found) out.push(found);
    else emptyAuto = true;
  }
  const discovered = out.join(';');
  if (o.fallbackFile) {
    if (emptyAuto) {
      const kept = (await fsp.readFile(o.fallbackFile, 'utf8').catch(() => '')).trim();
      if (kept) {
        debug(`proxy discovery failed; using the proxies kept in ${o.fallbackFile}: ${kept}`);
        return kept;
      }
    } else {
      const tmp = `${o.fallbackFile}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, discovered).then(() => fsp.rename(tmp, o.fallbackFile!)).catch((e: unknown) => debug(`cannot keep the discovered proxies in ${o.fallbackFile}: ${(e as Error).message}`));
    }
  }
  return discovered;
}

/** What one `auto` stands for: `http_proxy`, else the first PAC file that names proxies; '' for nothing. */
async function autoProxy(o: DiscoveryOptions): Promise<string> {
  if (o.httpProxy) {
    debug(`auto proxy: ${o.httpProxy} from the http_proxy environment variable`);
    return o.httpProxy;
  }
  const urls = (o.pacUrls ?? '').split(';').map((u) => u.trim()).filter(Boolean).map((u) => (u === 'auto' ? AUTO_PAC_LOCATION : u));
  for (const url of urls) {
    try {
      const script = await fetchPac(url, o.timeoutMs);
      const queries = o.servers.map((s) => ({ url: `${s}/.cvmfspublished`, host: hostOf(s) }));
      const answers = await runPac(script, queries, { lookup: o.lookup ?? lookupIpv4, myIp: myIpAddress, callTimeoutMs: 1000, deadlineMs: Math.max(5000, o.timeoutMs) });
      const first = answers[0];
      if (first === null || first === undefined) throw new Error('FindProxyForURL returned no string');
      const proxies = pacAnswerToProxies(first);
      if (!proxies) throw new Error(`no usable proxy in its answer ${JSON.stringify(first.slice(0, 200))}`);
      for (let i = 1; i < answers.length; i++) {
        const other = answers[i] === null ? '' : pacAnswerToProxies(answers[i]!);
        if (other !== proxies) debug(`PAC ${url}: ${o.servers[i]} would use ${other}, not ${proxies}; using ${proxies}`);
      }
      debug(`auto proxy: ${proxies} from the PAC file ${url}`);
      return proxies;
    } catch (e) {
      debug(`PAC file ${url}: ${(e as Error).message}`);
    }
  }
  return '';
}

/** The host name of a server URL, as the genuine client passes it to FindProxyForURL. */
function hostOf(server: string): string {
  try {
    return new URL(server).hostname.replace(/^\[|\]$/g, '') || 'localhost';
  } catch {
    return 'localhost';
  }
}

async function fetchPac(url: string, timeoutMs: number): Promise<string> {
  const res = await httpGet({ url, proxy: 'DIRECT', timeoutMs, headers: { 'user-agent': `ucvmfs ${VERSION}` } });
  if (res.status !== 200) {
    res.body.destroy();
    throw new Error(`HTTP ${res.status}`);
  }
  const parts: Buffer[] = [];
  let n = 0;
  const deadline = setTimeout(() => res.body.destroy(new Error(`not received within ${timeoutMs} ms`)), timeoutMs);
  try {
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > MAX_PAC_BYTES) throw new Error(`larger than ${MAX_PAC_BYTES} bytes`);
      parts.push(c as Buffer);
    }
  } finally {
    clearTimeout(deadline);
    res.body.destroy();
  }
  return Buffer.concat(parts).toString('utf8');
}

async function lookupIpv4(name: string): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      lookup(name, { family: 4 }).then((r) => r.address),
      new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 2000))),
    ]);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** This machine's address as pacparser gives it (the host name resolved), else its first external IPv4 address. */
async function myIpAddress(): Promise<string> {
  const byName = await lookupIpv4(hostname());
  if (byName && !byName.startsWith('127.')) return byName;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return byName ?? '127.0.0.1';
}
