/**
 * The genuine CernVM-FS client reads what our publisher writes. Runs only when `UCVMFS_GENUINE_CVMFS2` names a
 * cvmfs2 binary (and FUSE works for this user): a tree is published, served on loopback, mounted with
 * `cvmfs2 -o config=FILE <fqrn> <mountpoint>` the way the genuine client's own tests mount private repositories,
 * and every entry of the mount is compared with the source tree (type, mode, size, mtime, owner, symlink
 * target, content, directory listing), names as bytes. Skipped, saying so, otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { serve, tempDir } from './helpers.js';
import { publish } from '../lib/publish/index.js';

const CVMFS2 = process.env.UCVMFS_GENUINE_CVMFS2;
const FQRN = 'genuine-check.example.org';

const b = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));

/** A source tree with what catalogs distinguish: nested catalog, chunked file, links, a name that is not UTF-8. */
function makeSource(src: string): void {
  mkdirSync(join(src, 'sw', 'bin'), { recursive: true });
  mkdirSync(join(src, 'nested', 'deeper'), { recursive: true });
  writeFileSync(join(src, 'README'), 'published by ucvmfs\n');
  writeFileSync(join(src, 'empty'), '');
  writeFileSync(join(src, 'sw', 'bin', 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  writeFileSync(join(src, 'nested', '.cvmfscatalog'), '');
  writeFileSync(join(src, 'nested', 'deeper', 'leaf.txt'), 'leaf\n');
  const big = Buffer.alloc(3 * 1024 * 1024);
  let x = 12345;
  for (let i = 0; i < big.length; i++) { x = (x * 1103515245 + 12345) >>> 0; big[i] = x >>> 24; }
  writeFileSync(join(src, 'chunked.bin'), big);
  writeFileSync(join(src, 'text.txt'), 'some text that compresses well\n'.repeat(20_000));
  symlinkSync('README', join(src, 'rel-link'));
  symlinkSync('/etc/hostname', join(src, 'abs-link'));
  writeFileSync(join(src, 'hard-a'), 'hardlinked\n');
  linkSync(join(src, 'hard-a'), join(src, 'hard-b'));
  writeFileSync(b(src, '/', Buffer.from([0x66, 0xff, 0x67])), 'name not UTF-8\n');
}

/** Every path below `root` (as bytes relative to it), parents first. */
function walk(root: Buffer, rel: Buffer = Buffer.alloc(0), out: Buffer[] = []): Buffer[] {
  for (const n of readdirSync(b(root, rel), { encoding: 'buffer' }).sort(Buffer.compare)) {
    const p = b(rel, '/', n);
    out.push(p);
    if (lstatSync(b(root, p)).isDirectory()) walk(root, p, out);
  }
  return out;
}

test('the genuine cvmfs2 client mounts a repository we publish and shows every entry of the source', async (t) => {
  if (!CVMFS2) {
    t.skip('set UCVMFS_GENUINE_CVMFS2 to a cvmfs2 binary (FUSE needed) to check our repositories with the genuine client');
    return;
  }
  assert.ok(existsSync(CVMFS2), `UCVMFS_GENUINE_CVMFS2=${CVMFS2} does not exist`);
  const work = tempDir('ucvmfs-genuine-');
  const src = join(work, 'src');
  mkdirSync(src);
  makeSource(src);
  const res = await publish(src, { fqrn: FQRN, out: join(work, 'repo'), chunking: { min: 256 * 1024, avg: 512 * 1024, max: 1024 * 1024 }, readSourceXattrs: false });
  const server = await serve({ [FQRN]: join(work, 'repo') });
  const mnt = join(work, 'mnt');
  const cache = join(work, 'cache');
  mkdirSync(mnt);
  mkdirSync(cache);
  const conf = join(work, 'client.conf');
  writeFileSync(conf, [
    `CVMFS_SERVER_URL=${server.url}/@fqrn@`,
    `CVMFS_PUBLIC_KEY=${res.publicKeyPath}`,
    `CVMFS_CACHE_BASE=${cache}`,
    `CVMFS_RELOAD_SOCKETS=${cache}`,
    'CVMFS_SHARED_CACHE=no',
    'CVMFS_QUOTA_LIMIT=-1',
    'CVMFS_HTTP_PROXY=DIRECT',
    'CVMFS_CLAIM_OWNERSHIP=no',
    'CVMFS_TIMEOUT_DIRECT=10',
    '',
  ].join('\n'));
  let mounted = false;
  try {
    // cvmfs2 forks into the background once the mount is up (or exits non-zero saying why not).
    const m = spawnSync(CVMFS2, ['-o', `config=${conf}`, FQRN, mnt], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(m.status, 0, `cvmfs2 failed: ${m.stdout}${m.stderr}`);
    mounted = true;

    const srcRoot = Buffer.from(src);
    const mntRoot = Buffer.from(mnt);
    const want = walk(srcRoot);
    const got = walk(mntRoot);
    assert.deepEqual(got.map((p) => p.toString('hex')), want.map((p) => p.toString('hex')), 'the same paths (as bytes)');
    for (const p of want) {
      const s = lstatSync(b(srcRoot, p));
      const g = lstatSync(b(mntRoot, p));
      const where = JSON.stringify(p.toString('latin1'));
      assert.equal(g.mode, s.mode, `mode of ${where}`);
      assert.equal(g.uid, s.uid, `uid of ${where}`);
      assert.equal(g.gid, s.gid, `gid of ${where}`);
      assert.equal(Math.floor(g.mtimeMs / 1000), Math.floor(s.mtimeMs / 1000), `mtime of ${where}`);
      if (s.isSymbolicLink()) {
        assert.ok(readlinkSync(b(mntRoot, p), { encoding: 'buffer' }).equals(readlinkSync(b(srcRoot, p), { encoding: 'buffer' })), `target of ${where}`);
        assert.equal(g.size, s.size, `size of ${where}`);
      } else if (s.isFile()) {
        assert.equal(g.size, s.size, `size of ${where}`);
        assert.equal(g.nlink, s.nlink, `nlink of ${where}`);
        const h = (f: Buffer) => createHash('sha1').update(readFileSync(f)).digest('hex');
        assert.equal(h(b(mntRoot, p)), h(b(srcRoot, p)), `content of ${where}`);
      }
    }
  } finally {
    if (mounted) {
      const u = spawnSync('fusermount3', ['-u', mnt]);
      if (u.status !== 0) spawnSync('fusermount', ['-u', mnt]);
    }
    await server.close();
  }
});
