/**
 * The library's fs view against node:fs/promises on the same tree held read-only: the same answers, the same
 * errors (code, and the class of argument errors), and never a crash, a short read or a wrong one. Where this
 * process may mount, the reference is the published source tree bound read-only (a real read-only mount);
 * otherwise the read calls are compared with the source itself and the write calls with the kernel's table.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, writeFileSync, symlinkSync, chmodSync } from 'node:fs';
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { openRepository, publish, type Repository } from '../lib/index.js';
import { serve, tempDir } from './helpers.js';
import type { RepositoryServer } from '../lib/serve.js';
import { decodeName } from '../lib/format/byte-names.js';

const FQRN = 'fsapi.test.example.org';
const MIN = 64 * 1024;
let repo: Repository;
let server: RepositoryServer;
/** The reference tree, read-only where this process could mount it so. */
let ref = '';
let mounted = false;
let keyPath = '';

before(async () => {
  const src = tempDir('ucvmfs-fsapi-src-');
  const w = (p: string, data: string | Buffer) => { mkdirSync(join(src, p, '..'), { recursive: true }); writeFileSync(join(src, p), data); };
  w('one', 'one\n');
  w('k100', randomBytes(100 * 1024));
  w('big', randomBytes(MIN * 9 + 4321)); // chunked
  w('sub/deep/x', 'x\n');
  mkdirSync(join(src, 'empty'));
  symlinkSync('sub/deep', join(src, 'dirlink'));
  symlinkSync('nowhere', join(src, 'dangling'));
  // Targets that end in `/` or `/.`: the kernel wants a directory there (ENOTDIR for a file).
  symlinkSync('one/', join(src, 'fileslash'));
  symlinkSync('one/.', join(src, 'filedot'));
  symlinkSync('sub/', join(src, 'dirslash'));
  symlinkSync('b', join(src, 'a'));
  symlinkSync('a', join(src, 'b'));
  w('nested/.cvmfscatalog', '');
  w('nested/inner/y', 'y\n');
  // A name of 200 bytes that are not UTF-8: 200 escapes in string form, still no ENAMETOOLONG.
  writeFileSync(Buffer.concat([Buffer.from(join(src, 'nested/')), Buffer.alloc(200, 0xff)]), 'bytes\n');
  w('perm/ro', 'ro\n');
  chmodSync(join(src, 'perm/ro'), 0o444);
  for (const [name, mode] of [['none', 0o000], ['xonly', 0o111], ['owner', 0o400], ['others', 0o044]] as const) {
    w(`perm/${name}`, `${name}\n`);
    chmodSync(join(src, `perm/${name}`), mode);
  }
  // Reachable by another user, whose files these are (the permission test runs a child as nobody against the
  // same mount).
  chmodSync(src, 0o755);
  if (process.getuid?.() === 0) for (const name of ['none', 'xonly', 'owner', 'others', 'ro']) spawnSync('chown', ['65534:65534', join(src, 'perm', name)]);
  const out = join(tempDir('ucvmfs-fsapi-'), 'repo');
  const res = await publish(src, { fqrn: FQRN, out, chunking: { min: MIN, avg: 2 * MIN, max: 4 * MIN }, readSourceXattrs: false });
  server = await serve({ [FQRN]: out });
  keyPath = res.publicKeyPath;
  repo = await openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyPath], cacheDir: tempDir('ucvmfs-fsapi-cache-') });
  ref = src;
  if (process.getuid?.() === 0) {
    const ro = tempDir('ucvmfs-fsapi-ro-');
    chmodSync(ro, 0o755);
    if (spawnSync('mount', ['--bind', src, ro]).status === 0) {
      mounted = spawnSync('mount', ['-o', 'remount,bind,ro', ro]).status === 0;
      if (mounted) ref = ro;
      else spawnSync('umount', [ro]);
    }
  }
});

after(async () => {
  if (mounted) spawnSync('umount', [ref]);
  await repo?.close();
  server?.close();
});

