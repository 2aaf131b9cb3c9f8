/**
 * The catalog reader (lib/catalog/sqlite-*.ts) reads SQLite files without an SQL engine. Every catalog of every
 * fixture, and databases SQLite itself wrote with the layouts catalogs rarely have (small pages with overflow
 * chains, columns added later, rowid aliases, unusable indexes), must read exactly as SQLite (sql.js) reads them;
 * a damaged file must fail with EIO, never hang or read as something else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import type { Database, SqlValue } from 'sql.js';
import { sqlite } from '../lib/catalog/sqlite.js';
import { Catalog, type CatalogRow } from '../lib/catalog/catalog.js';
import { SqliteTables } from '../lib/catalog/sqlite-tables.js';
import { decodeName } from '../lib/format/byte-names.js';
import { pathKey } from '../lib/format/pathhash.js';
import { hashToString, parseHash } from '../lib/format/hash.js';
import { FIXTURES } from './helpers.js';

/** Every catalog object (suffix C) of every fixture repository, decompressed. */
function fixtureCatalogs(): { name: string; bytes: Buffer }[] {
  const out: { name: string; bytes: Buffer }[] = [];
  for (const repo of readdirSync(FIXTURES)) {
    const data = join(FIXTURES, repo, 'srv', 'data');
    if (!existsSync(data)) continue;
    for (const d of readdirSync(data)) {
      for (const f of readdirSync(join(data, d))) {
        if (!f.endsWith('C')) continue;
        const raw = readFileSync(join(data, d, f));
        out.push({ name: `${repo}:${d}${f}`, bytes: raw.subarray(0, 15).toString('latin1') === 'SQLite format 3' ? raw : inflateSync(raw) });
      }
    }
  }
  return out;
}

const text = (v: SqlValue | undefined): string => (v instanceof Uint8Array ? decodeName(v) : v === null || v === undefined ? '' : String(v));

/** The catalog rows SQLite gives for a WHERE clause, built the way the library builds a CatalogRow. */
function sqlRows(db: Database, where: string): CatalogRow[] {
  const cols = new Set((db.exec('PRAGMA table_info(catalog)')[0]?.values ?? []).map((r) => String(r[1])));
  const c = (n: string, e = n) => (cols.has(n) ? e : 'NULL');
  const res = db.exec(`SELECT rowid, ${c('hardlinks', 'CAST((hardlinks >> 32) & 4294967295 AS TEXT)')}, ${c('hardlinks', 'CAST(hardlinks & 4294967295 AS TEXT)')}, ${c('hash')}, ${c('size')}, ${c('mode')}, ${c('mtime')}, ${c('mtimens')}, ${c('flags')}, ${c('name', 'CAST(name AS BLOB)')}, ${c('symlink', 'CAST(symlink AS BLOB)')}, ${c('uid')}, ${c('gid')}, ${c('xattr')} FROM catalog WHERE ${where} ORDER BY rowid`)[0];
  const blob = (v: SqlValue) => (v instanceof Uint8Array && v.length > 0 ? v : null);
  return (res?.values ?? []).map((r) => ({
    rowid: Number(r[0]), hardlinkGroup: Number(r[1] ?? 0), linkcount: Number(r[2] ?? 1), hash: blob(r[3]!), size: Number(r[4] ?? 0),
    mode: Number(r[5] ?? 0), mtime: Number(r[6] ?? 0), mtimens: r[7] === null ? null : Number(r[7]), flags: Number(r[8] ?? 0),
    name: text(r[9]), symlink: text(r[10]), uid: Number(r[11] ?? 0), gid: Number(r[12] ?? 0), xattr: blob(r[13]!),
  }));
}

const plain = (r: CatalogRow) => ({ ...r, hash: r.hash && Buffer.from(r.hash).toString('hex'), xattr: r.xattr && Buffer.from(r.xattr).toString('hex') });
const byRowid = (rows: CatalogRow[]) => rows.map(plain).sort((a, b) => a.rowid - b.rowid);

