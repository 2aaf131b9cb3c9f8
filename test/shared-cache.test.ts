/**
 * A cache shared by a UNIX group: three users (real uids, run by root) of one group read through one cache
 * directory. What one downloads the others take from it, every object verified by its content hash on the way;
 * an object a group member replaced is quarantined and fetched again, never served; fsck finds the rest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsckCache } from '../lib/index.js';
import { FIXTURES, keyOf, readTruth, ROOT, serve, tempDir, ucvmfs } from './helpers.js';

const FQRN = 'fixture.test.example.org';
const GID = 4242;
const isRoot = process.getuid?.() === 0;

/** Runs the reader as `uid` in group GID with a home of its own; resolves to what it printed (JSON). */
function readAs(uid: number, cacheDir: string, serverUrl: string, paths: string[]): Promise<{ sha1: Record<string, string>; stats: Record<string, number> }> {
  const home = join(tempDir(`ucvmfs-home${uid}-`));
  chownSync(home, uid, GID);
  chmodSync(home, 0o700);
  const script = join(tempDir('ucvmfs-reader-'), 'reader.mjs');
  writeFileSync(script, `
    import { createHash } from 'node:crypto';
    import { openRepository } from ${JSON.stringify(join(ROOT, 'dist/lib/index.js'))};
    const repo = await openRepository(${JSON.stringify(FQRN)}, { serverUrls: [${JSON.stringify(serverUrl)}], publicKeys: [${JSON.stringify(keyOf(FQRN))}], cacheDir: ${JSON.stringify(cacheDir)} });
    const sha1 = {};
    for (const p of ${JSON.stringify(paths)}) sha1[p] = createHash('sha1').update(await repo.fs.readFile(p)).digest('hex');
    const stats = repo.stats();
    repo.close();
    process.stdout.write(JSON.stringify({ sha1, stats }));
  `);
  chmodSync(join(script, '..'), 0o755);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { uid, gid: GID, env: { PATH: process.env.PATH, HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as { sha1: Record<string, string>; stats: Record<string, number> }) : reject(new Error(`reader as ${uid} exited ${code}: ${err}`))));
  });
}

test('a cache shared by a group: taken from by the others, verified on every read, poison removed and fetched again', { skip: isRoot ? false : 'needs root to run readers as three users' }, async () => {
  const truth = readTruth(FQRN);
  const server = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  const group = tempDir('ucvmfs-group-');
  chownSync(group, 0, GID);
  chmodSync(group, 0o2775);
  const paths = ['/small/hello.txt', '/small/random_64k.bin', '/big/text_20M.txt', '/nested/n1.txt'];
  const url = `${server.url}/@fqrn@`;
  try {
    const a = await readAs(4001, group, url, paths);
    for (const p of paths) assert.equal(a.sha1[p], truth.entries[p]!.sha1, p);
    assert.ok(a.stats.objectsDownloaded! > paths.length, 'the first user downloaded (catalogs, chunks)');
    assert.equal(a.stats.sharedHits, 0);
    // The group's directory holds the objects as the server serves them, group-writable.
    const data = join(group, 'shared', 'data');
    const subs = readdirSync(data);
    assert.ok(subs.length > 0);
    for (const sub of subs) {
      const d = statSync(join(data, sub));
      assert.equal(d.mode & 0o7777, 0o2775, `${sub}/ is group-writable and keeps the group`);
      assert.equal(d.gid, GID);
      for (const f of readdirSync(join(data, sub))) {
        const st = statSync(join(data, sub, f));
        assert.equal(st.mode & 0o777, 0o664, `${sub}/${f}`);
        assert.equal(st.uid, 4001);
        assert.deepEqual(readFileSync(join(data, sub, f)), readFileSync(join(FIXTURES, FQRN, 'srv', 'data', sub, f)), `${sub}/${f} is the server's object`);
      }
    }
    assert.ok(!existsSync(join(group, 'shared', 'digests.log')), 'no decompressed objects or state in the group directory');

    const b = await readAs(4002, group, url, paths);
    for (const p of paths) assert.equal(b.sha1[p], truth.entries[p]!.sha1, p);
    assert.equal(b.stats.objectsDownloaded, 0, 'the second user downloaded nothing');
    assert.equal(b.stats.sharedHits, a.stats.objectsDownloaded, 'every object came from the group cache, verified');

    // A group member replaces the object of /small/random_64k.bin with another valid object.
    const hash = truth.entries['/small/random_64k.bin']!.magic!['user.hash']!;
    const victim = join(data, hash.slice(0, 2), hash.slice(2));
    const other = truth.entries['/small/hello.txt']!.magic!['user.hash']!;
    writeFileSync(victim, readFileSync(join(data, other.slice(0, 2), other.slice(2))));
    const c = await readAs(4003, group, url, paths);
    for (const p of paths) assert.equal(c.sha1[p], truth.entries[p]!.sha1, `${p}: never the poisoned bytes`);
    assert.equal(c.stats.quarantined, 1);
    assert.equal(c.stats.objectsDownloaded, 1, 'fetched again from the network');
    assert.ok(!existsSync(join(group, 'shared', 'quarantaine')), 'removed, not moved into a directory other users control');
    assert.deepEqual(readFileSync(victim), readFileSync(join(FIXTURES, FQRN, 'srv', 'data', hash.slice(0, 2), hash.slice(2))), 'the right object is back for the others');

    // fsck checks the group's raw objects by their names.
    writeFileSync(join(data, other.slice(0, 2), other.slice(2)), 'not the object');
    const report = await fsckCache(join(group, 'shared'));
    assert.deepEqual(report.bad, [`data/${other.slice(0, 2)}/${other.slice(2)}`]);
    const found = await ucvmfs(['fsck', '--cache', group, '--repair']);
    assert.equal(found.code, 1, found.stderr);
    assert.match(found.stderr, new RegExp(`bad object: ${group}/shared/data/${other.slice(0, 2)}/${other.slice(2)}`));
    assert.equal((await fsckCache(join(group, 'shared'))).bad.length, 0, 'removed by --repair');
  } finally {
    await server.close();
  }
});

test('who else can write a cache directory: world, another owner, or a group that is not the user\'s private group', { skip: isRoot ? false : 'needs root to make directories of other owners and groups' }, async () => {
  const { othersCanWrite } = await import('../lib/cache/shared-mirror.js');
  const dir = (mode: number, uid: number, gid: number) => {
    const d = tempDir('ucvmfs-perm-');
    chownSync(d, uid, gid);
    chmodSync(d, mode);
    return d;
  };
  assert.equal(othersCanWrite(dir(0o755, 0, 0)), false, 'this user\'s own directory');
  assert.equal(othersCanWrite(dir(0o775, 0, 0)), false, 'group-writable by root\'s private group (umask 002 style)');
  assert.equal(othersCanWrite(dir(0o2775, 0, GID)), true, 'group-writable by a shared group');
  assert.equal(othersCanWrite(dir(0o777, 0, 0)), true, 'world-writable');
  assert.equal(othersCanWrite(dir(0o755, 4001, 0)), true, 'owned by another user');
  assert.equal(othersCanWrite(join(tempDir(), 'not-yet')), false, 'not there yet: this user will make it');
});
