/**
 * The publisher: repositories made from small temp trees, read back byte by byte (catalog rows with sql.js,
 * letters with the library's parsers and RSA checks) and compared with what the genuine publisher wrote in the
 * shared fixtures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, linkSync, utimesSync, writeFileSync, chmodSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import type { Database } from 'sql.js';
import { CLI, FIXTURES, noise, tempDir } from './helpers.js';
import { sqlite } from '../lib/catalog/sqlite.js';
import { hashBytes, hashToString, objectPath, parseHash, type ContentHash, type HashAlgorithm, type ObjectSuffix } from '../lib/format/hash.js';
import { parseManifest } from '../lib/format/manifest.js';
import { parseWhitelist } from '../lib/format/whitelist.js';
import { pathKey } from '../lib/format/pathhash.js';
import { parseXattrs } from '../lib/format/xattr.js';
import { parseCertificate, rsaKeysFromPem, verifyRaw, verifySha1 } from '../lib/crypto/rsa.js';
import { openRepository } from '../lib/index.js';
import { serveRepositories } from '../lib/serve.js';
import { deflateStandard } from '../lib/publish/deflate.js';
import { publish, Xor32Chunker, CATALOG_DDL, HISTORY_DDL, parseGetfattrOutput, type PublishOptions } from '../lib/publish/index.js';

const SMALL_CHUNKS = { min: 64 * 1024, avg: 128 * 1024, max: 256 * 1024 };
const T0 = 1_700_000_000;

function write(root: string, rel: string, data: string | Buffer, mode = 0o644): void {
  const p = join(root, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, data);
  chmodSync(p, mode);
}

const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;

/** The main test tree; every file's mtime is set so that nanoseconds are exercised too. */
function makeTree(): { src: string; big: Buffer } {
  const src = join(tempDir('ucvmfs-pub-src-'), 'src');
  mkdirSync(src);
  write(src, 'README.txt', 'hello world\n');
  write(src, 'empty', '');
  write(src, 'bin/run.sh', '#!/bin/sh\necho hi\n', 0o755);
  mkdirSync(join(src, 'links'));
  symlinkSync('../README.txt', join(src, 'links/rel'));
  symlinkSync('nowhere', join(src, 'links/dangling'));
  write(src, 'hard/a', 'shared content\n');
  linkSync(join(src, 'hard/a'), join(src, 'hard/b'));
  write(src, 'hard/single', 'single\n');
  mkdirSync(join(src, 'other'));
  linkSync(join(src, 'hard/a'), join(src, 'other/c'));
  if (hasMkfifo) execFileSync('mkfifo', ['-m', '0644', join(src, 'fifo')]);
  write(src, 'nested/.cvmfscatalog', '');
  write(src, 'nested/n.txt', 'nested file\n');
  write(src, 'nested/h1', 'nested hardlink\n');
  linkSync(join(src, 'nested/h1'), join(src, 'nested/h2'));
  write(src, 'nested/plain/p.txt', 'plain subdir\n');
  write(src, 'nested/deep/.cvmfscatalog', '');
  write(src, 'nested/deep/d.txt', 'deep\n');
  write(src, 'names/with space.txt', 'space');
  write(src, 'names/ünïcödé-名前.txt', 'unicode');
  write(src, 'names/new\nline', 'newline');
  write(src, 'xattr.txt', 'has xattrs');
  const big = noise(700_000, 42);
  write(src, 'big.bin', big);
  utimesSync(join(src, 'README.txt'), 1_600_000_000.25, 1_600_000_000.25);
  return { src, big };
}

const XATTRS = { 'xattr.txt': { 'user.color': 'blue', 'user.bin': Buffer.from([0, 1, 2, 0xff]) }, names: { 'user.dir': 'directory' } };

async function publishTree(src: string, extra: Partial<PublishOptions> = {}): Promise<{ out: string; result: Awaited<ReturnType<typeof publish>> }> {
  const out = join(tempDir('ucvmfs-pub-out-'), 'repo');
  const result = await publish(src, { fqrn: 'pub.test.example.org', out, chunking: SMALL_CHUNKS, timestamp: T0, xattrs: XATTRS, readSourceXattrs: false, ...extra });
  return { out, result };
}

function readObject(repo: string, hash: ContentHash, suffix: ObjectSuffix, compressed = true): Buffer {
  const stored = readFileSync(join(repo, objectPath(hash, suffix)));
  assert.equal(hashBytes(stored, hash.algorithm).hex, hash.hex, `object ${objectPath(hash, suffix)} is named by the hash of its stored bytes`);
  return compressed ? inflateSync(stored) : stored;
}

async function openDb(bytes: Uint8Array): Promise<Database> {
  return new (await sqlite()).Database(bytes);
}

type Row = Record<string, unknown>;

function rows(db: Database, sql: string, params: unknown[] = []): Row[] {
  const st = db.prepare(sql);
  st.bind(params as never);
  const out: Row[] = [];
  // sql.js takes a config argument its typings do not declare; without useBigInt the 64-bit keys lose precision.
  const get = st.getAsObject as unknown as (this: typeof st, params: null, config: { useBigInt: boolean }) => Row;
  while (st.step()) out.push(get.call(st, null, { useBigInt: true }));
  st.free();
  return out;
}

function props(db: Database): Record<string, string> {
  return Object.fromEntries(rows(db, 'SELECT key, value FROM properties').map((r) => [String(r.key), String(r.value)]));
}

function stats(db: Database): Record<string, number> {
  return Object.fromEntries(rows(db, 'SELECT counter, value FROM statistics').map((r) => [String(r.counter), Number(r.value)]));
}

function entry(db: Database, path: string): Row {
  const [k1, k2] = pathKey(path);
  const r = rows(db, 'SELECT *, typeof(hash) AS hash_type, typeof(xattr) AS xattr_type FROM catalog WHERE md5path_1 = ? AND md5path_2 = ?', [k1, k2]);
  assert.equal(r.length, 1, `one row for '${path}'`);
  return r[0]!;
}

function sqliteMaster(db: Database): string[] {
  return rows(db, 'SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid').map((r) => String(r.sql));
}

async function rootCatalog(out: string): Promise<{ db: Database; hash: ContentHash; raw: Buffer }> {
  const m = parseManifest(readFileSync(join(out, '.cvmfspublished')));
  const raw = readObject(out, m.rootCatalog, 'C');
  return { db: await openDb(raw), hash: m.rootCatalog, raw };
}

async function nestedCatalog(out: string, parent: Database, path: string): Promise<{ db: Database; hash: ContentHash; size: number }> {
  const r = rows(parent, 'SELECT sha1, size FROM nested_catalogs WHERE path = ?', [path]);
  assert.equal(r.length, 1, `nested catalog ${path} is listed`);
  const hash = parseHash(String(r[0]!.sha1));
  const raw = readObject(out, hash, 'C');
  assert.equal(Number(r[0]!.size), raw.length, `${path}: size is that of the uncompressed catalog`);
  return { db: await openDb(raw), hash, size: raw.length };
}

