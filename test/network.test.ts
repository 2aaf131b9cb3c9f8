/**
 * The genuine client's failover rules, against real HTTP servers and forward proxies of ours on loopback: which
 * failures move to another proxy and which to another server, same-URL retries with backoff, the direct and
 * proxy timeouts, the low-speed limit against a slow drip, the proxy chain's groups, and the geo API.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openRepository } from '../lib/index.js';
import { Fetcher } from '../lib/net/fetcher.js';
import { ProxyChain } from '../lib/net/proxy-chain.js';
import { geoPath, geoQuery, parseGeoReply } from '../lib/net/geo.js';
import { FIXTURES, keyOf, readTruth, serve, tempDir } from './helpers.js';

const FQRN = 'fixture.test.example.org';
const P = '/small/random_64k.bin';

type Handler = (req: IncomingMessage, res: ServerResponse, forward: () => void) => void;

/** An HTTP server on `host` that runs `handler`, which may forward the request to `target` (a URL's origin). */
async function httpServer(handler: Handler, host = '127.0.0.1'): Promise<{ url: string; host: string; seen: string[]; close: () => void }> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(req.url ?? '');
    const forward = () => {
      // A forward proxy gets an absolute URL; a server, a path (then `x-target` says where to go).
      const target = new URL(req.url!.startsWith('http') ? req.url! : `${req.headers['x-target']}${req.url}`);
      const up = httpRequest(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end();
    };
    handler(req, res, forward);
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://${host}:${port}`, host, seen, close: () => { server.closeAllConnections(); server.close(); } };
}

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

test('proxy chain: random member per group, burned members, next group, DIRECT stripped when there is a fallback', () => {
  let r = 0;
  const seq = [0.9, 0.1, 0.5, 0.2];
  const rnd = () => seq[r++ % seq.length]!;
  const c = new ProxyChain('http://a:1|http://b:1;http://c:1', 'http://f:1;DIRECT', 300_000, rnd);
  assert.deepEqual(c.groups, [['http://a:1', 'http://b:1'], ['http://c:1'], ['http://f:1']]);
  assert.equal(c.size, 4);
  assert.equal(c.current, 'http://b:1', 'random pick 0.9 of two members');
  c.switchFrom('http://b:1');
  assert.equal(c.current, 'http://a:1', 'the other member');
  c.switchFrom('http://b:1');
  assert.equal(c.current, 'http://a:1', 'a failure of a proxy no longer in use changes nothing');
  c.switchFrom('http://a:1');
  assert.equal(c.current, 'http://c:1', 'group burned: next group');
  c.switchFrom('http://c:1');
  assert.equal(c.current, 'http://f:1');
  assert.equal(c.onFallback, true);
  c.maybeReset(Date.now() + 301_000);
  assert.ok(['http://a:1', 'http://b:1'].includes(c.current), 'back to the first group after the reset time');
  assert.deepEqual(new ProxyChain('http://a:1;DIRECT', 'http://f:1').groups, [['http://a:1'], ['http://f:1']], 'DIRECT dropped when a fallback exists');
  assert.deepEqual(new ProxyChain(undefined).groups, [['DIRECT']]);
});

test('geo API: request names sorted, requester escaped, replies accepted only as a permutation', () => {
  const q = geoQuery(['http://s2.example.org:8000/cvmfs/x', 'http://s1.example.org/cvmfs/x', 'http://a.example.org/cvmfs/x']);
  assert.deepEqual(q.names, ['a.example.org', 's1.example.org', 's2.example.org']);
  assert.deepEqual(q.serverOf, [2, 1, 0]);
  assert.equal(geoPath('squid.site.org', q.names), 'api/v1.0/geo/squid.site.org/a.example.org,s1.example.org,s2.example.org');
  assert.deepEqual(parseGeoReply('3,1,2\n', 3), [2, 0, 1]);
  for (const bad of ['1,1,2', '1,2', '1,2,4', '0,1,2', '1,,2', 'a,b,c', '', '1,2,3,4']) assert.equal(parseGeoReply(bad, 3), undefined, bad);
});

