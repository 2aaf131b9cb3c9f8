/**
 * The shadow tree's bound (lib/connector/shadow-bounds.ts): a revision's tree charged more than
 * `UCVMFS_SHADOW_QUOTA_LIMIT` makes the next job start a fresh generation; jobs still using the old one keep
 * reading it right (open descriptors included), and it is removed when the last of them ends, or at the next
 * job's start when that job was killed.
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publish } from '../lib/index.js';
import { CLI, noise, serve, tempDir } from './helpers.js';
import { layeredWith } from './layers.js';
import type { RepositoryServer } from '../lib/serve.js';

const FQRN = 'bounded.test.example.org';
const M = `/cvmfs/${FQRN}`;
const A = noise(1_500_000, 11);
const B = noise(1_200_000, 12);
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

let server: RepositoryServer;
let key: string;
let layerEnv: Record<string, string> = {};
const layered = layeredWith((e) => { layerEnv = e; });
let repoDir: string;

before(async () => {
  const src = tempDir('ucvmfs-bound-src-');
  mkdirSync(join(src, 'big'));
  writeFileSync(join(src, 'big', 'a.bin'), A);
  writeFileSync(join(src, 'big', 'b.bin'), B);
  writeFileSync(join(src, 'note.txt'), 'small\n');
  const out = join(tempDir('ucvmfs-bound-repo-'), 'repo');
  key = (await publish(src, { fqrn: FQRN, out })).publicKeyPath;
  repoDir = out;
  server = await serve({ [FQRN]: out });
});
after(() => server?.close());

interface Done { code: number | null; stdout: string; stderr: string }

function start(script: string, env: Record<string, string>): { child: ChildProcess; done: Promise<Done> } {
  const child = spawn(process.execPath, [CLI, 'exec', '--', '/bin/sh', '-c', script], { env: { ...process.env, ...layerEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  return { child, done: new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr }))) };
}

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  for (const t0 = Date.now(); !ok(); await new Promise((r) => setTimeout(r, 50))) if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
}

/** The generations of the repository's tree in a shadow area, by number. */
function generations(shadow: string): number[] {
  return readdirSync(join(shadow, 'rev'))
    .filter((n) => n.startsWith(`${FQRN}@`) && !n.endsWith('.state') && !n.endsWith('.hidden'))
    .map((n) => Number(n.split('~')[1] ?? 0))
    .sort((a, b) => a - b);
}

const genDir = (shadow: string, gen: number) => {
  const stem = readdirSync(join(shadow, 'rev')).find((n) => n.startsWith(`${FQRN}@`))!.split('~')[0]!.replace(/\.(state|hidden)$/, '');
  return join(shadow, 'rev', gen === 0 ? stem : `${stem}~${gen}`);
};

function setup(): { env: Record<string, string>; shadow: string; ctl: string } {
  const shadow = tempDir('ucvmfs-bound-shadow-');
  const env = {
    CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: key, CVMFS_CACHE_BASE: tempDir('ucvmfs-bound-cache-'),
    UCVMFS_SHADOW_DIR: shadow, UCVMFS_SHADOW_QUOTA_LIMIT: '1', UCVMFS_PREFETCH: 'off',
  };
  return { env, shadow, ctl: tempDir('ucvmfs-bound-ctl-') };
}

layered('a tree over its bound: the next job gets a fresh generation, the job on the old one reads it right to the end, and it goes with that job', async () => {
  const { env, shadow, ctl } = setup();
  // Job 1 reads a.bin, keeps it open, waits, then reads b.bin (into its own generation) and the open descriptor.
  const one = start(`sha1sum ${M}/big/a.bin; exec 3< ${M}/big/a.bin; touch ${ctl}/ready; while [ ! -e ${ctl}/go ]; do sleep 0.05; done; sha1sum ${M}/big/b.bin; sha1sum <&3`, env);
  await until('job 1 to read a.bin', () => existsSync(join(ctl, 'ready')));
  assert.deepEqual(generations(shadow), [0]);
  const gen0 = genDir(shadow, 0);
  assert.equal(statSync(join(gen0, 'big', 'a.bin')).size, A.length);
  // Job 2 finds generation 0 charged 1.5 MB against a bound of 1 MB: it starts generation 1.
  const two = await start(`sha1sum ${M}/big/a.bin; cat ${M}/note.txt`, env).done;
  assert.equal(two.code, 0, two.stderr);
  assert.equal(two.stdout, `${sha1(A)}  ${M}/big/a.bin\nsmall\n`);
  assert.deepEqual(generations(shadow), [0, 1], 'generation 0 stays while job 1 uses it');
  assert.ok(statSync(join(genDir(shadow, 1), 'big', 'a.bin')).blocks > 0, 'job 2 filled its own generation');
  writeFileSync(join(ctl, 'go'), '');
  const r1 = await one.done;
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r1.stdout, `${sha1(A)}  ${M}/big/a.bin\n${sha1(B)}  ${M}/big/b.bin\n${sha1(A)}  -\n`);
  // Job 1 was the last to use generation 0: it went with job 1, markers and all.
  assert.deepEqual(generations(shadow), [1]);
  for (const s of ['', '.state', '.hidden']) assert.equal(existsSync(gen0 + s), false, gen0 + s);
  assert.deepEqual(readdirSync(join(shadow, 'trash')), []);
  // Without a bound (-1), a job joins the newest generation however large.
  const three = await start(`sha1sum ${M}/big/b.bin`, { ...env, UCVMFS_SHADOW_QUOTA_LIMIT: '-1' }).done;
  assert.equal(three.stdout, `${sha1(B)}  ${M}/big/b.bin\n`, three.stderr);
  assert.deepEqual(generations(shadow), [1]);
});

