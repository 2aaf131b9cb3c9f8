/**
 * A job's life under `ucvmfs exec` as under a shell on a mounted /cvmfs: the caller gets the command's status
 * when the command ends, while what it left running keeps reading /cvmfs; the signal dispositions and mask the
 * caller gave reach the command (nohup, trap '' INT, a blocked signal); signals sent to ucvmfs reach it.
 * Run through the installed entry point (bin/ucvmfs.js and its front), in both native layers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fixtureNames, keyOf, readTruth, serve, tempDir, FIXTURES, ROOT } from './helpers.js';
import { LAYERS } from './layers.js';
import type { RepositoryServer } from '../lib/serve.js';

const FQRN = 'fixture.test.example.org';
const M = `/cvmfs/${FQRN}`;
const BIN = join(ROOT, 'bin', 'ucvmfs.js');
let server: RepositoryServer;
let env: Record<string, string>;

before(async () => {
  assert.ok(fixtureNames().includes(FQRN));
  server = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  env = {
    ...process.env as Record<string, string>,
    CVMFS_SERVER_URL: `${server.url}/@fqrn@`,
    CVMFS_PUBLIC_KEY: keyOf(FQRN),
    CVMFS_CACHE_BASE: tempDir('ucvmfs-life-cache-'),
  };
});
after(() => server.close());

interface Run { code: number | null; signal: NodeJS.Signals | null; out: string; err: string; ms: number; pid: number }

/** Runs a shell command line (which calls BIN) and resolves when its output is closed and it exited. */
function run(line: string, extra: Record<string, string> = {}, onOut?: (text: string, pid: number) => void): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn('/bin/sh', ['-c', line], { env: { ...env, BIN, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => { out += d; onOut?.(out, p.pid!); });
    p.stderr.on('data', (d: Buffer) => { err += d; });
    p.on('close', (code, signal) => resolve({ code, signal, out, err, ms: Date.now() - t0, pid: p.pid! }));
  });
}

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The same test in both native layers (preload library and ptrace, ptrace alone). */
function layered(name: string, fn: (layer: Record<string, string>) => Promise<void>): void {
  for (const [layer, e] of LAYERS) {
    test(`${name} [${layer}]`, () => fn(e));
  }
}

layered('exec returns when the command ends, with its output closed; what it left running keeps reading /cvmfs', async (layer) => {
  const dir = tempDir('ucvmfs-life-');
  const late = join(dir, 'late');
  const truth = readTruth(FQRN).entries['/README.txt']!;
  // The daemon reads /cvmfs after the command has ended and after ucvmfs has returned.
  const r = await run(`"$BIN" exec -- sh -c '(sleep 2; cat ${M}/README.txt > ${late}.tmp; mv ${late}.tmp ${late}; sleep 6) >/dev/null 2>&1 </dev/null & echo started; exit 5'`, layer);
  assert.equal(r.out, 'started\n', r.err);
  assert.equal(r.code, 5);
  assert.ok(r.ms < 2_000 + 3_000, `returned after ${r.ms} ms: it waited for the daemon`);
  assert.equal(existsSync(late), false, 'the daemon had not read yet when exec returned');
  for (let i = 0; i < 100 && !existsSync(late); i++) await sleep(100);
  assert.equal(sha1(readFileSync(late)), truth.sha1, 'the daemon read the verified bytes after exec returned');
});

layered('--wait-all (and UCVMFS_EXEC_WAIT=all) waits for every process the command started', async (layer) => {
  const r = await run(`"$BIN" exec --wait-all -- sh -c 'sleep 2 & echo started'`, layer);
  assert.equal(r.out, 'started\n', r.err);
  assert.equal(r.code, 0);
  assert.ok(r.ms >= 2_000, `returned after ${r.ms} ms, before the background sleep ended`);
  const e = await run(`"$BIN" exec -- sh -c 'sleep 2 & exit 4'`, { ...layer, UCVMFS_EXEC_WAIT: 'all' });
  assert.equal(e.code, 4);
  assert.ok(e.ms >= 2_000, `returned after ${e.ms} ms`);
});

