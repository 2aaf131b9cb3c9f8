/**
 * Access profiles (lib/connector/profile.ts): `ucvmfs exec --profile FILE` records what a job needed (also on a
 * warm cache, in both layers of the connector), replays it on an empty cache (objects fetched ahead, verified),
 * and treats a damaged or hostile profile as a hint to check, never as data.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifest } from '../lib/format/manifest.js';
import { hashToString } from '../lib/format/hash.js';
import { readProfile, type AccessProfile } from '../lib/connector/profile.js';
import { publish } from '../lib/index.js';
import { createHash } from 'node:crypto';
import { FIXTURES, copyFixture, openFixture, keyOf, readTruth, serve, tempDir, ucvmfs, type CliResult } from './helpers.js';
import type { RepositoryServer } from '../lib/serve.js';

const FQRN = 'fixture.test.example.org';
const M = `/cvmfs/${FQRN}`;
const JOB = `cat ${M}/small/hello.txt ${M}/sw/bin/hello.sh | sha1sum; head -c 100 ${M}/big/text_20M.txt | wc -c; ls ${M}/sw/bin | wc -l`;
let server: RepositoryServer;
const truth = readTruth(FQRN);
const magic = (p: string, n: string) => (truth.entries[p]!.magic as Record<string, string>)[n]!;
/** What the genuine client showed: the object of a small file, the chunks of a chunked one. */
const smallObject = magic('/small/hello.txt', 'user.hash');
const chunks = magic('/big/text_20M.txt', 'user.chunk_list').trim().split('\n').slice(1).map((l) => l.split(',')[0]!);
const rootCatalog = hashToString(parseManifest(readFileSync(join(FIXTURES, FQRN, 'srv/.cvmfspublished'))).rootCatalog);

before(async () => {
  server = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
});
after(() => server.close());

function job(cache: string, profile: string, extra: Record<string, string> = {}): Promise<CliResult> {
  return ucvmfs(['exec', '--stats', '--profile', profile, '--', '/bin/bash', '-c', JOB], {
    CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(FQRN), CVMFS_CACHE_BASE: cache, ...extra,
  });
}

/** The job's output: the two files' bytes (each checked against truth.json) hashed together, and counts. */
async function expected(): Promise<string> {
  const { repo, server: own } = await openFixture(FQRN);
  try {
    const parts = [];
    for (const p of ['/small/hello.txt', '/sw/bin/hello.sh']) {
      const b = (await repo.fs.readFile(p)) as Buffer;
      assert.equal(createHash('sha1').update(b).digest('hex'), truth.entries[p]!.sha1);
      parts.push(b);
    }
    return `${createHash('sha1').update(Buffer.concat(parts)).digest('hex')}  -\n100\n${truth.entries['/sw/bin']!.entries!.length}\n`;
  } finally {
    repo.close();
    await own.close();
  }
}

function checkOutput(r: CliResult, reference: string): void {
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), reference);
}

function checkRecorded(p: AccessProfile | undefined, what: string): void {
  assert.ok(p, `${what}: a profile was written`);
  const steps = p.steps.map(([op, path]) => `${op} ${path}`);
  assert.ok(steps.includes(`o ${M}/small/hello.txt`), `${what}: the open of small/hello.txt is a step`);
  assert.ok(steps.includes(`o ${M}/big/text_20M.txt`), `${what}: the open of the chunked file is a step`);
  assert.ok(steps.includes(`x /bin/bash`) === false, `${what}: nothing outside /cvmfs`);
  const r = p.repositories[FQRN];
  assert.ok(r, `${what}: the repository is recorded`);
  assert.equal(r.root, rootCatalog);
  assert.ok(r.catalogs.includes(rootCatalog), `${what}: the root catalog`);
  const objects = new Map(r.objects.map((o) => [o[0], o]));
  assert.deepEqual(objects.get(smallObject)?.slice(1), ['zlib', truth.entries['/small/hello.txt']!.size], `${what}: the small file's object`);
  for (const c of chunks) assert.equal(objects.get(c)?.[3], 'P', `${what}: chunk ${c} of the chunked file`);
}

let reference = '';
let recorded: AccessProfile | undefined;

