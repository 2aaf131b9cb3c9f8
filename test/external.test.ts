/**
 * External data (a repository published with CVMFS_EXTERNAL_DATA: files flagged external, their content not among
 * the repository's objects): the client fetches each file from an external server by its path, a chunk as a
 * byte range, and verifies it by the catalog's hash like any object. nginx serves the repository and, as the
 * external server, the published tree itself; a second location serves a tampered copy.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openRepository, publish, type PublishResult } from '../lib/index.js';
import { NGINX, startNginx, type Nginx } from './nginx.js';
import { tempDir, ucvmfs } from './helpers.js';

const FQRN = 'external.test.example.org';
const MIN = 64 * 1024;
const skip = NGINX ? false : 'nginx is not installed';
let src = '';
let out = '';
let res: PublishResult;
let nginx: Nginx;
let good = '';
let bad = '';
const files: Record<string, Buffer> = {
  'small.txt': Buffer.from('external data\n'),
  'dir/we ird #name?.txt': Buffer.from('a name a URL must escape\n'),
  'empty': Buffer.alloc(0),
  'big.bin': randomBytes(MIN * 11 + 777), // chunked
};

before(async () => {
  if (skip) return;
  src = tempDir('ucvmfs-external-src-');
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(src, p, '..'), { recursive: true });
    writeFileSync(join(src, p), data);
  }
  out = join(tempDir('ucvmfs-external-'), 'repo');
  res = await publish(src, { fqrn: FQRN, out, externalData: true, chunking: { min: MIN, avg: 2 * MIN, max: 4 * MIN }, readSourceXattrs: false });
  // The tampered copy: one byte changed in the small file and in one chunk of the big one.
  const tampered = tempDir('ucvmfs-external-bad-');
  cpSync(src, tampered, { recursive: true });
  writeFileSync(join(tampered, 'small.txt'), 'externaL data\n');
  const big = Buffer.from(files['big.bin']!);
  big[MIN * 5] ^= 1;
  writeFileSync(join(tampered, 'big.bin'), big);
  nginx = await startNginx({ [FQRN]: out, 'good.ext': src, 'bad.ext': tampered });
  good = nginx.url.replace('@fqrn@', 'good.ext');
  bad = nginx.url.replace('@fqrn@', 'bad.ext');
});

after(() => nginx?.stop());

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

async function open(externalUrls?: string[]) {
  return openRepository(FQRN, { serverUrls: [nginx.url], publicKeys: [res.publicKeyPath], cacheDir: tempDir('ucvmfs-external-cache-'), ...(externalUrls ? { externalUrls } : {}) });
}

test('the publisher flags files external and keeps their content out of the objects', { skip }, async () => {
  const repo = await open();
  try {
    for (const p of Object.keys(files)) {
      assert.equal((await repo.fs.getxattr(p, 'user.external_file')).toString(), '1', p);
      assert.equal((await repo.fs.getxattr(p, 'user.compression')).toString(), 'none', p);
    }
    const hash = (await repo.fs.getxattr('small.txt', 'user.hash')).toString();
    assert.equal(hash, sha1(files['small.txt']!), 'the hash of the file as it is');
    assert.equal(existsSync(join(out, 'data', hash.slice(0, 2), hash.slice(2))), false, 'no object of the content');
    assert.ok(Number((await repo.fs.getxattr('big.bin', 'user.chunks')).toString()) > 3, 'chunked');
    // Without an external server, reading such a file fails; it never reads as empty.
    await assert.rejects(repo.fs.readFile('small.txt'), (e: NodeJS.ErrnoException) => e.code === 'EIO' && /CVMFS_EXTERNAL_URL/.test(e.message));
  } finally {
    await repo.close();
  }
});

test('external files read exactly from the external server by path and range, verified; a tampered server is failed over', { skip }, async () => {
  const repo = await open([good]);
  try {
    for (const [p, data] of Object.entries(files)) assert.equal(sha1(await repo.fs.readFile(p) as Buffer), sha1(data), p);
    // A range in the middle of the chunked file: only the chunks it touches.
    const fh = await repo.fs.open('big.bin');
    const buf = Buffer.alloc(1000);
    const { bytesRead } = await fh.read(buf, 0, 1000, MIN * 7 - 500);
    await fh.close();
    assert.deepEqual(buf.subarray(0, bytesRead), files['big.bin']!.subarray(MIN * 7 - 500, MIN * 7 + 500));
    assert.equal((await repo.fs.getxattr('dir/we ird #name?.txt', 'user.external_url')).toString(), `${good}/dir/we ird #name?.txt`);
  } finally {
    await repo.close();
  }
  // The tampered server first: every changed piece fails its hash there and comes from the next server.
  const both = await open([bad, good]);
  try {
    assert.equal(sha1(await both.fs.readFile('big.bin') as Buffer), sha1(files['big.bin']!));
    assert.equal(sha1(await both.fs.readFile('small.txt') as Buffer), sha1(files['small.txt']!));
    assert.ok(both.stats().hashMismatches >= 2, `hash mismatches: ${both.stats().hashMismatches}`);
  } finally {
    await both.close();
  }
  const onlyBad = await open([bad]);
  try {
    await assert.rejects(onlyBad.fs.readFile('small.txt'), { code: 'EIO' });
    await assert.rejects(onlyBad.fs.readFile('big.bin'), { code: 'EIO' });
    // What the tampered server holds unchanged still reads.
    assert.equal((await onlyBad.fs.readFile('dir/we ird #name?.txt')).toString(), files['dir/we ird #name?.txt']!.toString());
  } finally {
    await onlyBad.close();
  }
});

test('ucvmfs exec and cat read external data with CVMFS_EXTERNAL_URL', { skip }, async () => {
  const env = {
    CVMFS_SERVER_URL: nginx.url, CVMFS_PUBLIC_KEY: res.publicKeyPath, CVMFS_EXTERNAL_URL: `${bad};${good}`,
    CVMFS_CACHE_BASE: tempDir('ucvmfs-external-cache-'), UCVMFS_SHADOW_DIR: tempDir('ucvmfs-external-shadow-'),
  };
  const r = await ucvmfs(['exec', '--', '/bin/sh', '-c', `sha1sum /cvmfs/${FQRN}/big.bin "/cvmfs/${FQRN}/dir/we ird #name?.txt" && cat /cvmfs/${FQRN}/small.txt`], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), `${sha1(files['big.bin']!)}  /cvmfs/${FQRN}/big.bin\n${sha1(files['dir/we ird #name?.txt']!)}  /cvmfs/${FQRN}/dir/we ird #name?.txt\n${files['small.txt']!.toString()}`);
  const c = await ucvmfs(['cat', `${FQRN}:/big.bin`], { ...env, CVMFS_CACHE_BASE: tempDir('ucvmfs-external-cache-') });
  assert.equal(c.code, 0, c.stderr);
  assert.equal(sha1(c.stdout), sha1(files['big.bin']!));
});
