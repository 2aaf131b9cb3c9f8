/**
 * File names are bytes, end to end: a source tree with names that are not UTF-8 (made with Buffer paths) is
 * published, stored as raw bytes in the catalog, and read back byte for byte through the fs API, the CLI and
 * export.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { CLI, serve, tempDir, ucvmfs } from './helpers.js';
import { sqlite } from '../lib/catalog/sqlite.js';
import { objectPath, parseHash } from '../lib/format/hash.js';
import { parseManifest } from '../lib/format/manifest.js';
import { decodeName, encodeName } from '../lib/format/byte-names.js';
import { publish, type PublishResult } from '../lib/publish/index.js';
import { openRepository, type Repository } from '../lib/index.js';
import type { RepositoryServer } from '../lib/serve.js';

const FQRN = 'bytes.example.org';
/** `f\xffg`: 0xff never occurs in UTF-8. */
const BAD = Buffer.from([0x66, 0xff, 0x67]);
/** Latin-1 `été`, a directory name. */
const LATIN1 = Buffer.from([0xe9, 0x74, 0xe9]);
/** An encoded surrogate (ED A0 80): valid for a lax decoder, invalid UTF-8. */
const SURROGATE = Buffer.from([0x73, 0xed, 0xa0, 0x80]);
const b = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));

let work: string;
let res: PublishResult;
let server: RepositoryServer;
let repo: Repository;
let env: Record<string, string>;

before(async () => {
  work = tempDir('ucvmfs-bytes-');
  const src = join(work, 'src');
  mkdirSync(join(src, 'dir'), { recursive: true });
  writeFileSync(b(src, '/dir/', BAD), 'content of f\\xffg\n');
  writeFileSync(b(src, '/dir/', SURROGATE), 'surrogate\n');
  writeFileSync(join(src, 'dir', 'plain.txt'), 'plain\n');
  mkdirSync(b(src, '/', LATIN1));
  writeFileSync(b(src, '/', LATIN1, '/inner'), 'inner\n');
  symlinkSync(b('dir/', BAD), join(src, 'link'));
  res = await publish(src, { fqrn: FQRN, out: join(work, 'repo'), readSourceXattrs: false });
  server = await serve({ [FQRN]: join(work, 'repo') });
  env = { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: res.publicKeyPath, CVMFS_CACHE_BASE: join(work, 'cli-cache') };
  repo = await openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [res.publicKeyPath], cacheDir: join(work, 'cache') });
});

after(async () => {
  repo?.close();
  await server?.close();
});

test('byte names: the string form keeps every byte and is plain Unicode for UTF-8 names', () => {
  for (const n of [BAD, LATIN1, SURROGATE, Buffer.from('größe ✓ 🙂'), Buffer.from([0xf0, 0x9f, 0x99]), Buffer.from([0xc0, 0xaf])]) {
    assert.ok(encodeName(decodeName(n)).equals(n), n.toString('hex'));
  }
  assert.equal(decodeName(Buffer.from('größe 🙂')), 'größe 🙂');
  assert.equal(decodeName(BAD), 'f\udcffg');
});

test('byte names: publish stores the raw bytes as the catalog name, keyed by the MD5 of the path bytes', async () => {
  assert.equal(res.entries, 8);
  const out = join(work, 'repo');
  const m = parseManifest(readFileSync(join(out, '.cvmfspublished')));
  const SQL = await sqlite();
  const db = new SQL.Database(inflateSync(readFileSync(join(out, objectPath(parseHash(m.rootCatalog.hex), 'C')))));
  try {
    const rows = db.exec("SELECT hex(CAST(name AS BLOB)), typeof(name), CAST(md5path_1 AS TEXT), CAST(md5path_2 AS TEXT), hex(CAST(symlink AS BLOB)) FROM catalog")[0]!.values;
    const byName = new Map(rows.map((r) => [String(r[0]), r]));
    for (const [name, path] of [[BAD, b('/dir/', BAD)], [LATIN1, b('/', LATIN1)], [SURROGATE, b('/dir/', SURROGATE)]] as const) {
      const row = byName.get(name.toString('hex').toUpperCase());
      assert.ok(row, `row named ${name.toString('hex')}`);
      assert.equal(row[1], 'text');
      const d = createHash('md5').update(path).digest();
      assert.deepEqual([BigInt(String(row[2])), BigInt(String(row[3]))], [d.readBigInt64LE(0), d.readBigInt64LE(8)]);
    }
    assert.equal(byName.get(Buffer.from('link').toString('hex').toUpperCase())![4], b('dir/', BAD).toString('hex').toUpperCase());
  } finally {
    db.close();
  }
});