for (const [layer, layerEnv] of [['preload + ptrace', {}], ['ptrace only', { UCVMFS_NO_PRELOAD: '1' }]] as const) {
  test(`a profile is recorded on an empty cache, and again on a warm one (markers of earlier jobs ignored) [${layer}]`, async () => {
    const cache = tempDir('ucvmfs-profile-cache-');
    const first = join(tempDir('ucvmfs-profile-'), 'job.profile');
    const cold = await job(cache, first, layerEnv);
    assert.equal(cold.code, 0, cold.stderr);
    reference ||= await expected();
    checkOutput(cold, reference);
    assert.match(cold.stderr, /profile recorded, written/);
    checkRecorded(readProfile(first), 'cold');
    // The same job on the now warm cache, recording into a new file: every path still reaches the recorder.
    const second = join(tempDir('ucvmfs-profile-'), 'job.profile');
    const warm = await job(cache, second, layerEnv);
    checkOutput(warm, reference);
    checkRecorded(readProfile(second), 'warm');
    assert.deepEqual(new Set(readProfile(second)!.repositories[FQRN]!.objects.map((o) => o[0])), new Set(readProfile(first)!.repositories[FQRN]!.objects.map((o) => o[0])));
    // Replayed on the warm cache: nothing new, so the file is left as it was.
    const before = readFileSync(second, 'utf8');
    const again = await job(cache, second, layerEnv);
    checkOutput(again, reference);
    assert.match(again.stderr, /profile replayed \(\d+ paths ahead/);
    assert.doesNotMatch(again.stderr, /written/);
    assert.equal(readFileSync(second, 'utf8'), before);
    recorded ??= readProfile(first);
  });
}

test('a profile replayed on an empty cache fetches its objects ahead of the job, verified, and the job reads right', async () => {
  assert.ok(recorded, 'recorded by the test before');
  const file = join(tempDir('ucvmfs-profile-'), 'job.profile');
  writeFileSync(file, JSON.stringify(recorded));
  const cache = tempDir('ucvmfs-profile-cache-');
  const n0 = server.requests.length;
  const r = await job(cache, file);
  checkOutput(r, reference);
  const m = /profile replayed \((\d+) paths ahead, (\d+) objects \([^)]*\) fetched, (\d+) failed\)/.exec(r.stderr);
  assert.ok(m, r.stderr);
  assert.equal(Number(m[1]), recorded.steps.length);
  assert.equal(Number(m[3]), 0);
  const rec = recorded.repositories[FQRN]!;
  // What the replay had fetched when the job ended (the rest is cancelled then).
  assert.ok(Number(m[2]) > 0 && Number(m[2]) <= rec.objects.length + rec.catalogs.length, m[0]);
  // Every object of the profile was asked of the server once in this run, by the replay or by the job.
  const asked = server.requests.slice(n0);
  for (const [h, , , suffix] of rec.objects) {
    assert.equal(asked.filter((u) => u.endsWith(`/data/${h.slice(0, 2)}/${h.slice(2)}${suffix ?? ''}`)).length, 1, `${h}${suffix ?? ''} requested once`);
  }
});

