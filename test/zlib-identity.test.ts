/**
 * The publisher writes what the genuine one writes: standard zlib bytes, hence the same object names for the
 * same content. Proven on the genuine fixtures (every zlib object they hold is reproduced by our deflate), on a
 * repository we publish (every object recompresses to itself), and by republishing the fixtures' content (every
 * non-chunked file gets the object name the genuine publisher gave it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { fixtureNames, FIXTURES, keyOf, noise, readTruth, serve, tempDir, ucvmfs } from './helpers.js';
import { deflateStandard, deflateStandardStream } from '../lib/publish/deflate.js';
import { publish } from '../lib/publish/index.js';
import { DeflateThread } from '../lib/publish/deflate-thread.js';
import { openRepository } from '../lib/index.js';

/** Every object file below a repository's data/ (txn excluded), as [relative name, path]. */
function objectsOf(srv: string): [string, string][] {
  const data = join(srv, 'data');
  const out: [string, string][] = [];
  for (const d of readdirSync(data)) {
    if (d === 'txn') continue;
    for (const f of readdirSync(join(data, d))) out.push([`${d}/${f}`, join(data, d, f)]);
  }
  return out;
}

/** A server.conf setting of a fixture. */
function serverSetting(fqrn: string, name: string): string | undefined {
  const m = readFileSync(join(FIXTURES, fqrn, 'server.conf'), 'utf8').match(new RegExp(`^${name}=(.*)$`, 'm'));
  return m?.[1]?.trim();
}

/** Feeds `bytes` in uneven pieces through the streaming deflate. */
async function deflateInPieces(bytes: Buffer, piece: number): Promise<Buffer> {
  async function* pieces(): AsyncGenerator<Buffer> {
    for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
  }
  const out: Buffer[] = [];
  for await (const c of deflateStandardStream(pieces())) out.push(c);
  return Buffer.concat(out);
}

for (const fqrn of fixtureNames()) {
  test(`zlib identity: every zlib object of the genuine ${fqrn} is what our deflate writes for its content`, async () => {
    // Data objects are zlib unless the repository stores them uncompressed; catalogs, certificate and history
    // (suffixes C, X, H) always are.
    const dataCompressed = serverSetting(fqrn, 'CVMFS_COMPRESSION_ALGORITHM') !== 'none';
    let checked = 0;
    let streamed = 0;
    for (const [name, path] of objectsOf(join(FIXTURES, fqrn, 'srv'))) {
      const hasSuffix = /[A-Z]$/.test(name) && !/P$/.test(name);
      if (!dataCompressed && !hasSuffix) continue;
      const stored = readFileSync(path);
      const plain = inflateSync(stored);
      assert.ok(deflateStandard(plain).equals(stored), `${fqrn} data/${name}: deflate of its content differs from the stored object`);
      checked++;
      // The streaming path must give the same bytes however the input is split.
      if (plain.length > 100_000 || checked % 97 === 1) {
        assert.ok((await deflateInPieces(plain, 7_777)).equals(stored), `${fqrn} data/${name}: streamed deflate differs`);
        streamed++;
      }
    }
    assert.ok(checked >= (dataCompressed ? 50 : 5), `${fqrn}: only ${checked} zlib objects found`);
    assert.ok(streamed > 0);
  });
}

test('zlib identity: every object of a repository we publish recompresses, with standard zlib, to itself', async () => {
  const src = join(tempDir('ucvmfs-zid-src-'), 'src');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'empty'), '');
  writeFileSync(join(src, 'text.txt'), 'the quick brown fox jumps over the lazy dog\n'.repeat(5000));
  writeFileSync(join(src, 'sub/noise.bin'), noise(300_000, 7));
  // Text with long repeats and some noise: many matches of every length, across 32 KiB window edges.
  const mixed = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.concat([noise(3_000 + i * 11, i + 1), Buffer.from(`line ${i} `.repeat(400))])));
  writeFileSync(join(src, 'sub/mixed.dat'), mixed);
  // Chunked (small chunk sizes), and a 17 MiB file stored whole, which takes the streaming path.
  writeFileSync(join(src, 'chunked.bin'), Buffer.concat([noise(700_000, 3), mixed]));
  const out = join(tempDir('ucvmfs-zid-out-'), 'repo');
  const r1 = await publish(src, { fqrn: 'zid.example.org', out, chunking: { min: 64 * 1024, avg: 128 * 1024, max: 256 * 1024 }, readSourceXattrs: false });
  const big = Buffer.concat([Buffer.from('header\n'.repeat(1000)), noise(17 * 1024 * 1024, 11)]);
  writeFileSync(join(src, 'big.bin'), big);
  const r2 = await publish(src, { fqrn: 'zid.example.org', out, chunking: false, readSourceXattrs: false });
  assert.equal(r2.revision, 2);

  const objects = objectsOf(out);
  assert.equal(objects.length, r1.objects.written + r2.objects.written);
  const suffixes = new Set<string>();
  let bigSeen = false;
  for (const [name, path] of objects) {
    const stored = readFileSync(path);
    const plain = inflateSync(stored);
    assert.ok(deflateStandard(plain).equals(stored), `data/${name} does not recompress to itself`);
    suffixes.add(/[A-Z]$/.test(name) ? name.slice(-1) : '');
    if (plain.length === big.length) bigSeen = plain.equals(big);
  }
  assert.deepEqual([...suffixes].sort(), ['', 'C', 'H', 'P', 'X']);
  assert.ok(bigSeen, 'the streamed 17 MiB object');
});