function fixtureObject(fqrn: string, hashText: string, suffix: ObjectSuffix): Buffer {
  return inflateSync(readFileSync(join(FIXTURES, fqrn, 'srv', objectPath(parseHash(hashText), suffix))));
}

test('publisher: catalog and history schemas equal the genuine ones, byte for byte', async () => {
  const fixture = parseManifest(readFileSync(join(FIXTURES, 'fixture.test.example.org', 'srv', '.cvmfspublished')));
  const genuineCatalog = await openDb(fixtureObject('fixture.test.example.org', hashToString(fixture.rootCatalog), 'C'));
  const genuineHistory = await openDb(fixtureObject('fixture.test.example.org', hashToString(fixture.history!), 'H'));
  assert.deepEqual([...CATALOG_DDL], sqliteMaster(genuineCatalog));
  assert.deepEqual([...HISTORY_DDL], sqliteMaster(genuineHistory));

  const { src } = makeTree();
  const { out } = await publishTree(src);
  const { db } = await rootCatalog(out);
  assert.deepEqual(sqliteMaster(db), sqliteMaster(genuineCatalog));
  const m = parseManifest(readFileSync(join(out, '.cvmfspublished')));
  const history = await openDb(readObject(out, m.history!, 'H'));
  assert.deepEqual(sqliteMaster(history), sqliteMaster(genuineHistory));
  assert.deepEqual(rows(history, 'SELECT branch, parent, initial_revision FROM branches'), rows(genuineHistory, 'SELECT branch, parent, initial_revision FROM branches'));
  assert.deepEqual(props(history), { schema: '1.0', schema_revision: '3', fqrn: 'pub.test.example.org' });
  assert.equal(readFileSync(join(out, '.cvmfs_master_replica'), 'utf8'), readFileSync(join(FIXTURES, 'fixture.test.example.org', 'srv', '.cvmfs_master_replica'), 'utf8'));
});

test('publisher: manifest and whitelist fields, signatures by the certificate and the master key', async () => {
  const { src } = makeTree();
  const { out, result } = await publishTree(src, { ttl: 300 });
  const m = parseManifest(readFileSync(join(out, '.cvmfspublished')));
  assert.deepEqual([...m.fields.keys()].join(''), 'CBRDSGANXHT');
  assert.equal(m.fqrn, 'pub.test.example.org');
  assert.equal(m.revision, 1);
  assert.equal(result.revision, 1);
  assert.equal(m.ttl, 300);
  assert.equal(m.timestamp, T0);
  assert.equal(m.fields.get('R'), 'd41d8cd98f00b204e9800998ecf8427e');
  assert.equal(m.fields.get('G'), 'no');
  assert.equal(hashToString(m.rootCatalog), result.rootHash);
  assert.equal(m.rootCatalogSize, readObject(out, m.rootCatalog, 'C').length);

  const pem = readObject(out, m.certificate, 'X');
  assert.equal(pem.toString(), readFileSync(join(`${out}.keys`, 'pub.test.example.org.crt'), 'utf8'));
  const x509 = new X509Certificate(pem);
  assert.ok(x509.verify(x509.publicKey), 'certificate is self-signed');
  assert.match(x509.subject, /CN=pub\.test\.example\.org/);
  const cert = parseCertificate(pem);
  assert.ok(verifySha1(cert.key, m.letter.signature, Buffer.from(m.letter.hashText)), 'manifest signature verifies with the certificate key');
  assert.ok(!verifySha1(cert.key, m.letter.signature, Buffer.from(m.letter.hashText.replace(/^./, (c) => (c === '0' ? '1' : '0')))));

  const w = parseWhitelist(readFileSync(join(out, '.cvmfswhitelist')));
  assert.equal(w.fqrn, 'pub.test.example.org');
  assert.equal(w.created.getTime(), T0 * 1000);
  assert.equal(w.expires.getTime(), (T0 + 30 * 86400) * 1000);
  assert.deepEqual(w.fingerprints, [cert.fingerprint('sha1')]);
  assert.match(w.letter.lines[3]!, /^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);
  const master = rsaKeysFromPem(readFileSync(result.publicKeyPath, 'utf8'));
  assert.equal(master.length, 1);
  assert.ok(verifyRaw(master[0]!, w.letter.signature, Buffer.from(w.letter.hashText)), 'whitelist signature verifies with the master key');
  assert.ok(!verifyRaw(cert.key, w.letter.signature, Buffer.from(w.letter.hashText)), 'not with the certificate key');

  assert.deepEqual(readdirSync(join(out, 'data', 'txn')), [], 'no temp files are left');
  assert.equal(readdirSync(join(out, 'data')).length, 257);
  for (const k of ['masterkey', 'pub', 'key', 'crt']) assert.ok(existsSync(join(`${out}.keys`, `pub.test.example.org.${k}`)), k);
});