layered('a job killed while its generation is retired: the next job start removes that generation', async () => {
  const { env, shadow, ctl } = setup();
  const first = await start(`cat ${M}/big/a.bin > /dev/null`, env).done;
  assert.equal(first.code, 0, first.stderr);
  // Generation 0 is over the bound: the victim starts generation 1 and fills it past the bound too.
  const victim = start(`cat ${M}/big/b.bin > /dev/null; touch ${ctl}/ready; sleep 600`, env);
  await until('the victim to read b.bin', () => existsSync(join(ctl, 'ready')));
  // Generation 0 goes while the victim runs: no job uses it any more.
  await until('generation 0 to go', () => generations(shadow).join() === '1');
  // A job beside it starts generation 2; generation 1 stays while the victim lives.
  const beside = await start(`sha1sum ${M}/big/b.bin`, env).done;
  assert.equal(beside.stdout, `${sha1(B)}  ${M}/big/b.bin\n`, beside.stderr);
  assert.deepEqual(generations(shadow), [1, 2]);
  victim.child.kill('SIGKILL');
  await victim.done;
  // The next job sees the victim's session dead: generation 1 is removed at its start, before it reads.
  const next = await start(`sha1sum ${M}/big/a.bin`, env).done;
  assert.equal(next.stdout, `${sha1(A)}  ${M}/big/a.bin\n`, next.stderr);
  assert.equal(generations(shadow).includes(1), false, `generations left: ${generations(shadow)}`);
});

layered('links between repositories: a job whose copy of the target is no longer the one links lead to fails with EIO, never reads another copy; once reached by links, a repository starts no new generation', async () => {
  const { env, shadow, ctl } = setup();
  const X = 'linker.test.example.org';
  const src = tempDir('ucvmfs-bound-x-');
  symlinkSync(`${M}/big`, join(src, 'link'));
  const out = join(tempDir('ucvmfs-bound-xrepo-'), 'repo');
  const xkey = (await publish(src, { fqrn: X, out })).publicKeyPath;
  const both = await serve({ [X]: out, [FQRN]: repoDir });
  let one: ReturnType<typeof start> | undefined;
  try {
    const e2 = { ...env, CVMFS_SERVER_URL: `${both.url}/@fqrn@`, CVMFS_PUBLIC_KEY: `${key}:${xkey}` };
    // Job 1 fills generation 0 past the bound, then waits; job 2 starts generation 1 and lists the directory,
    // making placeholders there that it does not fill.
    one = start(`cat ${M}/big/a.bin > /dev/null; touch ${ctl}/ready; while [ ! -e ${ctl}/go ]; do sleep 0.05; done; sha1sum /cvmfs/${X}/link/b.bin; echo status $?`, e2);
    await until('job 1 to read a.bin', () => existsSync(join(ctl, 'ready')));
    const two = await start(`ls ${M}/big`, e2).done;
    assert.equal(two.stdout, 'a.bin\nb.bin\n', two.stderr);
    assert.deepEqual(generations(shadow), [0, 1]);
    // Through the link, the kernel would reach generation 1, which job 1 never prepared: EIO, not its zeros.
    writeFileSync(join(ctl, 'go'), '');
    const r1 = await one.done;
    assert.equal(r1.stdout, 'status 1\n');
    assert.match(r1.stderr, /Input\/output error/);
    assert.match(r1.stderr, /reached through a link from another repository/);
    // A job started now is on the generation links lead to: the right bytes.
    const three = await start(`sha1sum /cvmfs/${X}/link/b.bin`, e2).done;
    assert.equal(three.stdout, `${sha1(B)}  /cvmfs/${X}/link/b.bin\n`, three.stderr);
    // Generation 1 is over the bound too, but the repository is reached by links now: no new generation.
    const four = await start(`sha1sum ${M}/big/a.bin`, e2).done;
    assert.equal(four.stdout, `${sha1(A)}  ${M}/big/a.bin\n`, four.stderr);
    assert.deepEqual(generations(shadow), [1]);
  } finally {
    one?.child.kill('SIGKILL');
    await both.close();
  }
});

