/**
 * HTTP as it is in the wild, against a raw TCP Stratum-1 of ours (hostile-server.ts) serving the real main
 * fixture: servers that close after every answer, chunked and compressed bodies, redirects, captive portals,
 * broken framing, silence, resets, TLS that fails. For each: no uncaught exception or unhandled rejection in this
 * process, no hang past the timeouts, and either every byte right or a clean EIO that names the cause; with a good
 * server behind the bad one, the failover the genuine client would do and every byte right.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer as createTlsServer } from 'node:tls';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openRepository, type Repository } from '../lib/index.js';
import { closeConnections, httpGet } from '../lib/net/http.js';
import { trustedCas } from '../lib/net/tls-trust.js';
import { CLI, copyFixture, FIXTURES, keyOf, readTruth, serve, tempDir, ucvmfs, type Truth } from './helpers.js';
import { hostileServer, type Behaviour } from './hostile-server.js';
import { SQUID, startSquid } from './squid.js';

const FQRN = 'fixture.test.example.org';
const SRV = join(FIXTURES, FQRN, 'srv');
const truth: Truth = readTruth(FQRN);
const files = Object.entries(truth.entries).filter(([, e]) => e.type === 'file').map(([p, e]) => ({ path: p, sha1: e.sha1!, size: e.size }));
const bigFiles = files.filter((f) => f.size > 8 * 1024 * 1024);

// Whatever a server does, nothing may escape into the event loop of the embedding process.
const escaped: unknown[] = [];
const onEscape = (e: unknown) => escaped.push(e);
before(() => {
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
});
after(() => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
  closeConnections();
});
beforeEach(() => {
  escaped.length = 0;
});
function noEscapes(): void {
  assert.deepEqual(escaped.map(String), [], 'nothing escaped into the event loop');
}

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

/** Reads `list` with `parallel` readers at a time and checks every byte against truth.json. */
async function readAndCheck(repo: Repository, list: typeof files, parallel = 16): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < list.length) {
      const f = list[next++]!;
      assert.equal(sha1((await repo.fs.readFile(f.path)) as Buffer), f.sha1, f.path);
    }
  }));
}

async function open(servers: string[], extra: Parameters<typeof openRepository>[1] = {}): Promise<Repository> {
  return openRepository(FQRN, { serverUrls: servers, publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), timeoutMs: 5000, maxRetries: 0, configRoot: tempDir(), ...extra });
}

// Servers that frame their answers in ways HTTP allows: every file of the repository reads right from them alone,
// 16 readers at once, the chunked files included (which puts the bodies under backpressure).
const benign: Behaviour[] = ['http10', 'http10-length', 'close', 'close-delimited', 'chunked', 'gzip', 'longer'];
for (const b of benign) {
  test(`a server answering with ${b}: every file of the repository reads right, 16 at a time`, async () => {
    const s = await hostileServer(SRV, b);
    try {
      const repo = await open([s.url]);
      try {
        await readAndCheck(repo, files);
        assert.equal(repo.stats().hashMismatches, 0);
        assert.equal(repo.stats().failovers, 0);
      } finally {
        repo.close();
      }
      noEscapes();
    } finally {
      await s.close();
    }
  });
}