test('publisher: catalog rows, flags, hardlinks, xattrs, nested catalogs and statistics', async () => {
  const { src, big } = makeTree();
  const { out, result } = await publishTree(src);
  const { db } = await rootCatalog(out);
  assert.equal(result.catalogs, 3);

  const root = entry(db, '');
  assert.deepEqual([root.parent_1, root.parent_2, root.name, root.flags, root.size], [0n, 0n, '', 1n, 4096n]);
  assert.equal(root.hardlinks, 2n + 6n, 'root: 2 + its subdirectories bin, links, hard, other, nested, names');
  assert.equal(root.hash_type, 'null');

  const readme = entry(db, '/README.txt');
  const [p1, p2] = pathKey('');
  assert.deepEqual([readme.parent_1, readme.parent_2, readme.name], [p1, p2, 'README.txt']);
  assert.equal(readme.flags, 4n);
  assert.equal(readme.size, 12n);
  assert.equal(readme.mode, 0o100644n);
  assert.equal(readme.mtime, 1_600_000_000n);
  assert.equal(readme.mtimens, 250_000_000n);
  assert.equal(readme.hardlinks, 1n);
  assert.equal(readme.symlink, '');
  assert.equal(readme.xattr_type, 'null');
  const readmeHash: ContentHash = { algorithm: 'sha1', hex: Buffer.from(readme.hash as Uint8Array).toString('hex') };
  assert.equal(readObject(out, readmeHash, '').toString(), 'hello world\n');

  const empty = entry(db, '/empty');
  // The hash of zlib's empty stream, the same object the genuine publisher writes for every empty file.
  assert.equal(Buffer.from(empty.hash as Uint8Array).toString('hex'), 'e8ec3d88b62ebf526e4e5a4ff6162a3aa48a6b78');

  assert.equal(entry(db, '/bin/run.sh').mode, 0o100755n);
  assert.equal(entry(db, '/bin').hardlinks, 2n);
  const rel = entry(db, '/links/rel');
  assert.deepEqual([rel.flags, rel.symlink, rel.size, (rel.mode as bigint) & 0o170000n, rel.hash_type], [12n, '../README.txt', 13n, 0o120000n, 'null']);

  const a = entry(db, '/hard/a'), b = entry(db, '/hard/b'), c = entry(db, '/other/c'), single = entry(db, '/hard/single');
  assert.equal(a.hardlinks, (1n << 32n) | 2n, 'same-directory hardlinks: group 1, linkcount 2');
  assert.equal(b.hardlinks, a.hardlinks);
  assert.deepEqual(b.hash, a.hash);
  assert.equal(c.hardlinks, 1n, 'a hardlink in another directory is an independent entry');
  assert.deepEqual(c.hash, a.hash);
  assert.equal(single.hardlinks, 1n);

  if (hasMkfifo) {
    const fifo = entry(db, '/fifo');
    assert.deepEqual([fifo.flags, fifo.size, fifo.mode, fifo.hash_type], [20n, 0n, 0o010644n, 'null']);
  }

  const x = entry(db, '/xattr.txt');
  const xattrs = parseXattrs(x.xattr as Uint8Array);
  assert.deepEqual(Object.fromEntries([...xattrs].map(([k, v]) => [k, v.toString('hex')])), { 'user.bin': '000102ff', 'user.color': Buffer.from('blue').toString('hex') });
  assert.equal(parseXattrs(entry(db, '/names').xattr as Uint8Array).get('user.dir')?.toString(), 'directory');
  for (const name of ['with space.txt', 'ünïcödé-名前.txt', 'new\nline']) assert.equal(entry(db, `/names/${name}`).name, name);

  // Nested catalogs: mountpoint in the parent (flags 3), root inside the child (flags 33), keyed by full path.
  const mp = entry(db, '/nested');
  assert.equal(mp.flags, 3n);
  assert.equal(mp.hardlinks, 4n);
  const nested = await nestedCatalog(out, db, '/nested');
  const nroot = entry(nested.db, '/nested');
  assert.equal(nroot.flags, 33n);
  assert.deepEqual([nroot.parent_1, nroot.parent_2, nroot.hardlinks, nroot.mtime], [p1, p2, mp.hardlinks, mp.mtime]);
  assert.equal(entry(nested.db, '/nested/.cvmfscatalog').size, 0n);
  assert.equal(entry(nested.db, '/nested/deep').flags, 3n);
  assert.equal(entry(nested.db, '/nested/h1').hardlinks, (1n << 32n) | 2n, 'hardlink groups are numbered per catalog');
  assert.equal(entry(nested.db, '/nested/h2').hardlinks, (1n << 32n) | 2n);
  assert.equal(rows(db, "SELECT 1 FROM catalog WHERE name = 'n.txt'").length, 0, 'nested entries are not in the parent');
  const deep = await nestedCatalog(out, nested.db, '/nested/deep');
  assert.equal(entry(deep.db, '/nested/deep').flags, 33n);
  assert.deepEqual(props(nested.db), { schema: '2.5', schema_revision: '7', root_prefix: '/nested', last_modified: String(T0), revision: '1', previous_revision: '0'.repeat(40) });
  assert.deepEqual(props(db), { schema: '2.5', schema_revision: '7', TTL: '240', last_modified: String(T0), revision: '1' });

  // Chunked file: flags 68, no bulk hash, chunks that rebuild the file.
  const bigRow = entry(db, '/big.bin');
  assert.deepEqual([bigRow.flags, bigRow.size, bigRow.hash_type], [68n, 700_000n, 'null']);
  const chunks = rows(db, 'SELECT "offset", size, hash FROM chunks WHERE md5path_1 = ? AND md5path_2 = ? ORDER BY "offset"', [...pathKey('/big.bin')]);
  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  let expectedOffset = 0n;
  const parts: Buffer[] = [];
  for (const ch of chunks) {
    assert.equal(ch.offset, expectedOffset);
    const data = readObject(out, { algorithm: 'sha1', hex: Buffer.from(ch.hash as Uint8Array).toString('hex') }, 'P');
    assert.equal(BigInt(data.length), ch.size);
    assert.ok(data.length <= SMALL_CHUNKS.max);
    parts.push(data);
    expectedOffset += ch.size as bigint;
  }
  assert.ok(Buffer.concat(parts).equals(big), 'chunks rebuild the file');
  const cutter = new Xor32Chunker(SMALL_CHUNKS);
  assert.deepEqual(cutter.push(big).filter((o) => o < big.length), chunks.slice(1).map((ch) => Number(ch.offset)));

  const fileSize = (rels: string[]): number => rels.reduce((s, r) => s + readFileSync(join(src, r)).length, 0);
  const rootFiles = ['README.txt', 'empty', 'bin/run.sh', 'hard/a', 'hard/b', 'hard/single', 'other/c', 'names/with space.txt', 'names/ünïcödé-名前.txt', 'names/new\nline', 'xattr.txt', 'big.bin'];
  const s = stats(db);
  assert.deepEqual(
    { dir: s.self_dir, regular: s.self_regular, symlink: s.self_symlink, special: s.self_special, xattr: s.self_xattr, nested: s.self_nested, chunked: s.self_chunked, chunked_size: s.self_chunked_size, chunks: s.self_chunks, file_size: s.self_file_size, external: s.self_external },
    { dir: 7, regular: 12, symlink: 2, special: hasMkfifo ? 1 : 0, xattr: 2, nested: 1, chunked: 1, chunked_size: 700_000, chunks: chunks.length, file_size: fileSize(rootFiles), external: 0 },
  );
  const ns = stats(nested.db), ds = stats(deep.db);
  const nestedFiles = ['nested/n.txt', 'nested/plain/p.txt', 'nested/h1', 'nested/h2'];
  assert.deepEqual([ns.self_dir, ns.self_regular, ns.self_nested, ns.self_file_size], [3, 5, 1, fileSize(nestedFiles)]);
  assert.deepEqual([ds.self_dir, ds.self_regular, ds.self_nested, ds.subtree_dir], [1, 2, 0, 0]);
  assert.deepEqual([ns.subtree_dir, ns.subtree_regular], [1, 2]);
  assert.deepEqual([s.subtree_dir, s.subtree_regular, s.subtree_nested, s.subtree_file_size], [4, 7, 1, fileSize([...nestedFiles, 'nested/deep/d.txt'])]);
  assert.equal(Object.keys(s).length, 24);

  const total = rows(db, 'SELECT count(*) AS n FROM catalog')[0]!.n as bigint + (rows(nested.db, 'SELECT count(*) AS n FROM catalog')[0]!.n as bigint) + (rows(deep.db, 'SELECT count(*) AS n FROM catalog')[0]!.n as bigint);
  assert.equal(BigInt(result.entries), total - 2n, 'entries counts each path once (mountpoints appear in two catalogs)');
});