/** How a call ended: its value made comparable, or the error's code. */
async function outcome(f: () => Promise<unknown>): Promise<string> {
  try {
    const v = await f();
    if (Buffer.isBuffer(v)) return `ok ${v.length} ${v.subarray(0, 8).toString('hex')}`;
    if (Array.isArray(v)) return `ok [${v.map(String).sort().join(',')}]`;
    if (v && typeof v === 'object' && 'isDirectory' in v) {
      const s = v as { size: number; mode: number; isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean };
      return `ok ${s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'link' : 'other'} ${s.isDirectory() ? '' : s.size} ${(s.mode & 0o7777).toString(8)}`;
    }
    return `ok ${v === undefined ? '' : String(v)}`;
  } catch (e) {
    return `${(e as { code?: string }).code ?? (e as Error).name}`;
  }
}

test('path forms and errors as node:fs gives them: trailing slashes and dots after a file, loops, dangling links, empty, long and NUL paths, wrong types', async () => {
  const paths: unknown[] = ['one', 'one/', 'one/.', 'one/..', 'one/../one', 'sub/deep/x/', 'sub/./deep/x', 'sub//deep', 'dirlink', 'dirlink/',
    'dirlink/x', 'dangling', 'dangling/', 'fileslash', 'filedot', 'fileslash/x', 'dirslash', 'dirslash/deep/x', 'a', 'a/', 'missing', 'one/missing', 'x'.repeat(300), `${'d/'.repeat(2100)}x`, 'one\0', '', 42, undefined, {}];
  const calls: Array<[string, (fs: typeof nodeFs, p: never) => Promise<unknown>]> = [
    ['stat', (fs, p) => fs.stat(p)], ['lstat', (fs, p) => fs.lstat(p)], ['readFile', (fs, p) => fs.readFile(p)],
    ['readdir', (fs, p) => fs.readdir(p)], ['readlink', (fs, p) => fs.readlink(p)], ['access', (fs, p) => fs.access(p)],
  ];
  let compared = 0;
  for (const [name, call] of calls) {
    for (const p of paths) {
      // node:fs joins nothing: an absolute path there; the repository's own path here (`one/` stays `one/`).
      const native = typeof p === 'string' && p !== '' ? `${ref}/${p}` : p;
      const want = await outcome(() => call(nodeFs, native as never));
      const got = await outcome(() => call(repo.fs as unknown as typeof nodeFs, p as never));
      assert.equal(got, want, `${name}(${JSON.stringify(p)?.slice(0, 40)})`);
      compared++;
    }
  }
  assert.ok(compared > 100);
  // A long name of bytes that are not UTF-8 is there (its string form has 200 escapes, 600 bytes of UTF-16 text).
  const odd = (await repo.fs.readdir('nested')).find((n) => n.length === 200)!;
  assert.equal(await repo.fs.readFile(`nested/${odd}`, 'utf8'), 'bytes\n');
  assert.equal(await repo.fs.exists(`nested/${odd}`), true);
  // exists: false where a mount says there is nothing (a loop too), never a throw for that.
  assert.deepEqual(await Promise.all(['one', 'a', 'a/../one', 'missing', 'one/x', 'one\0'].map((p) => repo.fs.exists(p))), [true, false, false, false, false, false]);
});