test('a server that closes after every answer (HTTP/1.0, no length): a slow reader of a chunked file, and 16 processes at once', async () => {
  const s = await hostileServer(SRV, 'http10');
  try {
    const repo = await open([s.url], { readAhead: 2 });
    try {
      // A reader that takes its time: the read-ahead downloads wait under backpressure while the server is long done.
      const f = bigFiles[0]!;
      const h = createHash('sha1');
      for await (const chunk of repo.fs.createReadStream(f.path, { highWaterMark: 1024 * 1024 })) {
        h.update(chunk as Buffer);
        await new Promise((r) => setTimeout(r, 15));
      }
      assert.equal(h.digest('hex'), f.sha1);
    } finally {
      repo.close();
    }
    // 16 processes sharing one cache, each reading both chunked files and a slice of the small ones.
    const cacheDir = tempDir();
    const script = `
      import { openRepository } from ${JSON.stringify(join(CLI, '..', '..', 'index.js'))};
      import { createHash } from 'node:crypto';
      const [url, key, cache, ...paths] = process.argv.slice(1);
      const repo = await openRepository(${JSON.stringify(FQRN)}, { serverUrls: [url], publicKeys: [key], cacheDir: cache, timeoutMs: 10000, maxRetries: 0, configRoot: cache });
      const out = {};
      for (const p of paths) out[p] = createHash('sha1').update(await repo.fs.readFile(p)).digest('hex');
      repo.close();
      process.stdout.write(JSON.stringify(out));
    `;
    const small = files.filter((x) => x.size <= 8 * 1024 * 1024);
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => {
      const paths = [...bigFiles.map((x) => x.path), ...small.filter((_, k) => k % 16 === i).slice(0, 40).map((x) => x.path)];
      return new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        import('node:child_process').then(({ spawn }) => {
          const c = spawn(process.execPath, ['--input-type=module', '-e', script, s.url, keyOf(FQRN), cacheDir, ...paths], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          c.stdout.on('data', (d) => (out += d));
          c.stderr.on('data', (d) => (err += d));
          c.on('close', (code) => resolve({ code, out, err }));
        });
      });
    }));
    for (const r of results) {
      assert.equal(r.code, 0, r.err);
      for (const [p, h] of Object.entries(JSON.parse(r.out) as Record<string, string>)) assert.equal(h, truth.entries[p]!.sha1, p);
    }
    noEscapes();
  } finally {
    await s.close();
  }
});

test('headers that arrive a byte at a time are waited for, within the timeout', async () => {
  const s = await hostileServer(SRV, 'headers-bytewise');
  try {
    const repo = await open([s.url]);
    try {
      await readAndCheck(repo, files.filter((_, i) => i % 300 === 0), 4);
    } finally {
      repo.close();
    }
    noEscapes();
  } finally {
    await s.close();
  }
});

// Servers that break their answers: alone they give a clean EIO that names the cause, in bounded time; with a good
// server behind them, everything reads right from that one.
const broken: { b: Behaviour; cause: RegExp }[] = [
  { b: 'shorter', cause: /aborted|truncated|ECONNRESET|socket hang up/i },
  { b: 'chunked-truncated', cause: /aborted|truncated|ECONNRESET|chunk/i },
  { b: 'garbage', cause: /HPE_|parse|invalid|not HTTP/i },
  { b: 'huge-headers', cause: /header/i },
  { b: 'portal', cause: /whitelist|format|signature|hash/i },
  { b: 'reset-after-headers', cause: /ECONNRESET|aborted|reset/i },
  // The reset while the client opens its temporary file for the object: once an unhandled 'error' that ended the
  // embedding process.
  { b: 'data-reset-in-body', cause: /ECONNRESET|aborted|reset/i },
  { b: 'fin-mid-body', cause: /aborted|truncated|ECONNRESET|socket hang up/i },
  { b: 'silent', cause: /no answer|timed? ?out/i },
  { b: 'redirect', cause: /HTTP 302/ },
];
for (const { b, cause } of broken) {
  test(`a server answering with ${b}: alone a clean EIO naming the cause; before a good one, every byte right`, async () => {
    const target = await serve({ [FQRN]: SRV }); // where the redirect points; must not be asked unless redirects are followed
    const bad = await hostileServer(SRV, b, { redirectTo: `${target.url}/${FQRN}` });
    const good = await serve({ [FQRN]: SRV });
    try {
      const t0 = Date.now();
      await assert.rejects(open([bad.url], { timeoutMs: 1000 }), (e: NodeJS.ErrnoException & { cause?: unknown }) => {
        assert.equal(e.code, 'EIO', String(e));
        const text = `${e.message} ${String((e.cause as Error | undefined)?.message ?? '')} ${String(((e.cause as { cause?: Error } | undefined)?.cause)?.message ?? '')}`;
        assert.match(text, cause);
        return true;
      });
      // One try and, for a transfer error, none again (maxRetries 0): at most a few timeouts of 1 s.
      assert.ok(Date.now() - t0 < 4000, `gave up after ${Date.now() - t0} ms`);

      const t1 = Date.now();
      // The good server runs in this process: a timeout long enough that a loaded CI machine does not make it
      // look broken too (one slow answer from it would send the client back to the bad one).
      const repo = await open([bad.url, `${good.url}/@fqrn@`], { timeoutMs: 5000 });
      try {
        await readAndCheck(repo, [...files.filter((_, i) => i % 97 === 0), ...bigFiles]);
        assert.ok(repo.stats().failovers >= 1, 'moved to the good server');
        assert.equal((await repo.fs.getxattr('/', 'user.host')).toString(), `${good.url}/${FQRN}`);
      } finally {
        repo.close();
      }
      assert.ok(Date.now() - t1 < 30000, `took ${Date.now() - t1} ms`);
      if (b === 'redirect') assert.equal(target.requests.length, 0, 'a redirect is not followed unless CVMFS_FOLLOW_REDIRECTS says so');
      noEscapes();
    } finally {
      await bad.close();
      await good.close();
      await target.close();
    }
  });
}