test('every fixture catalog reads as SQLite reads it: each row by path, each listing, chunks, properties, references', async () => {
  const SQL = await sqlite();
  const catalogs = fixtureCatalogs();
  assert.ok(catalogs.length >= 30, `found ${catalogs.length} catalogs`);
  let rows = 0;
  let chunked = 0;
  let withXattr = 0;
  for (const { name, bytes } of catalogs) {
    const db = new SQL.Database(bytes);
    const cat = await Catalog.open(bytes, parseHash('0'.repeat(40)), '');
    try {
      const keys = db.exec('SELECT rowid, CAST(md5path_1 AS TEXT), CAST(md5path_2 AS TEXT), CAST(parent_1 AS TEXT), CAST(parent_2 AS TEXT) FROM catalog ORDER BY rowid')[0]!.values;
      const listings = new Map<string, number[]>();
      for (const [rowid, , , p1, p2] of keys) {
        const list = listings.get(`${p1},${p2}`) ?? [];
        list.push(Number(rowid));
        listings.set(`${p1},${p2}`, list);
      }
      const table = new SqliteTables(bytes).table('catalog')!;
      for (const [rowid, m1, m2] of keys) {
        const found = [...table.find(['md5path_1', 'md5path_2'], [BigInt(m1 as string), BigInt(m2 as string)])];
        assert.deepEqual(found.map((r) => r.rowid), [Number(rowid)], `${name}: the row keyed ${m1},${m2}`);
        rows++;
      }
      for (const [parent, want] of listings) {
        const [p1, p2] = parent.split(',').map(BigInt) as [bigint, bigint];
        assert.deepEqual([...table.find(['parent_1', 'parent_2'], [p1, p2])].map((r) => r.rowid), want, `${name}: listing of ${parent}`);
      }
      // Through the Catalog API, by path: walk the catalog's tree from every row that is a directory.
      const all = sqlRows(db, '1');
      const seen: CatalogRow[] = [];
      const walk = (path: string) => {
        const kids = cat.children(path);
        for (const k of kids) {
          seen.push(k);
          assert.deepEqual(plain(cat.lookup(`${path}/${k.name}`)!), plain(k), `${name}: lookup ${path}/${k.name}`);
          if (k.flags & 1) walk(`${path}/${k.name}`);
          if (k.flags & 64) {
            const want = db.exec(`SELECT offset, size, hash FROM chunks WHERE (md5path_1, md5path_2) = (SELECT md5path_1, md5path_2 FROM catalog WHERE rowid = ${k.rowid}) ORDER BY offset`)[0]!.values;
            assert.deepEqual(cat.chunks(`${path}/${k.name}`).map((c) => [c.offset, c.size, Buffer.from(c.hash).toString('hex')]), want.map((r) => [Number(r[0]), Number(r[1]), Buffer.from(r[2] as Uint8Array).toString('hex')]));
            chunked++;
          }
          if (k.xattr) withXattr++;
        }
      };
      // A nested catalog's rows hang under its mountpoint (the root_prefix property); the root catalog's under ''.
      const prefix = db.exec("SELECT value FROM properties WHERE key = 'root_prefix'")[0]?.values[0]?.[0];
      const mount = typeof prefix === 'string' && prefix !== '/' ? prefix : '';
      const top = cat.lookup(mount);
      assert.ok(top, `${name}: root row at '${mount}'`);
      seen.push(top);
      walk(mount);
      assert.deepEqual(byRowid(seen), byRowid(all), `${name}: the walk reaches every row, as SQLite stores it`);
      const props = new Map((db.exec('SELECT key, value FROM properties')[0]?.values ?? []).map((r) => [String(r[0]), String(r[1])]));
      assert.deepEqual(cat.properties, props);
      const nested = (db.exec('SELECT path, sha1, size FROM nested_catalogs')[0]?.values ?? []).map((r) => [String(r[0]), String(r[1]), Number(r[2])]);
      assert.deepEqual([...cat.nested.values()].map((r) => [r.path, hashToString(r.hash), r.size]), nested);
      assert.deepEqual(cat.statistics(), new Map((db.exec('SELECT counter, value FROM statistics')[0]?.values ?? []).map((r) => [String(r[0]), Number(r[1])])));
      assert.equal(cat.maxRowid, Number(db.exec('SELECT max(rowid) FROM catalog')[0]!.values[0]![0] ?? 0));
    } finally {
      db.close();
      cat.close();
    }
  }
  assert.ok(rows > 3000, `${rows} rows compared`);
  assert.ok(chunked >= 2 && withXattr >= 1, `chunked ${chunked}, with xattrs ${withXattr}`);
});

