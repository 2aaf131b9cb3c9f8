/**
 * The genuine CernVM-FS client reads what our publisher writes. Runs only when `UCVMFS_GENUINE_CVMFS2` names a
 * cvmfs2 binary (and FUSE works for this user): a tree is published, served on loopback, mounted with
 * `cvmfs2 -o config=FILE <fqrn> <mountpoint>` the way the genuine client's own tests mount private repositories,
 * and every entry of the mount is compared with the source tree (type, mode, size, mtime, owner, symlink
 * target, content, directory listing), names as bytes. Skipped, saying so, otherwise.
 *
 * The server runs in this process, so nothing here may block the event loop while cvmfs2 needs it: the mount
 * (which fetches manifest and root catalog) and every access to the mount (nested catalogs and file contents
 * are fetched on demand) are asynchronous.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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
async function walk(root: Buffer, rel: Buffer = Buffer.alloc(0), out: Buffer[] = []): Promise<Buffer[]> {
  for (const n of (await readdir(b(root, rel), { encoding: 'buffer' })).sort(Buffer.compare)) {
    const p = b(rel, '/', n);
    out.push(p);
    if ((await lstat(b(root, p))).isDirectory()) await walk(root, p, out);
  }
  return out;
}

/** Runs a command without blocking the event loop; resolves with its exit status and output. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    // 'exit', not 'close': the daemon cvmfs2 leaves behind may hold inherited pipes open.
    child.once('exit', (status) => { clearTimeout(timer); resolve({ status, output }); });
  });
}

/**
 * cvmfs2 dlopen()s its FUSE module (libcvmfs_fuse3_stub.so) from $CVMFS_LIBRARY_PATH, ./, /usr/lib or /usr/lib64
 * only; a client installed under a prefix keeps it in <prefix>/lib, next to the binary's bin/.
 */
function clientEnv(cvmfs2: string): NodeJS.ProcessEnv {
  if (process.env.CVMFS_LIBRARY_PATH) return process.env;
  const lib = join(dirname(cvmfs2), '..', 'lib');
  return existsSync(join(lib, 'libcvmfs_fuse3_stub.so')) || existsSync(join(lib, 'libcvmfs_fuse_stub.so'))
    ? { ...process.env, CVMFS_LIBRARY_PATH: lib }
    : process.env;
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
    const m = await run(CVMFS2, ['-o', `config=${conf}`, FQRN, mnt], clientEnv(CVMFS2));
    assert.equal(m.status, 0, `cvmfs2 failed: ${m.output}`);
    mounted = true;

    const srcRoot = Buffer.from(src);
    const mntRoot = Buffer.from(mnt);
    const want = await walk(srcRoot);
    const got = await walk(mntRoot);
    assert.deepEqual(got.map((p) => p.toString('hex')), want.map((p) => p.toString('hex')), 'the same paths (as bytes)');
    for (const p of want) {
      const s = await lstat(b(srcRoot, p));
      const g = await lstat(b(mntRoot, p));
      const where = JSON.stringify(p.toString('latin1'));
      assert.equal(g.mode, s.mode, `mode of ${where}`);
      assert.equal(g.uid, s.uid, `uid of ${where}`);
      assert.equal(g.gid, s.gid, `gid of ${where}`);
      assert.equal(Math.floor(g.mtimeMs / 1000), Math.floor(s.mtimeMs / 1000), `mtime of ${where}`);
      if (s.isSymbolicLink()) {
        assert.ok((await readlink(b(mntRoot, p), { encoding: 'buffer' })).equals(await readlink(b(srcRoot, p), { encoding: 'buffer' })), `target of ${where}`);
        assert.equal(g.size, s.size, `size of ${where}`);
      } else if (s.isFile()) {
        assert.equal(g.size, s.size, `size of ${where}`);
        assert.equal(g.nlink, s.nlink, `nlink of ${where}`);
        const h = async (f: Buffer) => createHash('sha1').update(await readFile(f)).digest('hex');
        assert.equal(await h(b(mntRoot, p)), await h(b(srcRoot, p)), `content of ${where}`);
      }
    }
  } finally {
    if (mounted) {
      const u = await run('fusermount3', ['-u', mnt]).catch(() => ({ status: null, output: '' }));
      if (u.status !== 0) await run('fusermount', ['-u', mnt]).catch(() => undefined);
    }
    await server.close();
  }
});