test('CVMFS_FOLLOW_REDIRECTS=yes: redirects are followed (at most 4 in a row)', async () => {
  const target = await serve({ [FQRN]: SRV });
  const hop = await hostileServer(SRV, 'redirect', { redirectTo: `${target.url}/${FQRN}` });
  const saved = process.env.CVMFS_FOLLOW_REDIRECTS;
  process.env.CVMFS_FOLLOW_REDIRECTS = 'yes';
  // A loop of redirects: each hop sends to the next, and the last back to the first.
  const loop: Awaited<ReturnType<typeof hostileServer>>[] = [];
  try {
    const repo = await open([hop.url]);
    try {
      await readAndCheck(repo, files.filter((_, i) => i % 97 === 0));
      assert.equal(repo.stats().failovers, 0);
    } finally {
      repo.close();
    }
    const a = await hostileServer(SRV, 'redirect', { redirectTo: `${target.url}/${FQRN}` });
    loop.push(a);
    for (let i = 0; i < 5; i++) loop.push(await hostileServer(SRV, 'redirect', { redirectTo: loop[loop.length - 1]!.url.replace('@fqrn@', FQRN) }));
    await assert.rejects(open([loop[loop.length - 1]!.url]), (e: NodeJS.ErrnoException) => {
      assert.equal(e.code, 'EIO');
      assert.match(`${e.message} ${(e.cause as Error)?.message}`, /redirects/);
      return true;
    });
    noEscapes();
  } finally {
    if (saved === undefined) delete process.env.CVMFS_FOLLOW_REDIRECTS;
    else process.env.CVMFS_FOLLOW_REDIRECTS = saved;
    for (const s of loop) await s.close();
    await hop.close();
    await target.close();
  }
});

// --- https ---------------------------------------------------------------------------------------------------