test('publisher: a file just over the minimum chunk size without a cut mark is stored whole', async () => {
  const src = join(tempDir('ucvmfs-pub-src-'), 'src');
  mkdirSync(src);
  // All-zero data never meets the xor32 threshold, so only the maximum size cuts.
  write(src, 'sole.bin', Buffer.alloc(SMALL_CHUNKS.min + 1000));
  write(src, 'zeros.bin', Buffer.alloc(SMALL_CHUNKS.max * 2 + 5));
  write(src, 'at_min.bin', Buffer.alloc(SMALL_CHUNKS.min, 7));
  const { out } = await publishTree(src, { xattrs: {} });
  const { db } = await rootCatalog(out);
  const sole = entry(db, '/sole.bin');
  assert.deepEqual([sole.flags, sole.hash_type], [4n, 'blob']);
  assert.equal(readObject(out, { algorithm: 'sha1', hex: Buffer.from(sole.hash as Uint8Array).toString('hex') }, '').length, SMALL_CHUNKS.min + 1000);
  assert.equal(entry(db, '/at_min.bin').flags, 4n);
  const zeros = entry(db, '/zeros.bin');
  assert.equal(zeros.flags, 68n);
  const chunks = rows(db, 'SELECT "offset", size FROM chunks ORDER BY "offset"');
  assert.deepEqual(chunks.map((c) => [Number(c.offset), Number(c.size)]), [[0, SMALL_CHUNKS.max], [SMALL_CHUNKS.max, SMALL_CHUNKS.max], [SMALL_CHUNKS.max * 2, 5]]);
  assert.equal(stats(db).self_chunks, 3);
});

test('publisher: without chunking a large file is streamed into one object', async () => {
  const src = join(tempDir('ucvmfs-pub-src-'), 'src');
  mkdirSync(src);
  const data = Buffer.concat([noise(1 << 20, 7), Buffer.alloc(17 << 20, 'a')]);
  write(src, 'large.bin', data);
  for (const compression of ['zlib', 'none'] as const) {
    const { out } = await publishTree(src, { chunking: false, compression, xattrs: {} });
    const { db } = await rootCatalog(out);
    const row = entry(db, '/large.bin');
    assert.equal(row.flags, compression === 'zlib' ? 4n : 2052n);
    assert.equal(row.size, BigInt(data.length));
    assert.equal(rows(db, 'SELECT 1 FROM chunks').length, 0);
    const stored = readObject(out, { algorithm: 'sha1', hex: Buffer.from(row.hash as Uint8Array).toString('hex') }, '', compression === 'zlib');
    assert.ok(stored.equals(data), `${compression}: object holds the file`);
  }
});

test('publisher: chunk boundaries are those of the genuine xor32 detector (fixture chunk lists)', async () => {
  const cases: [string, { min: number; avg: number; max: number }, boolean][] = [
    ['fixture.test.example.org', { min: 4 << 20, avg: 8 << 20, max: 16 << 20 }, true],
    ['features.test.example.org', { min: 262144, avg: 524288, max: 1048576 }, true],
    ['nocompress.test.example.org', { min: 262144, avg: 524288, max: 1048576 }, false],
  ];
  {
    let files = 0;
    for (const [fqrn, sizes, compressed] of cases) {
      const m = parseManifest(readFileSync(join(FIXTURES, fqrn, 'srv', '.cvmfspublished')));
      const db = await openDb(fixtureObject(fqrn, hashToString(m.rootCatalog), 'C'));
      const byFile = new Map<string, Row[]>();
      for (const r of rows(db, 'SELECT md5path_1, md5path_2, "offset", size, hash FROM chunks ORDER BY md5path_1, md5path_2, "offset"')) {
        const k = `${r.md5path_1}:${r.md5path_2}`;
        byFile.set(k, [...(byFile.get(k) ?? []), r]);
      }
      for (const chunks of byFile.values()) {
        const data = Buffer.concat(chunks.map((c) => {
          const stored = readFileSync(join(FIXTURES, fqrn, 'srv', objectPath({ algorithm: 'sha1', hex: Buffer.from(c.hash as Uint8Array).toString('hex') }, 'P')));
          return compressed ? inflateSync(stored) : stored;
        }));
        // Feed in odd-sized blocks: the cut marks must not depend on how the stream is split.
        const cutter = new Xor32Chunker(sizes);
        const cuts: number[] = [];
        for (let p = 0; p < data.length; p += 999_983) cuts.push(...cutter.push(data.subarray(p, p + 999_983)));
        assert.deepEqual(cuts.filter((c) => c < data.length), chunks.slice(1).map((c) => Number(c.offset)), `${fqrn}: cut marks`);
        files++;
      }
    }
    assert.equal(files, 4);
  }
});

test('publisher: compression none reproduces the genuine uncompressed objects and chunk hashes', async () => {
  const fqrn = 'nocompress.test.example.org';
  const m = parseManifest(readFileSync(join(FIXTURES, fqrn, 'srv', '.cvmfspublished')));
  const genuine = await openDb(fixtureObject(fqrn, hashToString(m.rootCatalog), 'C'));
  const src = join(tempDir('ucvmfs-pub-src-'), 'src');
  mkdirSync(join(src, 'data'), { recursive: true });
  const chunks = rows(genuine, 'SELECT "offset", size, hash FROM chunks WHERE md5path_1 = ? AND md5path_2 = ? ORDER BY "offset"', [...pathKey('/data/chunked_3M.txt')]);
  assert.ok(chunks.length > 1);
  const rawObject = (h: Uint8Array, suffix: ObjectSuffix): Buffer => readFileSync(join(FIXTURES, fqrn, 'srv', objectPath({ algorithm: 'sha1', hex: Buffer.from(h).toString('hex') }, suffix)));
  writeFileSync(join(src, 'data', 'chunked_3M.txt'), Buffer.concat(chunks.map((c) => rawObject(c.hash as Uint8Array, 'P'))));
  const hello = entry(genuine, '/hello.txt');
  writeFileSync(join(src, 'hello.txt'), rawObject(hello.hash as Uint8Array, ''));

  const { out } = await publishTree(src, { compression: 'none', chunking: { min: 262144, avg: 524288, max: 1048576 }, xattrs: {} });
  const { db } = await rootCatalog(out);
  const mine = entry(db, '/hello.txt');
  assert.equal(mine.flags, 2052n, 'file | compression none');
  assert.deepEqual(Buffer.from(mine.hash as Uint8Array), Buffer.from(hello.hash as Uint8Array), 'same hash as the genuine publisher');
  assert.deepEqual(readObject(out, { algorithm: 'sha1', hex: Buffer.from(mine.hash as Uint8Array).toString('hex') }, '', false), readFileSync(join(src, 'hello.txt')), 'stored raw');
  assert.equal(entry(db, '/data/chunked_3M.txt').flags, 2116n);
  const myChunks = rows(db, 'SELECT "offset", size, hash FROM chunks ORDER BY "offset"');
  assert.deepEqual(myChunks.map((c) => [c.offset, c.size, Buffer.from(c.hash as Uint8Array).toString('hex')]), chunks.map((c) => [c.offset, c.size, Buffer.from(c.hash as Uint8Array).toString('hex')]));
  // Metadata objects stay zlib-compressed.
  readObject(out, parseManifest(readFileSync(join(out, '.cvmfspublished'))).history!, 'H');
});

