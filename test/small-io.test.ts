/**
 * The small I/O helpers that keep Node's heavier paths off a command's start: /proc files read into one buffer
 * (lib/proc-file.ts), one file removed by unlink (lib/unlink.ts), a file read through a descriptor
 * (lib/fs/fd-file.ts); and the process start time the cache's claims and the connector's sessions read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readProcFile } from '../lib/proc-file.js';
import { unlinkIfPresent } from '../lib/unlink.js';
import { FdFile, readWhole } from '../lib/fs/fd-file.js';
import { appendAsync, mkdirAllAsync, renameAsync, statAsync, writeFileAsync } from '../lib/fs/callback-fs.js';
import { startTime } from '../lib/cache/claim.js';
import { tempDir } from './helpers.js';

test('readProcFile: the whole of a /proc file, however small its first buffer; what readFileSync reads', () => {
  // A child's environment of about 40 KiB: ten times the default first buffer, so the buffer must grow.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
    import { readProcFile } from ${JSON.stringify(new URL('../lib/proc-file.js', import.meta.url).href)};
    import { readFileSync } from 'node:fs';
    const a = readProcFile('/proc/self/environ', 16), b = readFileSync('/proc/self/environ');
    process.stdout.write(JSON.stringify([a.equals(b), a.length]));
  `], { env: { BIG: 'x'.repeat(40_000), PATH: process.env.PATH } });
  assert.equal(r.status, 0, r.stderr.toString());
  const [same, length] = JSON.parse(r.stdout.toString()) as [boolean, number];
  assert.ok(same, 'the same bytes as readFileSync');
  assert.ok(length > 40_000, `all of it (${length} bytes)`);
  assert.deepEqual(readProcFile('/proc/self/cmdline'), readFileSync('/proc/self/cmdline'));
  assert.throws(() => readProcFile('/proc/self/no-such-file'), { code: 'ENOENT' });
});

test('startTime: the 22nd field of /proc/<pid>/stat, also behind a name with spaces and parentheses; empty for no process', async () => {
  const odd = join(tempDir('ucvmfs-starttime-'), 'a) b (c');
  copyFileSync('/bin/sleep', odd);
  chmodSync(odd, 0o755);
  const child = spawn(odd, ['30'], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 100));
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'latin1');
    assert.match(stat, /\(a\) b \(c\) /, 'the name holds ") " itself');
    const field = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
    assert.match(field, /^\d+$/);
    assert.equal(startTime(child.pid!), field);
  } finally {
    child.kill('SIGKILL');
  }
  const mine = readFileSync('/proc/self/stat', 'latin1');
  assert.equal(startTime(process.pid), mine.slice(mine.lastIndexOf(')') + 2).split(' ')[19]);
  assert.equal(startTime(2 ** 30), '');
});

test('unlinkIfPresent: removes a file, says nothing of one gone, fails on a directory as unlink does', () => {
  const dir = tempDir('ucvmfs-unlink-');
  const f = join(dir, 'f');
  writeFileSync(f, 'x');
  unlinkIfPresent(f);
  assert.equal(existsSync(f), false);
  unlinkIfPresent(f);
  mkdirSync(join(dir, 'd'));
  assert.throws(() => unlinkIfPresent(join(dir, 'd')), (e: NodeJS.ErrnoException) => e.code === 'EISDIR' || e.code === 'EPERM');
  assert.ok(existsSync(join(dir, 'd')));
});

test('FdFile: size, small and large reads at positions (0 past the end), close once; ENOENT for a missing file', async () => {
  const dir = tempDir('ucvmfs-fdfile-');
  const f = join(dir, 'f');
  writeFileSync(f, 'hello, world');
  const h = await FdFile.open(f);
  assert.equal(await h.size(), 12);
  const buf = Buffer.alloc(8, 0x2e);
  assert.equal(await h.read(buf, 2, 5, 7), 5);
  assert.equal(buf.toString(), '..world.');
  assert.equal(await h.read(buf, 0, 8, 12), 0);
  await h.close();
  await h.close(); // a second close must not close a descriptor reused meanwhile
  // A read larger than the synchronous ones (16 KiB) goes through the thread pool: the same bytes.
  const big = Buffer.from(Array.from({ length: 40 * 1024 }, (_, i) => i % 251));
  writeFileSync(f, big);
  const b = await FdFile.open(f);
  assert.equal(await b.size(), big.length);
  const got = Buffer.alloc(32 * 1024);
  assert.equal(await b.read(got, 0, got.length, 4096), got.length);
  assert.ok(got.equals(big.subarray(4096, 4096 + got.length)));
  assert.equal(await b.read(got, 0, got.length, 30 * 1024), 10 * 1024, 'short at the end');
  await b.close();
  await assert.rejects(FdFile.open(join(dir, 'missing')), { code: 'ENOENT' });
  // readWhole: the same bytes as readFileSync, small (synchronous) and large (through the pool), empty too.
  assert.ok((await readWhole(f)).equals(readFileSync(f)));
  writeFileSync(f, 'small');
  assert.equal((await readWhole(f)).toString(), 'small');
  writeFileSync(f, '');
  assert.equal((await readWhole(f)).length, 0);
  await assert.rejects(readWhole(join(dir, 'missing')), { code: 'ENOENT' });
  await assert.rejects(readWhole(dir), { code: 'EISDIR' });
});

test('exec\'s plain stdout on a pipe the command made non-blocking: a write the reader is not ready for waits in order, and the event loop goes on meanwhile', () => {
  // Python makes the pipe non-blocking (as a command sharing it may), starts Node on it, and reads only after
  // 300 ms: 1 MiB cannot go in at once (a pipe holds 64 KiB).
  const child = `
    import { plainStdio } from ${JSON.stringify(new URL('../lib/cli/stdout.js', import.meta.url).href)};
    plainStdio();
    let ticks = 0;
    const t = setInterval(() => ticks++, 2);
    process.stdout.write(Buffer.alloc(1 << 20, 'a'));
    process.stdout.write('the end', () => { clearInterval(t); process.stderr.write(String(ticks)); });
  `;
  const py = `
import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen([sys.argv[1], '--input-type=module', '-e', sys.argv[2]], stdout=w, stderr=subprocess.PIPE)
os.close(w)
time.sleep(0.3)
data = b''
while True:
    b = os.read(r, 1 << 16)
    if not b: break
    data += b
err = p.stderr.read()
p.wait()
sys.stdout.write('%d %d %s %s' % (p.returncode, len(data), data.endswith(b'the end') and data[:1 << 20] == b'a' * (1 << 20), err.decode()))
`;
  const r = spawnSync('python3', ['-c', py, process.execPath, child], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [code, length, whole, ticks] = r.stdout.split(' ');
  assert.equal(code, '0', r.stdout);
  assert.equal(Number(length), (1 << 20) + 'the end'.length);
  assert.equal(whole, 'True', 'every byte, in order');
  assert.ok(Number(ticks) >= 20, `the event loop ran while the reader was away (${ticks} ticks of 2 ms in 300 ms)`);
});

test('the callback calls as promises (lib/fs/callback-fs.ts): what node:fs does, errors with their codes', async () => {
  const dir = tempDir('ucvmfs-callback-fs-');
  const f = join(dir, 'a', 'b', 'f');
  await mkdirAllAsync(join(dir, 'a', 'b'), 0o700);
  assert.equal(statSync(join(dir, 'a')).mode & 0o777, 0o700);
  await writeFileAsync(f, 'first', true);
  await writeFileAsync(f, 'new', false);
  assert.equal(readFileSync(f, 'utf8'), 'new', 'truncated, then written');
  await appendAsync(f, ' line\n');
  assert.equal(readFileSync(f, 'utf8'), 'new line\n');
  assert.equal((await statAsync(f)).size, 9);
  await renameAsync(f, join(dir, 'g'));
  assert.equal(existsSync(f), false);
  await assert.rejects(renameAsync(f, join(dir, 'h')), { code: 'ENOENT' });
  await assert.rejects(statAsync(f), { code: 'ENOENT' });
  await assert.rejects(writeFileAsync(join(dir, 'none', 'x'), 'x', true), { code: 'ENOENT' });
  assert.ok(existsSync(join(dir, 'g')));
});
