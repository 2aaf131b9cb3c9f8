/**
 * Publisher → server → client round trips on edge cases, compared with the source tree as node:fs sees it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync, symlinkSync, linkSync, lstatSync, readdirSync, readFileSync, readlinkSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { openRepository, publish, type Repository, type HashAlgorithm } from '../lib/index.js';
import { serve, tempDir } from './helpers.js';

const MIN = 64 * 1024;
const CHUNKS = { min: MIN, avg: 2 * MIN, max: 4 * MIN };

function makeTree(root: string, many: number): void {
  const w = (p: string, data: string | Buffer) => { mkdirSync(join(root, p, '..'), { recursive: true }); writeFileSync(join(root, p), data); };
  w('empty_file', '');
  mkdirSync(join(root, 'empty_dir'));
  w('names/file with spaces.txt', 'spaces');
  w('names/ünïcödé-名前.txt', 'unicode');
  w('names/new\nline', 'newline in name');
  w('names/😀', 'emoji');
  let deep = 'deep';
  for (let i = 0; i < 20; i++) deep += `/d${i}`;
  w(`${deep}/leaf.txt`, 'deep leaf');
  w('chunks/exactly_min.bin', randomBytes(MIN));
  w('chunks/min_plus_one.bin', randomBytes(MIN + 1));
  w('chunks/big.bin', randomBytes(MIN * 9 + 12345));
  w('links/target.txt', 'target');
  symlinkSync('target.txt', join(root, 'links/rel'));
  symlinkSync('../names', join(root, 'links/dir'));
  symlinkSync('nowhere', join(root, 'links/dangling'));
  w('hard/a', 'hardlinked content');
  linkSync(join(root, 'hard/a'), join(root, 'hard/b'));
  linkSync(join(root, 'hard/a'), join(root, 'hard/c'));
  w('nested/.cvmfscatalog', '');
  w('nested/inside.txt', 'in a nested catalog');
  w('nested/inner/.cvmfscatalog', '');
  w('nested/inner/x.txt', 'in a nested nested catalog');
  linkSync(join(root, 'hard/a'), join(root, 'nested/cross_link'));
  w('perms/exec.sh', '#!/bin/sh\necho hi\n');
  chmodSync(join(root, "perms/exec.sh"), 0o755);
  mkdirSync(join(root, 'many'));
  for (let i = 0; i < many; i++) writeFileSync(join(root, 'many', `f${i}`), `${i}\n`);
}


/** Compares every source path with the repository. */
async function compare(repo: Repository, src: string, rel = ''): Promise<number> {
  let n = 0;
  const names = readdirSync(join(src, rel)).sort();
  const got = [...(await repo.fs.readdir(rel || '/'))].sort();
  assert.deepEqual(got, names, `listing of ${rel || '/'}`);
  for (const name of names) {
    const p = `${rel}/${name}`;
    const s = lstatSync(join(src, p), { bigint: true });
    const r = await repo.fs.lstat(p);
    assert.equal(r.mode, Number(s.mode), `${p} mode`);
    assert.equal(r.mtimeNs, s.mtimeNs, `${p} mtime_ns`);
    if (s.isSymbolicLink()) assert.equal(await repo.fs.readlink(p), readlinkSync(join(src, p)), `${p} target`);
    else if (s.isFile()) {
      assert.equal(r.size, Number(s.size), `${p} size`);
      const want = createHash('sha1').update(readFileSync(join(src, p))).digest('hex');
      assert.equal(createHash('sha1').update(await repo.fs.readFile(p) as Buffer).digest('hex'), want, `${p} content`);
    } else if (s.isDirectory()) n += await compare(repo, src, p);
    n++;
  }
  return n;
}

async function roundTrip(algorithm: HashAlgorithm, compression: 'zlib' | 'none', many = 300): Promise<void> {
  const src = tempDir('ucvmfs-src-');
  makeTree(src, many);
  const out = join(tempDir('ucvmfs-repo-'), 'repo');
  const fqrn = `rt-${algorithm}-${compression}.example.org`;
  const res = await publish(src, { fqrn, out, hashAlgorithm: algorithm, compression, chunking: CHUNKS, xattrs: { 'names/file with spaces.txt': { 'user.k': 'v' } }, readSourceXattrs: false });
  const server = await serve({ [fqrn]: out });
  try {
    const repo = await openRepository(fqrn, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [res.publicKeyPath], cacheDir: tempDir() });
    const n = await compare(repo, src);
    assert.ok(n > many);
    const inos = await Promise.all(['a', 'b', 'c'].map(async (x) => (await repo.fs.lstat(`/hard/${x}`)).ino));
    assert.equal(new Set(inos).size, 1, 'hardlink group shares an inode');
    assert.equal((await repo.fs.lstat('/hard/a')).nlink, 3, 'same-directory group keeps its count (the cross-directory link is broken up)');
    assert.equal((await repo.fs.lstat('/nested/cross_link')).nlink, 1, 'a hardlink across directories/catalogs is an independent entry');
    assert.notEqual((await repo.fs.lstat('/nested/cross_link')).ino, inos[0]);
    const big = await repo.fs.getxattr('/chunks/big.bin', 'user.chunks');
    assert.ok(Number(big.toString()) > 1, 'big file is chunked');
    assert.equal((await repo.fs.getxattr('/chunks/exactly_min.bin', 'user.chunks')).toString(), '1', 'a file of exactly the minimum chunk size is not chunked');
    assert.equal((await repo.fs.getxattr('/names/file with spaces.txt', 'user.k')).toString(), 'v');
    const fh = await repo.fs.open('/chunks/big.bin');
    const buf = Buffer.alloc(1000);
    const at = MIN * 4 - 500;
    const { bytesRead } = await fh.read(buf, 0, 1000, at);
    assert.equal(bytesRead, 1000);
    assert.ok(buf.equals(readFileSync(join(src, 'chunks/big.bin')).subarray(at, at + 1000)), 'range across a chunk boundary');
    await fh.close();
    assert.equal(await repo.fs.realpath('/links/dir/../links/rel'), '/links/target.txt');
    repo.close();
  } finally {
    await server.close();
  }
}

