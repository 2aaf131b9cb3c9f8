/**
 * A job that switches to another user (a root pilot running its payload with setpriv, su or runuser) reads
 * /cvmfs as on a mount, while that user can change nothing in the shadow tree (lib/connector/shadow-dir.ts).
 * Needs root, as the pilots it stands for.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifest } from '../lib/format/manifest.js';
import { hashToString } from '../lib/format/hash.js';
import { keyOf, readTruth, serve, tempDir, ucvmfs, FIXTURES, type CliResult } from './helpers.js';
import { LAYERS } from './layers.js';
import { openRepository, publish } from '../lib/index.js';
import type { RepositoryServer } from '../lib/serve.js';

const FX = 'fixture.test.example.org';
const M = `/cvmfs/${FX}`;
const PY = '/usr/bin/python3';
const NOBODY = 65534;
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
const skip = process.getuid?.() !== 0 ? 'needs root: the test runs jobs that switch to another user' : !existsSync('/usr/bin/setpriv') ? 'needs setpriv (util-linux)' : false;
/** A repository of ours whose root catalog requires membership (the genuine server's CVMFS_VOMS_AUTHZ). */
const AZ = 'authz.test.example.org';
const AUTHZ = '/authz.test.example.org/Role=member';
let server: RepositoryServer;
let env: Record<string, string>;
let azKey: string;

before(async () => {
  const src = tempDir('ucvmfs-authz-src-');
  writeFileSync(join(src, 'pub.txt'), 'members only\n');
  chmodSync(join(src, 'pub.txt'), 0o644);
  chmodSync(src, 0o755);
  const out = join(tempDir('ucvmfs-authz-'), 'repo');
  azKey = (await publish(src, { fqrn: AZ, out, vomsAuthz: AUTHZ })).publicKeyPath;
  server = await serve({ [FX]: join(FIXTURES, FX, 'srv'), [AZ]: out });
  env = { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: `${keyOf(FX)}:${azKey}`, SOME_VAR: 'alpha' };
});
after(() => server.close());

function exec(argv: string[], extra: Record<string, string>): Promise<CliResult> {
  return ucvmfs(['exec', '--', ...argv], { ...env, ...extra });
}

function layered(name: string, fn: (t: TestContext, layer: Record<string, string>) => Promise<void>): void {
  for (const [layer, e] of LAYERS) {
    test(`${name} [${layer}]`, { skip }, (t) => fn(t, e));
  }
}

/** Reads every file of the repository as the switched user: content hashes, or the error the kernel gave. */
const READ_ALL = `import hashlib, os, json, sys
r = '${M}'
out = {}
for d, dirs, files in os.walk(r, onerror=lambda e: out.__setitem__(os.path.relpath(e.filename, r), e.__class__.__name__)):
    out[os.path.relpath(d, r)] = sorted(os.listdir(d))
    for f in files:
        p = os.path.join(d, f)
        if os.path.islink(p) or not os.path.isfile(p): continue
        try:
            out[os.path.relpath(p, r)] = hashlib.sha1(open(p, 'rb').read()).hexdigest()
        except OSError as e:
            out[os.path.relpath(p, r)] = e.__class__.__name__
print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "tree": out}))`;

/** What the fixture's truth says the switched user (neither owner nor group member) reads. */
function expectedTree(): Record<string, string | string[]> {
  const truth = readTruth(FX);
  const want: Record<string, string | string[]> = {};
  const othersMay = (perm: string, bit: number) => (parseInt(perm, 8) & bit) !== 0;
  const reachable = (p: string) => {
    // Every directory on the way must let others through.
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const d = truth.entries['/' + parts.slice(0, i).join('/')];
      if (d && !othersMay(d.perm, 0o001)) return false;
    }
    return true;
  };
  for (const [p, e] of Object.entries(truth.entries)) {
    if (e.hidden_from_readdir || p.startsWith('/.cvmfs') || !reachable(p)) continue;
    const rel = p === '/' ? '.' : p.slice(1);
    if (e.type === 'dir') want[rel] = othersMay(e.perm, 0o005) ? [...(e.entries ?? [])].sort() : 'PermissionError';
    else if (e.type === 'file' && e.sha1) want[rel] = othersMay(e.perm, 0o004) ? e.sha1 : 'PermissionError';
  }
  return want;
}

