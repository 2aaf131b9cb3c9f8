/**
 * Runs a proxy auto-config (PAC) script, which comes from the network and is hostile until proven otherwise, where
 * it can do no harm: in a fresh V8 context (no `require`, no `process`, no code generation from strings), inside a
 * worker thread with its own small heap, under a time limit per call and a deadline for the whole evaluation. The
 * worker is terminated at the deadline or when its heap fills; only strings cross back.
 *
 * PAC's DNS functions are synchronous, Node's resolver is not: a script is run, the names it asked for and that
 * were not known are resolved, and it is run again with them, a few rounds at most (a script asking for ever new
 * names gets null for the rest, as for a name that does not resolve).
 * @module
 */
import { Worker } from 'node:worker_threads';

/** The PAC functions (Netscape's, as browsers and pacparser provide them), defined inside the sandbox. */
const PAC_LIBRARY = String.raw`
var __missing = [];
function __isIp(s) { return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) && s.split('.').every(function (x) { return +x <= 255; }); }
function __addr(ip) { var p = ip.split('.'); return ((+p[0] << 24) | (+p[1] << 16) | (+p[2] << 8) | +p[3]) >>> 0; }
function dnsResolve(host) {
  host = String(host);
  if (__isIp(host)) return host;
  var k = host.toLowerCase();
  if (Object.prototype.hasOwnProperty.call(__hosts, k)) return __hosts[k];
  if (__missing.indexOf(k) < 0) __missing.push(k);
  return null;
}
function myIpAddress() {
  if (__myIp === null && __missing.indexOf('<my-address>') < 0) __missing.push('<my-address>');
  return __myIp === null ? '127.0.0.1' : __myIp;
}
function isResolvable(host) { return dnsResolve(host) !== null; }
function isPlainHostName(host) { return String(host).indexOf('.') < 0; }
function dnsDomainIs(host, domain) {
  host = String(host); domain = String(domain);
  return host.length >= domain.length && host.substring(host.length - domain.length) === domain;
}
function localHostOrDomainIs(host, hostdom) {
  host = String(host); hostdom = String(hostdom);
  return host === hostdom || hostdom.lastIndexOf(host + '.', 0) === 0;
}
function dnsDomainLevels(host) { return String(host).split('.').length - 1; }
function isInNet(host, pattern, mask) {
  var ip = dnsResolve(host);
  pattern = String(pattern); mask = String(mask);
  if (ip === null || !__isIp(pattern) || !__isIp(mask)) return false;
  var m = __addr(mask);
  return ((__addr(ip) & m) >>> 0) === ((__addr(pattern) & m) >>> 0);
}
function shExpMatch(str, shexp) {
  var re = String(shexp).replace(/[.+^(){}|$[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp('^' + re + '$').test(String(str));
}
function alert() {}
var __days = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
var __months = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
function __args(a) {
  var list = Array.prototype.slice.call(a);
  var gmt = list.length > 0 && list[list.length - 1] === 'GMT';
  if (gmt) list.pop();
  return { list: list, gmt: gmt, now: new Date(__now) };
}
function __in(lo, x, hi) { return lo <= hi ? lo <= x && x <= hi : x >= lo || x <= hi; }
function weekdayRange() {
  var a = __args(arguments);
  var today = a.gmt ? a.now.getUTCDay() : a.now.getDay();
  var d1 = __days.indexOf(String(a.list[0]).toUpperCase());
  var d2 = a.list.length > 1 ? __days.indexOf(String(a.list[1]).toUpperCase()) : d1;
  if (d1 < 0 || d2 < 0) return false;
  return __in(d1, today, d2);
}
function timeRange() {
  var a = __args(arguments), l = a.list.map(Number), n = a.now;
  var s = (a.gmt ? n.getUTCHours() : n.getHours()) * 3600 + (a.gmt ? n.getUTCMinutes() : n.getMinutes()) * 60 + (a.gmt ? n.getUTCSeconds() : n.getSeconds());
  if (l.length === 1) return Math.floor(s / 3600) === l[0];
  if (l.length === 2) return __in(l[0] * 3600, s, l[1] * 3600 + 3599);
  if (l.length === 4) return __in(l[0] * 3600 + l[1] * 60, s, l[2] * 3600 + l[3] * 60 + 59);
  if (l.length === 6) return __in(l[0] * 3600 + l[1] * 60 + l[2], s, l[3] * 3600 + l[4] * 60 + l[5]);
  return false;
}
function dateRange() {
  var a = __args(arguments), l = a.list, n = a.now;
  var day = a.gmt ? n.getUTCDate() : n.getDate(), mon = a.gmt ? n.getUTCMonth() : n.getMonth(), year = a.gmt ? n.getUTCFullYear() : n.getFullYear();
  // Each argument is a day (1-31), a month name or a year; the first half bounds from below, the second from above.
  function kind(v) { var m = __months.indexOf(String(v).toUpperCase()); if (m >= 0) return ['m', m]; v = Number(v); return v >= 1 && v <= 31 ? ['d', v] : ['y', v]; }
  function key(parts, fill) {
    var k = { y: fill.y, m: fill.m, d: fill.d };
    parts.forEach(function (p) { k[p[0]] = p[1]; });
    return k.y * 10000 + k.m * 100 + k.d;
  }
  var parts = l.map(kind);
  var today = year * 10000 + mon * 100 + day;
  if (parts.length === 1) { var p = parts[0]; return p[0] === 'd' ? day === p[1] : p[0] === 'm' ? mon === p[1] : year === p[1]; }
  if (parts.length % 2) return false;
  var lo = parts.slice(0, parts.length / 2), hi = parts.slice(parts.length / 2);
  function has(ps, t) { return ps.some(function (p) { return p[0] === t; }); }
  var hasYear = has(lo, 'y');
  // A bound without a month is this month, unless it names a year: then the year's first or last month.
  var from = key(lo, { y: year, m: has(lo, 'y') ? 0 : mon, d: 1 });
  var to = key(hi, { y: year, m: has(hi, 'y') ? 11 : mon, d: 31 });
  return hasYear ? from <= today && today <= to : __in(from % 10000, today % 10000, to % 10000);
}
`;

