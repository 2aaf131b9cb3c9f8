/**
 * The disk cache: a second process with the same cache reads what the first fetched without the network; what is
 * in the cache is exactly the verified content.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { keyOf, openFixture, readTruth, serve, tempDir, FIXTURES, ROOT } from './helpers.js';
import { openRepository } from '../lib/index.js';

const FQRN = 'features.test.example.org';

test('a second process on the same cache reads cached files with the server gone', async () => {
  const truth = readTruth(FQRN);
  const { repo, server, cacheDir } = await openFixture(FQRN);
  const files = Object.entries(truth.entries).filter(([p, t]) => t.type === 'file' && !p.startsWith('/.cvmfs')).map(([p]) => p);
  for (const p of files) await repo.fs.readFile(p);
  const url = `${server.url}/@fqrn@`;
  repo.close();
  await server.close();
  const script = `
    import { openRepository } from ${JSON.stringify(join(ROOT, 'dist', 'lib', 'index.js'))};
    import { createHash } from 'node:crypto';
    const repo = await openRepository(${JSON.stringify(FQRN)}, { serverUrls: [${JSON.stringify(url)}], publicKeys: [${JSON.stringify(keyOf(FQRN))}], cacheDir: ${JSON.stringify(cacheDir)} });
    const out = {};
    for (const p of ${JSON.stringify(files)}) out[p] = createHash('sha1').update(await repo.fs.readFile(p)).digest('hex');
    out.stats = repo.stats();
    console.log(JSON.stringify(out));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const code = await new Promise((r) => child.on('close', r));
  assert.equal(code, 0, stderr);
  const got = JSON.parse(stdout);
  for (const p of files) assert.equal(got[p], truth.entries[p]!.sha1, p);
  assert.equal(got.stats.httpRequests, 0, 'no network at all');
  assert.ok(got.stats.cacheHits >= files.length - 2);
});

test('cached objects are the verified, decompressed content; txn/ is empty after work', async () => {
  const truth = readTruth(FQRN);
  const { repo, server, cacheDir } = await openFixture(FQRN);
  try {
    const data = await repo.fs.readFile('/hello.txt') as Buffer;
    const hash = (truth.entries['/hello.txt']!.magic as Record<string, string>)['user.hash']!;
    const cached = readFileSync(join(cacheDir, 'shared', hash.slice(0, 2), hash.slice(2)));
    assert.ok(cached.equals(data));
    assert.equal(createHash('sha1').update(cached).digest('hex'), truth.entries['/hello.txt']!.sha1);
    assert.deepEqual(readdirSync(join(cacheDir, 'shared', 'txn')), []);
  } finally {
    repo.close();
    await server.close();
  }
});

test('memory stays bounded: with at most one open catalog every entry still resolves', async () => {
  const truth = readTruth(FQRN);
  const { repo, server } = await openFixture(FQRN, { maxOpenCatalogs: 1, entryCacheSize: 4, listingCacheSize: 2 });
  try {
    for (const [p, t] of Object.entries(truth.entries)) assert.equal((await repo.fs.lstat(p)).size, t.size, p);
    assert.equal(repo.stats().catalogsOpen, 1);
    assert.ok(repo.stats().catalogsLoaded > 4, 'catalogs were evicted and reloaded');
  } finally {
    repo.close();
    await server.close();
  }
});

test('a cache the genuine client left (CVMFS_SHARED_CACHE=no layout) is read as it is: every file, no object downloaded', async () => {
  const fqrn = 'features.test.example.org';
  const base = tempDir('ucvmfs-genuine-');
  cpSync(join(FIXTURES, 'genuine-cache', fqrn), join(base, fqrn), { recursive: true });
  execFileSync('chmod', ['-R', 'u+w', join(base, fqrn)]); // the fixture is read-only
  const truth = readTruth(fqrn);
  const { repo, server } = await openFixture(fqrn, { cacheDir: base, sharedCache: false });
  try {
    let files = 0;
    // The genuine client read every listed file (not the hidden snapshots under /.cvmfs).
    for (const [p, t] of Object.entries(truth.entries)) {
      if (t.type !== 'file' || p.startsWith('/.cvmfs/')) continue;
      const data = (await repo.fs.readFile(p)) as Buffer;
      assert.equal(createHash('sha1').update(data).digest('hex'), t.sha1, p);
      files++;
    }
    assert.ok(files > 10);
    assert.equal(repo.stats().objectsDownloaded, 0, 'every object came from the genuine cache');
    assert.ok(repo.stats().cacheHits >= files);
  } finally {
    repo.close();
    await server.close();
  }
});

test('offline: with every server gone, a cached repository opens with a warning, cached files read, others fail fast with EIO', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const { repo, server, cacheDir } = await openFixture(fqrn);
  const url = server.url;
  assert.equal(createHash('sha1').update((await repo.fs.readFile('/small/hello.txt')) as Buffer).digest('hex'), truth.entries['/small/hello.txt']!.sha1);
  repo.close();
  await server.close();
  const warnings: string[] = [];
  const offline = await openRepository(fqrn, { serverUrls: [`${url}/@fqrn@`], publicKeys: [keyOf(fqrn)], cacheDir, reuseCachedManifest: false, onWarning: (m) => warnings.push(m) });
  try {
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /no server reachable.*offline with cached revision 4/);
    assert.equal(offline.revision, 4);
    assert.equal(createHash('sha1').update((await offline.fs.readFile('/small/hello.txt')) as Buffer).digest('hex'), truth.entries['/small/hello.txt']!.sha1);
    const t0 = Date.now();
    await assert.rejects(offline.fs.readFile('/small/random_64k.bin'), (e: { code?: string; reason?: string; message: string }) => e.code === 'EIO' && e.reason === 'download' && /ECONNREFUSED|connect/i.test(e.message + String((e as { cause?: unknown }).cause)));
    assert.ok(Date.now() - t0 < 3000, 'fails fast');
  } finally {
    offline.close();
  }
  // Without anything cached there is nothing to fall back on: the open fails, naming the cause.
  await assert.rejects(openRepository(fqrn, { serverUrls: [`${url}/@fqrn@`], publicKeys: [keyOf(fqrn)], cacheDir: tempDir(), onWarning: () => undefined }), (e: { code?: string; reason?: string }) => e.code === 'EIO' && e.reason === 'download');
});

test('16 processes on one cache at once: every byte right, catalogs and big objects downloaded once', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  const cacheDir = tempDir('ucvmfs-16-');
  // Every file but most of the 3000-file directory (the test is about sharing, not volume).
  const files = Object.entries(truth.entries).filter(([p, t]) => t.type === 'file' && !/^\/many\/f_(?!00)/.test(p)).map(([p]) => p);
  const script = join(tempDir('ucvmfs-reader-'), 'reader.mjs');
  writeFileSync(script, `
    import { openRepository } from ${JSON.stringify(join(ROOT, 'dist/lib/index.js'))};
    import { createHash } from 'node:crypto';
    const files = ${JSON.stringify(files)};
    const repo = await openRepository(${JSON.stringify(fqrn)}, { serverUrls: [${JSON.stringify(`${server.url}/@fqrn@`)}], publicKeys: [${JSON.stringify(keyOf(fqrn))}], cacheDir: ${JSON.stringify(cacheDir)} });
    const out = {};
    let next = 0;
    await Promise.all([0, 1, 2, 3].map(async () => { while (next < files.length) { const p = files[next++]; out[p] = createHash('sha1').update(await repo.fs.readFile(p)).digest('hex'); } }));
    process.stdout.write(JSON.stringify(out));
  `);
  try {
    const runs = await Promise.all(Array.from({ length: 16 }, () => new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`reader exited with ${code}`))));
    })));
    for (const r of runs) {
      const got = JSON.parse(r) as Record<string, string>;
      for (const p of files) assert.equal(got[p], truth.entries[p]!.sha1, p);
    }
    const counts = new Map<string, number>();
    for (const r of server.requests) if (r.includes('/data/')) counts.set(r, (counts.get(r) ?? 0) + 1);
    const coordinated = [...counts].filter(([r]) => /C$|P$/.test(r));
    assert.ok(coordinated.length >= 8, 'catalogs and chunks were requested');
    for (const [r, n] of coordinated) assert.equal(n, 1, `${r} downloaded ${n} times`);
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    assert.ok(total < counts.size * 16, `small objects are not all fetched by every process (${total} requests for ${counts.size} objects)`);
  } finally {
    await server.close();
  }
});

test('alien cache: two nodes with their own cache directories share one object directory; the second downloads nothing', async () => {
  const fqrn = 'features.test.example.org';
  const truth = readTruth(fqrn);
  const alienCache = tempDir('ucvmfs-alien-');
  const files = Object.entries(truth.entries).filter(([p, t]) => t.type === 'file' && !p.startsWith('/.cvmfs/')).map(([p]) => p);
  const a = await openFixture(fqrn, { alienCache });
  try {
    for (const p of files) await a.repo.fs.readFile(p);
    assert.ok(a.repo.stats().objectsDownloaded > 5);
  } finally {
    a.repo.close();
    await a.server.close();
  }
  const b = await openFixture(fqrn, { alienCache });
  try {
    for (const p of files) assert.equal(createHash('sha1').update((await b.repo.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1, p);
    assert.equal(b.repo.stats().objectsDownloaded, 0);
    assert.ok(readdirSync(alienCache).some((d) => /^[0-9a-f]{2}$/.test(d)), 'objects live directly in the alien directory');
  } finally {
    b.repo.close();
    await b.server.close();
  }
});

test('quota: reading 57 MB through a 12 MB cache keeps it near the limit, every byte right, an open file stays readable, catalogs stay', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const { repo, server, cacheDir } = await openFixture(fqrn, { quotaLimitMb: 12 });
  const objectsSize = () => {
    let total = 0;
    const shared = join(cacheDir, 'shared');
    for (const d of readdirSync(shared).filter((x) => /^[0-9a-f]{2}$/.test(x))) for (const f of readdirSync(join(shared, d))) total += statSync(join(shared, d, f)).size;
    return total;
  };
  try {
    const big = await repo.fs.open('/big/random_32M.bin');
    const head = Buffer.alloc(1 << 20);
    await big.read(head, 0, head.length, 0);
    const rootCatalog = join(cacheDir, 'shared', truth.manifest_fields.C.slice(0, 2), truth.manifest_fields.C.slice(2));
    let maxSeen = 0;
    let n = 0;
    for (const [p, t] of Object.entries(truth.entries)) {
      if (t.type !== 'file') continue;
      assert.equal(createHash('sha1').update((await repo.fs.readFile(p)) as Buffer).digest('hex'), t.sha1, p);
      if (n++ % 100 === 0 || t.size > 1 << 20) maxSeen = Math.max(maxSeen, objectsSize());
    }
    // Checked after every eighth of the slack written; objects in flight (a chunk and two prefetched, up to
    // 16 MiB each here) may add to it meanwhile. It never holds all 57 MB, and ends within the limit.
    assert.ok(maxSeen < 45 * 1024 * 1024, `cache peaked at ${maxSeen} bytes`);
    await repo.objects.cache.enforceQuota();
    assert.ok(objectsSize() <= 12 * 1024 * 1024, `cache ends at ${objectsSize()} bytes`);
    const again = Buffer.alloc(1 << 20);
    await big.read(again, 0, again.length, 0);
    assert.ok(again.equals(head), 'an open file reads the same after its objects were evicted');
    const whole = await big.readFile() as Buffer;
    assert.equal(createHash('sha1').update(whole).digest('hex'), truth.entries['/big/random_32M.bin']!.sha1, 'evicted chunks of an open file are fetched again');
    await big.close();
    assert.ok(statSync(rootCatalog).size > 0, 'the root catalog is pinned');
  } finally {
    repo.close();
    await server.close();
  }
});

test('quota pins are shared: what another live process on this host has pinned is not evicted; once it is gone, it may be', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  const cacheDir = tempDir('ucvmfs-pins-');
  const opts = { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(fqrn)], cacheDir, quotaLimitMb: 12 };
  // A holds the nested catalogs (it listed /nested/level2) and stays alive until told to go.
  const holder = spawn(process.execPath, ['--input-type=module', '-e', `
    import { openRepository } from ${JSON.stringify(join(ROOT, 'dist/lib/index.js'))};
    const repo = await openRepository(${JSON.stringify(fqrn)}, ${JSON.stringify(opts)});
    await repo.fs.readdir('/nested/level2');
    process.stdout.write(JSON.stringify([...repo.objects.cache.pinned]) + '\\n');
    process.stdin.on('data', () => { repo.close(); process.exit(0); });
  `], { stdio: ['pipe', 'pipe', 'inherit'] });
  const pinnedByA = await new Promise<string[]>((resolve) => holder.stdout!.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()) as string[])));
  const root = truth.manifest_fields.C;
  const nested = pinnedByA.filter((h) => h !== root && existsInCache(cacheDir, h) && h !== root);
  assert.ok(nested.length >= 2, `A pinned the nested catalogs too (${pinnedByA.length} pins)`);
  const repo = await openRepository(fqrn, opts);
  try {
    // B reads 57 MB through the 12 MB cache without ever touching /nested.
    for (const [p, t] of Object.entries(truth.entries)) if (t.type === 'file' && !p.startsWith('/nested')) await repo.fs.readFile(p);
    await repo.objects.cache.enforceQuota();
    for (const h of pinnedByA) assert.ok(existsInCache(cacheDir, h), `${h}, pinned by the live process A, is still cached`);
    holder.stdin!.write('go\n');
    await new Promise((r) => holder.once('close', r));
    // A is gone (its pin file with it): more reading evicts, and its catalogs are the least recently used.
    for (const p of ['/big/random_32M.bin', '/big/text_20M.txt']) await repo.fs.readFile(p);
    await repo.objects.cache.enforceQuota();
    assert.ok(nested.some((h) => !existsInCache(cacheDir, h)), 'unpinned, the nested catalogs may go');
    assert.deepEqual(readdirSync(join(cacheDir, 'shared', 'pins')).length, 1, 'only B\'s pin file is left');
  } finally {
    repo.close();
    holder.kill();
    await server.close();
  }
});

function existsInCache(cacheDir: string, h: string): boolean {
  try {
    return statSync(join(cacheDir, 'shared', h.slice(0, 2), h.slice(2))).isFile();
  } catch {
    return false;
  }
}

test('eviction works in rounds of bounded size: a 57 MB cache brought under 12 MB considering 3 objects at a time', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const { repo, server, cacheDir } = await openFixture(fqrn, { quotaLimitMb: -1 });
  try {
    for (const [p, t] of Object.entries(truth.entries)) if (t.type === 'file') await repo.fs.readFile(p);
    const cache = repo.objects.cache;
    cache.setQuota(12 * 1024 * 1024);
    const r = await cache.enforceQuota({ batch: 3 });
    assert.ok(r.total <= 9 * 1024 * 1024, `down to the low mark: ${r.total}`);
    assert.ok(r.removed > 3, `several rounds (${r.removed} objects removed)`);
    assert.ok(existsInCache(cacheDir, truth.manifest_fields.C), 'the pinned root catalog stayed');
  } finally {
    repo.close();
    await server.close();
  }
});

test('a cache this machine cannot write (a file-size limit, a txn/ that is not a directory): EIO naming the cache and the cause, no server blamed', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  try {
    // Two servers that both work: a write that fails must not move the client to the second one, nor retry.
    const urls = [`${server.url}/@fqrn@`, `${server.url}/@fqrn@?second`];
    // bash's ulimit -f counts KiB: 1 MiB lets the catalogs and small files in, not busybox (1.9 MB, one object).
    // Node ignores SIGXFSZ, so the write fails with EFBIG, as a full disk fails with ENOSPC.
    const cacheDir = tempDir();
    const script = `
      import { openRepository } from ${JSON.stringify(join(ROOT, 'dist', 'lib', 'index.js'))};
      import { createHash } from 'node:crypto';
      const repo = await openRepository(${JSON.stringify(fqrn)}, { serverUrls: ${JSON.stringify(urls)}, publicKeys: [${JSON.stringify(keyOf(fqrn))}], cacheDir: ${JSON.stringify(cacheDir)}, maxRetries: 1 });
      const out = { small: createHash('sha1').update(await repo.fs.readFile('/small/lorem_100k.txt')).digest('hex') };
      const before = repo.stats().httpRequests;
      try {
        await repo.fs.readFile('/sw/bin/busybox');
        out.big = 'read';
      } catch (e) {
        out.big = { code: e.code, reason: e.reason, message: e.message, cause: e.cause?.code };
      }
      out.requests = repo.stats().httpRequests - before;
      out.failovers = repo.stats().failovers;
      repo.close();
      console.log(JSON.stringify(out));`;
    const child = spawn('bash', ['-c', 'ulimit -f 1024; exec "$0" --input-type=module -e "$1"', process.execPath, script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    assert.equal(await new Promise((r) => child.on('close', r)), 0, stderr);
    const got = JSON.parse(stdout);
    assert.equal(got.small, truth.entries['/small/lorem_100k.txt']!.sha1);
    assert.equal(got.big.code, 'EIO');
    assert.equal(got.big.reason, 'cache-write');
    assert.equal(got.big.cause, 'EFBIG');
    assert.ok(got.big.message.includes(join(cacheDir, 'shared')), got.big.message);
    assert.equal(got.requests, 1, 'asked once: no retry, no second server');
    assert.equal(got.failovers, 0);
    assert.deepEqual(readdirSync(join(cacheDir, 'shared', 'txn')), [], 'nothing half-written left behind');

    // The same in this process, with txn/ replaced by a file: every write fails (ENOTDIR). Once it is a
    // directory again, the same reads succeed and every byte is right.
    const { repo, server: second, cacheDir: dir } = await openFixture(fqrn);
    try {
      const txn = join(dir, 'shared', 'txn');
      execFileSync('rm', ['-rf', txn]);
      writeFileSync(txn, 'not a directory');
      for (const p of ['/small/lorem_100k.txt', '/sw/bin/busybox']) {
        await assert.rejects(repo.fs.readFile(p), (e: { code?: string; reason?: string; message: string }) => {
          assert.equal(e.code, 'EIO');
          assert.equal(e.reason, 'cache-write');
          assert.match(e.message, /ENOTDIR/);
          return true;
        });
      }
      assert.equal(repo.stats().failovers, 0);
      execFileSync('rm', ['-f', txn]);
      execFileSync('mkdir', [txn]);
      for (const p of ['/small/lorem_100k.txt', '/sw/bin/busybox']) {
        assert.equal(createHash('sha1').update((await repo.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1, p);
      }
    } finally {
      repo.close();
      await second.close();
    }
  } finally {
    await server.close();
  }
});