/** A CA of ours and a server certificate it signed for 127.0.0.1, made with openssl. */
function makePki(): { dir: string; caDir: string; caPem: string; key: string; cert: string; otherCaPem: string } {
  const dir = tempDir('ucvmfs-pki-');
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  for (const ca of ['ca', 'other']) {
    run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=ucvmfs test ${ca} CA`);
  }
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  // A grid-style CA directory: the certificate under its subject hash, beside files that are not certificates.
  const caDir = join(dir, 'certificates');
  mkdirSync(caDir);
  const hash = execFileSync('openssl', ['x509', '-noout', '-subject_hash', '-in', join(dir, 'ca.pem')]).toString().trim();
  writeFileSync(join(caDir, `${hash}.0`), readFileSync(join(dir, 'ca.pem')));
  writeFileSync(join(caDir, `${hash}.signing_policy`), 'access_id_CA X509 "/CN=ucvmfs test ca CA"\n');
  writeFileSync(join(caDir, `${hash}.crl_url`), 'http://127.0.0.1:1/none.crl\n');
  return {
    dir, caDir, caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'), otherCaPem: readFileSync(join(dir, 'other.pem'), 'utf8'),
    key: readFileSync(join(dir, 'server.key'), 'utf8'), cert: readFileSync(join(dir, 'server.pem'), 'utf8'),
  };
}

/** An https Stratum-1 for the fixture, with the given certificate. */
async function httpsStratum1(key: string, cert: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createHttpsServer({ key, cert }, (req, res) => {
    const rel = (req.url ?? '/').replace(/^\/cvmfs\/[^/]+\//, '');
    try {
      if (rel.includes('..')) throw new Error('no');
      const data = readFileSync(join(SRV, rel));
      res.writeHead(200, { 'content-length': data.length });
      res.end(data);
    } catch {
      res.writeHead(404, { 'content-length': 0 });
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `https://127.0.0.1:${(server.address() as { port: number }).port}/cvmfs/@fqrn@`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return fn().finally(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

test('https Stratum-1: trusted through X509_CERT_DIR (a grid CA directory) or X509_CERT_BUNDLE; refused otherwise, then the next server', async () => {
  const pki = makePki();
  const s1 = await httpsStratum1(pki.key, pki.cert);
  const good = await serve({ [FQRN]: SRV });
  try {
    await withEnv({ X509_CERT_DIR: pki.caDir, X509_CERT_BUNDLE: undefined }, async () => {
      const repo = await open([s1.url]);
      try {
        await readAndCheck(repo, [...files.filter((_, i) => i % 97 === 0), ...bigFiles]);
        assert.match((await repo.fs.getxattr('/', 'user.host')).toString(), /^https:/);
      } finally {
        repo.close();
      }
    });
    const bundle = join(pki.dir, 'bundle.pem');
    writeFileSync(bundle, pki.otherCaPem + pki.caPem);
    await withEnv({ X509_CERT_DIR: join(pki.dir, 'nowhere'), X509_CERT_BUNDLE: bundle }, async () => {
      const repo = await open([s1.url]);
      try {
        assert.equal(sha1((await repo.fs.readFile(files[0]!.path)) as Buffer), files[0]!.sha1);
      } finally {
        repo.close();
      }
    });
    // Only another CA trusted: the certificate is refused (no bytes read from that server), and the next one serves.
    const otherDir = join(pki.dir, 'other-certs');
    mkdirSync(otherDir);
    writeFileSync(join(otherDir, 'other.pem'), pki.otherCaPem);
    await withEnv({ X509_CERT_DIR: otherDir, X509_CERT_BUNDLE: undefined }, async () => {
      await assert.rejects(open([s1.url]), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'EIO');
        assert.match(`${e.message} ${(e.cause as Error)?.message}`, /certificate|self.signed|verify/i);
        return true;
      });
      const repo = await open([s1.url, `${good.url}/@fqrn@`]);
      try {
        assert.equal(sha1((await repo.fs.readFile(files[0]!.path)) as Buffer), files[0]!.sha1);
        assert.equal((await repo.fs.getxattr('/', 'user.host')).toString(), `${good.url}/${FQRN}`);
      } finally {
        repo.close();
      }
    });
    noEscapes();
  } finally {
    await s1.close();
    await good.close();
  }
});