/** A database SQLite wrote, as bytes. */
async function written(pageSize: number, statements: string[], fill?: (db: Database) => void): Promise<Buffer> {
  const db = new (await sqlite()).Database();
  try {
    db.exec(`PRAGMA page_size = ${pageSize}`);
    for (const s of statements) db.exec(s);
    fill?.(db);
    return Buffer.from(db.export());
  } finally {
    db.close();
  }
}

/** What SQLite itself returns for a query, with 64-bit integers as exact text and TEXT as bytes. */
function sqlValues(db: Database, sql: string): unknown[][] {
  return (db.exec(sql)[0]?.values ?? []).map((r) => r.map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v)));
}

const norm = (v: unknown): unknown => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : typeof v === 'bigint' ? String(v) : v);

test('databases SQLite wrote with small pages, overflow chains, added columns and rowid aliases read as SQLite reads them', async () => {
  // 512-byte pages: many interior levels for 3,000 rows, and values of up to 5 KB spill into overflow chains.
  const bytes = await written(512, [
    'CREATE TABLE t (k1 INTEGER, k2 INTEGER, p INTEGER, name TEXT, blob BLOB, CONSTRAINT pk PRIMARY KEY (k1, k2))',
    'CREATE INDEX by_p ON t (p)',
    'CREATE INDEX by_name_desc ON t (name DESC)',
    'CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)',
  ], (db) => {
    const ins = db.prepare('INSERT INTO t VALUES (?, ?, ?, ?, ?)');
    for (let i = 0; i < 3000; i++) {
      const big = (i * 2654435761) % 9973;
      // Keys near both ends of the 64-bit range, as MD5 path keys are.
      ins.run([`${i % 2 ? '-' : ''}${9000000000000000000 - big * 1000003}`, i, i % 37, `n${i}`.repeat(1 + (i % 7 === 0 ? 400 : 0)), new Uint8Array(i % 11 === 0 ? 5000 : 8).fill(i & 255)] as never);
    }
    ins.free();
    db.exec('ALTER TABLE t ADD COLUMN later INTEGER DEFAULT 42');
    db.exec("ALTER TABLE t ADD COLUMN note TEXT DEFAULT 'it''s'");
    db.exec("INSERT INTO t VALUES (1, 1, 1, 'after', x'00', 7, 'x')");
    for (let i = 0; i < 50; i++) db.exec(`INSERT INTO a (v) VALUES ('v${i}')`);
    db.exec('DELETE FROM a WHERE id % 3 = 0');
  });
  const SQL = await sqlite();
  const db = new SQL.Database(bytes);
  const tables = new SqliteTables(bytes);
  const t = tables.table('t')!;
  assert.deepEqual(t.columns, ['k1', 'k2', 'p', 'name', 'blob', 'later', 'note']);
  const all = [...t.scan()];
  const want = sqlValues(db, 'SELECT rowid, CAST(k1 AS TEXT), k2, p, CAST(name AS BLOB), blob, later, CAST(note AS BLOB) FROM t ORDER BY rowid');
  assert.equal(all.length, 3001);
  assert.deepEqual(all.map((r) => [r.rowid, String(r.values[0]), ...r.values.slice(1).map(norm)]), want.map((r) => [r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]]));
  // Through the primary key, one row per key; through the index on p, a listing in rowid order.
  for (const i of [0, 1, 7, 11, 1234, 2999]) {
    const [k1, k2] = sqlValues(db, `SELECT CAST(k1 AS TEXT), k2 FROM t WHERE rowid = ${i + 1}`)[0]!;
    assert.deepEqual([...t.find(['k1', 'k2'], [BigInt(k1 as string), k2 as number])].map((r) => r.rowid), [i + 1]);
  }
  assert.deepEqual([...t.find(['k1', 'k2'], [5n, 5])], []);
  assert.deepEqual([...t.find(['p'], [5])].map((r) => r.rowid), sqlValues(db, 'SELECT rowid FROM t WHERE p = 5 ORDER BY rowid').map((r) => r[0]));
  // The descending index is not searched (its order is not the reader's): the same rows come from a scan.
  assert.deepEqual([...t.find(['name'], [Buffer.from('n5')])].map((r) => r.rowid), [6]);
  const a = tables.table('a')!;
  assert.deepEqual([...a.scan()].map((r) => r.values.map(norm)), sqlValues(db, 'SELECT id, CAST(v AS BLOB) FROM a ORDER BY id'));
  assert.equal(a.maxRowid(), 50 - (50 % 3 === 0 ? 1 : 0));
  db.close();
});