for (const algorithm of ['rmd160', 'shake128'] as HashAlgorithm[]) {
  test(`publisher: ${algorithm} repository (object names, flags, letters)`, async () => {
    const { src } = makeTree();
    const { out, result } = await publishTree(src, { hashAlgorithm: algorithm });
    const m = parseManifest(readFileSync(join(out, '.cvmfspublished')));
    assert.equal(m.rootCatalog.algorithm, algorithm);
    assert.equal(m.certificate.algorithm, algorithm);
    assert.equal(m.history?.algorithm, algorithm);
    assert.ok(result.rootHash.endsWith(`-${algorithm}`));
    assert.ok(m.letter.hashText.endsWith(`-${algorithm}`));
    assert.equal(m.letter.hash.algorithm, algorithm);
    assert.ok(existsSync(join(out, 'data', result.rootHash.slice(0, 2), `${result.rootHash.slice(2)}C`)));
    const { db } = await rootCatalog(out);
    const index = algorithm === 'rmd160' ? 1n : 2n;
    const readme = entry(db, '/README.txt');
    assert.equal(readme.flags, 4n | (index << 8n));
    assert.equal(readObject(out, { algorithm, hex: Buffer.from(readme.hash as Uint8Array).toString('hex') }, '').toString(), 'hello world\n');
    assert.equal(entry(db, '/big.bin').flags, 4n | 64n | (index << 8n), 'chunked files carry the algorithm although their hash is NULL');
    assert.equal(entry(db, '/links/rel').flags, 12n, 'symlinks carry no algorithm');
    assert.equal(entry(db, '/bin').flags, 1n);
    const chunk = rows(db, 'SELECT hash FROM chunks LIMIT 1')[0]!;
    readObject(out, { algorithm, hex: Buffer.from(chunk.hash as Uint8Array).toString('hex') }, 'P');
    const sha1 = String(rows(db, "SELECT sha1 FROM nested_catalogs WHERE path = '/nested'")[0]!.sha1);
    assert.ok(sha1.endsWith(`-${algorithm}`), sha1);
    await nestedCatalog(out, db, '/nested');

    const cert = parseCertificate(readObject(out, m.certificate, 'X'));
    assert.ok(verifySha1(cert.key, m.letter.signature, Buffer.from(m.letter.hashText)));
    const w = parseWhitelist(readFileSync(join(out, '.cvmfswhitelist')));
    assert.ok(w.letter.lines[3]!.endsWith(`-${algorithm.toUpperCase()}`), w.letter.lines[3]);
    assert.deepEqual(w.fingerprints, [cert.fingerprint(algorithm)]);
    assert.ok(verifyRaw(rsaKeysFromPem(readFileSync(result.publicKeyPath, 'utf8'))[0]!, w.letter.signature, Buffer.from(w.letter.hashText)));
    const history = await openDb(readObject(out, m.history!, 'H'));
    assert.equal(rows(history, "SELECT hash FROM tags WHERE name = 'trunk'")[0]!.hash, result.rootHash);
  });
}

test('publisher: the genuine rmd160 whitelist has the fingerprint form this publisher writes', () => {
  const text = readFileSync(join(FIXTURES, 'rmd160.test.example.org', 'srv', '.cvmfswhitelist'), 'latin1');
  assert.match(text.split('\n')[3]!, /^([0-9A-F]{2}:){19}[0-9A-F]{2}-RMD160$/);
});

test('publisher: the next revision links the previous one, moves trunk, keeps tags, keys and unchanged catalogs', async () => {
  const { src } = makeTree();
  const { out, result: r1 } = await publishTree(src, { tag: { name: 'v1', description: 'first' } });
  const pub1 = readFileSync(r1.publicKeyPath, 'utf8');
  const first = await rootCatalog(out);
  const nested1 = await nestedCatalog(out, first.db, '/nested');
  const deep1 = await nestedCatalog(out, nested1.db, '/nested/deep');

  writeFileSync(join(src, 'nested/deep/d.txt'), 'deep, changed\n');
  writeFileSync(join(src, 'added.txt'), 'new in v2\n');
  const opts: PublishOptions = { fqrn: 'pub.test.example.org', out, chunking: SMALL_CHUNKS, timestamp: T0 + 100, xattrs: XATTRS, readSourceXattrs: false };
  const r2 = await publish(src, opts);
  assert.equal(r2.revision, 2);
  assert.equal(readFileSync(r2.publicKeyPath, 'utf8'), pub1, 'keys are reused');
  const m1Cert = parseCertificate(readFileSync(join(`${out}.keys`, 'pub.test.example.org.crt')));
  const m2 = parseManifest(readFileSync(join(out, '.cvmfspublished')));
  assert.equal(m2.revision, 2);
  assert.ok(verifySha1(m1Cert.key, m2.letter.signature, Buffer.from(m2.letter.hashText)));

  const second = await rootCatalog(out);
  assert.deepEqual(props(second.db), { schema: '2.5', schema_revision: '7', TTL: '240', last_modified: String(T0 + 100), revision: '2', previous_revision: r1.rootHash });
  assert.ok(entry(second.db, '/added.txt'));
  const nested2 = await nestedCatalog(out, second.db, '/nested');
  const deep2 = await nestedCatalog(out, nested2.db, '/nested/deep');
  assert.notEqual(hashToString(deep2.hash), hashToString(deep1.hash));
  assert.deepEqual([props(deep2.db).revision, props(deep2.db).previous_revision], ['2', hashToString(deep1.hash)]);
  assert.notEqual(hashToString(nested2.hash), hashToString(nested1.hash), '/nested lists the new /nested/deep hash');

  // Nothing changes below /nested now: that catalog is kept as it was.
  writeFileSync(join(src, 'README.txt'), 'changed readme\n');
  const r3 = await publish(src, { ...opts, timestamp: T0 + 200, tag: { name: 'v3' } });
  assert.equal(r3.revision, 3);
  const third = await rootCatalog(out);
  const nested3 = await nestedCatalog(out, third.db, '/nested');
  assert.equal(hashToString(nested3.hash), hashToString(nested2.hash));
  assert.equal(props(nested3.db).revision, '2');
  assert.equal(r3.catalogs, 3);

  const history = await openDb(readObject(out, parseManifest(readFileSync(join(out, '.cvmfspublished'))).history!, 'H'));
  const tags = Object.fromEntries(rows(history, 'SELECT * FROM tags').map((t) => [String(t.name), t]));
  assert.deepEqual(Object.keys(tags).sort(), ['trunk', 'trunk-previous', 'v1', 'v3']);
  assert.deepEqual([tags.trunk!.hash, tags.trunk!.revision, tags.trunk!.timestamp, tags.trunk!.description, tags.trunk!.size], [r3.rootHash, 3n, BigInt(T0 + 200), 'current HEAD', BigInt(third.raw.length)]);
  assert.deepEqual([tags['trunk-previous']!.hash, tags['trunk-previous']!.revision, tags['trunk-previous']!.description], [r2.rootHash, 2n, 'default undo target']);
  assert.deepEqual([tags.v1!.hash, tags.v1!.revision, tags.v1!.description, tags.v1!.channel, tags.v1!.branch], [r1.rootHash, 1n, 'first', 0n, '']);
  assert.equal(tags.v3!.hash, r3.rootHash);
  assert.equal(props(history).previous_revision, hashToString(m2.history!));

  await assert.rejects(publish(src, { ...opts, tag: { name: 'v1' } }), /already exists/);
  await assert.rejects(publish(src, { ...opts, tag: { name: 'trunk' } }), /reserved/);
  assert.equal(parseManifest(readFileSync(join(out, '.cvmfspublished'))).revision, 3, 'a refused publish changes nothing');
  await assert.rejects(publish(src, { ...opts, fqrn: 'other.example.org' }), /holds repository pub\.test\.example\.org/);
});