test('a TLS handshake that fails (a server that does not speak TLS, one that hangs up): the next server, no hang', async () => {
  const plain = await hostileServer(SRV, 'garbage');
  const hangup = createTlsServer({}, () => { /* never reached: no certificate */ });
  hangup.on('tlsClientError', () => { /* the client's side is what is tested */ });
  await new Promise<void>((r) => hangup.listen(0, '127.0.0.1', () => r()));
  const good = await serve({ [FQRN]: SRV });
  try {
    for (const bad of [plain.url.replace('http:', 'https:'), `https://127.0.0.1:${(hangup.address() as { port: number }).port}/cvmfs/@fqrn@`]) {
      const t0 = Date.now();
      await assert.rejects(open([bad], { timeoutMs: 1000 }), (e: NodeJS.ErrnoException) => e.code === 'EIO');
      const repo = await open([bad, `${good.url}/@fqrn@`], { timeoutMs: 1000 });
      try {
        assert.equal(sha1((await repo.fs.readFile(files[0]!.path)) as Buffer), files[0]!.sha1);
      } finally {
        repo.close();
      }
      assert.ok(Date.now() - t0 < 6000, `${bad}: took ${Date.now() - t0} ms`);
    }
    noEscapes();
  } finally {
    await plain.close();
    hangup.close();
    await good.close();
  }
});

test('containment: one object no server serves right fails its own call only, while others read on', async () => {
  const srv = copyFixture(FQRN);
  // Spoil one object on the only server: the call that needs it fails (EIO, hash mismatch), nothing else does.
  const victim = '/small/hello.txt';
  const hash = truth.entries[victim]!.magic!['user.hash']!;
  const obj = join(srv, 'data', hash.slice(0, 2), hash.slice(2));
  const bytes = readFileSync(obj);
  bytes[bytes.length - 1]! ^= 0xff;
  writeFileSync(obj, bytes);
  const s = await serve({ [FQRN]: srv });
  try {
    const repo = await open([`${s.url}/@fqrn@`]);
    try {
      const others = files.filter((f) => f.path !== victim).filter((_, i) => i % 50 === 0);
      const [bad, ...good] = await Promise.allSettled([repo.fs.readFile(victim), ...others.map((f) => repo.fs.readFile(f.path))]);
      assert.equal(bad!.status, 'rejected');
      const err = (bad as PromiseRejectedResult).reason as NodeJS.ErrnoException & { reason?: string };
      assert.equal(err.code, 'EIO');
      assert.ok(err.reason === 'hash-mismatch' || err.reason === 'decompression', String(err.reason));
      assert.match(err.message, new RegExp(hash.slice(2)));
      good.forEach((r, i) => {
        assert.equal(r.status, 'fulfilled', others[i]!.path);
        assert.equal(sha1((r as PromiseFulfilledResult<Buffer>).value), others[i]!.sha1, others[i]!.path);
      });
      // The repository stays usable, and the bad object was not kept: asked again, it fails again.
      await assert.rejects(repo.fs.readFile(victim), { code: 'EIO' });
      assert.equal(sha1((await repo.fs.readFile(others[0]!.path)) as Buffer), others[0]!.sha1);
    } finally {
      repo.close();
    }
    noEscapes();
  } finally {
    await s.close();
  }
});

test('Debian squid in front of a server that closes after every answer: every file right, and squid serves the second reader', { skip: SQUID ? false : 'squid not installed (.ci/run installs it)' }, async () => {
  const origin = await hostileServer(SRV, 'http10');
  const squid = await startSquid(tempDir('ucvmfs-squid-'));
  try {
    for (const pass of [1, 2]) {
      const repo = await open([origin.url], { proxies: squid.url, timeoutMs: 10000 });
      try {
        await readAndCheck(repo, [...files.filter((_, i) => i % 7 === 0), ...bigFiles]);
        assert.equal(repo.stats().failovers, 0, `pass ${pass}`);
      } finally {
        repo.close();
      }
    }
    assert.match(squid.accessLog(), /TCP_(MEM_)?HIT/, 'the second pass was served from squid');
    noEscapes();
  } finally {
    squid.stop();
    await origin.close();
  }
});