test('a damaged catalog fails with EIO, whatever is damaged, and never hangs', async () => {
  const { bytes } = fixtureCatalogs().sort((x, y) => y.bytes.length - x.bytes.length)[0]!;
  const expectEio = async (b: Uint8Array, what: string) => {
    try {
      const cat = await Catalog.open(b, parseHash('0'.repeat(40)), '');
      const walk = (p: string, depth: number): number => cat.children(p).reduce((n, k) => n + 1 + (k.flags & 1 && depth < 30 ? walk(`${p}/${k.name}`, depth + 1) : 0), 0);
      walk('', 0);
      cat.lookup('/README.txt');
      return false;
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'EIO', `${what}: ${(e as Error).stack}`);
      return true;
    }
  };
  assert.ok(await expectEio(bytes.subarray(0, 50), 'a truncated header'));
  assert.ok(await expectEio(bytes.subarray(0, 4096 * 3), 'a file cut after three pages'));
  const bad = Buffer.from(bytes);
  bad.write('SQLite format 4\0', 0, 'latin1');
  assert.ok(await expectEio(bad, 'a wrong magic'));
  // Every interior page's right-most pointer aimed at page 1 (a loop back to the root of the schema): EIO.
  const looped = Buffer.from(bytes);
  let loops = 0;
  for (let p = 1; p < looped.length / 4096; p++) {
    const o = p * 4096;
    if (looped[o] === 0x05 || looped[o] === 0x02) {
      looped.writeUInt32BE(p + 1, o + 8);
      loops++;
    }
  }
  assert.ok(loops > 0 && (await expectEio(looped, 'pages that point at themselves')));
  // Random damage, deterministic: every outcome is either a read or EIO, each within a bounded time.
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  let failed = 0;
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(bytes);
    for (let k = 0; k < 8; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    const t0 = performance.now();
    if (await expectEio(b, `damage ${i}`)) failed++;
    assert.ok(performance.now() - t0 < 5000, `damage ${i} took ${performance.now() - t0} ms`);
  }
  assert.ok(failed > 0, `${failed} of 300 damaged copies failed`);
});