layered('a job switching to another user (setpriv) reads, lists and runs /cvmfs as on a mount, and can change nothing', async (_t, layer) => {
  const cache = tempDir('ucvmfs-users-cache-');
  const truth = readTruth(FX);
  const hash = hashToString(parseManifest(readFileSync(join(FIXTURES, FX, 'srv', '.cvmfspublished'))).rootCatalog);
  const real = join(cache, 'shadow', 'rev', `${FX}@${hash}`, 'small', 'hello.txt');
  const script = [
    `${PY} -I -c "${READ_ALL.replace(/"/g, '\\"')}"`, `ls /cvmfs`,
    `${M}/sw/bin/hello world`, `${M}/sw/bin/busybox echo busybox-ok`, `${M}/sw/bin/hello.sh a b`,
    // Writes: EROFS through /cvmfs, and through the real shadow path too (the tracer sees it).
    ...[`echo x >> ${M}/small/hello.txt`, `touch ${M}/small/new`, `mkdir ${M}/newdir`, `echo x >> ${real}`, `touch ${join(real, '..', 'new')}`, `chmod 777 ${real}`]
      .map((c) => `(${c}) 2>&1 | grep -c 'Read-only file system'`),
  ].join('; ');
  for (const round of ['cold', 'warm']) {
    const r = await exec([...AS_NOBODY, '/bin/sh', '-c', script], { CVMFS_CACHE_BASE: cache, ...layer });
    assert.equal(r.code, 0, `${round}: ${r.stderr}`);
    const lines = r.stdout.toString().trim().split('\n');
    assert.equal(lines[1], FX, `${round}: ls /cvmfs (as the other user)`);
    const got = JSON.parse(lines[0]!) as { uid: number; euid: number; tree: Record<string, string | string[]> };
    assert.equal(got.euid, NOBODY);
    assert.deepEqual(got.tree, expectedTree(), `${round}: every file and listing the other user may read, as the fixture has them`);
    assert.equal(got.tree['small/hello.txt'], truth.entries['/small/hello.txt']!.sha1);
    assert.deepEqual(lines.slice(2, 5), ['Hello, world! (from libgreet 1.0)', 'busybox-ok', `hello from a shell script on cvmfs: ${M}/sw/bin/hello.sh a b`], round);
    assert.deepEqual(lines.slice(5), ['1', '1', '1', '1', '1', '1'], `${round}: every write is EROFS`);
  }
  // Outside any job the other user meets the kernel's own refusal: nothing in the shadow area is theirs to change.
  const base = join(cache, 'shadow');
  const rev = join(base, 'rev', `${FX}@${hash}`);
  const attempts = [
    `echo x >> ${real}`, `touch ${join(rev, 'small', 'new')}`, `mkdir ${join(base, 'rev', 'x')}`, `touch ${rev}.state/l-0`,
    `rm -f ${join(base, 'root', FX)}`, `touch ${join(base, 'sessions', 'x')}`, `mv ${real} ${real}.2`, `chmod 777 ${real}`,
  ];
  const outside = spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), '/bin/sh', '-c', attempts.map((c) => `(${c}) 2>&1 | grep -c 'Permission denied\\|Operation not permitted'`).join('; ')], { encoding: 'utf8' });
  assert.deepEqual(outside.stdout.trim().split('\n'), attempts.map(() => '1'), outside.stderr);
  assert.equal(createHash('sha1').update(readFileSync(real)).digest('hex'), truth.entries['/small/hello.txt']!.sha1, 'the file is as the repository has it');
  // Every directory of the shadow area is root's and writable by nobody else; no file carries setuid or setgid.
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) continue;
      assert.equal(st.uid, 0, p);
      assert.equal(st.mode & 0o022, 0, `${p} (${(st.mode & 0o7777).toString(8)}) is not writable by group or others`);
      assert.equal(st.mode & 0o6000, 0, `${p}: no setuid or setgid on disk`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(base);
});