test('publisher: a nested catalog is kept only while every row is as it would be written now: a mode, a new symlink or directory, a removed file each rebuild it', async () => {
  const { src } = makeTree();
  const { out } = await publishTree(src);
  const deepOf = async () => nestedCatalog(out, (await nestedCatalog(out, (await rootCatalog(out)).db, '/nested')).db, '/nested/deep');
  const opts: PublishOptions = { fqrn: 'pub.test.example.org', out, chunking: SMALL_CHUNKS, xattrs: XATTRS, readSourceXattrs: false };
  const before = await deepOf();

  // Nothing changed below /nested/deep: kept, object and revision.
  await publish(src, { ...opts, timestamp: T0 + 100 });
  const kept = await deepOf();
  assert.equal(hashToString(kept.hash), hashToString(before.hash));
  assert.equal(props(kept.db).revision, '1');

  // Only a mode: no file's size or mtime moved, so the rows decide.
  chmodSync(join(src, 'nested/deep/d.txt'), 0o600);
  await publish(src, { ...opts, timestamp: T0 + 200 });
  const moded = await deepOf();
  assert.notEqual(hashToString(moded.hash), hashToString(kept.hash));
  assert.deepEqual([props(moded.db).revision, props(moded.db).previous_revision], ['2', hashToString(kept.hash)]);
  assert.equal(Number(entry(moded.db, '/nested/deep/d.txt').mode), 0o100600);

  // A removed file, a new symlink and a new empty directory, none of them a regular file that changed.
  const dirTimes = statSync(join(src, 'nested/deep'));
  rmSync(join(src, 'nested/deep/d.txt'));
  symlinkSync('../n.txt', join(src, 'nested/deep/up'));
  mkdirSync(join(src, 'nested/deep/e'));
  utimesSync(join(src, 'nested/deep'), dirTimes.atime, dirTimes.mtime);
  await publish(src, { ...opts, timestamp: T0 + 300 });
  const redone = await deepOf();
  assert.notEqual(hashToString(redone.hash), hashToString(moded.hash));
  assert.equal(props(redone.db).revision, '3');
  assert.equal(rows(redone.db, 'SELECT name FROM catalog WHERE name = ?', ['d.txt']).length, 0, 'the removed file is gone');
  assert.equal(String(entry(redone.db, '/nested/deep/up').symlink), '../n.txt');
  assert.equal(Number(entry(redone.db, '/nested/deep/e').flags) & 1, 1, 'the new directory is there');
});

test('publisher: with the changed paths named, untouched nested catalogs are kept unscanned, and the revision is the one a full publish makes', async () => {
  const base = tempDir('ucvmfs-pub-changed-');
  const src = join(base, 'src');
  const fqrn = 'chg.test.example.org';
  write(src, 'top.txt', 'top\n');
  write(src, 'plain/p.txt', 'in the root catalog\n');
  for (const n of ['a', 'b', 'c']) {
    write(src, `${n}/.cvmfscatalog`, '');
    for (let i = 0; i < 5; i++) write(src, `${n}/f${i}.txt`, `${n} file ${i}\n`);
  }
  write(src, 'a/sub/y.txt', 'below a\n');
  write(src, 'a/inner/.cvmfscatalog', '');
  write(src, 'a/inner/z.txt', 'a nested catalog in a kept one\n');
  write(src, 'c/d/e.txt', 'c deeper\n');
  const xattrs = { a: { 'user.top': 'of a kept catalog' }, 'b/f0.txt': { 'user.k': 'v' } };
  const opts = { fqrn, chunking: SMALL_CHUNKS, xattrs, readSourceXattrs: false, whitelistDays: 20_000 } as const;
  const one = join(base, 'one');
  await publish(src, { ...opts, out: one, timestamp: T0 });
  const two = join(base, 'two');
  execFileSync('cp', ['-a', one, two]);

  // Changed: in b (a file rewritten, one added, one removed), and in the root catalog's own part, which is always
  // scanned (plain/p.txt is not named).
  const bTimes = statSync(join(src, 'b'));
  writeFileSync(join(src, 'b/f1.txt'), 'b file 1, changed\n');
  writeFileSync(join(src, 'b/new.txt'), 'new in b\n');
  rmSync(join(src, 'b/f2.txt'));
  writeFileSync(join(src, 'plain/p.txt'), 'changed, not named\n');
  await assert.rejects(publish(src, { ...opts, out: one, timestamp: T0 + 100, changed: ['../elsewhere/b'] }), /changed path '..\/elsewhere\/b' is not in the source/);
  const partial = await publish(src, { ...opts, out: one, timestamp: T0 + 100, changed: ['b/f1.txt', `${src}/b/new.txt`, './b/x/../f2.txt'] });
  const full = await publish(src, { ...opts, out: two, timestamp: T0 + 100 });
  assert.equal(partial.rootHash, full.rootHash, 'the same root catalog, byte for byte');
  assert.deepEqual([partial.entries, partial.catalogs], [full.entries, full.catalogs]);
  assert.equal(full.scannedEntries, full.entries);
  // The root catalog's part (/, top.txt, plain, plain/p.txt, and the tops of a, b and c) and the 6 entries in b.
  assert.equal(partial.scannedEntries, 7 + 6, `scanned ${partial.scannedEntries} of ${partial.entries}`);
  const server = await serveRepositories({ [fqrn]: one });
  try {
    const repo = await openRepository(fqrn, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [partial.publicKeyPath], cacheDir: tempDir('ucvmfs-pub-cache-') });
    try {
      assert.equal(repo.revision, 2);
      assert.equal(await repo.fs.readFile('/b/f1.txt', 'utf8'), 'b file 1, changed\n');
      assert.equal(await repo.fs.readFile('/plain/p.txt', 'utf8'), 'changed, not named\n');
      assert.equal(await repo.fs.readFile('/a/inner/z.txt', 'utf8'), 'a nested catalog in a kept one\n');
      assert.deepEqual((await repo.fs.readdir('/b')).sort(), ['.cvmfscatalog', 'f0.txt', 'f1.txt', 'f3.txt', 'f4.txt', 'new.txt']);
      assert.equal((await repo.fs.stat('/a')).nlink, 4);
    } finally {
      repo.close();
    }
  } finally {
    await server.close();
  }

  // Attributes given for a path below a kept catalog's top make it scanned (c: 8 entries more).
  const below = await publish(src, { ...opts, xattrs: { ...xattrs, 'c/f0.txt': { 'user.n': '1' } }, out: one, timestamp: T0 + 120, changed: ['b'] });
  assert.equal(below.scannedEntries, 7 + 6 + 8);

  // Another hash algorithm than the previous revision's: nothing can be kept, everything is scanned.
  const rmd = await publish(src, { ...opts, out: two, timestamp: T0 + 150, hashAlgorithm: 'rmd160', changed: ['b'] });
  assert.equal(rmd.scannedEntries, rmd.entries);

  // A kept catalog gone unnamed (its siblings' counters would be wrong) fails the publish too.
  rmSync(join(src, 'c'), { recursive: true });
  await assert.rejects(publish(src, { ...opts, out: one, timestamp: T0 + 180, changed: ['b'] }), /\/c is not as the previous revision has it \(gone from the source\)/);
  // Named, it goes.
  const gone = await publish(src, { ...opts, out: one, timestamp: T0 + 190, changed: ['c'] });
  assert.equal(gone.entries, full.entries - 9);

  // A kept catalog's top that changed unnamed (a file added in a/) fails the publish instead of going unseen.
  writeFileSync(join(src, 'a/unnamed.txt'), 'x');
  await assert.rejects(publish(src, { ...opts, out: one, timestamp: T0 + 200, changed: ['b'] }), /\/a is not as the previous revision has it \(mtime\)/);
  utimesSync(join(src, 'b'), bTimes.atime, bTimes.mtime);
  rmSync(base, { recursive: true, force: true });
  rmSync(`${one}.keys`, { recursive: true, force: true });
  rmSync(`${two}.keys`, { recursive: true, force: true });
});

