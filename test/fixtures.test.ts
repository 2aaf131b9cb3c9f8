/**
 * Every fixture, served over loopback, compared entry by entry with what the genuine FUSE client showed
 * (truth.json), every byte read; older revisions through their tags; magic attributes; tree --json's data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureNames, openFixture, readTruth, FIXTURES, type Truth } from './helpers.js';
import { describeTree, treeToJson } from '../lib/tree.js';
import { hashToString, type Repository } from '../lib/index.js';

const TYPE_OF: Record<string, (s: import('../lib/index.js').CvmfsStats) => boolean> = {
  file: (s) => s.isFile(), dir: (s) => s.isDirectory(), symlink: (s) => s.isSymbolicLink(), fifo: (s) => s.isFIFO(),
};

/** Compares every entry of a truth file with what the library shows. */
async function compareWithTruth(repo: Repository, truth: Truth, readContent = true): Promise<number> {
  let checked = 0;
  for (const [path, t] of Object.entries(truth.entries)) {
    const st = await repo.fs.lstat(path);
    const where = `${truth.fqrn}:${path}`;
    assert.ok(TYPE_OF[t.type]!(st), `${where}: type ${t.type}`);
    assert.equal(st.mode, t.mode, `${where}: mode`);
    assert.equal('0' + (st.mode & 0o7777).toString(8).padStart(3, '0'), t.perm, `${where}: perm`);
    assert.equal(st.size, t.size, `${where}: size`);
    assert.equal(st.nlink, t.nlink, `${where}: nlink`);
    assert.equal(Math.floor(st.mtimeMs / 1000), t.mtime, `${where}: mtime`);
    assert.equal(String(st.mtimeNs), t.mtime_ns, `${where}: mtime_ns`);
    assert.equal(st.uid, t.uid, `${where}: uid`);
    assert.equal(st.gid, t.gid, `${where}: gid`);
    if (t.type === 'symlink') assert.equal(await repo.fs.readlink(path), t.target, `${where}: target`);
    if (t.type === 'dir') assert.deepEqual([...(await repo.fs.readdir(path))].sort(), [...t.entries!].sort(), `${where}: entries`);
    if (t.type === 'file' && readContent) {
      const h = createHash('sha1').update(await repo.fs.readFile(path) as Buffer).digest('hex');
      assert.equal(h, t.sha1, `${where}: content sha1`);
    }
    const xattrs = await repo.fs.xattrs(path, { noFollow: true });
    assert.deepEqual(Object.fromEntries([...xattrs].map(([k, v]) => [k, v.toString('hex')])),
      Object.fromEntries(Object.entries(t.xattrs).map(([k, v]) => [k, v.hex])), `${where}: xattrs`);
    checked++;
  }
  return checked;
}

