/**
 * Memory bounded by bytes (issue 16, item 3): open catalogs within `catalogMemoryBytes`, the entry and listing
 * caches within their byte budgets, and every answer still right when they are small enough to evict all the
 * time: the fixture against truth.json, and a published repository of many nested catalogs against its source
 * tree, walked sequentially and concurrently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openFixture, readTruth, serve, tempDir, type Truth } from './helpers.js';
import { openRepository, publish, type OpenOptions, type Repository } from '../lib/index.js';
import { Lru } from '../lib/fs/lru.js';

const FQRN = 'fixture.test.example.org';

/** The byte figures after every call stay within their budgets; the largest catalog seen open is recorded. */
function budgetChecker(repo: Repository, opts: Required<Pick<OpenOptions, 'catalogMemoryBytes' | 'entryCacheBytes' | 'listingCacheBytes'>>) {
  let calls = 0;
  return {
    check(where: string): void {
      const s = repo.stats();
      calls++;
      assert.ok(s.catalogBytes <= opts.catalogMemoryBytes, `${where}: ${s.catalogBytes} catalog bytes open, budget ${opts.catalogMemoryBytes}`);
      assert.ok(s.entryCacheBytes <= opts.entryCacheBytes, `${where}: entry cache ${s.entryCacheBytes} bytes`);
      assert.ok(s.listingCacheBytes <= opts.listingCacheBytes, `${where}: listing cache ${s.listingCacheBytes} bytes`);
    },
    get calls() { return calls; },
  };
}

/** Every entry of truth.json (metadata, listings, link targets, chunk lists, small files' bytes), checking budgets after each. */
async function compareWithTruth(repo: Repository, truth: Truth, check: (where: string) => void): Promise<void> {
  for (const [path, t] of Object.entries(truth.entries)) {
    const st = await repo.fs.lstat(path);
    check(path);
    assert.equal(st.mode, t.mode, `${path}: mode`);
    assert.equal(st.size, t.size, `${path}: size`);
    assert.equal(st.nlink, t.nlink, `${path}: nlink`);
    assert.equal(String(st.mtimeNs), t.mtime_ns, `${path}: mtime_ns`);
    if (t.type === 'dir') assert.deepEqual([...(await repo.fs.readdir(path))].sort(), [...t.entries!].sort(), `${path}: entries`);
    if (t.type === 'symlink') assert.equal(await repo.fs.readlink(path), t.target, `${path}: target`);
    if (t.type === 'file' && t.magic?.['user.chunk_list']) {
      assert.equal((await repo.fs.getxattr(path, 'user.chunk_list')).toString(), t.magic['user.chunk_list'], `${path}: chunk list`);
    }
    // Content of the small files outside /many (3,000 files of one directory, which adds time, not coverage).
    if (t.type === 'file' && t.size <= 4096 && !path.startsWith('/many/')) {
      assert.equal(createHash('sha1').update(await repo.fs.readFile(path) as Buffer).digest('hex'), t.sha1, `${path}: content`);
    }
    check(path);
  }
}

test('a catalog byte budget below the repository\'s catalogs: every entry of truth.json right, the budget never exceeded', async () => {
  const truth = readTruth(FQRN);
  // The catalogs' sizes as counted: the root alone after open, all of them after a full walk.
  const probe = await openFixture(FQRN);
  let rootBytes: number;
  let allBytes: number;
  try {
    rootBytes = probe.repo.stats().catalogBytes;
    for (const p of Object.keys(truth.entries)) await probe.repo.fs.lstat(p);
    allBytes = probe.repo.stats().catalogBytes;
    assert.equal(probe.repo.stats().catalogsOpen, 5);
    assert.equal(probe.repo.stats().catalogEvictions, 0);
  } finally {
    await probe.repo.close();
    await probe.server.close();
  }
  // Room for the root and about half of the nested catalogs; small entry and listing caches.
  const budgets = { catalogMemoryBytes: rootBytes + Math.floor((allBytes - rootBytes) / 2), entryCacheBytes: 64 * 1024, listingCacheBytes: 64 * 1024 };
  const { repo, server } = await openFixture(FQRN, budgets);
  try {
    const b = budgetChecker(repo, budgets);
    await compareWithTruth(repo, truth, (w) => b.check(w));
    const s = repo.stats();
    assert.ok(s.catalogEvictions > 0, 'catalogs were evicted');
    assert.ok(s.catalogsOpen < 5);
    // Back to every catalog in turn: each evicted one loads again, and still answers right.
    for (const p of ['/nested/level2', '/nested2', '/added_in_v2', '/', '/nested']) {
      assert.deepEqual([...(await repo.fs.readdir(p))].sort(), [...truth.entries[p]!.entries!].sort(), p);
      b.check(p);
    }
    assert.ok(repo.stats().catalogsLoaded > 5, `catalogs were loaded again after eviction (${repo.stats().catalogsLoaded})`);
  } finally {
    await repo.close();
    await server.close();
  }
});