test('the shadow area: under the cache when others can reach it, else in TMPDIR, or where UCVMFS_SHADOW_DIR says; another user\'s directory there is refused', { skip }, async () => {
  const cat = [...AS_NOBODY, 'cat', `${M}/small/hello.txt`];
  const want = (await exec(['cat', `${M}/small/hello.txt`], { CVMFS_CACHE_BASE: tempDir('ucvmfs-users-ref-') })).stdout.toString();
  assert.ok(want.length > 0);
  // A cache below a private (0700) directory, as ~/.cache under /root: the shadow area moves to TMPDIR.
  const home = tempDir('ucvmfs-users-home-');
  const tmp = tempDir('ucvmfs-users-tmp-');
  chmodSync(tmp, 0o1777);
  const r = await exec(cat, { CVMFS_CACHE_BASE: join(home, 'cache'), TMPDIR: tmp });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), want);
  assert.equal(existsSync(join(home, 'cache', 'shadow')), false, 'no shadow area under the private directory');
  const area = join(tmp, 'ucvmfs-shadow-0');
  assert.equal(lstatSync(area).mode & 0o7777, 0o711);
  const [perCache] = readdirSync(area);
  assert.ok(existsSync(join(area, perCache!, 'rev')), 'one shadow area per cache below it');
  assert.equal(lstatSync(home).mode & 0o777, 0o700, 'the private directory was left as it was');
  // Made there first by another user: refused, fail closed (no job runs), saying which directory and why.
  const tmp2 = tempDir('ucvmfs-users-tmp2-');
  chmodSync(tmp2, 0o1777);
  mkdirSync(join(tmp2, 'ucvmfs-shadow-0'), { mode: 0o755 });
  chownSync(join(tmp2, 'ucvmfs-shadow-0'), NOBODY, NOBODY);
  const refused = await exec(['echo', 'ran'], { CVMFS_CACHE_BASE: join(home, 'cache'), TMPDIR: tmp2 });
  assert.notEqual(refused.code, 0);
  assert.equal(refused.stdout.toString(), '', 'the job did not run');
  assert.match(refused.stderr, new RegExp(`EACCES|${join(tmp2, 'ucvmfs-shadow-0')} is owned by uid ${NOBODY}, not by this user`));
  // Named: used as it is, made this user's alone.
  // (Its parent must let the other user through: the setting is taken as it is.)
  const parent = tempDir('ucvmfs-users-named-');
  chmodSync(parent, 0o755);
  const named = join(parent, 'area');
  const n = await exec(cat, { CVMFS_CACHE_BASE: join(home, 'cache'), TMPDIR: tmp2, UCVMFS_SHADOW_DIR: named });
  assert.equal(n.code, 0, n.stderr);
  assert.equal(n.stdout.toString(), want);
  assert.ok(existsSync(join(named, 'rev')) && existsSync(join(named, 'sessions')));
  assert.equal(lstatSync(named).mode & 0o7777, 0o711);
});

layered('a repository whose root catalog requires membership stays the job owner\'s: other users of the job get EACCES, the owner reads it', async (_t, layer) => {
  const repo = await openRepository(AZ, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [azKey], cacheDir: tempDir('ucvmfs-authz-lib-') });
  try {
    assert.equal(await repo.membershipRequirement(), AUTHZ, 'the library reads the requirement from the root catalog');
  } finally {
    await repo.close();
  }
  const cache = tempDir('ucvmfs-authz-cache-');
  const as = AS_NOBODY.join(' ');
  for (const first of ['owner', 'other']) {
    // Whoever reaches it first (the top is made closed before anyone is served), in a fresh cache each time.
    const c = first === 'owner' ? cache : tempDir('ucvmfs-authz-cache2-');
    const script = first === 'owner'
      ? `cat /cvmfs/${AZ}/pub.txt; stat -c %a /cvmfs/${AZ}; ${as} cat /cvmfs/${AZ}/pub.txt 2>&1; ${as} ls /cvmfs/${AZ} 2>&1; ${as} cat ${M}/small/hello.txt`
      : `${as} cat /cvmfs/${AZ}/pub.txt 2>&1; ${as} ls /cvmfs/${AZ} 2>&1; cat /cvmfs/${AZ}/pub.txt; stat -c %a /cvmfs/${AZ}; ${as} cat ${M}/small/hello.txt`;
    // A stat by the other user is refused too (the tracer answers stats only for processes with its credentials).
    const stats = `; ${as} stat -c %a /cvmfs/${AZ}/pub.txt 2>&1; ${as} ${PY} -c 'import os; os.stat("/cvmfs/${AZ}/pub.txt")' 2>&1 | tail -1`;
    const r = await exec(['/bin/sh', '-c', script + stats], { CVMFS_CACHE_BASE: c, ...layer });
    const lines = r.stdout.toString().trim().split('\n');
    const denied = lines.filter((l) => /Permission denied/.test(l));
    assert.equal(denied.length, 4, `${first} first: ${r.stdout.toString()}${r.stderr}`);
    assert.ok(lines.includes('members only'), `${first} first: the owner reads it`);
    assert.ok(lines.includes('755'), `${first} first: the stored mode of the top is shown`);
    assert.ok(lines.includes('Hello, CernVM-FS!'), `${first} first: other repositories stay open to others`);
  }
});