test('reads as node:fs reads: FileHandle.read forms and positions, readFile after a partial read, stream ranges checked, never a crash or a wrong byte', async () => {
  const data = await nodeFs.readFile(join(ref, 'k100'));
  const big = await nodeFs.readFile(join(ref, 'big'));
  for (const [fs, base] of [[nodeFs, ref], [repo.fs, '']] as const) {
    const p = (n: string) => (base ? join(base, n) : n);
    const fh = await (fs as typeof nodeFs).open(p('k100'));
    try {
      const a = await fh.read(Buffer.alloc(16), { position: 100 });
      assert.deepEqual(a.buffer.subarray(0, a.bytesRead), data.subarray(100, 116), 'read(buffer, {position})');
      const b = await fh.read({ buffer: Buffer.alloc(8), position: 50 });
      assert.deepEqual(b.buffer.subarray(0, b.bytesRead), data.subarray(50, 58), 'read({buffer, position})');
      const c = await fh.read();
      assert.equal(c.bytesRead, 16384, 'read() reads 16 KiB from the current position');
      assert.deepEqual(c.buffer.subarray(0, c.bytesRead), data.subarray(0, 16384));
      // Any view, its offsets in bytes; nothing asked is nothing read, whatever the offset.
      const u16 = await fh.read(new Uint16Array(4), 0, 8, 200);
      assert.deepEqual(Buffer.from(u16.buffer.buffer, u16.buffer.byteOffset, u16.bytesRead), data.subarray(200, 208), 'read(Uint16Array)');
      const dv = await fh.read(new DataView(new ArrayBuffer(6)), 2, 4, 300);
      assert.deepEqual(Buffer.from(dv.buffer.buffer).subarray(2, 6), data.subarray(300, 304), 'read(DataView)');
      assert.equal((await fh.read(Buffer.alloc(3), 4, 0, 0)).bytesRead, 0);
      const rest = await fh.readFile();
      assert.deepEqual(rest, data.subarray(16384), 'readFile() goes on from the current position');
    } finally {
      await fh.close();
    }
    for (const opts of [{ start: 1.5 }, { start: -1, end: 3 }, { start: 100, end: 50 }]) {
      const open = () => (base ? createReadStream(p('big'), opts) : repo.fs.createReadStream('big', opts));
      assert.throws(open, { code: 'ERR_OUT_OF_RANGE' }, JSON.stringify(opts));
    }
  }
  // A fractional length aborted the process in a native call (node:fs's own FileHandle.read still does).
  const fh = await repo.fs.open('k100');
  await assert.rejects(fh.read(Buffer.alloc(8), 0, 2.5, 0), { code: 'ERR_OUT_OF_RANGE' });
  await fh.close();
  // A range across chunks, and text in an encoding, from the library's stream.
  const chunks: Buffer[] = [];
  for await (const c of repo.fs.createReadStream('big', { start: MIN * 3 - 7, end: MIN * 5 + 3 })) chunks.push(c as Buffer);
  assert.deepEqual(Buffer.concat(chunks), big.subarray(MIN * 3 - 7, MIN * 5 + 4));
  let hex = '';
  for await (const c of repo.fs.createReadStream('one', { encoding: 'hex' })) hex += c as string;
  assert.equal(hex, Buffer.from('one\n').toString('hex'));
  await assert.rejects(repo.fs.open('one', nodeFs.constants.O_RDONLY | nodeFs.constants.O_DIRECTORY), { code: 'ENOTDIR' });
  // readdir recursive: every name below (a nested catalog's too: its mountpoint, as its parent lists it, holds no
  // children), named relative; symlinks to directories are not followed (node 20 follows them). Listed again after,
  // plainly: the recursive listing leaves nothing wrong in the listing cache.
  assert.deepEqual(await repo.fs.readdir('nested/inner'), ['y']);
  const nestedBefore = (await repo.fs.readdir('nested')).sort();
  assert.equal(nestedBefore.length, 3); // .cvmfscatalog, inner, the odd name
  // (Names as their bytes on node's side, in the library's string form: node would decode 0xff as U+FFFD.)
  const below = async (d: Buffer, rel = ''): Promise<string[]> => (await Promise.all((await nodeFs.readdir(d, { withFileTypes: true, encoding: 'buffer' })).map(async (e) =>
    [rel + decodeName(e.name), ...(e.isDirectory() ? await below(Buffer.concat([d, Buffer.from('/'), e.name]), `${rel}${decodeName(e.name)}/`) : [])]))).flat();
  const hiddenOut = (names: string[]) => names.filter((n) => !n.split('/').pop()!.startsWith('.cvmfscatalog')).sort();
  assert.deepEqual(hiddenOut(await repo.fs.readdir('/', { recursive: true })), hiddenOut(await below(Buffer.from(ref))));
  assert.deepEqual(await repo.fs.readdir('nested/inner'), ['y']);
  assert.deepEqual((await repo.fs.readdir('nested')).sort(), nestedBefore);
});