layered('the command\'s status and its signal reach the caller', async (layer) => {
  assert.equal((await run(`"$BIN" exec -- sh -c 'exit 7'`, layer)).code, 7);
  const k = await run(`"$BIN" exec -- sh -c 'kill -TERM $$'; echo "status $?"`, layer);
  assert.equal(k.out, 'status 143\n', 'the shell saw a death by SIGTERM');
  const direct = await run(`exec "$BIN" exec -- sh -c 'kill -USR1 $$'`, layer);
  assert.equal(direct.signal, 'SIGUSR1');
  assert.equal((await run(`"$BIN" exec -- /no/such/program`, layer)).code, 127);
});

/** SigIgn and SigBlk of a process, as /proc shows them. */
const masks = (text: string) => text.split('\n').filter((l) => /^Sig(Ign|Blk):/.test(l)).join('\n');

layered('ignored signals and the blocked mask reach the command as a shell would pass them', async (layer) => {
  const probe = `sh -c 'kill -HUP $$; kill -INT $$; echo alive; grep -E "^Sig(Ign|Blk):" /proc/self/status'`;
  // trap '' in a shell: its children inherit the signals ignored.
  const native = await run(`trap '' HUP INT QUIT; ${probe}`, layer);
  const ours = await run(`trap '' HUP INT QUIT; "$BIN" exec -- ${probe}`, layer);
  assert.match(native.out, /^alive\nSigBlk:\s+0+\nSigIgn:\s+0+7\n$/, native.err);
  assert.equal(ours.out, native.out, ours.err);
  assert.equal(ours.code, 0);
  // nohup: the job survives a hang-up sent to it.
  const nohup = await run(`nohup "$BIN" exec -- sh -c 'kill -HUP $$; echo survived' 2>/dev/null`, layer);
  assert.equal(nohup.out, 'survived\n');
  assert.equal(nohup.code, 0);
  // A blocked signal stays blocked (Python blocks SIGUSR1 and SIGTERM, then execs the command).
  const block = (cmd: string) => `python3 -c 'import os, signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGTERM]); os.execvp(sys.argv[1], sys.argv[1:])' ${cmd}`;
  const nativeBlk = await run(block('grep -E "^Sig(Ign|Blk):" /proc/self/status'), layer);
  const oursBlk = await run(block('"$BIN" exec -- grep -E "^Sig(Ign|Blk):" /proc/self/status'), layer);
  assert.match(masks(nativeBlk.out), /SigBlk:\s+0+4200\n/);
  assert.equal(masks(oursBlk.out), masks(nativeBlk.out), oursBlk.err);
  // A blocked SIGUSR1 sent to the job stays pending instead of killing it.
  const probe2 = `python3 -c "import os, signal; os.kill(os.getpid(), signal.SIGUSR1); print(sorted(signal.sigpending()))"`;
  const pendNative = await run(block(probe2), layer);
  const pending = await run(block(`"$BIN" exec -- ${probe2}`), layer);
  assert.equal(pendNative.out, '[<Signals.SIGUSR1: 10>]\n', pendNative.err);
  assert.equal(pending.out, pendNative.out, pending.err);
});

layered('a signal sent to ucvmfs reaches the command; SIGKILL of ucvmfs kills it', async (layer) => {
  // SIGTERM to the process the caller started (the front), as a batch system or `kill` sends it.
  let sent = false;
  const r = await run(`exec "$BIN" exec -- sh -c 'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.1; done'`, layer, (out, pid) => {
    if (!sent && out.includes('ready')) {
      sent = true;
      process.kill(pid, 'SIGTERM');
    }
  });
  assert.equal(r.out, 'ready\ngot TERM\n', r.err);
  assert.equal(r.code, 3);
  // SIGKILL cannot be passed on: the command dies all the same, as it would have.
  let victim = 0;
  const k = await run(`exec "$BIN" exec -- sh -c 'echo $$; exec sleep 30'`, layer, (out, pid) => {
    if (!victim && out.includes('\n')) {
      victim = Number(out.trim());
      process.kill(pid, 'SIGKILL');
    }
  });
  assert.equal(k.signal, 'SIGKILL');
  assert.ok(victim > 0);
  let alive = true;
  for (let i = 0; i < 50 && alive; i++) {
    alive = spawnSync('kill', ['-0', String(victim)]).status === 0;
    if (alive) await sleep(100);
  }
  assert.equal(alive, false, 'the command outlived a SIGKILL of ucvmfs');
});