test('rowids beyond 2^53 and below zero, DESC and NOCASE keys, repeated constraints, comments and defaults read as SQLite reads them', async () => {
  const SQL = await sqlite();
  const both = async (statements: string[]) => {
    const bytes = await written(512, statements);
    return { db: new SQL.Database(bytes), tables: new SqliteTables(bytes) };
  };
  const rowids = (it: Iterable<{ rowid: number | bigint }>) => [...it].map((r) => String(r.rowid));
  {
    const { db, tables } = await both(['CREATE TABLE t (a TEXT)', "INSERT INTO t (rowid, a) VALUES (-5, 'neg'), (36028797018963971, 'big'), (9223372036854775807, 'max'), (3, 'small')"]);
    const t = tables.table('t')!;
    assert.deepEqual(rowids(t.scan()), sqlValues(db, 'SELECT CAST(rowid AS TEXT) FROM t ORDER BY rowid').map((r) => r[0]));
    assert.equal(String(t.maxRowid()), '9223372036854775807');
    db.close();
  }
  {
    // A key declared DESC orders the automatic index backwards: the reader must not binary-search it as ascending.
    const rows = Array.from({ length: 200 }, (_, i) => `('k${String(i).padStart(3, '0')}', ${i})`).join(', ');
    const { db, tables } = await both(['CREATE TABLE t (a TEXT PRIMARY KEY DESC, v INTEGER)', `INSERT INTO t VALUES ${rows}`]);
    assert.deepEqual([...tables.table('t')!.find(['a'], [Buffer.from('k005')])].map((r) => r.values[1]), [5]);
    db.close();
  }
  {
    const { db, tables } = await both(['CREATE TABLE t (a TEXT COLLATE NOCASE, v INTEGER)', 'CREATE INDEX i ON t (a)', "INSERT INTO t VALUES ('B', 1), ('a', 2), ('C', 3)"]);
    assert.deepEqual([...tables.table('t')!.find(['a'], [Buffer.from('a')])].map((r) => r.values[1]), [2]);
    db.close();
  }
  {
    // SQLite makes no second index for a constraint that repeats one: the numbering of the next ones shifts.
    const { db, tables } = await both(['CREATE TABLE t (a TEXT PRIMARY KEY UNIQUE, b TEXT UNIQUE, c TEXT, UNIQUE (c))', "INSERT INTO t VALUES ('1', 'x', 'y'), ('2', 'y', 'z'), ('3', 'z', 'x')"]);
    const t = tables.table('t')!;
    for (const col of ['a', 'b', 'c']) {
      for (const v of ['x', 'y', 'z', '2']) {
        assert.deepEqual(rowids(t.find([col], [Buffer.from(v)])), sqlValues(db, `SELECT CAST(rowid AS TEXT) FROM t WHERE ${col} = '${v}'`).map((r) => r[0]), `${col} = ${v}`);
      }
    }
    db.close();
  }
  {
    const { db, tables } = await both([
      'CREATE TABLE t (id INTEGER, -- the rowid, it\'s declared below\n v TEXT /* a comment, with (parentheses) */, PRIMARY KEY (id), UNIQUE (v))',
      "INSERT INTO t VALUES (10, 'a'), (20, 'b')",
      'ALTER TABLE t ADD COLUMN h INTEGER DEFAULT 0x10',
      "ALTER TABLE t ADD COLUMN s INTEGER DEFAULT '5'",
      "ALTER TABLE t ADD COLUMN x TEXT DEFAULT 'it''s'",
    ]);
    const t = tables.table('t')!;
    assert.deepEqual(t.columns, ['id', 'v', 'h', 's', 'x']);
    assert.deepEqual([...t.scan()].map((r) => r.values.map(norm)), sqlValues(db, 'SELECT id, CAST(v AS BLOB), h, s, CAST(x AS BLOB) FROM t ORDER BY rowid'));
    assert.deepEqual([...t.find(['id'], [20])].map((r) => r.rowid), [20]);
    assert.deepEqual([...t.find(['v'], [Buffer.from('a')])].map((r) => r.rowid), [10]);
    db.close();
  }
  {
    // Index cells of integers are compared without being decoded; any other value (REAL, TEXT, BLOB, NULL) in
    // the same index is compared decoded. Both in one index, around every 32-bit and 64-bit boundary.
    const ints = ['0', '1', '-1', '127', '-128', '2147483647', '2147483648', '-2147483649', '4294967295', '4294967296', '4294967297', '-4294967296', '-4294967297', '9007199254740993', '-9007199254740993', '9223372036854775807', '-9223372036854775808'];
    const others = ['NULL', '1.5', '-0.5', "'text'", "x'00'", '4294967296.5'];
    const values = [...ints, ...others];
    const rows = values.flatMap((v, i) => [`(${v}, ${i % 3})`, `(${v}, ${(i + 1) % 3})`]).join(', ');
    const { db, tables } = await both(['CREATE TABLE t (k INTEGER, j INTEGER)', 'CREATE INDEX i ON t (k, j)', `INSERT INTO t VALUES ${rows}`]);
    const t = tables.table('t')!;
    for (const v of ints) {
      const key = BigInt(v);
      const asValue = key >= BigInt(Number.MIN_SAFE_INTEGER) && key <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(key) : key;
      assert.deepEqual(rowids(t.find(['k'], [asValue])).sort(), sqlValues(db, `SELECT CAST(rowid AS TEXT) FROM t WHERE k = ${v}`).map((r) => r[0]).sort(), `k = ${v}`);
      for (const j of [0, 1, 2]) {
        assert.deepEqual(rowids(t.find(['k', 'j'], [asValue, j])), sqlValues(db, `SELECT CAST(rowid AS TEXT) FROM t WHERE k = ${v} AND j = ${j}`).map((r) => r[0]), `k = ${v}, j = ${j}`);
      }
    }
    assert.deepEqual(rowids(t.find(['k'], [1.5])), sqlValues(db, 'SELECT CAST(rowid AS TEXT) FROM t WHERE k = 1.5').map((r) => r[0]));
    assert.deepEqual(rowids(t.find(['k'], [Buffer.from('text')])), sqlValues(db, "SELECT CAST(rowid AS TEXT) FROM t WHERE k = 'text'").map((r) => r[0]));
    assert.deepEqual(rowids(t.find(['k'], [5n])), []);
    db.close();
  }
  {
    // A column without a type whose one word is a constraint (`a UNIQUE`) has its automatic index, which shifts
    // the numbering of the next: b's index is the second.
    const { db, tables } = await both(['CREATE TABLE t (a UNIQUE, n NULL, b TEXT UNIQUE, c)', "INSERT INTO t VALUES ('x', 1, 'q', 2), ('y', 3, 'p', 4), ('z', 5, 'o', 6)"]);
    const t = tables.table('t')!;
    assert.deepEqual(t.columns, ['a', 'n', 'b', 'c']);
    for (const [col, v] of [['a', 'y'], ['b', 'p'], ['b', 'o'], ['a', 'q']] as const) {
      assert.deepEqual(rowids(t.find([col], [Buffer.from(v)])), sqlValues(db, `SELECT CAST(rowid AS TEXT) FROM t WHERE ${col} = '${v}'`).map((r) => r[0]), `${col} = ${v}`);
    }
    db.close();
  }
  {
    // Generated columns are not stored: reading such a table would shift every later value, so it fails.
    const { db, tables } = await both(['CREATE TABLE t (a INTEGER, g INTEGER AS (a * 2), c TEXT)', "INSERT INTO t (a, c) VALUES (1, 'y')"]);
    assert.throws(() => [...tables.table('t')!.scan()], (e: { code?: string }) => e.code === 'EIO');
    db.close();
  }
});