test('changes fail as on a read-only mount, each with the error the kernel gives first (ENOENT, EEXIST, EISDIR before EROFS); mkdir -p of a directory there and rm -f of a missing name succeed', async (t) => {
  const cases: Array<[string, (fs: typeof nodeFs, p: (n: string) => string) => Promise<unknown>, string]> = [
    ['open r+ missing', (fs, p) => fs.open(p('missing'), 'r+'), 'ENOENT'],
    ['open wx existing', (fs, p) => fs.open(p('one'), 'wx'), 'EEXIST'],
    ['open w existing', (fs, p) => fs.open(p('one'), 'w'), 'EROFS'],
    ['open w below missing', (fs, p) => fs.open(p('no/x'), 'w'), 'ENOENT'],
    ['open w dir', (fs, p) => fs.open(p('sub'), 'w'), 'EISDIR'],
    ['open O_CREAT existing', async (fs, p) => { const h = await fs.open(p('one'), nodeFs.constants.O_RDONLY | nodeFs.constants.O_CREAT); await h.close(); }, 'ok '],
    ['readFile flag w', (fs, p) => fs.readFile(p('one'), { flag: 'w' }), 'EROFS'],
    ['writeFile new', (fs, p) => fs.writeFile(p('new'), 'x'), 'EROFS'],
    ['mkdir existing', (fs, p) => fs.mkdir(p('sub')), 'EEXIST'],
    ['mkdir -p existing', (fs, p) => fs.mkdir(p('sub/deep'), { recursive: true }), 'ok '],
    ['mkdir -p new', (fs, p) => fs.mkdir(p('sub/new/deeper'), { recursive: true }), 'ENOENT'], // node:fs's answer on a read-only mount
    ['mkdir below missing', (fs, p) => fs.mkdir(p('no/x')), 'ENOENT'],
    ['rm -f missing', (fs, p) => fs.rm(p('missing'), { force: true }), 'ok '],
    ['rm missing', (fs, p) => fs.rm(p('missing')), 'ENOENT'],
    ['rm existing', (fs, p) => fs.rm(p('one')), 'EROFS'],
    ['unlink below missing', (fs, p) => fs.unlink(p('no/x')), 'ENOENT'],
    ['chmod missing', (fs, p) => fs.chmod(p('missing'), 0o644), 'ENOENT'],
    ['chmod existing', (fs, p) => fs.chmod(p('one'), 0o644), 'EROFS'],
    ['truncate dir', (fs, p) => fs.truncate(p('sub')), 'EISDIR'],
    ['utimes missing', (fs, p) => fs.utimes(p('missing'), 1, 1), 'ENOENT'],
    ['symlink existing', (fs, p) => fs.symlink('x', p('one')), 'EEXIST'],
    ['link missing source', (fs, p) => fs.link(p('missing'), p('x')), 'ENOENT'],
    ['rename within', (fs, p) => fs.rename(p('one'), p('two')), 'EROFS'],
    // O_CREAT of a name given with a trailing slash: its directory's error, else EISDIR.
    ['open w file/', (fs, p) => fs.open(p('one/'), 'w'), 'EISDIR'],
    ['open a dangling/', (fs, p) => fs.open(p('dangling/'), 'a'), 'EISDIR'],
    ['open ax empty/', (fs, p) => fs.open(p('empty/'), 'ax'), 'EISDIR'],
    ['open w no/x/', (fs, p) => fs.open(p('no/x/'), 'w'), 'ENOENT'],
    ['open w one/x/', (fs, p) => fs.open(p('one/x/'), 'w'), 'ENOTDIR'],
    ['rm dir', (fs, p) => fs.rm(p('empty')), 'ERR_FS_EISDIR'],
    ['rm -r dir', (fs, p) => fs.rm(p('empty'), { recursive: true }), 'EROFS'],
    ['mkdir -p below dangling', (fs, p) => fs.mkdir(p('dangling/x'), { recursive: true }), 'ENOTDIR'],
    ['rmdir top', (fs, p) => fs.rmdir(p('/')), 'EBUSY'],
    // O_NOFOLLOW with O_DIRECTORY on a link: the directory test first.
    ['open nofollow dir link', (fs, p) => fs.open(p('dirlink'), nodeFs.constants.O_NOFOLLOW | nodeFs.constants.O_DIRECTORY), 'ENOTDIR'],
  ];
  for (const [name, call, want] of cases) {
    assert.equal(await outcome(() => call(repo.fs as unknown as typeof nodeFs, (n) => n)), want, `library: ${name}`);
    if (mounted) assert.equal(await outcome(() => call(nodeFs, (n) => join(ref, n))), want, `a read-only mount: ${name}`);
  }
  if (!mounted) t.diagnostic('not compared with a read-only mount: this process cannot make one');
  const fh = await repo.fs.open('one');
  await assert.rejects(fh.write(), { code: 'EBADF' });
  await assert.rejects(fh.truncate(), { code: 'EINVAL' });
  await fh.close();
});

