/**
 * First touch costs the name, not its directory (lib/connector/shadow.ts, `ensureName`): a path through a
 * directory makes only the names it needs there, while a program that reads or looks up the directory itself
 * sees every entry; a name found absent, or made on its own, is answered again without the catalogs. In both
 * layers (the preload library and ptrace alone), against the real fixture.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CLI, keyOf, readTruth, serve, tempDir, ucvmfs, FIXTURES, type CliResult, type Truth } from './helpers.js';
import { layeredWith } from './layers.js';
import type { RepositoryServer } from '../lib/serve.js';

const FX = 'fixture.test.example.org';
let server: RepositoryServer;
let truth: Truth;
let layerEnv: Record<string, string> = {};
const layered = layeredWith((e) => { layerEnv = e; }, { timeout: 180_000 });

before(async () => {
  server = await serve({ [FX]: join(FIXTURES, FX, 'srv') });
  truth = readTruth(FX);
});
after(async () => {
  await server.close();
});

/** A fresh cache and shadow tree for one test. */
function fresh(): Record<string, string> {
  return {
    CVMFS_SERVER_URL: `${server.url}/@fqrn@`,
    CVMFS_PUBLIC_KEY: keyOf(FX),
    CVMFS_CACHE_BASE: tempDir('ucvmfs-names-cache-'),
    UCVMFS_SHADOW_DIR: tempDir('ucvmfs-names-shadow-'),
  };
}

function exec(env: Record<string, string>, script: string): Promise<CliResult> {
  return ucvmfs(['exec', '--stats', '--', '/bin/sh', '-c', script], { ...env, ...layerEnv });
}

/** What the shadow tree holds for a directory of the repository (its revision directory found by name). */
function made(env: Record<string, string>, dir: string): string[] {
  const revs = join(env.UCVMFS_SHADOW_DIR!, 'rev');
  const rev = readdirSync(revs).find((n) => n.startsWith(`${FX}@`) && !n.endsWith('.state') && !n.endsWith('.hidden'))!;
  return readdirSync(join(revs, rev, dir)).sort();
}

/** The names the genuine client listed for a directory. */
function names(dir: string): string[] {
  return [...truth.entries[dir]!.entries!].sort();
}

const M = `/cvmfs/${FX}`;

layered('a path through a directory of 3,000 entries makes one name there; reading the directory shows all', async () => {
  const env = fresh();
  const file = '/many/f_1234.txt';
  const r = await exec(env, `cat ${M}${file} | sha1sum; stat -c '%s %a %Y' ${M}/nested/level2/plain_sub/sub.txt`);
  assert.equal(r.code, 0, r.stderr);
  const [sum, st] = r.stdout.toString().trim().split('\n');
  assert.equal(sum!.split(' ')[0], truth.entries[file]!.sha1);
  const sub = truth.entries['/nested/level2/plain_sub/sub.txt']!;
  assert.equal(st, `${sub.size} ${sub.perm.replace(/^0/, '')} ${sub.mtime}`);
  assert.deepEqual(made(env, 'many'), ['f_1234.txt']);
  assert.deepEqual(made(env, 'nested/level2'), ['plain_sub']);
  assert.ok(made(env, '').length <= 3, `top: ${made(env, '').join(' ')}`);
  assert.match(r.stderr, /0 directories listed/);

  // Another job on the same tree: the partly made directories read in full, by every route.
  const l = await exec(env, `ls -a ${M}/many; echo ==; ls -a ${M}/nested/level2; echo ==; cd ${M}/nested/level2/plain_sub && ls -a ..; echo ==; ls -a ${M}; echo ==; stat -c %h ${M}/nested`);
  assert.equal(l.code, 0, l.stderr);
  const [many, level2, up, top, nlink] = l.stdout.toString().split('==\n').map((o) => o.split('\n').filter((n) => n && n !== '.' && n !== '..').sort());
  const listed = (dir: string) => names(dir).filter((n) => !truth.entries[`${dir === '/' ? '' : dir}/${n}`]?.hidden_from_readdir);
  assert.deepEqual(many, listed('/many'));
  assert.deepEqual(level2, listed('/nested/level2'));
  assert.deepEqual(up, listed('/nested/level2'));
  assert.deepEqual(top, listed('/'));
  assert.deepEqual(nlink, [String(truth.entries['/nested']!.nlink)]);
  assert.equal(made(env, 'many').length, names('/many').length);
});