test('a damaged or hostile profile is a hint checked like any request: bad fields dropped, unknown objects fail alone, nothing unverified kept', async () => {
  const file = join(tempDir('ucvmfs-profile-'), 'job.profile');
  const bogus = 'f'.repeat(40);
  writeFileSync(file, JSON.stringify({
    ucvmfsProfile: 1,
    steps: [['o', '/etc/passwd'], ['w', `${M}/small/hello.txt`], ['o', `${M}/../../etc/shadow`], ['o', `${M}/no/such/file`], ['l', `${M}/small\0x`], ['o', `${M}/small/hello.txt`], 42],
    repositories: {
      [FQRN]: { root: 'x', catalogs: ['not a hash', rootCatalog], objects: [[bogus, 'zlib', 10], [smallObject, 'gzip', 18], [smallObject, 'zlib', -1], [smallObject, 'zlib', 18, 'Q']] },
      '../../etc': { root: '', catalogs: [], objects: [[bogus, 'zlib', 1]] },
    },
  }));
  const p = readProfile(file)!;
  assert.deepEqual(p.steps, [['o', '/cvmfs/fixture.test.example.org/../../etc/shadow'], ['o', `${M}/no/such/file`], ['o', `${M}/small/hello.txt`]]);
  assert.deepEqual(Object.keys(p.repositories), [FQRN]);
  assert.deepEqual(p.repositories[FQRN]!.objects, [[bogus, 'zlib', 10]]);
  assert.deepEqual(p.repositories[FQRN]!.catalogs, [rootCatalog]);
  const cache = tempDir('ucvmfs-profile-cache-');
  const r = await job(cache, file);
  checkOutput(r, reference);
  // The unknown object: asked for, not found, counted as failed; the job is not affected.
  assert.match(r.stderr, /profile replayed \(3 paths ahead, 1 objects \([^)]*\) fetched, 1 failed\), written/);
  const objects = (dir: string): string[] => readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => e.name);
  // Objects are kept under shared/ (the shadow tree beside it holds names, and its session directories go away
  // while the job's tracer ends, under a walk of the whole cache).
  assert.ok(!objects(join(cache, 'shared')).some((n) => n.startsWith(bogus.slice(2))), 'no object of the unknown hash in the cache');
  // Rewritten with what the job needed, without the dropped fields.
  const after = readProfile(file)!;
  checkRecorded(after, 'after a hostile profile');
  assert.ok(!JSON.stringify(after).includes('/etc/passwd'));
  // Not JSON at all: recorded anew.
  writeFileSync(file, 'garbage\n');
  const r2 = await job(tempDir('ucvmfs-profile-cache-'), file);
  checkOutput(r2, reference);
  assert.match(r2.stderr, /profile recorded, written/);
  checkRecorded(readProfile(file), 'after garbage');
  assert.ok(existsSync(file));
});

test('UCVMFS_PROFILE_DIR: each command line gets its own profile there, recorded by its first run and replayed by the next', async () => {
  const dir = join(tempDir('ucvmfs-profiles-'), 'profiles');
  const run = (cache: string, script: string) => ucvmfs(['exec', '--stats', '--', '/bin/bash', '-c', script], {
    CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(FQRN), CVMFS_CACHE_BASE: cache, UCVMFS_PROFILE_DIR: dir,
  });
  const first = await run(tempDir('ucvmfs-profile-cache-'), JOB);
  checkOutput(first, reference);
  assert.match(first.stderr, /profile recorded, written/);
  const files = readdirSync(dir);
  assert.equal(files.length, 1);
  checkRecorded(readProfile(join(dir, files[0]!)), 'profile directory');
  const second = await run(tempDir('ucvmfs-profile-cache-'), JOB);
  checkOutput(second, reference);
  assert.match(second.stderr, /profile replayed \(\d+ paths ahead, \d+ objects \([^)]*\) fetched, 0 failed\)/);
  // Another command line: a profile of its own.
  const other = await run(tempDir('ucvmfs-profile-cache-'), `cat ${M}/small/hello.txt`);
  assert.equal(other.code, 0, other.stderr);
  assert.match(other.stderr, /profile recorded, written/);
  assert.equal(readdirSync(dir).length, 2);
});