layered('links between repositories across a republish: root/ stays on the tree a running job crosses into; a job on the newer revision reads it directly and gets EIO through the link', async () => {
  const { env, shadow, ctl } = setup();
  const X = 'linker2.test.example.org';
  const xsrc = tempDir('ucvmfs-bound-x-');
  symlinkSync(`${M}/big`, join(xsrc, 'link'));
  symlinkSync(`${M}/bin`, join(xsrc, 'tools'));
  const xout = join(tempDir('ucvmfs-bound-xrepo-'), 'repo');
  const xkey = (await publish(xsrc, { fqrn: X, out: xout })).publicKeyPath;
  // Our own copy of the target repository, republished during the test.
  const bsrc = tempDir('ucvmfs-bound-bsrc-');
  mkdirSync(join(bsrc, 'big'));
  writeFileSync(join(bsrc, 'big', 'a.bin'), A);
  writeFileSync(join(bsrc, 'big', 'b.bin'), B);
  mkdirSync(join(bsrc, 'bin'));
  // A program the kernel runs by itself (an ELF with the system's loader): its exec needs no plan.
  copyFileSync('/bin/echo', join(bsrc, 'bin', 'hello'));
  chmodSync(join(bsrc, 'bin', 'hello'), 0o755);
  const bout = join(tempDir('ucvmfs-bound-brepo-'), 'repo');
  const bkey = (await publish(bsrc, { fqrn: FQRN, out: bout })).publicKeyPath;
  const srv = await serve({ [X]: xout, [FQRN]: bout });
  let j: ReturnType<typeof start> | undefined;
  try {
    const e2 = { ...env, UCVMFS_SHADOW_QUOTA_LIMIT: '-1', CVMFS_SERVER_URL: `${srv.url}/@fqrn@`, CVMFS_PUBLIC_KEY: `${bkey}:${xkey}` };
    // The first job also runs a program through a link into the repository.
    j = start(`/cvmfs/${X}/tools/hello first; sha1sum /cvmfs/${X}/link/b.bin; touch ${ctl}/ready; while [ ! -e ${ctl}/go ]; do sleep 0.05; done; sha1sum /cvmfs/${X}/link/a.bin`, e2);
    await until('the first job to cross', () => existsSync(join(ctl, 'ready')));
    const A2 = noise(1_400_000, 21);
    writeFileSync(join(bsrc, 'big', 'a.bin'), A2);
    await publish(bsrc, { fqrn: FQRN, out: bout });
    // Another cache: the new revision, in the same shadow area.
    const e3 = { ...e2, CVMFS_CACHE_BASE: tempDir('ucvmfs-bound-cache-') };
    const direct = await start(`sha1sum ${M}/big/a.bin`, e3).done;
    assert.equal(direct.stdout, `${sha1(A2)}  ${M}/big/a.bin\n`, direct.stderr);
    const through = await start(`sha1sum /cvmfs/${X}/link/a.bin; echo status $?`, e3).done;
    assert.equal(through.stdout, 'status 1\n', through.stderr);
    assert.match(through.stderr, /reached through a link from another repository/);
    writeFileSync(join(ctl, 'go'), '');
    const r = await j.done;
    assert.equal(r.stdout, `first\n${sha1(B)}  /cvmfs/${X}/link/b.bin\n${sha1(A)}  /cvmfs/${X}/link/a.bin\n`, r.stderr);
    // With the first job gone, a job on the new revision moves root/ to its own copy, and runs the program
    // through the link: the path is walked again (no exec plan was kept for it), so it is made in that copy.
    const again = await start(`sha1sum /cvmfs/${X}/link/a.bin; /cvmfs/${X}/tools/hello again`, e3).done;
    assert.equal(again.stdout, `${sha1(A2)}  /cvmfs/${X}/link/a.bin\nagain\n`, again.stderr);
    // Both revisions' trees, each job in its own.
    assert.equal(readdirSync(join(shadow, 'rev')).filter((n) => n.startsWith(`${FQRN}@`) && !n.endsWith('.state') && !n.endsWith('.hidden')).length, 2);
  } finally {
    j?.child.kill('SIGKILL');
    await srv.close();
  }
});