test('NODE_EXTRA_CA_CERTS through the command: Node starts without it, the https client trusts it, the job sees it as given', async () => {
  const pki = makePki();
  const s1 = await httpsStratum1(pki.key, pki.cert);
  try {
    const env = { X509_CERT_DIR: join(pki.dir, 'nowhere'), X509_CERT_BUNDLE: '', CVMFS_SERVER_URL: s1.url, CVMFS_PUBLIC_KEY: keyOf(FQRN) };
    const caFile = join(pki.dir, 'ca.pem');
    const ok = await ucvmfs(['cat', `${FQRN}:${files[0]!.path}`], { ...env, NODE_EXTRA_CA_CERTS: caFile, CVMFS_CACHE_BASE: tempDir() });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(sha1(ok.stdout), files[0]!.sha1);
    // Another CA only: refused, as Node refuses it.
    const refused = await ucvmfs(['cat', `${FQRN}:${files[0]!.path}`], { ...env, NODE_EXTRA_CA_CERTS: join(pki.dir, 'other.pem'), CVMFS_CACHE_BASE: tempDir() });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /certificate|verify|self.signed/i);
    // The job gets the variable back as its caller set it; the CLI's own Node process (the job's parent) was
    // started without it, which is what spares it Node's parse of the whole store.
    const script = 'printf "%s|%s|" "$NODE_EXTRA_CA_CERTS" "${UCVMFS_DEFERRED_CA_CERTS-unset}"; tr "\\0" "\\n" < /proc/$PPID/environ | grep -c "^NODE_EXTRA_CA_CERTS=" || :';
    const job = await ucvmfs(['exec', '--', '/bin/sh', '-c', script], { ...env, NODE_EXTRA_CA_CERTS: caFile, CVMFS_CACHE_BASE: tempDir() });
    assert.equal(job.code, 0, job.stderr);
    assert.equal(job.stdout.toString().trim(), `${caFile}|unset|0`);
  } finally {
    await s1.close();
  }
});

test('CVMFS_USE_SSL_SYSTEM_CA=yes: the system CA directory (with its ca-bundle.crt) takes the grid directory\'s place', async () => {
  const pki = makePki();
  const s1 = await httpsStratum1(pki.key, pki.cert);
  try {
    // A system-like directory holding our CA as a .pem and another CA in ca-bundle.crt; the grid directory holds ours.
    const sys = join(pki.dir, 'system-certs');
    mkdirSync(sys);
    writeFileSync(join(sys, 'ours.pem'), pki.caPem);
    writeFileSync(join(sys, 'ca-bundle.crt'), pki.otherCaPem);
    const cas = await trustedCas({ certDir: join(pki.dir, 'nowhere'), useSystemCa: true }, ['/nonexistent', sys]);
    assert.ok(cas?.includes(pki.caPem.trim()) && cas.includes(pki.otherCaPem.trim()), 'the first system directory with certificates, and its bundle');
    const res = await httpGet({ url: s1.url.replace('@fqrn@', FQRN) + '/.cvmfswhitelist', proxy: 'DIRECT', timeoutMs: 5000, ca: cas! });
    assert.equal(res.status, 200);
    res.body.resume();
    // The real thing: with the parameter on, this machine's system directory replaces the grid directory, which
    // alone trusts our CA, so our server is refused; with it off, accepted.
    const hasSystem = ['/etc/ssl/certs', '/etc/pki/tls/certs'].some((d) => existsSync(d) && readdirSync(d).some((n) => n.endsWith('.pem') || n.endsWith('.crt')));
    if (hasSystem) {
      await withEnv({ X509_CERT_DIR: pki.caDir, X509_CERT_BUNDLE: undefined, CVMFS_USE_SSL_SYSTEM_CA: 'yes' }, async () => {
        await assert.rejects(open([s1.url]), (e: NodeJS.ErrnoException) => e.code === 'EIO' && /certificate|verify/i.test(`${e.message} ${(e.cause as Error)?.message}`));
      });
    }
    await withEnv({ X509_CERT_DIR: pki.caDir, X509_CERT_BUNDLE: undefined, CVMFS_USE_SSL_SYSTEM_CA: 'no' }, async () => {
      const repo = await open([s1.url]);
      repo.close();
    });
    noEscapes();
  } finally {
    await s1.close();
  }
});
