/**
 * The `ucvmfs` command as a user runs it: a separate process, options from flags and from CVMFS_* variables.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { copyFixture, fixtureNames, keyOf, readTruth, serve, tempDir, ucvmfs, BIN, FIXTURES } from './helpers.js';

for (const fqrn of fixtureNames()) {
  test(`ucvmfs tree --json on ${fqrn} equals truth.json`, async () => {
    const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
    try {
      const r = await ucvmfs(['tree', '--json', '--quiet', '--server', `${server.url}/@fqrn@`, '--key', keyOf(fqrn), '--cache', tempDir(), '--var', 'SOME_VAR=alpha', fqrn]);
      assert.equal(r.code, 0, r.stderr);
      const tree = JSON.parse(r.stdout.toString().replace(/"mtime_ns": (\d+)/g, '"mtime_ns": "$1"'));
      const truth = readTruth(fqrn);
      assert.equal(tree.fqrn, fqrn);
      assert.equal(tree.revision, Number(truth.manifest_fields.S));
      assert.equal(tree.root_hash, truth.manifest_fields.C);
      assert.deepEqual(Object.keys(tree.entries).sort(), Object.keys(truth.entries).sort());
      for (const [p, t] of Object.entries(truth.entries)) {
        const { magic: _m, bytes_read: _b, ...want } = t as typeof t & { bytes_read?: number };
        assert.deepEqual(tree.entries[p], want, `${fqrn}:${p}`);
      }
    } finally {
      await server.close();
    }
  });
}

test('cat writes raw bytes; ls -l, stat --json, readlink, tags, info; options from the environment', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  const env = { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(fqrn), CVMFS_CACHE_BASE: tempDir() };
  try {
    const cat = await ucvmfs(['cat', `${fqrn}:/small/random_64k.bin`], env);
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(createHash('sha1').update(cat.stdout).digest('hex'), truth.entries['/small/random_64k.bin']!.sha1);
    // As cat(1): a file that fails is said, the others are still written, and the status is 1.
    const some = await ucvmfs(['cat', `${fqrn}:/README.txt`, `${fqrn}:/missing`, `${fqrn}:/small`, `${fqrn}:/README.txt`], env);
    assert.equal(some.code, 1);
    assert.equal(some.stdout.length, 2 * truth.entries['/README.txt']!.size);
    assert.match(some.stderr, /ENOENT[^\n]*missing[\s\S]*EISDIR/);

    const ls = await ucvmfs(['ls', '-l', `${fqrn}:/links`], env);
    assert.equal(ls.code, 0, ls.stderr);
    const lines = ls.stdout.toString().trim().split('\n');
    assert.equal(lines.length, truth.entries['/links']!.entries!.length);
    assert.ok(lines.some((l) => l.startsWith('lrwxrwxrwx') && l.endsWith('rel_file -> ../small/hello.txt')), ls.stdout.toString());
    // As ls(1): a dangling link is listed as itself; a missing name is status 2.
    const dangling = await ucvmfs(['ls', '-l', `${fqrn}:/links/dangling`], env);
    assert.equal(dangling.code, 0, dangling.stderr);
    assert.match(dangling.stdout.toString(), /^lrwxrwxrwx .*dangling -> \.\.\/does\/not\/exist\n$/);
    assert.equal((await ucvmfs(['ls', `${fqrn}:/no/such`], env)).code, 2);

    const st = await ucvmfs(['stat', '--json', `${fqrn}:/hardlinks/a`], env);
    const info = JSON.parse(st.stdout.toString());
    assert.equal(info.nlink, 3);
    assert.equal(info.size, truth.entries['/hardlinks/a']!.size);

    const rl = await ucvmfs(['--var', 'SOME_VAR=alpha', 'readlink', `${fqrn}:/links/variant`], env);
    assert.equal(rl.stdout.toString().trim(), truth.entries['/links/variant']!.target);

    const tags = await ucvmfs(['tags', '--json', fqrn], env);
    assert.deepEqual(JSON.parse(tags.stdout.toString()).map((t: { name: string }) => t.name).sort(), truth.tags.map((t) => t.name).sort());

    const info2 = await ucvmfs(['info', fqrn], env);
    assert.match(info2.stdout.toString(), new RegExp(`revision\\s+${truth.manifest_fields.S}`));
    assert.match(info2.stdout.toString(), /\nproxy in use +DIRECT\n/);

    const missing = await ucvmfs(['stat', `${fqrn}:/no/such`], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ENOENT: no such file or directory, lstat '\/no\/such'/);

    const usage = await ucvmfs(['frobnicate'], env);
    assert.equal(usage.code, 2);
  } finally {
    await server.close();
  }
});

test('the debug log: silent by default; NODE_DEBUG=ucvmfs shows requests and failovers; CVMFS_DEBUGLOG writes a file', async () => {
  const fqrn = 'fixture.test.example.org';
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  const env = { CVMFS_SERVER_URL: `http://127.0.0.1:1/cvmfs/@fqrn@;${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(fqrn) };
  try {
    const quiet = await ucvmfs(['cat', `${fqrn}:/README.txt`], { ...env, CVMFS_CACHE_BASE: tempDir() });
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, '');
    const loud = await ucvmfs(['cat', `${fqrn}:/README.txt`], { ...env, CVMFS_CACHE_BASE: tempDir(), NODE_DEBUG: 'ucvmfs' });
    assert.match(loud.stderr, /UCVMFS \d+: failed \(host-transfer\): http:\/\/127\.0\.0\.1:1\/cvmfs\/fixture\.test\.example\.org\/\.cvmfswhitelist: .*ECONNREFUSED/);
    assert.match(loud.stderr, /opened revision 4, root catalog dcf82c4913053b4922ded6de23f20dd6d48e7de4/);
    const log = join(tempDir('ucvmfs-log-'), 'debug.log');
    await ucvmfs(['cat', `${fqrn}:/README.txt`], { ...env, CVMFS_CACHE_BASE: tempDir(), CVMFS_DEBUGLOG: log });
    assert.match(readFileSync(log, 'utf8'), /GET http:\/\/127\.0\.0\.1:\d+\/cvmfs\/fixture\.test\.example\.org\/\.cvmfspublished/);
  } finally {
    await server.close();
  }
});

test('ucvmfs stats: counters summed over the processes that used a cache, with its objects and last trusted revision', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  const cache = tempDir();
  try {
    const args = ['--server', `${server.url}/@fqrn@`, '--key', keyOf(fqrn), '--cache', cache];
    for (let i = 0; i < 2; i++) {
      const r = await ucvmfs(['cat', ...args, `${fqrn}:/small/random_64k.bin`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const shown = await ucvmfs(['stats', '--json', '--cache', cache, fqrn]);
    assert.equal(shown.code, 0, shown.stderr);
    const s = JSON.parse(shown.stdout.toString()) as Record<string, number | string | null>;
    assert.equal(s.processes, 2);
    assert.equal(s.revision, Number(truth.manifest_fields.S));
    // The first run downloaded the certificate, the root catalog and the file; the second found them all cached.
    assert.equal(s.objectsDownloaded, 3);
    assert.equal(s.cacheMisses, 3);
    assert.ok((s.cacheHits as number) >= 1, 'the second run read from the cache');
    assert.equal(s.cachedObjects, 3);
    assert.equal(s.failovers, 0);
    const text = (await ucvmfs(['stats', '--cache', cache, fqrn])).stdout.toString();
    assert.match(text, /^recorded by 2 process\(es\) from /m);
    assert.match(text, /^ {2}objects downloaded {2}3 \(/m);
  } finally {
    await server.close();
  }
});

test('offline after the TTL: cat gives the cached file and says it is offline, at once (the warning is not lost to the exit); an uncached file fails', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  const cache = tempDir();
  const args = (url: string) => ['--server', `${url}/@fqrn@`, '--key', keyOf(fqrn), '--cache', cache];
  const url = server.url;
  try {
    assert.equal((await ucvmfs(['cat', ...args(url), `${fqrn}:/README.txt`])).code, 0);
  } finally {
    await server.close();
  }
  const hourAgo = Date.now() / 1000 - 3600;
  utimesSync(join(cache, 'shared', `manifest.${fqrn}`), hourAgo, hourAgo);
  const r = await ucvmfs(['cat', ...args(url), `${fqrn}:/README.txt`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(createHash('sha1').update(r.stdout).digest('hex'), truth.entries['/README.txt']!.sha1);
  assert.match(r.stderr, new RegExp(`no server reachable .*offline with cached revision ${truth.manifest_fields.S}`));
  const missing = await ucvmfs(['cat', ...args(url), `${fqrn}:/big/text_20M.txt`]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout.length, 0, 'nothing of a file that cannot be fetched');
  assert.match(missing.stderr, /cannot download .*\[download\]/);
});

test('cat of chunked files: one open per repository, the true bytes through a pipe; a corrupt chunk fetched ahead ends the output at the last verified byte', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const files = ['/big/random_32M.bin', '/big/text_20M.txt'];
  const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  const cache = tempDir();
  let good: Buffer;
  try {
    const r = await ucvmfs(['cat', '--server', `${server.url}/@fqrn@`, '--key', keyOf(fqrn), '--cache', cache, ...files.map((f) => `${fqrn}:${f}`)]);
    assert.equal(r.code, 0, r.stderr);
    good = r.stdout;
    const first = truth.entries[files[0]!]!;
    assert.equal(good.length, first.size + truth.entries[files[1]!]!.size, 'every byte arrived before the process left');
    assert.equal(sha1(good.subarray(0, first.size)), first.sha1);
    assert.equal(sha1(good.subarray(first.size)), truth.entries[files[1]!]!.sha1);
    // The counters of one repository object, and its pins released before the exit.
    const s = JSON.parse((await ucvmfs(['stats', '--json', '--cache', cache, fqrn])).stdout.toString()) as Record<string, number>;
    assert.equal(s.processes, 1, 'the repository was opened once for both files');
    assert.equal(s.objectsDownloaded, 2 + 6 + 2, 'certificate, root catalog, 6 + 2 chunks');
    const pins = join(cache, 'shared', 'pins');
    assert.deepEqual(existsSync(pins) ? readdirSync(pins) : [], [], 'no pin file left behind');
  } finally {
    await server.close();
  }

  // The third chunk of the first file is bad on the server: it is fetched ahead while the first two are written.
  const chunks = truth.entries[files[0]!]!.magic!['user.chunk_list']!.trim().split('\n').slice(1).map((l) => l.split(','));
  const [hash, offset] = chunks[2]!;
  const srv = copyFixture(fqrn);
  const object = join(srv, 'data', hash!.slice(0, 2), `${hash!.slice(2)}P`);
  const bytes = readFileSync(object);
  bytes[bytes.length >> 1] ^= 0x01;
  writeFileSync(object, bytes);
  const bad = await serve({ [fqrn]: srv });
  const badCache = tempDir();
  try {
    const r = await ucvmfs(['cat', '--server', `${bad.url}/@fqrn@`, '--key', keyOf(fqrn), '--cache', badCache, ...files.map((f) => `${fqrn}:${f}`)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[(hash-mismatch|decompression)\]/);
    assert.match(r.stderr, new RegExp(`${hash!.slice(0, 2)}/${hash!.slice(2)}P`), "the error names the object");
    // Written in pieces of 1 MiB: a piece that reaches into the bad chunk is not written at all. Then, as cat(1)
    // goes on after a file that fails, the whole second file.
    const second = truth.entries[files[1]!]!;
    const firstPart = r.stdout.subarray(0, r.stdout.length - second.size);
    assert.equal(sha1(r.stdout.subarray(firstPart.length)), second.sha1, 'the second file whole after the error');
    assert.ok(firstPart.length <= Number(offset), `not a byte of the bad chunk or past it (${firstPart.length} bytes written)`);
    assert.ok(firstPart.length > Number(offset) - (1 << 20), `the verified chunks before it (${firstPart.length} bytes written)`);
    assert.ok(firstPart.equals(good.subarray(0, firstPart.length)), 'and those are the true bytes');
    assert.ok(!existsSync(join(badCache, 'shared', hash!.slice(0, 2), `${hash!.slice(2)}P`)), 'the bad chunk is not cached');
  } finally {
    await bad.close();
  }
});

test('cat to a non-blocking pipe whose reader is slow at first: every byte, in order (descriptor 1 until it would block, then the stream)', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn);
  const file = '/big/text_20M.txt';
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  try {
    // Python makes the pipe non-blocking on the writer's side, then reads 64 KiB a millisecond for the first MiB,
    // so that the pipe fills and a write would block (EAGAIN) while the command is still writing.
    const script = `
import fcntl, hashlib, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen(sys.argv[1:], stdout=w)
os.close(w)
h, n = hashlib.sha1(), 0
while True:
    b = os.read(r, 65536)
    if not b: break
    h.update(b); n += len(b)
    if n < 1 << 20: time.sleep(0.001)
print(p.wait(), n, h.hexdigest())`;
    // Not spawnSync: the server runs in this process.
    const p = spawn('python3', ['-c', script, BIN, 'cat', '--server', `${server.url}/@fqrn@`, '--key', keyOf(fqrn), '--cache', tempDir(), `${fqrn}:${file}`]);
    let stdout = '', stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const status = await new Promise((resolve) => p.on('close', resolve));
    const r = { status, stdout, stderr };
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `0 ${truth.entries[file]!.size} ${truth.entries[file]!.sha1}`, r.stderr);
  } finally {
    await server.close();
  }
});