test('hardlink counts of any stored type read as SQLite\'s integer operators give them', async () => {
  const [k1, k2] = pathKey('');
  const [m1, m2] = pathKey('/f');
  const bytes = await written(4096, [
    'CREATE TABLE catalog (md5path_1 INTEGER, md5path_2 INTEGER, parent_1 INTEGER, parent_2 INTEGER, hardlinks INTEGER, hash BLOB, size INTEGER, mode INTEGER, mtime INTEGER, flags INTEGER, name TEXT, symlink TEXT, CONSTRAINT pk_catalog PRIMARY KEY (md5path_1, md5path_2))',
    'CREATE INDEX idx_catalog_parent ON catalog (parent_1, parent_2)',
    'CREATE TABLE properties (key TEXT, value TEXT)',
    `INSERT INTO catalog VALUES (${k1}, ${k2}, 0, 0, 1.5, NULL, 4096, 16877, 0, 1, '', '')`,
    `INSERT INTO catalog VALUES (${m1}, ${m2}, ${k1}, ${k2}, ${(3n << 32n) | 2n}, NULL, 1, 33188, 0, 4, 'f', '')`,
    `INSERT INTO catalog VALUES (${m1 + 1n}, ${m2}, ${k1}, ${k2}, 'abc', NULL, 1, 33188, 0, 4, 'g', '')`,
  ]);
  const db = new (await sqlite()).Database(bytes);
  const want = sqlValues(db, 'SELECT (hardlinks >> 32) & 4294967295, hardlinks & 4294967295 FROM catalog ORDER BY rowid');
  db.close();
  const cat = await Catalog.open(bytes, parseHash('0'.repeat(40)), '');
  const got = [cat.lookup('')!, ...cat.children('')].map((r) => [r.hardlinkGroup, r.linkcount]);
  assert.deepEqual(got, want);
  assert.deepEqual(got[1], [3, 2]);
});

