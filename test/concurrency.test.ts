/**
 * Many jobs on one node: `ucvmfs exec` jobs and library processes started at the same moment on one empty cache
 * and shadow tree, all right, each object (and the trust chain) downloaded once; jobs killed at random moments
 * harm no other, and leave nothing a later job must clean by hand; two users of one group cache.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import { publish } from '../lib/index.js';
import { CLI, serve, tempDir } from './helpers.js';
import { claim } from '../lib/cache/claim.js';
import type { RepositoryServer } from '../lib/serve.js';

const FQRN = 'py.jobs.example.org';
const M = `/cvmfs/${FQRN}`;
const PYLIB = '/usr/lib/python3.11';
/** What the job imports (pure-Python modules and packages of the host's Python), besides what starts Python. */
const MODULES = ['encodings', 'json', 'collections', 're', 'os.py', 'stat.py', 'posixpath.py', 'genericpath.py', 'abc.py', 'codecs.py', 'io.py',
  'enum.py', 'types.py', 'functools.py', 'keyword.py', 'operator.py', 'reprlib.py', 'copyreg.py', 'heapq.py', '_collections_abc.py',
  '_sitebuiltins.py', 'site.py', 'hashlib.py', 'base64.py', 'struct.py'];
/** The job: imports from /cvmfs, lists a directory, hashes a file it reads. */
const JOB = `import json, hashlib, base64, collections, os, sys
d = os.path.dirname(json.__file__)
print(json.dumps({'json': sorted(os.listdir(d)), 'sha1': hashlib.sha1(open(os.path.join(d, 'decoder.py'), 'rb').read()).hexdigest(), 'exe': sys.executable.startswith('/cvmfs/')}))`;
const havePython = existsSync('/usr/bin/python3.11') && existsSync(PYLIB);

let src: string;
let repoDir: string;
let key: string;
let expected: string;

before(async () => {
  if (!havePython) return;
  src = tempDir('ucvmfs-jobs-src-');
  mkdirSync(join(src, 'usr/bin'), { recursive: true });
  mkdirSync(join(src, 'usr/lib/python3.11'), { recursive: true });
  copyFileSync(realpathSync('/usr/bin/python3.11'), join(src, 'usr/bin/python3.11'));
  chmodSync(join(src, 'usr/bin/python3.11'), 0o755);
  symlinkSync('python3.11', join(src, 'usr/bin/python3'));
  // A second name of the interpreter's inode: a hardlink group (see the hardlink test below).
  linkSync(join(src, 'usr/bin/python3.11'), join(src, 'usr/bin/python3.11-again'));
  for (const m of MODULES) {
    cpSync(join(PYLIB, m), join(src, 'usr/lib/python3.11', m), { recursive: true, preserveTimestamps: true, filter: (s) => !s.includes('__pycache__') });
  }
  repoDir = join(tempDir('ucvmfs-jobs-repo-'), 'repo');
  // The key where the other users of the group-cache test can read it.
  const keys = tempDir('ucvmfs-jobs-key-');
  chmodSync(keys, 0o755);
  key = join(keys, `${FQRN}.pub`);
  copyFileSync((await publish(src, { fqrn: FQRN, out: repoDir })).publicKeyPath, key);
  chmodSync(key, 0o644);
  // The same job natively, from the source tree (the interpreter's path aside).
  expected = execFileSync(join(src, 'usr/bin/python3'), ['-I', '-B', '-c', JOB], { env: { PATH: process.env.PATH } }).toString()
    .replace('"exe": false', '"exe": true');
});

let server: RepositoryServer;
before(async () => {
  if (havePython) server = await serve({ [FQRN]: repoDir });
});
after(() => server?.close());

