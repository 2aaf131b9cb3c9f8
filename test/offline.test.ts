/**
 * Preload and export for sites without the network: spec files, a cache filled ahead of time and read with the
 * server gone, a plain directory tree compared with truth.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openRepository, parseSpec } from '../lib/index.js';
import { keyOf, openFixture, readTruth, tempDir, ucvmfs } from './helpers.js';

const FQRN = 'fixture.test.example.org';

test('spec files: subtrees, globs, exact paths, exclusions', () => {
  const s = parseSpec('# comment\n/sw\n!/sw/src\n/many/f_00*.txt\n^/big\n/deep/**/leaf*\n');
  const yes = ['/sw', '/sw/bin/hello', '/many/f_0001.txt', '/big', '/deep/a/b/c/leaf.txt'];
  const no = ['/', '/sw/src', '/sw/src/x.c', '/many', '/many/f_1001.txt', '/big/x', '/links'];
  for (const p of yes) assert.ok(s.selects(p), p);
  for (const p of no) assert.ok(!s.selects(p), p);
  assert.ok(s.mayContain('/many') && s.mayContain('/deep/a') && !s.mayContain('/sw/src') && !s.mayContain('/links'));
  assert.ok(parseSpec('').selects('/anything'), 'no spec selects everything');
  // Names may hold newlines: a subtree and ** take them as any other byte.
  const all = parseSpec('/\n');
  const deep = parseSpec('/d/**\n/sw\n');
  for (const p of ['/new\nline', '/d\nx/f']) assert.ok(all.selects(p), JSON.stringify(p));
  assert.ok(deep.selects('/d/a\nb/c') && deep.selects('/sw/x\ny') && !deep.selects('/s\nw'));
});

test('ucvmfs preload fills the cache for a spec; with the server gone those files read and others fail', async () => {
  const truth = readTruth(FQRN);
  const { repo, server, cacheDir } = await openFixture(FQRN);
  repo.close();
  const specFile = join(tempDir('ucvmfs-spec-'), 'spec');
  writeFileSync(specFile, '/sw\n/big\n!/sw/src\n');
  const env = { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(FQRN), CVMFS_CACHE_BASE: cacheDir };
  const first = await ucvmfs(['preload', '--spec', specFile, FQRN], env);
  assert.equal(first.code, 0, first.stderr);
  const selected = Object.entries(truth.entries).filter(([p, t]) => t.type === 'file' && (p.startsWith('/sw/') || p.startsWith('/big/')) && !p.startsWith('/sw/src/'));
  assert.match(first.stderr, new RegExp(`preload: ${selected.length}/${selected.length} files`));
  const again = await ucvmfs(['preload', '--spec', specFile, FQRN], env);
  assert.match(again.stderr, / 0 objects downloaded/, 'a second preload finds everything cached (resumable)');
  await server.close();
  const offline = await openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir, onWarning: () => undefined });
  try {
    for (const [p, t] of selected) assert.equal(createHash('sha1').update((await offline.fs.readFile(p)) as Buffer).digest('hex'), t.sha1, p);
    await assert.rejects(offline.fs.readFile('/small/hello.txt'), (e: { code?: string }) => e.code === 'EIO');
  } finally {
    offline.close();
  }
});

test('ucvmfs export writes a plain tree equal to truth.json: modes, mtimes, sizes, targets, contents, hardlinks', async () => {
  const truth = readTruth(FQRN);
  const { repo, server, cacheDir } = await openFixture(FQRN);
  repo.close();
  const to = join(tempDir('ucvmfs-export-'), 'tree');
  try {
    const r = await ucvmfs(['export', '--to', to, '--var', 'SOME_VAR=alpha', FQRN], { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(FQRN), CVMFS_CACHE_BASE: cacheDir });
    assert.equal(r.code, 0, r.stderr);
  } finally {
    await server.close();
  }
  for (const [p, t] of Object.entries(truth.entries)) {
    const local = join(to, p);
    const st = lstatSync(local, { bigint: true });
    assert.equal(Number(st.mode), t.mode, `${p} mode`);
    assert.equal(st.mtimeNs, BigInt(t.mtime_ns), `${p} mtime`);
    if (t.type === 'file') {
      assert.equal(Number(st.size), t.size, `${p} size`);
      assert.equal(createHash('sha1').update(readFileSync(local)).digest('hex'), t.sha1, `${p} content`);
      assert.equal(Number(st.nlink), t.nlink, `${p} nlink`);
    }
    if (t.type === 'symlink') assert.equal(readlinkSync(local), t.target, `${p} target`);
    if (t.type === 'dir') assert.deepEqual(readdirSync(local).sort(), t.entries, `${p} listing`);
  }
});

test('ucvmfs export with a spec: names of 255 bytes and names with newlines, no temporary left behind', async () => {
  const { publish } = await import('../lib/index.js');
  const { serve } = await import('./helpers.js');
  const { mkdirSync } = await import('node:fs');
  const src = tempDir('ucvmfs-export-src-');
  const long = 'L'.repeat(255);
  writeFileSync(join(src, long), 'long\n');
  writeFileSync(join(src, 'new\nline'), 'nl\n');
  mkdirSync(join(src, 'd\nx'));
  writeFileSync(join(src, 'd\nx', 'f'), 'f\n');
  const fqrn = 'export.test.example.org';
  const out = join(tempDir('ucvmfs-export-repo-'), 'repo');
  const res = await publish(src, { fqrn, out, readSourceXattrs: false });
  const server = await serve({ [fqrn]: out });
  const spec = join(tempDir('ucvmfs-export-spec-'), 'spec');
  writeFileSync(spec, '/**\n');
  const to = join(tempDir('ucvmfs-export-'), 'tree');
  try {
    const r = await ucvmfs(['export', '--to', to, '--spec', spec, fqrn], { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: res.publicKeyPath, CVMFS_CACHE_BASE: tempDir('ucvmfs-export-cache-') });
    assert.equal(r.code, 0, r.stderr);
  } finally {
    await server.close();
  }
  assert.deepEqual(readdirSync(to).sort(), [long, 'd\nx', 'new\nline'].sort());
  assert.equal(readFileSync(join(to, long), 'utf8'), 'long\n');
  assert.equal(readFileSync(join(to, 'new\nline'), 'utf8'), 'nl\n');
  assert.deepEqual(readdirSync(join(to, 'd\nx')), ['f']);
});