layered('names made on their own and names found absent are answered again without the catalogs', async () => {
  const env = fresh();
  const script = `cat ${M}/many/f_0042.txt >/dev/null; test -e ${M}/many/not_there || echo absent; cat ${M}/nested/not_there_either 2>/dev/null || echo absent`;
  const cold = await exec(env, script);
  assert.equal(cold.code, 0, cold.stderr);
  assert.equal(cold.stdout.toString(), 'absent\nabsent\n');
  assert.doesNotMatch(cold.stderr, /\b0 catalogs loaded/);
  const warm = await exec(env, script);
  assert.equal(warm.code, 0, warm.stderr);
  assert.equal(warm.stdout.toString(), 'absent\nabsent\n');
  assert.match(warm.stderr, /\b0 catalogs loaded/);
  assert.deepEqual(made(env, 'many'), ['f_0042.txt']);
});

layered('a path that ends by climbing (`..`, a link to a parent) shows the directory it reaches in full', async () => {
  const env = fresh();
  // The first job makes only the names its paths pass through.
  const first = await exec(env, `cat ${M}/nested/level2/plain_sub/sub.txt ${M}/nested/level2/n2.txt >/dev/null`);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(made(env, 'nested'), ['level2']);
  const r = await exec(env, `ls -a ${M}/nested/level2/plain_sub/..; echo ==; ls -a ${M}/nested/..; echo ==; ls -a ${M}/links/rel_dir/level2/..`);
  assert.equal(r.code, 0, r.stderr);
  const [level2, top, nested] = r.stdout.toString().split('==\n').map((o) => o.split('\n').filter((n) => n && n !== '.' && n !== '..').sort());
  const listed = (dir: string) => names(dir).filter((n) => !truth.entries[`${dir === '/' ? '' : dir}/${n}`]?.hidden_from_readdir);
  assert.deepEqual(level2, listed('/nested/level2'));
  assert.deepEqual(top, listed('/'));
  assert.deepEqual(nested, listed('/nested'));
});

layered('two jobs on one shadow tree, one listing a 3,000-entry directory while the other makes names in it, and a listing killed half way: the next job sees every entry right', async () => {
  const env = fresh();
  const some = names('/many').filter((_, i) => i % 60 === 0);
  const sums = some.map((n) => truth.entries[`/many/${n}`]!.sha1).join('\n');
  const [list, cat] = await Promise.all([
    exec(env, `ls -la ${M}/many | wc -l`),
    exec(env, `for f in ${some.join(' ')}; do sha1sum < ${M}/many/$f | cut -d' ' -f1; done`),
  ]);
  assert.equal(list.code, 0, list.stderr);
  assert.equal(Number(list.stdout.toString()), names('/many').length + 3); // total, . and ..
  assert.equal(cat.code, 0, cat.stderr);
  assert.equal(cat.stdout.toString().trim(), sums);
  // A listing killed at some point of its work (a fresh tree each time), then a job that reads it all.
  for (const ms of [150, 400, 700]) {
    const e = fresh();
    const child = spawn(process.execPath, [CLI, 'exec', '--', '/bin/sh', '-c', `cat ${M}/many/${some[1]} >/dev/null; ls -la ${M}/many >/dev/null`], { env: { ...process.env, ...e, ...layerEnv }, stdio: 'ignore' });
    const closed = new Promise((r) => child.on('close', r));
    await new Promise((r) => setTimeout(r, ms));
    child.kill('SIGKILL');
    await closed;
    const after = await exec(e, `ls -a ${M}/many; echo ==; for f in ${some.join(' ')}; do sha1sum < ${M}/many/$f | cut -d' ' -f1; done`);
    assert.equal(after.code, 0, after.stderr);
    const [listing, got] = after.stdout.toString().split('==\n');
    assert.deepEqual(listing!.split('\n').filter((n) => n && n !== '.' && n !== '..').sort(), names('/many'), `killed after ${ms} ms`);
    assert.equal(got!.trim(), sums, `killed after ${ms} ms`);
  }
});