interface Done { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function start(args: string[], env: NodeJS.ProcessEnv, opts: { uid?: number; gid?: number } = {}): { child: ChildProcess; done: Promise<Done> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString('latin1'); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<Done>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

function envFor(cache: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: key, CVMFS_CACHE_BASE: cache, PYTHONDONTWRITEBYTECODE: '1', UCVMFS_PREFETCH: 'off', ...extra };
}

const job = ['exec', '--', `${M}/usr/bin/python3`, '-I', '-B', '-c', JOB];

/** Requests at the server since `from`, and those made more than once. */
function requestsSince(from: number): { all: string[]; repeated: string[] } {
  const all = server.requests.slice(from);
  const seen = new Set<string>();
  const repeated = all.filter((u) => seen.has(u) || !seen.add(u));
  return { all, repeated };
}

/** Every regular file of the source tree with its SHA-1, as relative paths. */
function sourceHashes(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(relative(src, p), createHash('sha1').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(src);
  return out;
}

/** A job that hashes every file of the repository under /cvmfs (so reads all of it through the shadow tree). */
const HASH_ALL = `import hashlib, os, json
r = '${M}'
out = {}
for d, dirs, files in os.walk(r):
    for f in files:
        p = os.path.join(d, f)
        if not os.path.islink(p):
            out[os.path.relpath(p, r)] = hashlib.sha1(open(p, 'rb').read()).hexdigest()
print(json.dumps(out))`;

for (const [layer, layerEnv] of [['preload + ptrace', {}], ['ptrace only', { UCVMFS_NO_PRELOAD: '1' }]] as const) {
  test(`16 jobs started at once on one empty cache: all right, every object and the trust chain fetched once [${layer}]`, { skip: havePython ? false : 'needs /usr/bin/python3.11' }, async () => {
    const cache = tempDir('ucvmfs-jobs-cache-');
    const from = server.requests.length;
    const runs = Array.from({ length: 16 }, () => start(job, envFor(cache, layerEnv)));
    const results = await Promise.all(runs.map((r) => r.done));
    const failed = results.filter((r) => r.code !== 0 || r.stdout !== expected);
    assert.equal(failed.length, 0, `${failed.length} of 16 failed; first: exit ${failed[0]?.code}: ${failed[0]?.stderr.slice(0, 400)}`);
    const { all, repeated } = requestsSince(from);
    assert.deepEqual(repeated, [], 'no URL requested twice');
    assert.equal(all.filter((u) => u.endsWith('/.cvmfspublished')).length, 1, 'the manifest once for all 16');
    // One job alone on another empty cache needs the same objects.
    const from1 = server.requests.length;
    const one = await start(job, envFor(tempDir('ucvmfs-jobs-cache-'), layerEnv)).done;
    assert.equal(one.stdout, expected);
    assert.deepEqual(new Set(server.requests.slice(from1)), new Set(all), 'the 16 jobs fetched what one job fetches');
    // Nothing left behind: no temporary of a fill or a download, no lock.
    const own = join(cache, 'shadow', 'rev');
    for (const d of readdirSync(own).filter((n) => n.endsWith('.state'))) {
      assert.deepEqual(readdirSync(join(own, d, 'fill')), [], `${d}/fill is empty`);
    }
    assert.deepEqual(readdirSync(join(cache, 'shared', 'txn')), [], 'txn/ is empty');
  });
}

test('exec jobs and library processes (cat, tree, preload) at once on one empty cache: all right, nothing fetched twice', { skip: havePython ? false : 'needs /usr/bin/python3.11' }, async () => {
  const cache = tempDir('ucvmfs-jobs-mixed-');
  const env = envFor(cache);
  const from = server.requests.length;
  const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
  const runs = [
    ...Array.from({ length: 10 }, () => start(job, env)),
    start(['exec', '--', `${M}/usr/bin/python3`, '-I', '-B', '-c', HASH_ALL], env),
    start(['cat', `${FQRN}:/usr/bin/python3.11`], env),
    start(['cat', `${FQRN}:/usr/lib/python3.11/json/decoder.py`], env),
    start(['tree', '--json', FQRN], env),
    start(['preload', FQRN], env),
    start(['ls', '-l', `${FQRN}:/usr/lib/python3.11/encodings`], env),
  ];
  const r = await Promise.all(runs.map((x) => x.done));
  for (const [i, x] of r.entries()) assert.equal(x.code, 0, `process ${i}: ${x.stderr.slice(0, 400)}`);
  for (const x of r.slice(0, 10)) assert.equal(x.stdout, expected);
  const hashes = sourceHashes();
  assert.deepEqual(new Map(Object.entries(JSON.parse(r[10]!.stdout) as Record<string, string>)), hashes, 'every file read right through the shadow tree');
  assert.equal(sha1(Buffer.from(r[11]!.stdout, 'latin1')), hashes.get('usr/bin/python3.11'));
  assert.equal(sha1(Buffer.from(r[12]!.stdout, 'latin1')), hashes.get('usr/lib/python3.11/json/decoder.py'));
  const tree = JSON.stringify(JSON.parse(r[13]!.stdout));
  for (const p of hashes.keys()) assert.ok(tree.includes(JSON.stringify(p.split('/').pop())), `tree shows ${p}`);
  assert.equal(r[15]!.stdout.split('\n').filter((l) => l.endsWith('.py')).length, readdirSync(join(src, 'usr/lib/python3.11/encodings')).filter((n) => n.endsWith('.py')).length);
  assert.deepEqual(requestsSince(from).repeated, [], 'no URL requested twice');
});

test('jobs killed at random moments (SIGKILL, 16 at a time, 4 rounds) harm no other; a new job then reads everything right and nothing is left to clean', { skip: havePython ? false : 'needs /usr/bin/python3.11' }, async () => {
  const cache = tempDir('ucvmfs-jobs-kill-');
  const hashes = sourceHashes();
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let killed = 0;
  let survived = 0;
  for (let round = 0; round < 4; round++) {
    // Half of each round's jobs walk and hash the whole repository (listing and filling), half run the job.
    const runs = Array.from({ length: 16 }, (_, i) => ({
      kill: random() < 0.5,
      walk: i % 2 === 0,
      ...start(i % 2 === 0 ? ['exec', '--', `${M}/usr/bin/python3`, '-I', '-B', '-c', HASH_ALL] : job, envFor(cache, round % 2 ? { UCVMFS_NO_PRELOAD: '1' } : {} as Record<string, string>)),
    }));
    for (const r of runs) if (r.kill) setTimeout(() => r.child.kill('SIGKILL'), Math.floor(random() * 1500));
    const results = await Promise.all(runs.map((r) => r.done));
    for (const [i, res] of results.entries()) {
      if (res.signal === 'SIGKILL') {
        killed++;
        continue;
      }
      survived++;
      assert.equal(res.code, 0, `round ${round}, job ${i}: ${res.stderr.slice(0, 400)}`);
      if (runs[i]!.walk) assert.deepEqual(new Map(Object.entries(JSON.parse(res.stdout) as Record<string, string>)), hashes, `round ${round}, job ${i}`);
      else assert.equal(res.stdout, expected, `round ${round}, job ${i}`);
    }
  }
  assert.ok(killed >= 8 && survived >= 8, `killed ${killed}, survived ${survived}`);
  // A new job on the same cache and shadow tree, in each layer: every byte right.
  for (const extra of [{}, { UCVMFS_NO_PRELOAD: '1' }] as Record<string, string>[]) {
    const fresh = await start(['exec', '--', `${M}/usr/bin/python3`, '-I', '-B', '-c', HASH_ALL], envFor(cache, extra)).done;
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.deepEqual(new Map(Object.entries(JSON.parse(fresh.stdout) as Record<string, string>)), hashes);
  }
  // What the killed jobs left was removed by the later ones, without anyone cleaning by hand.
  await new Promise((r) => setTimeout(r, 200));
  const rev = join(cache, 'shadow', 'rev');
  for (const d of readdirSync(rev).filter((n) => n.endsWith('.state'))) {
    assert.deepEqual(readdirSync(join(rev, d, 'fill')).filter((n) => !n.endsWith('.lock')), [], `${d}/fill holds no temporary`);
  }
  assert.deepEqual(readdirSync(join(cache, 'shared', 'txn')).filter((n) => n.endsWith('.tmp')), [], 'txn/ holds no temporary');
  assert.deepEqual(readdirSync(join(cache, 'shadow', 'sessions')), [], 'no session directory left');
});

const isRoot = process.getuid?.() === 0;
test('two users of one group cache, 4 jobs each at once: all right', { skip: !havePython ? 'needs /usr/bin/python3.11' : isRoot ? false : 'needs root to run jobs as two users' }, async () => {
  const GID = 4243;
  const group = tempDir('ucvmfs-jobs-group-');
  chownSync(group, 0, GID);
  chmodSync(group, 0o2775);
  const homes = [4011, 4012].map((uid) => {
    const home = tempDir(`ucvmfs-jobs-home${uid}-`);
    chownSync(home, uid, GID);
    chmodSync(home, 0o700);
    const tmp = tempDir(`ucvmfs-jobs-tmp${uid}-`);
    chownSync(tmp, uid, GID);
    return { uid, home, tmp };
  });
  const runs = homes.flatMap(({ uid, home, tmp }) => Array.from({ length: 4 }, () => start(job, { ...envFor(group), HOME: home, TMPDIR: tmp }, { uid, gid: GID })));
  const results = await Promise.all(runs.map((r) => r.done));
  for (const [i, r] of results.entries()) {
    assert.equal(r.code, 0, `job ${i}: ${r.stderr.slice(0, 400)}`);
    assert.equal(r.stdout, expected, `job ${i}`);
  }
  // Each user's own cache in their home, and shadow tree in their TMPDIR (a 0700 home is no place others can
  // reach, see shadow-dir.ts); the group directory holds only the raw objects.
  for (const { uid, home, tmp } of homes) {
    assert.ok(existsSync(join(home, '.cache', 'ucvmfs')), `uid ${uid}'s cache is in its home`);
    assert.equal(existsSync(join(home, '.cache', 'ucvmfs', 'shadow')), false);
    assert.equal(lstatSync(join(tmp, `ucvmfs-shadow-${uid}`)).uid, uid, `uid ${uid}'s shadow area is its own, in its TMPDIR`);
  }
  assert.ok(readdirSync(join(group, 'shared', 'data')).length > 0);
});

test('a program running under one name of its hardlink group, run by another job under another name: runs, nothing reopens it for writing', { skip: !havePython }, async () => {
  const env = envFor(tempDir('ucvmfs-jobs-hardlink-'));
  const a = start(['exec', '--', `${M}/usr/bin/python3.11`, '-I', '-c', 'import time; print("a", flush=True); time.sleep(4)'], env);
  // Until the first job runs the interpreter (its content filled and mapped).
  let running = false;
  a.child.stdout!.on('data', () => { running = true; });
  for (let i = 0; i < 300 && !running; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(running, 'the first job started');
  const b = await start(['exec', '--', `${M}/usr/bin/python3.11-again`, '-I', '-c', 'print("b")'], env).done;
  const ra = await a.done;
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, 'b\n');
  assert.equal(ra.code, 0, ra.stderr);
});

test('a claim whose holder died is taken over by one waiter only, however many look at once', async () => {
  const dir = tempDir('ucvmfs-claim-');
  // A holder on this host that is gone: the pid of a process that has exited.
  const dead = spawn('/bin/true');
  await new Promise((r) => dead.on('exit', r));
  for (let round = 0; round < 50; round++) {
    const lock = join(dir, `r${round}.lock`);
    writeFileSync(lock, `${hostname()} ${dead.pid} 1`);
    let inside = 0;
    let most = 0;
    let done = false;
    await Promise.all(Array.from({ length: 8 }, async () => {
      const c = await claim(lock, () => done);
      if (c === 'done') return;
      most = Math.max(most, ++inside);
      await new Promise((r) => setTimeout(r, 5));
      inside--;
      done = true;
      await c.release();
    }));
    assert.equal(most, 1, `round ${round}: ${most} waiters held the claim at once`);
    assert.ok(!existsSync(lock) && !existsSync(`${lock}.takeover`), 'nothing left behind');
  }
});

test('a stale claim that cannot be taken over (its guard cannot be made) lets the waiter go on alone, without spinning', { timeout: 10_000 }, async () => {
  const dir = tempDir('ucvmfs-claim-');
  const dead = spawn('/bin/true');
  await new Promise((r) => dead.on('exit', r));
  // 251 bytes: the lock itself fits in a name, its guard `<lock>.takeover` does not (ENAMETOOLONG), as a guard
  // cannot be made in a directory that became read-only or over quota.
  const lock = join(dir, `${'x'.repeat(246)}.lock`);
  writeFileSync(lock, `${hostname()} ${dead.pid} 1`);
  const t0 = Date.now();
  const c = await claim(lock, () => false);
  assert.notEqual(c, 'done');
  assert.ok(Date.now() - t0 < 2000, `went on alone after ${Date.now() - t0} ms`);
  await (c as { release(): Promise<void> }).release();
  assert.ok(existsSync(lock), 'the lock it could not take over is left as it was');
});