test('bigint stats, opendir and name encodings as node:fs gives them on the same tree', async () => {
  const lib = repo.fs as unknown as typeof nodeFs;
  // bigint: every number a bigint, nanosecond times, the same values as the numbers.
  for (const p of ['one', 'big', 'sub', 'dirlink']) {
    const [want, got, plain] = [await nodeFs.lstat(join(ref, p), { bigint: true }), await repo.fs.lstat(p, { bigint: true }), await repo.fs.lstat(p)];
    for (const k of ['dev', 'ino', 'mode', 'nlink', 'uid', 'gid', 'size', 'blocks', 'mtimeMs', 'mtimeNs', 'atimeNs'] as const) assert.equal(typeof got[k], 'bigint', `${p} ${k}`);
    assert.equal(got.mode, want.mode, `${p} mode`);
    assert.equal(got.mtimeNs, want.mtimeNs, `${p} mtimeNs`);
    assert.equal(got.mtimeMs, want.mtimeMs, `${p} mtimeMs`);
    assert.equal(got.mtime.getTime(), Number(want.mtimeMs));
    if (!got.isDirectory()) assert.equal(got.size, want.size, `${p} size`);
    assert.equal(got.isSymbolicLink(), want.isSymbolicLink());
    assert.equal(Number(got.ino), plain.ino);
    assert.equal(Number(got.blocks), plain.blocks);
  }
  const fh = await repo.fs.open('k100');
  assert.equal((await fh.stat({ bigint: true })).size, 102400n);
  await fh.close();
  // opendir: the same names as node's, a slice at a time, recursive with each entry's own parentPath.
  const names = async (fs: typeof nodeFs, base: string, opts: object) => {
    const out: string[] = [];
    for await (const d of await fs.opendir(base, opts as never)) out.push(`${d.parentPath.slice(base.length).replace(/^\/+/, '')}/${Buffer.isBuffer(d.name) ? `<${d.name.toString('hex')}>` : d.name} ${d.isDirectory() ? 'd' : d.isSymbolicLink() ? 'l' : 'f'}`);
    return out.sort();
  };
  for (const opts of [{}, { bufferSize: 1 }, { bufferSize: 3, recursive: true }, { encoding: 'buffer' }, { encoding: 'hex' }]) {
    // (Node 20's own opendir fails with recursive and encoding 'buffer' together: not compared.)
    const want = await names(nodeFs, join(ref, 'sub'), opts);
    assert.deepEqual(await names(lib, 'sub', opts), want, JSON.stringify(opts));
    assert.ok(want.length >= 1);
  }
  const top = await names(lib, '/', { recursive: true });
  // (Node shows the name that is not UTF-8 with U+FFFD, the library with escapes that name it again: left out.)
  const comparable = (n: string) => !/[\ufffd\udcff]/.test(n);
  assert.deepEqual(top.filter(comparable), (await names(nodeFs, ref, { recursive: true })).filter(comparable));
  assert.ok(top.includes('nested/inner/y f'), 'below a nested catalog');
  const d = await repo.fs.opendir('sub');
  assert.equal(d.path, 'sub');
  assert.ok(await d.read());
  await d.close();
  await assert.rejects(d.read(), { code: 'ERR_DIR_CLOSED' });
  await assert.rejects(d.close(), { code: 'ERR_DIR_CLOSED' });
  for (const [p, opts] of [['one', {}], ['missing', {}], ['sub', { encoding: 'bogus' }]] as const) {
    assert.equal(await outcome(() => lib.opendir(p, opts as never)), await outcome(() => nodeFs.opendir(join(ref, p), opts as never)), `opendir ${p} ${JSON.stringify(opts)}`);
  }
  // Node 20 throws this one from a callback, uncaught; the library rejects with it.
  await assert.rejects(repo.fs.opendir('sub', { bufferSize: 0 }), { code: 'ERR_OUT_OF_RANGE' });
  // Encodings of names: readdir, readlink, realpath.
  for (const enc of ['hex', 'latin1', 'base64', 'buffer', 'utf8'] as const) {
    assert.deepEqual((await lib.readdir('sub', { encoding: enc } as never)).map(String).sort(), (await nodeFs.readdir(join(ref, 'sub'), { encoding: enc } as never)).map(String).sort(), `readdir ${enc}`);
    assert.deepEqual(await lib.readlink('dirlink', enc as never), await nodeFs.readlink(join(ref, 'dirlink'), enc as never), `readlink ${enc}`);
  }
  const withTypes = await repo.fs.readdir('nested', { withFileTypes: true, encoding: 'buffer' });
  assert.ok(withTypes.some((e) => Buffer.isBuffer(e.name) && e.name.equals(Buffer.alloc(200, 0xff))), 'a name that is not UTF-8, as its bytes');
  assert.deepEqual(await repo.fs.realpath('dirlink', { encoding: 'buffer' }), Buffer.from('/sub/deep'));
  assert.equal(await repo.fs.realpath('dirlink', 'hex'), Buffer.from('/sub/deep').toString('hex'));
  assert.equal(await outcome(() => lib.readdir('sub', 'bogus' as never)), await outcome(() => nodeFs.readdir(join(ref, 'sub'), 'bogus' as never)));
  // Options as Node takes them: null, wrong types, a signal.
  for (const [name, call] of [
    ['readdir null', (fs: typeof nodeFs, p: string) => fs.readdir(p, null as never)], ['opendir null', (fs: typeof nodeFs, p: string) => fs.opendir(p, null as never).then((d) => d.close())],
    ['readdir 42', (fs: typeof nodeFs, p: string) => fs.readdir(p, 42 as never)], ['readlink true', (fs: typeof nodeFs, p: string) => fs.readlink(`${p}/../dirlink`, true as never)],
    ['readFile aborted', (fs: typeof nodeFs, p: string) => fs.readFile(`${p}/deep/x`, { signal: AbortSignal.abort(new Error('mine')) })],
    ['stat bigint 1', async (fs: typeof nodeFs, p: string) => typeof (await fs.stat(p, { bigint: 1 } as never)).size],
    ['access 8', (fs: typeof nodeFs, p: string) => fs.access(p, 8)], ['access r', (fs: typeof nodeFs, p: string) => fs.access(p, 'r' as never)],
    // A directory opens for reading (O_DIRECTORY too) and stats through its handle; its reads fail with EISDIR.
    ['open dir, fstat', (fs: typeof nodeFs, p: string) => fs.open(p).then(async (h) => { try { return (await h.stat()).isDirectory(); } finally { await h.close(); } })],
    ['open dir O_DIRECTORY', (fs: typeof nodeFs, p: string) => fs.open(p, 0x10000).then((h) => h.close())],
    ['open dir, read', (fs: typeof nodeFs, p: string) => fs.open(p).then(async (h) => { try { return await h.read(); } finally { await h.close(); } })],
    ['open dir, readFile', (fs: typeof nodeFs, p: string) => fs.open(p).then(async (h) => { try { return await h.readFile(); } finally { await h.close(); } })],
    ['open dir, stream', (fs: typeof nodeFs, p: string) => fs.open(p).then(async (h) => { try { for await (const c of h.createReadStream()) return c; return 'no error'; } finally { await h.close(); } })],
    ['readFile dir', (fs: typeof nodeFs, p: string) => fs.readFile(p)],
    ['open dir, read syscall', (fs: typeof nodeFs, p: string) => fs.open(p).then((h) => h.read().finally(() => h.close())).catch((e: NodeJS.ErrnoException) => { throw Object.assign(new Error(), { code: `${e.code} ${e.syscall}` }); })],
  ] as const) {
    assert.equal(await outcome(() => call(lib, 'sub')), await outcome(() => call(nodeFs, join(ref, 'sub'))), name);
  }
  const aborted = await repo.fs.readFile('one', { signal: AbortSignal.abort(new Error('mine')) }).catch((e: Error) => e);
  assert.equal((aborted as { name: string }).name, 'AbortError');
  assert.equal(((aborted as Error).cause as Error).message, 'mine');
  // Dates as Node rounds them.
  for (const p of ['one', 'nested', 'sub/deep/x']) assert.equal((await repo.fs.stat(p)).mtime.getTime(), (await nodeFs.stat(join(ref, p))).mtime.getTime(), p);
  // A Dir closed while a read is under way finishes that read first; closeSync then refuses, callbacks are called.
  const dir = await repo.fs.opendir('sub');
  const first = dir.read();
  assert.throws(() => dir.closeSync(), { code: 'ERR_DIR_CONCURRENT_OPERATION' });
  const closing = dir.close();
  assert.ok(await first, 'the read asked before the close');
  await closing;
  const viaCallback = await new Promise<string>((resolve) => { void repo.fs.opendir('sub').then((d) => d.read((err, e) => { void d.close(() => resolve(`${err} ${String(e?.name)}`)); })); });
  assert.equal(viaCallback, 'null deep');
});