for (const fqrn of fixtureNames()) {
  test(`zlib identity: ${fqrn} exported and republished with ucvmfs publish gives every non-chunked file the genuine object name`, async () => {
    const truth = readTruth(fqrn);
    const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
    const work = tempDir('ucvmfs-zid-repub-');
    const tree = join(work, 'tree');
    const out = join(work, 'repo');
    const env = { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(fqrn), CVMFS_CACHE_BASE: join(work, 'cache') };
    try {
      const ex = await ucvmfs(['export', '--quiet', '--to', tree, fqrn], env);
      assert.equal(ex.code, 0, ex.stderr);
    } finally {
      await server.close();
    }
    const hash = serverSetting(fqrn, 'CVMFS_HASH_ALGORITHM') ?? 'sha1';
    const compression = serverSetting(fqrn, 'CVMFS_COMPRESSION_ALGORITHM') === 'none' ? 'none' : 'zlib';
    const sizes = ['MIN', 'AVG', 'MAX'].map((s) => serverSetting(fqrn, `CVMFS_${s}_CHUNK_SIZE`)).join(',');
    const pub = await ucvmfs(['publish', tree, '--fqrn', fqrn, '--out', out, '--hash', hash, '--compression', compression, '--chunk-sizes', sizes]);
    assert.equal(pub.code, 0, pub.stderr);

    const ours = await serve({ [fqrn]: out });
    const repo = await openRepository(fqrn, { serverUrls: [`${ours.url}/@fqrn@`], publicKeys: [join(`${out}.keys`, `${fqrn}.pub`)], cacheDir: join(work, 'cache2') });
    try {
      let compared = 0;
      for (const [path, e] of Object.entries(truth.entries)) {
        // Regular files the genuine publisher stored whole: user.hash names the object, one chunk (itself).
        if (e.type !== 'file' || path.startsWith('/.cvmfs') || !e.magic?.['user.hash']) continue;
        if (Number(e.magic['user.chunks'] ?? '1') > 1) continue;
        if (!existsSync(join(tree, path))) assert.fail(`${path} was not exported`);
        const mine = (await repo.fs.getxattr(path, 'user.hash')).toString();
        assert.equal(mine, e.magic['user.hash'], `${fqrn}:${path}`);
        compared++;
      }
      assert.ok(compared >= 20, `${fqrn}: only ${compared} files compared`);
    } finally {
      repo.close();
      await ours.close();
    }
  });
}

test('the deflate thread writes what deflateStandard writes, every genuine catalog; at most three buffers reserved at once', async () => {
  const thread = new DeflateThread();
  try {
    const catalogs = fixtureNames().flatMap((fqrn) => objectsOf(join(FIXTURES, fqrn, 'srv')).filter(([name]) => name.endsWith('C')).map(([, path]) => readFileSync(path)));
    assert.ok(catalogs.length >= 5, `${catalogs.length} catalogs`);
    // All at once, as the publisher's catalog writer sends them: each answer is its own input's.
    const out = await Promise.all(catalogs.map((stored) => thread.deflate(inflateSync(stored))));
    out.forEach((bytes, i) => assert.ok(Buffer.from(bytes).equals(catalogs[i]!), `catalog ${i}: the thread's deflate differs from the stored object`));
    // The bound: a fourth reservation waits for a release.
    const held = await Promise.all([thread.reserve(), thread.reserve(), thread.reserve()]);
    let fourth = false;
    const waiting = thread.reserve().then((release) => { fourth = true; return release; });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fourth, false);
    held[0]!();
    held[0]!(); // a second call gives nothing back twice
    (await waiting)();
    assert.equal(fourth, true);
    held[1]!();
    held[2]!();
    // All given back once each: three again, and a fourth waits.
    const again = await Promise.all([thread.reserve(), thread.reserve(), thread.reserve()]);
    let more = false;
    void thread.reserve().then(() => { more = true; });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(more, false);
    for (const release of again) release();
  } finally {
    await thread.close();
  }
});
