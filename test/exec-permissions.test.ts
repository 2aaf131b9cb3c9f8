/**
 * A program the tracer starts through its interpreter or loader (a `#!` script under /cvmfs) runs only where the
 * kernel would have run it: its execute permission checked for the process that asks, as on the source tree. In
 * both layers, on a repository published here.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { servePublished, tempDir, ucvmfs, type PublishedRepository } from './helpers.js';
import { layeredWith } from './layers.js';

const FQRN = 'perm.test.example.org';
const M = `/cvmfs/${FQRN}`;
let repo: PublishedRepository;
let src = '';
let layerEnv: Record<string, string> = {};
const layered = layeredWith((e) => { layerEnv = e; }, { timeout: 120_000 });
const SCRIPTS: Array<[string, number]> = [['nox', 0o644], ['x755', 0o755], ['x700', 0o700], ['x744', 0o744], ['x711', 0o711]];

before(async () => {
  src = tempDir('ucvmfs-xperm-src-');
  chmodSync(src, 0o755);
  for (const [name, mode] of SCRIPTS) {
    writeFileSync(join(src, name), `#!/bin/sh\necho ran ${name}\n`);
    chmodSync(join(src, name), mode);
  }
  repo = await servePublished(src, FQRN);
});
after(async () => {
  await repo.server.close();
});

/** Each script run, then its status, as one line per script. */
function script(dir: string): string {
  return SCRIPTS.map(([name]) => `${dir}/${name} 2>/dev/null; echo ${name}=$?`).join('; ');
}

function run(argv: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d; });
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
  });
}

layered('a #! script under /cvmfs runs only with execute permission for the process, as on the source tree', async () => {
  const env = repo.env();
  const want = await run(['/bin/sh', '-c', script(src)]);
  assert.match(want, /nox=126/);
  const r = await ucvmfs(['exec', '--', '/bin/sh', '-c', script(M)], { ...env, ...layerEnv });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), want);
  if (process.getuid?.() !== 0) return;
  // Another user in the job (root's job switching to nobody): the group and other bits decide, as on a mount
  // where every entry is the mounting user's.
  const as = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '/bin/sh', '-c'];
  const wantNobody = await run([...as, script(src)]);
  assert.match(wantNobody, /x700=126/);
  assert.match(wantNobody, /x744=126/);
  const nobody = await ucvmfs(['exec', '--', ...as, script(M)], { ...env, ...layerEnv });
  assert.equal(nobody.stdout.toString(), wantNobody);
});