test('round trip: sha1 + zlib, every edge case', () => roundTrip('sha1', 'zlib', 10_000));
test('round trip: shake128 + zlib', () => roundTrip('shake128', 'zlib'));
test('round trip: rmd160 + no compression', () => roundTrip('rmd160', 'none'));

test('the newest revision is served; an older one served afterwards is refused as a rollback', async () => {
  const src = tempDir('ucvmfs-src-');
  writeFileSync(join(src, 'v.txt'), 'one');
  const base = tempDir('ucvmfs-repo-');
  const out = join(base, 'repo');
  const fqrn = 'rollback.example.org';
  const r1 = await publish(src, { fqrn, out });
  const old = join(base, 'rev1');
  cpSync(out, old, { recursive: true });
  writeFileSync(join(src, 'v.txt'), 'two');
  const r2 = await publish(src, { fqrn, out, tag: { name: 'second' } });
  assert.equal(r2.revision, r1.revision + 1);
  const cacheDir = tempDir();
  const s2 = await serve({ [fqrn]: out });
  const repo = await openRepository(fqrn, { serverUrls: [`${s2.url}/@fqrn@`], publicKeys: [r1.publicKeyPath], cacheDir });
  assert.equal(await repo.fs.readFile('/v.txt', 'utf8'), 'two');
  assert.deepEqual((await repo.tags()).map((t) => t.name).sort(), ['second', 'trunk', 'trunk-previous']);
  repo.close();
  await s2.close();
  const s1 = await serve({ [fqrn]: old });
  try {
    await assert.rejects(openRepository(fqrn, { serverUrls: [`${s1.url}/@fqrn@`], publicKeys: [r1.publicKeyPath], cacheDir, reuseCachedManifest: false }),
      (e: { code?: string; reason?: string }) => e.code === 'EIO' && e.reason === 'manifest-rollback');
  } finally {
    await s1.close();
  }
});

test('reload: a new revision is picked up between calls (by hand and after the TTL), open file handles keep reading the old one', async () => {
  const src = tempDir('ucvmfs-src-');
  writeFileSync(join(src, 'v.txt'), 'first revision\n');
  writeFileSync(join(src, 'keep.txt'), 'x'.repeat(100_000));
  const out = join(tempDir('ucvmfs-repo-'), 'repo');
  const fqrn = 'reload.example.org';
  const r1 = await publish(src, { fqrn, out, ttl: 1 });
  const server = await serve({ [fqrn]: out });
  try {
    const repo = await openRepository(fqrn, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [r1.publicKeyPath], cacheDir: tempDir() });
    try {
      const held = await repo.fs.open('/v.txt');
      assert.equal(await repo.fs.readFile('/v.txt', 'utf8'), 'first revision\n');
      assert.equal(await repo.reload(), false, 'nothing new yet');
      writeFileSync(join(src, 'v.txt'), 'second revision, longer\n');
      const r2 = await publish(src, { fqrn, out, ttl: 1 });
      assert.equal(await repo.reload(), true);
      assert.equal(repo.revision, r2.revision);
      assert.equal(await repo.fs.readFile('/v.txt', 'utf8'), 'second revision, longer\n');
      assert.equal((await repo.fs.getxattr('/', 'user.revision')).toString(), String(r2.revision));
      const buf = Buffer.alloc(100);
      const { bytesRead } = await held.read(buf, 0, 100, 0);
      assert.equal(buf.subarray(0, bytesRead).toString(), 'first revision\n', 'an open handle keeps its revision');
      await held.close();
      // By itself: after the TTL (1 s), a call starts the look and a later call sees the result.
      writeFileSync(join(src, 'v.txt'), 'third\n');
      const r3 = await publish(src, { fqrn, out, ttl: 1 });
      await new Promise((r) => setTimeout(r, 1100));
      await repo.fs.stat('/v.txt');
      for (let i = 0; i < 50 && repo.revision !== r3.revision; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(repo.revision, r3.revision);
      assert.equal(await repo.fs.readFile('/v.txt', 'utf8'), 'third\n');
    } finally {
      repo.close();
    }
  } finally {
    await server.close();
  }
});