/** The worker: one fresh context per message; answers with strings only. */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const vm = require('node:vm');
const LIB = ${JSON.stringify(PAC_LIBRARY)};
parentPort.on('message', (m) => {
  let answer;
  try {
    const ctx = vm.createContext(Object.create(null), { codeGeneration: { strings: false, wasm: false }, microtaskMode: 'afterEvaluate' });
    const run = (code, filename) => vm.runInContext(code, ctx, { timeout: m.timeoutMs, filename });
    run('var __hosts = JSON.parse(' + JSON.stringify(JSON.stringify(m.hosts)) + '); var __myIp = ' + JSON.stringify(m.myIp) + '; var __now = ' + Number(m.now) + ';' + LIB, 'pac-library');
    run(m.script, 'proxy.pac');
    const results = m.queries.map((q) => {
      const r = run('FindProxyForURL(' + JSON.stringify(q.url) + ', ' + JSON.stringify(q.host) + ')', 'query');
      return typeof r === 'string' ? r : null;
    });
    const missing = run('__missing.slice(0, 16).join(" ")', 'query');
    answer = { results, missing: typeof missing === 'string' && missing ? missing.split(' ') : [] };
  } catch (e) {
    // What the script threw may be anything of its own (an error of its realm, an object with getters): only a
    // primitive or an own data property is read, so that none of its code runs here.
    const own = e !== null && typeof e === 'object' ? Object.getOwnPropertyDescriptor(e, 'message') : undefined;
    const text = typeof e !== 'object' || e === null ? String(e) : own && typeof own.value === 'string' ? own.value : 'it threw an object that is not an error';
    answer = { error: text.slice(0, 300) };
  }
  parentPort.postMessage(answer);
});
`;

/** One question to a PAC script: FindProxyForURL(url, host). */
export interface PacQuery {
  url: string;
  host: string;
}

/** How a PAC script is run. */
export interface PacOptions {
  /** Each call into the script (loading it, each FindProxyForURL) may take this long. Default 1 000 ms. */
  callTimeoutMs?: number;
  /** The whole evaluation, DNS rounds included, ends by then. Default 10 000 ms. */
  deadlineMs?: number;
  /** Resolves a host name to an IPv4 address, or null. */
  lookup: (name: string) => Promise<string | null>;
  /** What myIpAddress() returns, asked for only if the script calls it. */
  myIp: () => Promise<string>;
  /** The clock the date and time functions read (ms since the epoch). Default now. */
  now?: number;
}

const DNS_ROUNDS = 4;

/**
 * Runs `script` and asks it FindProxyForURL for each query. Resolves to its answers (null where it returned
 * something that is not a string); rejects when the script does not load, throws, runs too long or takes too much
 * memory.
 */
export async function runPac(script: string, queries: readonly PacQuery[], opts: PacOptions): Promise<(string | null)[]> {
  const callTimeoutMs = opts.callTimeoutMs ?? 1000;
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8, codeRangeSizeMb: 16, stackSizeMb: 2 },
    env: {},
    stdout: true,
    stderr: true,
  });
  worker.unref();
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the PAC script did not finish within ${opts.deadlineMs ?? 10_000} ms`)), opts.deadlineMs ?? 10_000);
    worker.once('error', (e) => reject(new Error(`the PAC script failed: ${e.message}`)));
    worker.once('exit', (code) => reject(new Error(`the PAC script's sandbox ended (exit code ${code})`)));
  });
  failed.catch(() => undefined);
  let myIp: string | null = null;
  const ask = (hosts: Record<string, string | null>) => Promise.race([failed, new Promise<{ results?: (string | null)[]; missing?: string[]; error?: string }>((resolve) => {
    worker.once('message', resolve);
    worker.postMessage({ script, queries, hosts, myIp, now: opts.now ?? Date.now(), timeoutMs: callTimeoutMs });
  })]);
  try {
    const hosts: Record<string, string | null> = Object.create(null) as Record<string, string | null>;
    for (let round = 1; ; round++) {
      const a = await ask(hosts);
      if (a.error !== undefined) throw new Error(`the PAC script failed: ${a.error}`);
      let missing = (a.missing ?? []).filter((n) => typeof n === 'string' && n.length > 0 && n.length < 256 && !(n in hosts));
      if (missing.length === 0 || round === DNS_ROUNDS) return a.results ?? [];
      if (missing.includes('<my-address>')) {
        myIp = await opts.myIp().catch(() => '127.0.0.1');
        missing = missing.filter((n) => n !== '<my-address>');
      }
      const found = await Promise.all(missing.map((n) => opts.lookup(n).catch(() => null)));
      missing.forEach((n, i) => (hosts[n] = found[i] ?? null));
    }
  } finally {
    clearTimeout(timer);
    void worker.terminate();
  }
}
