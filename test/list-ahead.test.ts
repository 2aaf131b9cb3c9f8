/**
 * Listing ahead of a walk (lib/connector/list-ahead.ts): a program that walks a tree finds every entry as on the
 * source tree, with directories listed ahead of it; a program that stops after a few directories leaves at most
 * the bound listed for nothing; a job killed mid-walk leaves a tree the next job reads right; a later job lists
 * nothing again. In both layers, on a repository published here.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, servePublished, tempDir, ucvmfs, type CliResult, type PublishedRepository } from './helpers.js';
import { layeredWith } from './layers.js';

const FQRN = 'walk.test.example.org';
const M = `/cvmfs/${FQRN}`;
let repo: PublishedRepository;
let src = '';
let layerEnv: Record<string, string> = {};
const layered = layeredWith((e) => { layerEnv = e; }, { timeout: 180_000 });

before(async () => {
  // w/ holds 60 directories of 3 subdirectories of 4 files each; a nested catalog below one of them.
  src = tempDir('ucvmfs-walk-src-');
  for (let s = 0; s < 60; s++) {
    for (let t = 0; t < 3; t++) {
      const d = join(src, 'w', `s${String(s).padStart(2, '0')}`, `t${t}`);
      mkdirSync(d, { recursive: true });
      for (let f = 0; f < 4; f++) writeFileSync(join(d, `f${f}`), `${s}.${t}.${f}\n`.repeat(f + 1));
    }
  }
  writeFileSync(join(src, 'w', 's07', '.cvmfscatalog'), '');
  writeFileSync(join(src, 'top.txt'), 'top\n');
  repo = await servePublished(src, FQRN);
});
after(async () => {
  await repo.server.close();
});

function fresh(extra: Record<string, string> = {}): Record<string, string> {
  return repo.env({ UCVMFS_SHADOW_DIR: tempDir('ucvmfs-walk-shadow-'), ...extra });
}

function exec(env: Record<string, string>, script: string): Promise<CliResult> {
  return ucvmfs(['exec', '--stats', '--', '/bin/sh', '-c', script], { ...env, ...layerEnv });
}

/** `find` of the tree with each entry's type, size (files), mode and mtime, sorted, rooted at `root`. */
const FIND = (root: string) => `cd ${root} && { find . ! -type f -printf '%p %y %m %T@\\n'; find . -type f -printf '%p %y %m %T@ %s\\n'; } | sort`;

function counter(r: CliResult, what: RegExp): number {
  const m = what.exec(r.stderr);
  assert.ok(m, r.stderr);
  return Number(m[1]);
}

layered('a walk finds every entry as on the source tree, with directories listed ahead of it; the next job lists nothing', async () => {
  const want = spawnSync('/bin/sh', ['-c', FIND(src)], { encoding: 'utf8' }).stdout.replace(/^\. d \d+ [\d.]+.*\n/m, '');
  const env = fresh();
  const r = await exec(env, FIND(M));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString().replace(/^\. d \d+ [\d.]+.*\n/m, ''), want);
  assert.ok(counter(r, /\((\d+) ahead of the program\)/) > 20, r.stderr);
  // Everything listed ahead got its marker at the job's end at the latest: a second walk asks for nothing.
  const again = await exec(env, FIND(M));
  assert.equal(again.stdout.toString().replace(/^\. d \d+ [\d.]+.*\n/m, ''), want);
  assert.match(again.stderr, / 0 directories listed \(0 ahead of the program\)/, again.stderr);
  // Without listing ahead: the same answer, nothing ahead.
  const off = await exec(fresh({ UCVMFS_LIST_AHEAD: 'off' }), FIND(M));
  assert.equal(off.stdout.toString().replace(/^\. d \d+ [\d.]+.*\n/m, ''), want);
  assert.equal(counter(off, /\((\d+) ahead of the program\)/), 0);
});

layered('a program that goes down a few directories leaves at most the bound listed for nothing', async () => {
  // Two directories down: the walk starts at s05 (asked for after its parent); with a depth of 3, at most three
  // directories listed ahead are left that the program never asked for.
  const env = fresh({ UCVMFS_LIST_AHEAD: '3' });
  const r = await exec(env, `ls ${M}/w >/dev/null && ls ${M}/w/s05 && cat ${M}/w/s05/t1/f0`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), 't0\nt1\nt2\n5.1.0\n');
  const ahead = counter(r, /\((\d+) ahead of the program\)/);
  const listed = counter(r, /(\d+) directories listed/);
  assert.ok(ahead >= 1 && ahead <= 3, r.stderr);
  assert.equal(listed, 2 + ahead, r.stderr);
});

layered('a job killed while it walks leaves a tree the next job reads right', async () => {
  const want = spawnSync('/bin/sh', ['-c', FIND(src)], { encoding: 'utf8' }).stdout.replace(/^\. d \d+ [\d.]+.*\n/m, '');
  // A cold walk of this tree takes about 0.7 s here, start included.
  for (const ms of [300, 450, 600, 750]) {
    const env = fresh();
    const child = spawn(process.execPath, [CLI, 'exec', '--', '/bin/sh', '-c', `find ${M} >/dev/null`], { env: { ...process.env, ...env, ...layerEnv }, stdio: 'ignore' });
    const closed = new Promise((r) => child.on('close', r));
    await new Promise((r) => setTimeout(r, ms));
    child.kill('SIGKILL');
    await closed;
    const r = await exec(env, FIND(M));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString().replace(/^\. d \d+ [\d.]+.*\n/m, ''), want, `killed after ${ms} ms`);
  }
});

layered('four jobs walking one cold tree at once each see every entry with its own mode (never a repair\'s 0600 or 0700)', async () => {
  const want = spawnSync('/bin/sh', ['-c', FIND(src)], { encoding: 'utf8' }).stdout.replace(/^\. d \d+ [\d.]+.*\n/m, '');
  const env = fresh();
  const runs = await Promise.all([0, 1, 2, 3].map(() => exec(env, FIND(M))));
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString().replace(/^\. d \d+ [\d.]+.*\n/m, ''), want);
  }
});
