/**
 * Crash safety of the cache: processes killed with SIGKILL at random points while downloading, 200 times;
 * afterwards every cached object matches its digest and the cache keeps working. fsck finds a corrupted object
 * (exit status 1), quarantines it with --repair, and the next read fetches it again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsckCache, openRepository } from '../lib/index.js';
import { FIXTURES, keyOf, readTruth, ROOT, serve, tempDir, ucvmfs } from './helpers.js';

const FQRN = 'fixture.test.example.org';

test('200 processes killed with SIGKILL mid-download leave a cache whose every object is sound and that keeps working', async () => {
  const truth = readTruth(FQRN);
  const server = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  const cacheDir = tempDir('ucvmfs-crash-');
  const files = Object.entries(truth.entries).filter(([, t]) => t.type === 'file').map(([p]) => p);
  // Each victim reads files four at a time, in an order of its own, every other one the big chunked files first.
  const script = `
    import { openRepository } from ${JSON.stringify(join(ROOT, 'dist/lib/index.js'))};
    const files = ${JSON.stringify(files)};
    const seed = Number(process.argv[2]);
    const order = files.map((f, i) => [f, (i * 7919 + seed * 104729) % 10007]).sort((a, b) => a[1] - b[1]).map((x) => x[0]);
    if (seed % 2 === 0) order.unshift('/big/random_32M.bin', '/big/text_20M.txt');
    const repo = await openRepository(${JSON.stringify(FQRN)}, { serverUrls: [${JSON.stringify(`${server.url}/@fqrn@`)}], publicKeys: [${JSON.stringify(keyOf(FQRN))}], cacheDir: ${JSON.stringify(cacheDir)} });
    process.stdout.write('opened\\n');
    let next = 0;
    await Promise.all([0, 1, 2, 3].map(async () => { while (next < order.length) { await repo.fs.readFile(order[next++]); process.stdout.write('.'); } }));
  `;
  const scriptFile = join(tempDir('ucvmfs-victim-'), 'victim.mjs');
  writeFileSync(scriptFile, script);
  try {
    for (let i = 0; i < 200; i++) {
      // Killed at a point spread over its work: mostly mid-download, some while it starts or opens.
      const child = spawn(process.execPath, [scriptFile, String(i)], { stdio: ['ignore', 'pipe', 'ignore'] });
      const closed = new Promise((r) => child.once('close', r));
      // Killed at a point tied to its progress, not to the clock (a loaded machine is slow): some before they
      // open, the big-first ones a while into their chunks, the others after 0 to 6 whole files and a bit more.
      let out = '';
      child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      const reached = (want: (s: string) => boolean) => new Promise<void>((resolve) => {
        const check = () => { if (want(out)) { child.stdout!.off('data', check); resolve(); } };
        child.stdout!.on('data', check);
        check();
      });
      if (i % 10 !== 0) {
        const files = i % 2 === 0 ? 0 : i % 7;
        await Promise.race([reached((o) => o.startsWith('opened') && o.length - 'opened\n'.length >= files), closed]);
      }
      await new Promise((r) => setTimeout(r, i % 2 === 0 ? (i * 37) % 400 : (i * 37) % 50));
      child.kill('SIGKILL');
      await closed;
    }
    const shared = join(cacheDir, 'shared');
    const report = await fsckCache(shared);
    assert.deepEqual(report.bad, [], 'no cached object differs from what was verified');
    assert.ok(report.good > 10, `objects were cached between the kills (${report.good})`);
    assert.equal(report.unverified, 0, 'every object has its digest');
    // A lock a victim made and died before writing into is recognised as such after a moment.
    await new Promise((r) => setTimeout(r, 2100));
    const repaired = await fsckCache(shared, { repair: true });
    assert.equal(repaired.bad.length, 0);
    assert.deepEqual(readdirSync(join(shared, 'txn')), [], 'dead processes\' temporary files removed');
    const repo = await openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir });
    try {
      for (const p of files) assert.equal(createHash('sha1').update((await repo.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1, p);
    } finally {
      repo.close();
    }
  } finally {
    await server.close();
  }
});

test('ucvmfs fsck: a corrupted object is found (status 1), quarantined with --repair, and fetched again on the next read', async () => {
  const truth = readTruth(FQRN);
  const server = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  const cacheDir = tempDir('ucvmfs-fsck-');
  const env = { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(FQRN), CVMFS_CACHE_BASE: cacheDir };
  try {
    const repo = await openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir });
    const hash = (await repo.fs.getxattr('/small/hello.txt', 'user.hash')).toString();
    await repo.fs.readFile('/small/hello.txt');
    repo.close();
    const obj = join(cacheDir, 'shared', hash.slice(0, 2), hash.slice(2));
    const data = readFileSync(obj);
    data[0] ^= 0x20;
    writeFileSync(obj, data);
    const found = await ucvmfs(['fsck'], env);
    assert.equal(found.code, 1);
    assert.match(found.stderr, new RegExp(`bad object: ${join(cacheDir, 'shared')}/${hash.slice(0, 2)}/${hash.slice(2)}`));
    const fixed = await ucvmfs(['fsck', '--repair'], env);
    assert.equal(fixed.code, 1, 'it did find a bad object');
    assert.match(fixed.stderr, /1 bad \(quarantined\)/);
    assert.equal((await ucvmfs(['fsck'], env)).code, 0, 'clean after repair');
    const again = await ucvmfs(['cat', `${FQRN}:/small/hello.txt`], env);
    assert.equal(createHash('sha1').update(again.stdout).digest('hex'), truth.entries['/small/hello.txt']!.sha1);
  } finally {
    await server.close();
  }
});
