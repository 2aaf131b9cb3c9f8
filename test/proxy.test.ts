/**
 * Proxies as sites run them: a real squid (Debian's) started here on 127.0.0.1, reached through a proxy chain
 * whose first group is dead; the second read of an object is a squid hit, read from squid's own access log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openRepository } from '../lib/index.js';
import { FIXTURES, keyOf, readTruth, serve, tempDir } from './helpers.js';
import type { RepositoryServer } from '../lib/serve.js';
import { faultProxy } from './fault-proxy.js';
import { freePort, SQUID, startSquid, type Squid } from './squid.js';
import { hostileServer } from './hostile-server.js';

const FQRN = 'fixture.test.example.org';
let squidUrl = '';
let squidDir = '';
let server: RepositoryServer;
let squid: Squid | undefined;

before(async () => {
  server = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  if (!SQUID) return;
  squid = await startSquid(tempDir('ucvmfs-squid-'));
  squidUrl = squid.url;
  squidDir = squid.dir;
});

after(async () => {
  squid?.stop();
  await server.close();
});

test('through a proxy chain with a dead first group to a real squid; the second read is a squid hit; user.proxy says which', { skip: SQUID ? false : 'squid not installed (.ci/run installs it)' }, async () => {
  const truth = readTruth(FQRN);
  const dead = `http://127.0.0.1:${await freePort()}`;
  const proxies = `${dead}|${dead};${squidUrl};DIRECT`;
  const open = (cacheDir: string) => openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir, proxies });
  const a = await open(tempDir());
  const p = '/small/random_64k.bin';
  try {
    assert.equal(createHash('sha1').update((await a.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1);
    assert.equal((await a.fs.getxattr('/', 'user.proxy')).toString(), squidUrl);
    assert.ok(a.stats().failovers >= 1, 'the dead proxies were tried first');
  } finally {
    a.close();
  }
  const b = await open(tempDir());
  try {
    assert.equal(createHash('sha1').update((await b.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1);
  } finally {
    b.close();
  }
  const hash = truth.entries[p]!.magic!['user.hash']!;
  await new Promise((r) => setTimeout(r, 300)); // squid writes its log line after the reply
  const lines = readFileSync(join(squidDir, 'access.log'), 'utf8').split('\n').filter((l) => l.includes(`${hash.slice(0, 2)}/${hash.slice(2)}`));
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0]!, /TCP_MISS\/200/);
  assert.match(lines[1]!, /TCP_(MEM_)?HIT\/200/);
});

test('faults between client and squid: a connection reset mid-body moves to the next proxy; data right', { skip: SQUID ? false : 'squid not installed (.ci/run installs it)' }, async () => {
  const truth = readTruth(FQRN);
  const squidPort = Number(new URL(squidUrl).port);
  const bad = await faultProxy(squidPort, 'reset');
  const badProxy = new URL(bad.url).origin;
  try {
    const repo = await openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), proxies: `${badProxy};${squidUrl}`, timeoutMs: 2000, maxRetries: 0 });
    try {
      for (const p of ['/small/random_64k.bin', '/big/text_20M.txt']) {
        assert.equal(createHash('sha1').update((await repo.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1, p);
      }
      assert.ok(repo.stats().proxyFailovers >= 1, 'the spoiling proxy was left');
      assert.equal(repo.stats().hostFailovers, 0, 'a proxy fault does not blame the server');
      assert.equal((await repo.fs.getxattr('/', 'user.proxy')).toString(), squidUrl);
    } finally {
      repo.close();
    }
  } finally {
    bad.close();
  }
});

test('a server squid cannot reach: squid\'s own error page moves to the next server, through squid again', { skip: SQUID ? false : 'squid not installed (.ci/run installs it)' }, async () => {
  const truth = readTruth(FQRN);
  const dead = `http://127.0.0.1:${await freePort()}/cvmfs/@fqrn@`;
  const repo = await openRepository(FQRN, { serverUrls: [dead, `${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), proxies: squidUrl, timeoutMs: 3000, maxRetries: 0 });
  try {
    const p = '/small/hello.txt';
    assert.equal(createHash('sha1').update((await repo.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1);
    assert.ok(repo.stats().hostFailovers >= 1, 'moved to the next server');
    assert.equal((await repo.fs.getxattr('/', 'user.proxy')).toString(), squidUrl, 'still through squid');
    await new Promise((r) => setTimeout(r, 300));
    const port = new URL(dead).port;
    assert.match(readFileSync(join(squidDir, 'access.log'), 'utf8'), new RegExp(`TCP_MISS/503 .*127\\.0\\.0\\.1:${port}/`), 'squid answered for the dead server');
  } finally {
    repo.close();
  }
});

// --- `auto`: proxies discovered through a PAC file -------------------------------------------------------------

/** Serves `files` (name → text) over HTTP on 127.0.0.1; its URL for one of them. */
async function servePac(files: Record<string, string>): Promise<{ url: (name: string) => string; close: () => Promise<void> }> {
  const dir = tempDir('ucvmfs-pac-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const s = await serve({ 'site.example.org': dir });
  return { url: (name) => `${s.url}/site.example.org/${name}`, close: () => s.close() };
}

/** Runs `fn` with these environment variables set (undefined: removed), then puts them back. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  set(vars);
  try {
    return await fn();
  } finally {
    set(saved);
  }
}

test('CVMFS_HTTP_PROXY=auto: the site squid named by a PAC file is used; the proxies found are kept for when discovery fails', { skip: SQUID ? false : 'squid not installed (.ci/run installs it)' }, async () => {
  const truth = readTruth(FQRN);
  const squidHostPort = squidUrl.replace(/^http:\/\//, '');
  // The kind of script sites publish: their own network through the squid, written as host:port, DIRECT after it.
  const pac = `function FindProxyForURL(url, host) {
    if (isInNet(dnsResolve(host), '127.0.0.0', '255.0.0.0') && shExpMatch(url, '*/cvmfs/*/.cvmfspublished') && dnsDomainLevels(host) === 3)
      return 'PROXY ${squidHostPort}; SOCKS 127.0.0.1:1; DIRECT';
    return 'DIRECT';
  }`;
  const site = await servePac({ 'wpad.dat': pac, 'loop.dat': 'function FindProxyForURL() { for (;;) {} }', 'hog.dat': 'var a = []; for (;;) a.push(new Array(1e6).fill(1));' });
  const dead = `http://127.0.0.1:${await freePort()}/wpad.dat`;
  const cacheDir = tempDir();
  const p = '/small/random_64k.bin';
  const open = (cache: string, proxies = 'auto;DIRECT') => openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: cache, proxies });
  const sha1 = async (r: Awaited<ReturnType<typeof open>>) => createHash('sha1').update((await r.fs.readFile(p)) as Buffer).digest('hex');
  try {
    await withEnv({ http_proxy: undefined, CVMFS_PAC_URLS: `${site.url('missing.dat')};${dead};${site.url('wpad.dat')}` }, async () => {
      // The first two PAC URLs fail (404, nothing listening); the third names the squid.
      const a = await open(cacheDir);
      try {
        assert.equal(await sha1(a), truth.entries[p]!.sha1);
        assert.equal((await a.fs.getxattr('/', 'user.proxy')).toString(), squidHostPort);
        assert.equal(a.stats().failovers, 0);
      } finally {
        a.close();
      }
      await new Promise((r) => setTimeout(r, 300));
      const hash = truth.entries[p]!.magic!['user.hash']!;
      assert.ok(readFileSync(join(squidDir, 'access.log'), 'utf8').includes(`${hash.slice(0, 2)}/${hash.slice(2)}`), 'the object came through squid');
      assert.equal(readFileSync(join(cacheDir, 'shared', `proxies.${FQRN}`), 'utf8'), `${squidHostPort};DIRECT;DIRECT`);
    });
    // Discovery fails: the proxies kept in this cache are used; in a fresh cache `auto` is dropped (DIRECT after
    // it is used), and `auto` alone is an error that says so.
    await withEnv({ http_proxy: undefined, CVMFS_PAC_URLS: dead }, async () => {
      const b = await open(cacheDir);
      try {
        assert.equal(await sha1(b), truth.entries[p]!.sha1);
        assert.equal((await b.fs.getxattr('/', 'user.proxy')).toString(), squidHostPort);
      } finally {
        b.close();
      }
      const c = await open(tempDir());
      try {
        assert.equal(await sha1(c), truth.entries[p]!.sha1);
        assert.equal((await c.fs.getxattr('/', 'user.proxy')).toString(), 'DIRECT');
      } finally {
        c.close();
      }
      await assert.rejects(open(tempDir(), 'auto'), (e: { code?: string; reason?: string; message: string }) => {
        assert.equal(e.code, 'EIO');
        assert.equal(e.reason, 'proxy-discovery');
        assert.match(e.message, /failed to discover HTTP proxy servers/);
        return true;
      });
    });
    // A script that never returns, and one that eats memory: each fails alone, within about its time limit, and
    // the process goes on (DIRECT after `auto`).
    for (const bad of ['loop.dat', 'hog.dat']) {
      await withEnv({ http_proxy: undefined, CVMFS_PAC_URLS: site.url(bad) }, async () => {
        const t0 = Date.now();
        const d = await open(tempDir());
        try {
          assert.ok(Date.now() - t0 < 5000, `${bad}: gave up after ${Date.now() - t0} ms`);
          assert.equal(await sha1(d), truth.entries[p]!.sha1);
          assert.equal((await d.fs.getxattr('/', 'user.proxy')).toString(), 'DIRECT');
        } finally {
          d.close();
        }
      });
    }
    // http_proxy, when set, is what `auto` stands for (as in the genuine client); no PAC file is asked.
    await withEnv({ http_proxy: squidUrl, CVMFS_PAC_URLS: dead }, async () => {
      const e = await open(tempDir(), 'auto');
      try {
        assert.equal(await sha1(e), truth.entries[p]!.sha1);
        assert.equal((await e.fs.getxattr('/', 'user.proxy')).toString(), squidUrl);
      } finally {
        e.close();
      }
    });
  } finally {
    await site.close();
  }
});

test('PAC functions answer as the PAC convention defines them; the script cannot reach Node or generate code', async () => {
  const names: Record<string, string> = { 'cvmfs-stratum-one.cern.ch': '188.184.10.20' };
  const script = `function FindProxyForURL(url, host) {
    var escape = 'none';
    try { escape = this.constructor.constructor('return typeof process')(); } catch (e) { escape = 'blocked'; }
    return [
      shExpMatch(host, '*.cern.ch'), shExpMatch('a.b', 'a?b'), shExpMatch('a(b', 'a(b'), shExpMatch(host, '*.fnal.gov'),
      dnsDomainIs(host, '.cern.ch'), dnsDomainIs('cern.ch', '.cern.ch'), isPlainHostName('wpad'), isPlainHostName(host),
      dnsDomainLevels(host), localHostOrDomainIs('www', 'www.cern.ch'), localHostOrDomainIs('www.fnal.gov', 'www.cern.ch'),
      isInNet(host, '188.184.0.0', '255.255.0.0'), isInNet(host, '10.0.0.0', '255.0.0.0'), isResolvable('nowhere.invalid'),
      dnsResolve(host), myIpAddress(), weekdayRange('SUN', 'SAT'), weekdayRange('SAT', 'SUN', 'GMT'), timeRange(0, 23),
      timeRange(0, 0, 0, 0, 0, 1, 'GMT'), dateRange('JAN', 'DEC'), dateRange(2000, 2001), escape, typeof require, typeof eval('1')
    ].join(' ');
  }`;
  const { runPac } = await import('../lib/net/pac-sandbox.js');
  await assert.rejects(runPac(script, [{ url: 'http://cvmfs-stratum-one.cern.ch/cvmfs/x/.cvmfspublished', host: 'cvmfs-stratum-one.cern.ch' }], { lookup: async (n) => names[n] ?? null, myIp: async () => '10.1.2.3' }), /Code generation from strings disallowed/);
  const [answer] = await runPac(script.replace(", typeof eval('1')", ''), [{ url: 'http://cvmfs-stratum-one.cern.ch/cvmfs/x/.cvmfspublished', host: 'cvmfs-stratum-one.cern.ch' }], {
    lookup: async (n) => names[n] ?? null, myIp: async () => '10.1.2.3', now: Date.UTC(2026, 5, 6, 12, 0, 0), // a Saturday, noon
  });
  assert.equal(answer, 'true true true false true false true false 2 true false true false false 188.184.10.20 10.1.2.3 true true true false true false blocked undefined');
  const { pacAnswerToProxies } = await import('../lib/net/pac.js');
  assert.equal(pacAnswerToProxies('PROXY squid1.example.org:3128; PROXY\thttp://squid2:3128 ;SOCKS5 s:1080; HTTPS x:443; DIRECT'), 'squid1.example.org:3128;http://squid2:3128;DIRECT');
  assert.equal(pacAnswerToProxies(''), 'DIRECT');
  assert.equal(pacAnswerToProxies('SOCKS s:1'), '');
});

test('PAC files from servers that close after every answer, cut the body short, or never answer: the first is used, the others fail alone in bounded time', { skip: SQUID ? false : 'squid not installed (.ci/run installs it)' }, async () => {
  const truth = readTruth(FQRN);
  const squidHostPort = squidUrl.replace(/^http:\/\//, '');
  const dead = await freePort();
  const dir = tempDir('ucvmfs-pac-');
  // Half of this body is a complete script naming a dead proxy: a truncated download must never be run.
  writeFileSync(join(dir, 'cut.dat'), `function FindProxyForURL(url, host) { return 'PROXY 127.0.0.1:${dead}'; }\n//${'x'.repeat(4000)}\n`);
  writeFileSync(join(dir, 'wpad.dat'), `function FindProxyForURL(url, host) { return 'PROXY ${squidHostPort}'; }\n`);
  const servers = { close: await hostileServer(dir, 'close'), cut: await hostileServer(dir, 'fin-mid-body'), silent: await hostileServer(dir, 'silent') };
  const at = (s: keyof typeof servers, file: string) => `${servers[s].url.replace('@fqrn@', 'site')}/${file}`;
  const p = '/small/hello.txt';
  try {
    for (const [urls, maxMs] of [[at('close', 'wpad.dat'), 3000], [`${at('cut', 'cut.dat')};${at('close', 'wpad.dat')}`, 3000], [`${at('silent', 'wpad.dat')};${at('close', 'wpad.dat')}`, 5000]] as const) {
      await withEnv({ http_proxy: undefined, CVMFS_PAC_URLS: urls }, async () => {
        const t0 = Date.now();
        const r = await openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), proxies: 'auto;DIRECT', timeoutDirectMs: 1000 });
        try {
          assert.ok(Date.now() - t0 < maxMs, `${urls}: took ${Date.now() - t0} ms`);
          assert.equal((await r.fs.getxattr('/', 'user.proxy')).toString(), squidHostPort, urls);
          assert.equal(createHash('sha1').update((await r.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1);
        } finally {
          r.close();
        }
      });
    }
    assert.ok(servers.cut.requests.length >= 1 && servers.silent.requests.length >= 1, 'the failing PAC servers were asked');
  } finally {
    for (const s of Object.values(servers)) await s.close();
  }
});