test('same-URL retries: CVMFS_MAX_RETRIES in all per request, backoff random up to CVMFS_BACKOFF_INIT then doubling to CVMFS_BACKOFF_MAX', async () => {
  const dead = await httpServer((_req, res) => res.destroy());
  try {
    const f = new Fetcher([`${dead.url}/cvmfs/${FQRN}`], { maxRetries: 3, backoffInitMs: 100, backoffMaxMs: 250, random: () => 0.5 });
    const t0 = Date.now();
    await assert.rejects(f.fetch('.cvmfspublished', async (b) => { for await (const _ of b) { /* drain */ } }), (e: Error & { code?: string; reason?: string }) => e.code === 'EIO' && e.reason === 'download');
    const took = Date.now() - t0;
    assert.equal(f.stats.requests, 4, 'the first try and three retries');
    assert.equal(f.stats.retries, 3);
    assert.equal(f.stats.backoffMs, 50 + 100 + 200, 'random half of 100, then doubled, then capped at 250 would be next');
    assert.ok(took >= 350, `slept the backoffs (${took} ms)`);
    assert.equal(dead.seen.length, 4);
  } finally {
    dead.close();
  }
});

test('a cold open asks for the whitelist and the manifest at once, then the root catalog and the certificate at once; a dead first server is left once', async () => {
  const good = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  // The first answer of each pair waits until the other of the pair is asked for (or 5 s have passed, so that a
  // client that asks one after the other gets its answers late, in an order the assertions below refuse).
  const kind = (url: string) => (url.endsWith('/.cvmfswhitelist') ? 'W' : url.endsWith('/.cvmfspublished') ? 'M' : /\/data\/.*C$/.test(url) ? 'C' : /\/data\/.*X$/.test(url) ? 'X' : '');
  const partner: Record<string, string> = { W: 'M', M: 'W', C: 'X', X: 'C' };
  const events: string[] = [];
  const asked = new Set<string>();
  const held = new Map<string, () => void>();
  const gate = await httpServer((req, res, forward) => {
    req.headers['x-target'] = new URL(good.url).origin;
    const k = kind(req.url!);
    const first = k !== '' && !asked.has(k);
    if (!first) return forward();
    asked.add(k);
    events.push(`asked ${k}`);
    const answer = () => {
      held.delete(k);
      events.push(`answered ${k}`);
      forward();
    };
    held.get(partner[k]!)?.();
    if (asked.has(partner[k]!)) return answer();
    const t = setTimeout(answer, 5000);
    held.set(k, () => { clearTimeout(t); answer(); });
  });
  const dead = await httpServer((_req, res) => res.destroy());
  try {
    const repo = await openRepository(FQRN, { serverUrls: [`${dead.url}/cvmfs/@fqrn@`, `${gate.url}/cvmfs/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), maxRetries: 0 });
    try {
      assert.equal((await repo.fs.stat('/small/hello.txt')).size, readTruth(FQRN).entries['/small/hello.txt']!.size);
      const at = (e: string) => events.indexOf(e);
      assert.ok(at('asked M') >= 0 && at('asked M') < at('answered W'), `the manifest asked for before the whitelist came: ${events.join(', ')}`);
      assert.ok(at('asked X') >= 0 && at('asked X') < at('answered C'), `the certificate asked for before the root catalog came: ${events.join(', ')}`);
      assert.equal(repo.stats().hostFailovers, 1, 'both requests failed on the dead server; it was left once');
      assert.ok(dead.seen.some((u) => u.endsWith('/.cvmfswhitelist')) && dead.seen.some((u) => u.endsWith('/.cvmfspublished')), dead.seen.join(', '));
    } finally {
      repo.close();
    }
  } finally {
    dead.close();
    gate.close();
    await good.close();
  }
});

test('CVMFS_TIMEOUT_DIRECT applies without a proxy, CVMFS_TIMEOUT through one; a slow drip is cut by the low-speed limit', async () => {
  const truth = readTruth(FQRN);
  const good = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  // Answers data objects with a body that drips 20 bytes every 100 ms (200 B/s, under 1024 B/s), forever.
  const drip = await httpServer((req, res, forward) => {
    req.headers['x-target'] = new URL(good.url).origin;
    if (!req.url!.includes('/data/')) return forward();
    res.writeHead(200, { 'content-length': '1000000' });
    const t = setInterval(() => res.write(Buffer.alloc(20)), 100);
    res.on('close', () => clearInterval(t));
  });
  const dripServer = `${drip.url}/cvmfs/@fqrn@`;
  try {
    // Direct: the 600 ms direct timeout, not the 20 s proxy one, decides.
    const t0 = Date.now();
    const repo = await openRepository(FQRN, {
      serverUrls: [dripServer, `${good.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(),
      timeoutMs: 20_000, timeoutDirectMs: 600, maxRetries: 0,
    });
    try {
      assert.equal(sha1((await repo.fs.readFile(P)) as Buffer), truth.entries[P]!.sha1);
      const took = Date.now() - t0;
      assert.ok(took < 5000, `cut after the direct timeout, not 20 s (${took} ms)`);
      assert.ok(repo.stats().hostFailovers >= 1);
      assert.equal((await repo.fs.getxattr('/', 'user.timeout_direct')).toString(), '1');
      assert.equal((await repo.fs.getxattr('/', 'user.timeout')).toString(), '20');
      assert.equal((await repo.fs.getxattr('/', 'user.nopen')).toString(), '1', 'one file opened');
    } finally {
      repo.close();
    }
  } finally {
    drip.close();
    await good.close();
  }
});

for (const [what, status, from] of [['a 503 from the server', 503, 'server'], ['a 404 from the server', 404, 'server'], ['a 502 from the proxy', 502, 'proxy']] as const) {
  test(`a proxy refusing (403) moves to the next proxy; ${what} moves to the next server through the same proxy`, async () => {
    const truth = readTruth(FQRN);
    const good = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
    const other = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
    // A proxy that refuses (its own policy), a proxy that forwards (or answers 502 for the first server's
    // objects, as a proxy does when it cannot get them), and a first server that may fail its objects.
    const firstPort = { value: 0 };
    const refusing = await httpServer((_req, res) => res.writeHead(403).end());
    const forwarding = await httpServer((req, res, forward) => {
      if (from === 'proxy' && req.url!.includes(`:${firstPort.value}/`) && req.url!.includes('/data/')) res.writeHead(502).end();
      else forward();
    });
    const first = await httpServer((req, res, forward) => {
      req.headers['x-target'] = new URL(good.url).origin;
      if (from === 'server' && req.url!.includes('/data/')) res.writeHead(status).end();
      else forward();
    });
    firstPort.value = Number(new URL(first.url).port);
    try {
      const repo = await openRepository(FQRN, {
        serverUrls: [`${first.url}/cvmfs/@fqrn@`, `${other.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(),
        proxies: `${refusing.url};${forwarding.url}`, timeoutMs: 2000, maxRetries: 0,
      });
      try {
        assert.equal(sha1((await repo.fs.readFile(P)) as Buffer), truth.entries[P]!.sha1);
        const st = repo.stats();
        assert.equal(st.proxyFailovers, 1, 'the refusing proxy was left for the next one, once');
        assert.ok(st.hostFailovers >= 1, `the ${status} moved to the next server`);
        assert.equal((await repo.fs.getxattr('/', 'user.proxy')).toString(), forwarding.url, `the ${status} did not blame the proxy`);
        assert.equal((await repo.fs.getxattr('/', 'user.host')).toString(), `${other.url}/${FQRN}`);
        // The whitelist and the manifest are asked for at once: each met the refusing proxy once, never again.
        assert.deepEqual(refusing.seen.map((u) => u.slice(u.lastIndexOf('/') + 1)).sort(), ['.cvmfspublished', '.cvmfswhitelist'], 'a proxy error is not retried on the same proxy');
      } finally {
        repo.close();
      }
    } finally {
      for (const s of [refusing, forwarding, first]) s.close();
      await good.close();
      await other.close();
    }
  });
}

test('CVMFS_USE_GEOAPI: the servers are ordered by a Stratum-1\'s geo API before the first request', async () => {
  const truth = readTruth(FQRN);
  const origin = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  // Three Stratum-1s on three loopback addresses; their geo API says 127.0.0.3 is nearest, then .2, then .1.
  const distance: Record<string, number> = { '127.0.0.1': 3, '127.0.0.2': 2, '127.0.0.3': 1 };
  let reply: ((names: string[]) => string) | undefined;
  const stratum1 = (host: string) => httpServer((req, res, forward) => {
    const m = /\/api\/v1\.0\/geo\/([^/]+)\/(.+)$/.exec(req.url!);
    if (m) {
      const names = m[2]!.split(',');
      res.writeHead(200).end(reply!(names));
      return;
    }
    req.headers['x-target'] = new URL(origin.url).origin;
    forward();
  }, host);
  const servers = await Promise.all(['127.0.0.1', '127.0.0.2', '127.0.0.3'].map(stratum1));
  try {
    reply = (names) => `${names.map((n, i) => [i + 1, distance[n]!] as const).sort((a, b) => a[1] - b[1]).map((x) => x[0]).join(',')}\n`;
    const cacheDir = tempDir();
    const open = () => openRepository(FQRN, { serverUrls: servers.map((s) => `${s.url}/cvmfs/@fqrn@`), publicKeys: [keyOf(FQRN)], cacheDir, useGeoApi: true, reuseCachedManifest: false });
    const repo = await open();
    try {
      assert.equal(sha1((await repo.fs.readFile(P)) as Buffer), truth.entries[P]!.sha1);
      assert.equal((await repo.fs.getxattr('/', 'user.host')).toString(), `${servers[2]!.url}/cvmfs/${FQRN}`);
      assert.deepEqual((await repo.fs.getxattr('/', 'user.host_list')).toString().split(';'), [2, 1, 0].map((i) => `${servers[i]!.url}/cvmfs/${FQRN}`));
      const geo = servers.flatMap((s) => s.seen).filter((u) => u.includes('/api/v1.0/geo/'));
      assert.equal(geo.length, 1, 'one Stratum-1 answered');
      const uuid = readFileSync(join(cacheDir, 'uuid'), 'utf8').trim();
      assert.equal(geo[0], `/cvmfs/${FQRN}/api/v1.0/geo/${uuid}/127.0.0.1,127.0.0.2,127.0.0.3`, 'no proxy: this client\'s id asks');
      assert.ok(servers[0]!.seen.every((u) => u.includes('/api/')) && servers[1]!.seen.every((u) => u.includes('/api/')), 'objects came from the nearest only');
    } finally {
      repo.close();
    }
    // An answer that is not a permutation is ignored: the configured order stays.
    reply = () => '1,1,2\n';
    const again = await open();
    try {
      await again.fs.readFile('/small/hello.txt');
      assert.equal((await again.fs.getxattr('/', 'user.host')).toString(), `${servers[0]!.url}/cvmfs/${FQRN}`);
    } finally {
      again.close();
    }
  } finally {
    for (const s of servers) s.close();
    await origin.close();
  }
});

test('AbortSignal: a stalled metadata call or read stops at once; a download another caller still wants goes on', async () => {
  const truth = readTruth(FQRN);
  const good = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  let stall = false;
  const held: (() => void)[] = [];
  const gate = await httpServer((req, _res, forward) => {
    req.headers['x-target'] = new URL(good.url).origin;
    if (stall && req.url!.includes('/data/')) held.push(forward); // answered only when released
    else forward();
  });
  const repo = await openRepository(FQRN, { serverUrls: [`${gate.url}/cvmfs/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), timeoutMs: 30_000 });
  try {
    stall = true;
    // stat into a nested catalog that is not loaded yet: its download stalls; the caller stops waiting.
    const t0 = Date.now();
    await assert.rejects(repo.fs.stat('/nested/n1.txt', { signal: AbortSignal.timeout(200) }), (e: Error) => e.name === 'TimeoutError' || e.name === 'AbortError');
    assert.ok(Date.now() - t0 < 1500, `stat stopped waiting (${Date.now() - t0} ms)`);
    // Two readers of one file, one aborted: the other still gets every byte once the server answers.
    const a = new AbortController();
    const first = repo.fs.readFile(P, { signal: a.signal });
    const second = repo.fs.readFile(P, { signal: new AbortController().signal });
    const firstDone = assert.rejects(first, (e: Error) => e.name === 'AbortError');
    await new Promise((r) => setTimeout(r, 200));
    a.abort();
    await firstDone;
    stall = false;
    for (const f of held.splice(0)) f();
    assert.equal(sha1((await second) as Buffer), truth.entries[P]!.sha1);
    assert.equal((await repo.fs.readFile('/nested/n1.txt', 'utf8')).length, truth.entries['/nested/n1.txt']!.size, 'the abandoned catalog download landed');
  } finally {
    repo.close();
    gate.close();
    await good.close();
  }
});

test('every server failing: a clear EIO within timeout × attempts plus the backoff, never a hang', async () => {
  const stalling = await httpServer(() => { /* never answers */ });
  const refused = `http://127.0.0.1:1/cvmfs/@fqrn@`;
  try {
    const t0 = Date.now();
    await assert.rejects(
      openRepository(FQRN, { serverUrls: [`${stalling.url}/cvmfs/@fqrn@`, refused], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), timeoutMs: 400, maxRetries: 1, backoffInitMs: 200 }),
      (e: Error & { code?: string; reason?: string; cause?: unknown }) => e.code === 'EIO' && e.reason === 'download' && /\.cvmfswhitelist/.test(e.message) && e.cause !== undefined,
    );
    const took = Date.now() - t0;
    // One retry (after at most 200 ms) on the stalling server, then the refusing one: about 2 × 400 + 200 ms.
    assert.ok(took >= 800 && took < 3000, `took ${took} ms`);
    // The whitelist and the manifest (asked for at once), each: the first try and the one retry.
    assert.deepEqual(stalling.seen.map((u) => u.slice(u.lastIndexOf('/') + 1)).sort(), ['.cvmfspublished', '.cvmfspublished', '.cvmfswhitelist', '.cvmfswhitelist']);
  } finally {
    stalling.close();
  }
});