test('a replay meets what the job would meet: an object gone from the server fails alone, and the job reading it gets EIO, never other bytes', async () => {
  assert.ok(recorded, 'recorded by the test before');
  const srv = copyFixture(FQRN);
  rmSync(join(srv, 'data', smallObject.slice(0, 2), smallObject.slice(2)));
  const own = await serve({ [FQRN]: srv });
  try {
    const file = join(tempDir('ucvmfs-profile-'), 'job.profile');
    writeFileSync(file, JSON.stringify(recorded));
    const r = await ucvmfs(['exec', '--stats', '--profile', file, '--', '/bin/bash', '-c', `cat ${M}/small/hello.txt; echo rc=$?; cat ${M}/sw/bin/hello.sh | sha1sum`], {
      CVMFS_SERVER_URL: `${own.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(FQRN), CVMFS_CACHE_BASE: tempDir('ucvmfs-profile-cache-'),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), `rc=1\n${truth.entries['/sw/bin/hello.sh']!.sha1}  -\n`);
    assert.match(r.stderr, /hello\.txt: Input\/output error/);
    const m = /profile replayed \((\d+) paths ahead, (\d+) objects \([^)]*\) fetched, (\d+) failed\)/.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal(Number(m[3]), 1, 'the missing object, once');
  } finally {
    await own.close();
  }
});

test('a profile of an older revision: the job reads the new one, and the profile is rewritten with the new revision and its objects only', async () => {
  const src = tempDir('ucvmfs-profile-src-');
  const out = join(tempDir('ucvmfs-profile-repo-'), 'repo');
  const fq = 'profiles.test.example.org';
  mkdirSync(join(src, 'data'));
  writeFileSync(join(src, 'data', 'kept.txt'), 'the same in both revisions\n');
  writeFileSync(join(src, 'data', 'changed.txt'), 'revision one\n');
  const one = await publish(src, { fqrn: fq, out });
  const own = await serve({ [fq]: out });
  try {
    const run = (file: string) => ucvmfs(['exec', '--stats', '--profile', file, '--', '/bin/bash', '-c', `cat /cvmfs/${fq}/data/kept.txt /cvmfs/${fq}/data/changed.txt`], {
      CVMFS_SERVER_URL: `${own.url}/@fqrn@`, CVMFS_PUBLIC_KEY: one.publicKeyPath, CVMFS_CACHE_BASE: tempDir('ucvmfs-profile-cache-'),
    });
    const file = join(tempDir('ucvmfs-profile-'), 'job.profile');
    const first = await run(file);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout.toString(), 'the same in both revisions\nrevision one\n');
    const before = readProfile(file)!.repositories[fq]!;
    assert.equal(before.root, one.rootHash);
    assert.equal(before.objects.length, 2);
    writeFileSync(join(src, 'data', 'changed.txt'), 'revision two, longer\n');
    const two = await publish(src, { fqrn: fq, out });
    assert.equal(two.revision, one.revision + 1);
    const second = await run(file);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.toString(), 'the same in both revisions\nrevision two, longer\n');
    // The old object of the changed file is still on the server (a publisher keeps old objects): fetched for nothing.
    assert.match(second.stderr, /profile replayed \(\d+ paths ahead, \d+ objects \([^)]*\) fetched, 0 failed\), written/);
    const after = readProfile(file)!.repositories[fq]!;
    assert.equal(after.root, two.rootHash);
    const kept = before.objects.filter((o) => after.objects.some((n) => n[0] === o[0]));
    assert.equal(kept.length, 1, 'the unchanged file keeps its object');
    assert.equal(after.objects.length, 2, "the old revision's object of the changed file is dropped");
  } finally {
    await own.close();
  }
});

test('the replay starts before the trust chain is checked, and a repository whose chain fails serves nothing: the job sees no /cvmfs/<fqrn>', async () => {
  assert.ok(recorded, 'recorded by the test before');
  const srv = copyFixture(FQRN);
  // A flipped byte in the manifest's signature: objects are all there, but nothing may be trusted.
  const manifest = join(srv, '.cvmfspublished');
  const bytes = readFileSync(manifest);
  bytes[bytes.length - 5]! ^= 0x01;
  writeFileSync(manifest, bytes);
  const own = await serve({ [FQRN]: srv });
  try {
    const file = join(tempDir('ucvmfs-profile-'), 'job.profile');
    writeFileSync(file, JSON.stringify(recorded));
    const t0 = Date.now();
    const r = await ucvmfs(['exec', '--stats', '--profile', file, '--', '/bin/bash', '-c', `cat ${M}/small/hello.txt; echo rc=$?; ls ${M} | wc -l`], {
      CVMFS_SERVER_URL: `${own.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(FQRN), CVMFS_CACHE_BASE: tempDir('ucvmfs-profile-cache-'),
    });
    assert.ok(Date.now() - t0 < 30_000, 'no hang');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'rc=1\n0\n', 'neither the file nor a listing');
    assert.equal(r.stderr.split(`cannot open /cvmfs/${FQRN}`).length - 1, 1, `said once: ${r.stderr}`);
    assert.match(r.stderr, /signature/);
  } finally {
    await own.close();
  }
});