test('handles close after the reads under way, as node:fs; aborts give Node\'s ABORT_ERR however far the read got; no listener warning', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    // close() waits for a pending read (node's does): the read ends with its bytes, the handle's fd is then -1.
    for (const fs of [nodeFs, repo.fs as unknown as typeof nodeFs]) {
      const fh = await fs.open(fs === nodeFs ? join(ref, 'k100') : 'k100');
      const r = fh.read(Buffer.alloc(4), 0, 4, 0);
      const f = fh.readFile();
      await fh.close();
      assert.equal((await r).bytesRead, 4);
      assert.equal((await f).length, 100 * 1024);
      assert.equal(fh.fd, -1);
      await assert.rejects(fh.read(Buffer.alloc(1), 0, 1, 0), { code: 'EBADF' });
    }
    // A stream aborted after its first piece, a handle's readFile with a fired signal, a handle opened with a
    // signal that fires later: each is Node's AbortError, its reason as the cause.
    const ac = new AbortController();
    const stream = repo.fs.createReadStream('big', { signal: ac.signal, highWaterMark: 4096 });
    const it = stream[Symbol.asyncIterator]();
    assert.equal(((await it.next()).value as Buffer).length, 4096);
    ac.abort(new Error('mine'));
    await assert.rejects(it.next(), (e: Error & { code?: string }) => e.name === 'AbortError' && e.code === 'ABORT_ERR');
    const fh = await repo.fs.open('big');
    await assert.rejects(fh.readFile({ signal: AbortSignal.abort() }), { name: 'AbortError', code: 'ABORT_ERR' });
    await fh.close();
    const later = new AbortController();
    const held = await repo.fs.open('big', 'r', { signal: later.signal });
    await held.read(Buffer.alloc(10), 0, 10, 0);
    later.abort(new Error('later'));
    await assert.rejects(held.read(Buffer.alloc(10), 0, 10, 70_000), (e: Error & { code?: string }) => e.code === 'ABORT_ERR' && (e.cause as Error).message === 'later');
    await held.close();
    // Streams' options as node:fs takes them: an encoding as the whole options, flags that would write.
    const streamed = async (fs: typeof nodeFs | typeof repo.fs, p: string, o: unknown) => {
      const { createReadStream: nodeStream } = await import('node:fs');
      const s = fs === nodeFs ? nodeStream(join(ref, p), o as never) : repo.fs.createReadStream(p, o as never);
      try {
        const parts: unknown[] = [];
        for await (const c of s) parts.push(typeof c);
        return `${parts.join(',')}`;
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    for (const o of ['hex', 'utf8', { flags: 'w' }, { flags: 'r+' }, { encoding: 'base64' }]) {
      assert.equal(await streamed(repo.fs, 'one', o), await streamed(nodeFs, 'one', o), JSON.stringify(o));
    }
    const hex: string[] = [];
    for await (const c of repo.fs.createReadStream('one', 'hex')) hex.push(c as string);
    assert.equal(hex.join(''), Buffer.from('one\n').toString('hex'));
    // Twenty reads at once on one handle, across the chunks: right bytes, and no MaxListenersExceededWarning.
    const want = await nodeFs.readFile(join(ref, 'big'));
    const many = await repo.fs.open('big');
    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => many.read(Buffer.alloc(1000), 0, 1000, i * 29_000).then((x) => x.buffer)));
    await many.close();
    got.forEach((b, i) => assert.ok(b.equals(want.subarray(i * 29_000, i * 29_000 + 1000)), `read ${i}`));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
  }
});