test('byte names: the fs API lists names as Buffers and takes Buffer paths', async () => {
  const names = await repo.fs.readdir('/dir', { encoding: 'buffer' });
  assert.deepEqual(names.map((n) => n.toString('hex')).sort(), [BAD, SURROGATE, Buffer.from('plain.txt')].map((n) => n.toString('hex')).sort());
  assert.deepEqual(await repo.fs.readdir('/dir', 'buffer'), names);
  // String names carry the bytes as escapes, and find the entry again.
  const strings = await repo.fs.readdir('/dir');
  assert.ok(strings.includes('f\udcffg'));
  assert.equal((await repo.fs.readFile('/dir/f\udcffg')).toString(), 'content of f\\xffg\n');

  const p = b('/dir/', BAD);
  assert.equal((await repo.fs.stat(p)).size, 18);
  assert.ok((await repo.fs.lstat(p)).isFile());
  assert.equal((await repo.fs.readFile(p)).toString(), 'content of f\\xffg\n');
  assert.equal((await repo.fs.readFile(b('/cvmfs/', FQRN, '/dir/', SURROGATE))).toString(), 'surrogate\n');
  const fh = await repo.fs.open(p);
  try {
    const buf = Buffer.alloc(7);
    await fh.read(buf, 0, 7, 0);
    assert.equal(buf.toString(), 'content');
  } finally {
    await fh.close();
  }
  assert.ok((await repo.fs.readlink(Buffer.from('/link'), { encoding: 'buffer' })).equals(b('dir/', BAD)));
  assert.equal((await repo.fs.readFile('/link')).toString(), 'content of f\\xffg\n');
  assert.equal((await repo.fs.readFile(b('/', LATIN1, '/inner'))).toString(), 'inner\n');
  // One byte off is another name, and U+FFFD (what a lossy decode gives) names nothing.
  await assert.rejects(repo.fs.stat(b('/dir/', Buffer.from([0x66, 0xfe, 0x67]))), { code: 'ENOENT' });
  await assert.rejects(repo.fs.stat('/dir/f\ufffdg'), { code: 'ENOENT' });
  const dirents = await repo.fs.readdir('/', { withFileTypes: true });
  assert.ok(dirents.some((d) => d.name === decodeName(LATIN1) && d.isDirectory()));
});

test('byte names: ucvmfs ls prints the raw bytes, tree --json escapes them, cat takes a raw-byte argument', async () => {
  const ls = await ucvmfs(['ls', `${FQRN}:/dir`], env);
  assert.equal(ls.code, 0, ls.stderr);
  const lines = ls.stdout.toString('latin1').split('\n').filter(Boolean).map((l) => Buffer.from(l, 'latin1'));
  assert.ok(lines.some((l) => l.equals(BAD)), ls.stdout.toString('hex'));
  assert.ok(lines.some((l) => l.equals(SURROGATE)));

  const tree = await ucvmfs(['tree', '--json', '--quiet', FQRN], env);
  assert.equal(tree.code, 0, tree.stderr);
  assert.match(tree.stdout.toString(), /"\/dir\/f\\udcffg"/);
  const parsed = JSON.parse(tree.stdout.toString()) as { entries: Record<string, { entries?: string[]; size?: number }> };
  assert.equal(parsed.entries['/dir/f\udcffg']?.size, 18);
  assert.ok(parsed.entries['/dir']!.entries!.includes('f\udcffg'));

  // Node cannot put raw bytes in argv; the shell can.
  const cat = spawnSync('/bin/sh', ['-c', `exec "${process.execPath}" "${CLI}" cat "$(printf '${FQRN}:/dir/f\\377g')"`], { env: { ...process.env, ...env } });
  assert.equal(cat.status, 0, cat.stderr.toString());
  assert.equal(cat.stdout.toString(), 'content of f\\xffg\n');
});

test('byte names: export writes the same bytes as names on disk', async () => {
  const to = join(work, 'export');
  const ex = await ucvmfs(['export', '--quiet', '--to', to, FQRN], env);
  assert.equal(ex.code, 0, ex.stderr);
  const names = readdirSync(join(to, 'dir'), { encoding: 'buffer' }).map((n) => n.toString('hex')).sort();
  assert.deepEqual(names, [BAD, SURROGATE, Buffer.from('plain.txt')].map((n) => n.toString('hex')).sort());
  assert.equal(readFileSync(b(to, '/dir/', BAD)).toString(), 'content of f\\xffg\n');
  assert.equal(readFileSync(b(to, '/', LATIN1, '/inner')).toString(), 'inner\n');
  assert.ok(readlinkSync(join(to, 'link'), { encoding: 'buffer' }).equals(b('dir/', BAD)));
});