test('a catalog read from its file a page at a time answers as from memory; a listing streamed across its close finishes, then its descriptor closes', async () => {
  const { mkdtempSync, writeFileSync, rmSync, readdirSync: ls } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'ucvmfs-catfile-'));
  try {
    const { bytes } = fixtureCatalogs().sort((x, y) => y.bytes.length - x.bytes.length)[0]!;
    const file = join(dir, 'catalog');
    writeFileSync(file, bytes);
    const fds = () => ls('/proc/self/fd').length;
    const before = fds();
    const mem = await Catalog.open(bytes, parseHash('0'.repeat(40)), '');
    const cat = Catalog.openFile(file, parseHash('0'.repeat(40)), '');
    assert.ok(cat.memoryBytes <= 256 * 1024 && bytes.length > 256 * 1024, `${cat.memoryBytes} bytes held for a file of ${bytes.length}`);
    // Every directory listed and every entry looked up, through more pages than the page cache keeps.
    let n = 0;
    const walk = (p: string) => {
      const want = mem.children(p);
      assert.deepEqual(cat.children(p).map(plain), want.map(plain));
      for (const k of want) {
        n++;
        assert.deepEqual(plain(cat.lookup(`${p}/${k.name}`)!), plain(k));
        if (k.flags & 1) walk(`${p}/${k.name}`);
      }
    };
    walk('');
    assert.ok(n > 3000, `${n} entries`);
    assert.equal(fds(), before + 1);
    // The cache's eviction may close a catalog while a listing streams from it: the listing ends first.
    const big = mem.children('').filter((k) => k.flags & 1).map((k) => ({ k, count: mem.children(`/${k.name}`).length })).sort((a, b) => b.count - a.count)[0]!;
    const it = cat.eachChild(`/${big.k.name}`);
    const first = it.next();
    assert.equal(first.done, false);
    cat.close();
    assert.equal(fds(), before + 1, 'held while the listing streams');
    assert.equal([...it].length + 1, big.count);
    assert.equal(fds(), before, 'closed once it ended');
    assert.throws(() => cat.lookup('/README.txt'), (e: { code?: string }) => e.code === 'EIO');
    mem.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