test('permissions as on a mount with the genuine client\'s defaults: root reads all and executes what has an execute bit; a user, by the owner\'s bits; access and open agree', async (t) => {
  // The same probe for this process (root in CI) and for nobody, each through the library and through node:fs on
  // the read-only mount, where the files are nobody's: as the genuine client's CVMFS_CLAIM_OWNERSHIP shows every
  // entry to the user who mounted it, whose bits then decide.
  const probe = `
    import { openRepository } from ${JSON.stringify(join(process.cwd(), 'dist/lib/index.js'))};
    import * as nodeFs from 'node:fs/promises';
    import { constants as c } from 'node:fs';
    const [cacheDir, ref] = process.argv.slice(2);
    const repo = await openRepository(${JSON.stringify(FQRN)}, { serverUrls: [${JSON.stringify(`${server.url}/@fqrn@`)}], publicKeys: [${JSON.stringify(keyPath)}], cacheDir });
    const probe = async (fs, p) => {
      const out = [];
      for (const name of ['none', 'xonly', 'owner', 'others', 'ro']) {
        for (const [m, label] of [[c.R_OK, 'r'], [c.X_OK, 'x']]) out.push(name + ' ' + label + ' ' + await fs.access(p('perm/' + name), m).then(() => 'ok', (e) => e.code));
        out.push(name + ' read ' + await fs.readFile(p('perm/' + name)).then((b) => 'ok ' + b.length, (e) => e.code));
      }
      return out;
    };
    console.log(JSON.stringify([await probe(repo.fs, (x) => x), await probe(nodeFs, (x) => ref + '/' + x)]));
    repo.close();
  `;
  const dir = tempDir('ucvmfs-fsapi-perm-');
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, 'probe.mjs'), probe.replace(JSON.stringify(keyPath), JSON.stringify(join(dir, 'key.pub'))));
  writeFileSync(join(dir, 'key.pub'), await nodeFs.readFile(keyPath));
  chmodSync(join(dir, 'key.pub'), 0o644);
  const run = (argv: string[]) => new Promise<[string[], string[]]>((resolve, reject) => {
    const ch = spawn(argv[0]!, [...argv.slice(1), join(dir, 'probe.mjs'), join(dir, `cache-${argv.length}`), ref], { stdio: ['ignore', 'pipe', 'inherit'] });
    let o = '';
    ch.stdout.on('data', (d: Buffer) => { o += d; });
    ch.on('close', (code) => (code === 0 ? resolve(JSON.parse(o) as [string[], string[]]) : reject(new Error(`probe exited ${code}`))));
  });
  const [lib, kernel] = await run([process.execPath]);
  assert.deepEqual(lib, kernel);
  if (!mounted || process.getuid?.() !== 0) return t.skip('another user needs root and a read-only mount to compare with');
  const [libUser, kernelUser] = await run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath]);
  assert.deepEqual(libUser, kernelUser);
  assert.ok(kernelUser.includes('none read EACCES') && kernelUser.includes('owner read ok 6'), kernelUser.join());
});