test('publisher: a republish reads only the files whose size or mtime changed; the rest keep their content, as a full rescan gives it', async () => {
  const { src } = makeTree();
  const { out } = await publishTree(src);
  const opts: PublishOptions = { fqrn: 'pub.test.example.org', out, chunking: SMALL_CHUNKS, timestamp: T0 + 100, xattrs: XATTRS, readSourceXattrs: false };
  // Changed: a chunked file (one byte, same size, new mtime), a small file (new size), a new file, and a file
  // rewritten with the same bytes (new mtime: read again, same object). README.txt gets other bytes of the same
  // length and its old mtime back: the quick check cannot see that, as rsync's cannot; --rescan does.
  const big = readFileSync(join(src, 'big.bin'));
  big[350_000] ^= 0xff;
  writeFileSync(join(src, 'big.bin'), big);
  writeFileSync(join(src, 'nested/deep/d.txt'), 'deep, changed\n');
  writeFileSync(join(src, 'added.txt'), 'new in v2\n');
  writeFileSync(join(src, 'hard/single'), 'single\n');
  writeFileSync(join(src, 'README.txt'), 'HELLO WORLD\n');
  utimesSync(join(src, 'README.txt'), 1_600_000_000.25, 1_600_000_000.25);
  const files = (dir: string, rel = ''): string[] => readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(dir, `${rel}/${e.name}`) : e.isFile() ? [`${rel}/${e.name}`] : []);
  const all = files(src);
  const r2 = await publish(src, opts);
  assert.equal(r2.revision, 2);
  assert.equal(r2.unchangedFiles, all.length - 4, 'every file but the four changed or new ones kept its content unread');
  // The same tree published from scratch into another directory: every row equal but README.txt's.
  const fresh = (await publishTree(src, { timestamp: T0 + 100 })).out;
  const catalogOf = async (repo: string, path: string): Promise<Database> => {
    const root = (await rootCatalog(repo)).db;
    if (!path.startsWith('/nested/')) return root;
    const nested = (await nestedCatalog(repo, root, '/nested')).db;
    return path.startsWith('/nested/deep/') ? (await nestedCatalog(repo, nested, '/nested/deep')).db : nested;
  };
  const content = async (repo: string, path: string) => {
    const e = entry(await catalogOf(repo, path), path);
    const [k1, k2] = pathKey(path);
    const chunks = rows(await catalogOf(repo, path), 'SELECT offset, size, hex(hash) AS h FROM chunks WHERE md5path_1 = ? AND md5path_2 = ? ORDER BY offset', [k1, k2]);
    return { hash: e.hash === null ? null : Buffer.from(e.hash as Uint8Array).toString('hex'), size: e.size, flags: e.flags, chunks };
  };
  for (const path of all) {
    if (path === '/README.txt') continue;
    assert.deepEqual(await content(out, path), await content(fresh, path), `${path}: kept or read again, the content a full publish gives`);
  }
  const sha1 = (b: string) => createHash('sha1').update(deflateStandard(Buffer.from(b))).digest('hex');
  assert.equal((await content(out, '/nested/deep/d.txt')).hash, sha1('deep, changed\n'));
  assert.ok((await content(out, '/big.bin')).chunks.length >= 2);
  assert.equal((await content(out, '/README.txt')).hash, sha1('hello world\n'), 'same size and mtime: kept');
  const r3 = await publish(src, { ...opts, timestamp: T0 + 200, rescan: true });
  assert.equal(r3.unchangedFiles, 0);
  assert.equal((await content(out, '/README.txt')).hash, sha1('HELLO WORLD\n'), '--rescan reads it');
});

test('publisher: a negative whitelistDays gives a whitelist that has already expired', async () => {
  const src = join(tempDir('ucvmfs-pub-src-'), 'src');
  write(src, 'f', 'x');
  const { out } = await publishTree(src, { whitelistDays: -2, timestamp: undefined, xattrs: {} });
  const w = parseWhitelist(readFileSync(join(out, '.cvmfswhitelist')));
  assert.ok(w.expires.getTime() < Date.now(), `expired ${w.expires.toISOString()}`);
  assert.ok(Math.abs(w.expires.getTime() - (w.created.getTime() - 2 * 86400_000)) < 1000);
});

test('publisher: invalid options are refused before anything is written', async () => {
  const src = join(tempDir('ucvmfs-pub-src-'), 'src');
  write(src, 'f', 'x');
  const out = join(tempDir('ucvmfs-pub-out-'), 'repo');
  await assert.rejects(publish(src, { fqrn: 'x.org', out, chunking: { min: 100, avg: 50, max: 200 } }), RangeError);
  await assert.rejects(publish(src, { fqrn: 'bad/name', out }), TypeError);
  await assert.rejects(publish(src, { fqrn: 'x.org', out, tag: { name: 'trunk-previous' } }), /reserved/);
  await assert.rejects(publish(src, { fqrn: 'x.org', out, xattrs: { 'no/such': { 'user.a': 'b' } } }), /not in the source/);
  await assert.rejects(publish(join(src, 'f'), { fqrn: 'x.org', out }), /not a directory/);
  assert.ok(!existsSync(join(out, '.cvmfspublished')));
});