for (const fqrn of fixtureNames()) {
  test(`${fqrn}: every entry of truth.json, every byte`, async () => {
    const truth = readTruth(fqrn);
    const { repo, server } = await openFixture(fqrn);
    try {
      assert.equal(repo.revision, Number(truth.manifest_fields.S));
      assert.equal(hashToString(repo.rootHash), truth.manifest_fields.C);
      const n = await compareWithTruth(repo, truth);
      assert.equal(n, Object.keys(truth.entries).length);
      assert.ok(n > 50, 'fixture has entries');
      for (const group of truth.hardlink_groups) {
        const inos = await Promise.all(group.map(async (p) => (await repo.fs.lstat(p)).ino));
        assert.equal(new Set(inos).size, 1, `hardlink group ${group.join(' ')} shares one inode`);
      }
      const all = new Set<number>();
      for (const p of Object.keys(truth.entries)) all.add((await repo.fs.lstat(p)).ino);
      const linked = truth.hardlink_groups.reduce((a, g) => a + g.length - 1, 0);
      assert.equal(all.size, Object.keys(truth.entries).length - linked, 'distinct inodes except hardlinks');
    } finally {
      repo.close();
      await server.close();
    }
  });

  test(`${fqrn}: magic extended attributes as the genuine client shows them`, async () => {
    const truth = readTruth(fqrn);
    const { repo, server } = await openFixture(fqrn);
    const skip = new Set(['user.host', 'user.version', 'user.pubkeys', 'user.repo_metainfo']);
    let compared = 0;
    try {
      for (const [path, t] of Object.entries(truth.entries)) {
        for (const [name, value] of Object.entries(t.magic ?? {})) {
          if (skip.has(name)) continue;
          assert.equal((await repo.fs.getxattr(path, name, { noFollow: true })).toString('utf8'), value, `${fqrn}:${path} ${name}`);
          compared++;
        }
      }
      assert.ok(compared > 0, 'truth has magic attributes');
      assert.equal((await repo.fs.getxattr('/', 'user.host')).toString(), `${server.url}/${fqrn}`);
      assert.ok((await repo.fs.listxattr('/')).includes('user.revision'), 'magic names listed at the root (rootonly)');
    } finally {
      repo.close();
      await server.close();
    }
  });

  test(`${fqrn}: tags and every tagged revision`, async () => {
    const truth = readTruth(fqrn);
    const { repo, server, cacheDir } = await openFixture(fqrn);
    try {
      const tags = await repo.tags();
      const mine = tags.map((t) => ({ name: t.name, hash: hashToString(t.hash), revision: t.revision, timestamp: t.timestamp, description: t.description, size: t.size, channel: t.channel, branch: t.branch }));
      const want = truth.tags.map(({ truth_file: _f, ...rest }) => rest);
      const key = (x: { name: string }) => x.name;
      assert.deepEqual([...mine].sort((a, b) => key(a).localeCompare(key(b))), [...want].sort((a, b) => key(a).localeCompare(key(b))));
      for (const t of truth.tags) {
        if (t.truth_file === 'truth.json' || !existsSync(join(FIXTURES, fqrn, t.truth_file))) continue;
        const old = readTruth(fqrn, t.truth_file);
        const { repo: r2, server: s2 } = await openFixture(fqrn, { tag: t.name, cacheDir });
        try {
          assert.equal(r2.revision, t.revision);
          await compareWithTruth(r2, old, t.name !== 'trunk-previous');
        } finally {
          r2.close();
          await s2.close();
        }
      }
    } finally {
      repo.close();
      await server.close();
    }
  });

  test(`${fqrn}: describeTree (tree --json) equals truth.json`, async () => {
    const truth = readTruth(fqrn);
    const { repo, server } = await openFixture(fqrn);
    try {
      const tree = JSON.parse(treeToJson(await describeTree(repo)).replace(/"mtime_ns":(\d+)/g, '"mtime_ns":"$1"')) as Truth;
      assert.deepEqual(Object.keys(tree.entries).sort(), Object.keys(truth.entries).sort());
      for (const [p, t] of Object.entries(truth.entries)) {
        const { magic: _m, bytes_read: _b, ...want } = t as TruthLike;
        assert.deepEqual(tree.entries[p], want, `${fqrn}:${p}`);
      }
    } finally {
      repo.close();
      await server.close();
    }
  });
}

type TruthLike = Truth['entries'][string] & { bytes_read?: number };

test('features: /.cvmfs is reachable by path but not listed; snapshots show tagged trees', async () => {
  const fqrn = 'features.test.example.org';
  const { repo, server } = await openFixture(fqrn);
  try {
    assert.ok(!(await repo.fs.readdir('/')).includes('.cvmfs'));
    assert.ok((await repo.fs.stat('/.cvmfs')).isDirectory());
    assert.deepEqual(await repo.fs.readdir('/.cvmfs/snapshots'), ['generic-2026-11-24T23:23:59Z', 'v1', 'v2', 'v3']);
    const v1 = readTruth(fqrn, 'truth-rev2.json');
    assert.equal(await repo.fs.readFile('/.cvmfs/snapshots/v1/hello.txt', 'utf8'), await (async () => {
      const { repo: r, server: s } = await openFixture(fqrn, { tag: 'v1' });
      try { return await r.fs.readFile('/hello.txt', 'utf8'); } finally { r.close(); await s.close(); }
    })());
    assert.equal(createHash('sha1').update(await repo.fs.readFile('/.cvmfs/snapshots/v1/hello.txt') as Buffer).digest('hex'), v1.entries['/hello.txt']!.sha1);
  } finally {
    repo.close();
    await server.close();
  }
});

test('CVMFS_REPOSITORY_DATE: the revision current at a date (the newest tag at or before it), compared with truth-revN.json', async () => {
  const fqrn = 'fixture.test.example.org';
  const truth = readTruth(fqrn) as unknown as { tags: { name: string; revision: number; timestamp: number; truth_file: string }[] };
  // Between each pair of consecutive tag times, and exactly at one.
  const times = [...new Set(truth.tags.map((t) => t.timestamp))].sort((a, b) => a - b);
  const cases = [...times.slice(0, -1).map((t, i) => (t + times[i + 1]!) / 2), times[1]!];
  for (const at of cases) {
    const want = truth.tags.filter((t) => t.timestamp <= at).sort((x, y) => y.timestamp - x.timestamp || y.revision - x.revision)[0]!;
    const { repo, server } = await openFixture(fqrn, { date: new Date(at * 1000).toISOString() });
    try {
      assert.equal(repo.revision, want.revision, `at ${at}`);
      const revTruth = readTruth(fqrn, want.truth_file);
      assert.deepEqual([...(await repo.fs.readdir('/'))].sort(), revTruth.entries['/']!.entries);
    } finally {
      repo.close();
      await server.close();
    }
  }
  await assert.rejects(openFixture(fqrn, { date: new Date((times[0]! - 10) * 1000) }), (e: { code?: string }) => e.code === 'ENOENT');
});