test('UCVMFS_CATALOG_MEMORY and CVMFS_MEMCACHE_SIZE (MiB) set the budgets; a catalog larger than the budget is opened alone', async () => {
  const truth = readTruth(FQRN);
  const saved = { c: process.env.UCVMFS_CATALOG_MEMORY, m: process.env.CVMFS_MEMCACHE_SIZE };
  process.env.UCVMFS_CATALOG_MEMORY = '0.01';
  process.env.CVMFS_MEMCACHE_SIZE = '0.0625';
  try {
    const { repo, server } = await openFixture(FQRN);
    try {
      for (const p of Object.keys(truth.entries)) {
        assert.equal((await repo.fs.lstat(p)).size, truth.entries[p]!.size, p);
        const s = repo.stats();
        assert.equal(s.catalogsOpen, 1, `${p}: one catalog open`);
        assert.ok(s.entryCacheBytes <= 65536 && s.listingCacheBytes <= 65536, `${p}: caches within 64 KiB`);
      }
      assert.ok(repo.stats().catalogEvictions > 0);
    } finally {
      await repo.close();
      await server.close();
    }
  } finally {
    for (const [k, v] of [['UCVMFS_CATALOG_MEMORY', saved.c], ['CVMFS_MEMCACHE_SIZE', saved.m]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

/** A source tree of 8 nested catalogs (two of them holding one more) with files, directories and symlinks. */
function makeSource(src: string): void {
  for (let c = 0; c < 8; c++) {
    const top = join(src, `cat${c}`);
    const dirs = c < 2 ? [top, join(top, 'inner')] : [top];
    for (const d of dirs) {
      for (let k = 0; k < 4; k++) {
        mkdirSync(join(d, `dir${k}`), { recursive: true });
        for (let f = 0; f < 30; f++) writeFileSync(join(d, `dir${k}`, `file${f}.txt`), `${d} ${k} ${f}\n`.repeat(1 + f));
        symlinkSync(`dir${k}/file0.txt`, join(d, `link${k}`));
      }
      writeFileSync(join(d, '.cvmfscatalog'), '');
    }
  }
  mkdirSync(join(src, 'plain'));
  writeFileSync(join(src, 'plain', 'readme'), 'root catalog\n');
}

/** Walks the repository and the source side by side; checks the budgets after every call. */
async function walkAgainstSource(repo: Repository, src: string, dir: string, check: (where: string) => void): Promise<number> {
  const names = (await repo.fs.readdir(dir)).slice().sort();
  check(dir);
  assert.deepEqual(names, readdirSync(join(src, dir)).sort(), `${dir}: entries`);
  let n = 0;
  for (const name of names) {
    const p = `${dir === '/' ? '' : dir}/${name}`;
    const [got, want] = [await repo.fs.lstat(p), lstatSync(join(src, p))];
    check(p);
    assert.equal(got.mode, want.mode, `${p}: mode`);
    n++;
    if (want.isDirectory()) n += await walkAgainstSource(repo, src, p, check);
    else if (want.isSymbolicLink()) assert.equal(await repo.fs.readlink(p), readlinkSync(join(src, p)), p);
    else {
      assert.equal(got.size, want.size, `${p}: size`);
      assert.ok((await repo.fs.readFile(p) as Buffer).equals(readFileSync(join(src, p))), `${p}: content`);
      check(p);
    }
  }
  return n;
}

test('many nested catalogs under a budget of about two: sequential and concurrent walks match the source tree', async () => {
  const src = tempDir('ucvmfs-mem-src-');
  makeSource(src);
  const out = join(tempDir('ucvmfs-mem-out-'), 'repo');
  const fqrn = 'mem.test.example.org';
  const published = await publish(src, { fqrn, out, timestamp: 1_800_000_000, readSourceXattrs: false });
  const server = await serve({ [fqrn]: out });
  const open = (o: OpenOptions) => openRepository(fqrn, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [published.publicKeyPath], cacheDir: tempDir('ucvmfs-mem-cache-'), ...o });
  try {
    // How much one nested catalog takes, as counted.
    const probe = await open({});
    const root = probe.stats().catalogBytes;
    await probe.fs.stat('/cat7/dir0');
    const one = probe.stats().catalogBytes - root;
    await probe.close();
    assert.ok(one > 0);
    const budgets = { catalogMemoryBytes: root + 2 * one + Math.floor(one / 2), entryCacheBytes: 32 * 1024, listingCacheBytes: 32 * 1024 };
    const repo = await open(budgets);
    try {
      const b = budgetChecker(repo, budgets);
      const n = await walkAgainstSource(repo, src, '/', (w) => b.check(w));
      assert.ok(n > 1000, `${n} entries walked`);
      // Eight walkers at once, one per nested catalog, so that catalogs are evicted while others are in use.
      const counts = await Promise.all([...Array(8).keys()].map((c) => walkAgainstSource(repo, src, `/cat${c}`, (w) => b.check(w))));
      assert.equal(counts.reduce((x, y) => x + y, 0) + 10, n); // + cat0..cat7, plain, plain/readme
      assert.ok(repo.stats().catalogEvictions >= 10, `evictions: ${repo.stats().catalogEvictions}`);
      assert.ok(repo.stats().catalogsOpen <= 3);
    } finally {
      await repo.close();
    }
  } finally {
    await server.close();
  }
});

test('Lru: bounded by count and by bytes, least recently used out first; a value over the byte budget is not kept', () => {
  const lru = new Lru<string, string>(3, 10, (v) => v.length);
  lru.set('a', 'xxxx');
  lru.set('b', 'xxxx');
  assert.equal(lru.get('a'), 'xxxx'); // a is now the most recent
  lru.set('c', 'xxxx'); // 12 bytes: b goes
  assert.equal(lru.get('b'), undefined);
  assert.deepEqual([lru.size, lru.bytes], [2, 8]);
  lru.set('d', 'x');
  lru.set('e', 'x'); // 4 entries: the count bound takes a
  assert.equal(lru.get('a'), undefined);
  assert.deepEqual([lru.size, lru.bytes], [3, 6]);
  lru.set('big', 'x'.repeat(11));
  assert.equal(lru.get('big'), undefined);
  assert.deepEqual([lru.size, lru.bytes], [3, 6]);
  lru.set('d', 'xxxxxxx'); // replacing counts the new value only: 4 + 1 + 7 > 10, c goes
  assert.deepEqual([lru.get('c'), lru.bytes], [undefined, 8]);
});

test('Lru: 200,000 random gets, sets and clears evict exactly what a plain list-based LRU evicts', () => {
  // The reference: an array in use order, oldest first.
  const model: { k: number; bytes: number }[] = [];
  const lru = new Lru<number, number>(500, 20_000, (v) => v);
  let x = 12345;
  const rnd = (n: number) => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
  for (let i = 0; i < 200_000; i++) {
    const k = rnd(2_000);
    const op = rnd(100);
    if (op < 45) {
      const at = model.findIndex((m) => m.k === k);
      const want = at < 0 ? undefined : model.splice(at, 1)[0]!;
      if (want) model.push(want);
      assert.equal(lru.get(k), want?.bytes, `get ${k} at step ${i}`);
    } else if (op < 99) {
      const bytes = 1 + rnd(80);
      const at = model.findIndex((m) => m.k === k);
      if (at >= 0) model.splice(at, 1);
      model.push({ k, bytes });
      let total = model.reduce((a, m) => a + m.bytes, 0);
      while (model.length > 500 || total > 20_000) total -= model.shift()!.bytes;
      lru.set(k, bytes);
    } else if (rnd(50) === 0) {
      model.length = 0;
      lru.clear();
    } else if (model.length > 0) {
      // A run of hits without an eviction (the LRU then lets its eviction iterator go, see lru.ts).
      for (let j = 0; j < 3_000; j++) {
        const m = model.splice(rnd(model.length), 1)[0]!;
        model.push(m);
        assert.equal(lru.get(m.k), m.bytes);
      }
    }
    assert.equal(lru.size, model.length, `size at step ${i}`);
  }
  for (const m of model) assert.equal(lru.get(m.k), m.bytes);
});