test('publisher: getfattr output is parsed with its octal escapes', () => {
  const out = Buffer.concat([
    Buffer.from('# file: /src/we ird\\012name\\134x\nuser.n=0x76\n\n# file: /src\nuser.root=0x\n\n', 'latin1'),
    Buffer.from('# file: /src/ü\nuser.u=0x3132\nsecurity.selinux=0x6c\n\n', 'utf8'),
  ]);
  const parsed = parseGetfattrOutput(out, '/src');
  assert.deepEqual([...parsed.keys()].sort(), ['', 'we ird\nname\\x', 'ü']);
  assert.equal(parsed.get('we ird\nname\\x')!.get('user.n')!.toString(), 'v');
  assert.equal(parsed.get('')!.get('user.root')!.length, 0);
  assert.deepEqual([...parsed.get('ü')!.keys()], ['user.u'], 'only user.* names');
});

const hasAttrTools = spawnSync('setfattr', ['--version']).status === 0 && spawnSync('getfattr', ['--version']).status === 0;

test('publisher: user xattrs of the source tree are read with getfattr', { skip: hasAttrTools ? false : 'getfattr/setfattr (package attr) not installed' }, async (t) => {
  const src = join(tempDir('ucvmfs-pub-src-'), 'src');
  write(src, 'plain', 'x');
  write(src, 'odd name\n.txt', 'y');
  mkdirSync(join(src, 'dir'));
  const set = (p: string, name: string, value: string): boolean => spawnSync('setfattr', ['-n', name, '-v', value, join(src, p)]).status === 0;
  if (!set('odd name\n.txt', 'user.color', 'blue')) {
    t.skip('the temp file system does not take user xattrs');
    return;
  }
  assert.ok(set('dir', 'user.d', '0x00ff'));
  assert.ok(set('plain', 'user.empty', '""'));
  const { out } = await publishTree(src, { readSourceXattrs: true, xattrs: { plain: { 'user.extra': 'added' } } });
  const { db } = await rootCatalog(out);
  const attrs = (p: string): Record<string, string> => Object.fromEntries([...parseXattrs(entry(db, p).xattr as Uint8Array)].map(([k, v]) => [k, v.toString('hex')]));
  assert.deepEqual(attrs('/odd name\n.txt'), { 'user.color': Buffer.from('blue').toString('hex') });
  assert.deepEqual(attrs('/dir'), { 'user.d': '00ff' });
  assert.deepEqual(attrs('/plain'), { 'user.empty': '', 'user.extra': Buffer.from('added').toString('hex') });
  assert.equal(stats(db).self_xattr, 3);

  // With `dir` a nested catalog kept unscanned, getfattr reads the scanned entries only, `dir`'s own attributes
  // are checked against its catalog's, and the revision is the one a full publish makes.
  write(src, 'dir/.cvmfscatalog', '');
  write(src, 'dir/in.txt', 'inside');
  assert.ok(set('dir/in.txt', 'user.in', 'side'));
  const opts: PublishOptions = { fqrn: 'pub.test.example.org', out, chunking: SMALL_CHUNKS, readSourceXattrs: true, xattrs: { plain: { 'user.extra': 'added' } } };
  await publish(src, { ...opts, timestamp: T0 + 100 });
  const copy = join(tempDir('ucvmfs-pub-out-'), 'repo');
  execFileSync('cp', ['-a', out, copy]);
  write(src, 'plain', 'changed');
  const partial = await publish(src, { ...opts, timestamp: T0 + 200, changed: ['plain'] });
  const full = await publish(src, { ...opts, out: copy, timestamp: T0 + 200 });
  assert.equal(partial.rootHash, full.rootHash);
  assert.equal(partial.scannedEntries, full.scannedEntries - 2, 'dir/.cvmfscatalog and dir/in.txt were not scanned');
  assert.ok(set('dir', 'user.d', '0x01'));
  await assert.rejects(publish(src, { ...opts, timestamp: T0 + 300, changed: ['plain'] }), /\/dir is not as the previous revision has it \(extended attributes\)/);
});

test('publisher: with the changed paths named, getfattr gets the scanned names in runs the kernel takes, however low its limit', { skip: hasAttrTools ? false : 'getfattr/setfattr (package attr) not installed' }, async (t) => {
  const base = tempDir('ucvmfs-pub-args-');
  const src = join(base, 'src');
  // 3,000 names of about 100 bytes: 300 KB of arguments, where a stack limit of 512 KiB leaves 128 KiB.
  write(src, 'nest/.cvmfscatalog', '');
  const name = (i: number) => `a-long-name-to-fill-the-arguments-of-one-getfattr-run-${String(i).padStart(5, '0')}.txt`;
  for (let i = 0; i < 3000; i++) writeFileSync(join(src, name(i)), `file ${i}\n`);
  if (spawnSync('setfattr', ['-n', 'user.last', '-v', 'yes', join(src, name(2999))]).status !== 0) {
    t.skip('the temp file system does not take user xattrs');
    return;
  }
  const out = join(base, 'out');
  const run = (extra: string) => spawnSync('/bin/bash', ['-c', `ulimit -s 512 && "${process.execPath}" "${CLI}" publish "${src}" --fqrn args.test.example.org --out "${out}" ${extra}`], { encoding: 'utf8' });
  assert.equal(run('').status, 0);
  writeFileSync(join(src, 'new.txt'), 'new\n');
  const r = run('--changed new.txt');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /3003 entries scanned/);
  const { db } = await rootCatalog(out);
  assert.deepEqual([...parseXattrs(entry(db, `/${name(2999)}`).xattr as Uint8Array)].map(([k, v]) => [k, v.toString()]), [['user.last', 'yes']]);
  rmSync(base, { recursive: true, force: true });
  rmSync(`${out}.keys`, { recursive: true, force: true });
});

test('publisher: the library client opens the published repository and reads every file', async () => {
  const { src, big } = makeTree();
  // Published now: the client refuses an expired whitelist, and T0's would be.
  const { out, result } = await publishTree(src, { timestamp: undefined });
  const server = await serveRepositories({ [result.fqrn]: out });
  try {
    const repo = await openRepository(result.fqrn, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [result.publicKeyPath], cacheDir: tempDir('ucvmfs-pub-cache-') });
    assert.equal(repo.revision, 1);
    assert.equal(await repo.fs.readFile('/README.txt', 'utf8'), 'hello world\n');
    assert.ok((await repo.fs.readFile('/big.bin') as Buffer).equals(big));
    assert.equal(await repo.fs.readFile('/nested/deep/d.txt', 'utf8'), 'deep\n');
    assert.equal(await repo.fs.readlink('/links/rel'), '../README.txt');
    assert.equal((await repo.fs.lstat('/hard/a')).nlink, 2);
    assert.equal((await repo.fs.lstat('/hard/a')).ino, (await repo.fs.lstat('/hard/b')).ino);
    assert.deepEqual([...(await repo.fs.readdir('/names'))].sort(), ['new\nline', 'with space.txt', 'ünïcödé-名前.txt']);
    const sum = (b: Buffer): string => createHash('sha1').update(b).digest('hex');
    assert.equal(sum(await repo.fs.readFile('/other/c') as Buffer), sum(readFileSync(join(src, 'hard/a'))));
  } finally {
    await server.close();
  }
});
