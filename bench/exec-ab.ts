/**
 * Two builds of the connector against each other on warm, stat-heavy jobs, alternating run by run so that the
 * load of a shared machine falls on both alike: `ls -lR`, `cat` of every file under 64 KiB, and a Python walk
 * that lstats every entry, each with the preload library and with ptrace alone. Prints medians.
 *
 *   node dist/bench/exec-ab.js OTHER_CHECKOUT [runs] [preload|ptrace]
 *
 * OTHER_CHECKOUT is a built checkout (dist/ and build/Release/), for instance `git archive <commit>` unpacked,
 * `npx tsc` run and the addon built; this checkout is "new".
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveRepositories } from '../lib/serve.js';
import { fixturesDir } from '../test/fixtures-location.js';

const FQRN = 'fixture.test.example.org';
const R = `/cvmfs/${FQRN}`;
const other = process.argv[2];
if (!other) throw new Error('usage: node dist/bench/exec-ab.js OTHER_CHECKOUT [runs]');
const runs = Number(process.argv[3] ?? 9);
const only = process.argv[4];
const roots = { base: resolve(other), new: resolve(fileURLToPath(import.meta.url), '../../..') };
const srv = await serveRepositories({ [FQRN]: join(fixturesDir(), FQRN, 'srv') });
const caches = { base: mkdtempSync(join(tmpdir(), 'ucvmfs-ab-')), new: mkdtempSync(join(tmpdir(), 'ucvmfs-ab-')) };
const key = join(fixturesDir(), FQRN, `${FQRN}.pub`);

function run(v: 'base' | 'new', cmd: string, extra: Record<string, string>): Promise<number> {
  const env = { ...process.env, CVMFS_SERVER_URL: `${srv.url}/@fqrn@`, CVMFS_PUBLIC_KEY: key, CVMFS_CACHE_BASE: caches[v], ...extra };
  const t0 = process.hrtime.bigint();
  const p = spawn(process.execPath, [join(roots[v], 'dist/lib/cli/main.js'), 'exec', '--', '/bin/sh', '-c', cmd], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return new Promise((r) => p.on('close', () => r(Number(process.hrtime.bigint() - t0) / 1e6)));
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const jobs: Record<string, string> = {
  'ls -lR': `ls -lR ${R} >/dev/null`,
  'cat < 64 KiB': `cd ${R} && find . -type f -size -65536c -print0 | xargs -0 cat >/dev/null`,
  'python lstat walk': `python3 -c 'import os\nfor d, ds, fs in os.walk("${R}"):\n  [os.lstat(os.path.join(d, f)) for f in fs]'`,
};
try {
  for (const [layer, extra] of [['preload', {}], ['ptrace only', { UCVMFS_NO_PRELOAD: '1' }]] as const) {
    if (only && !layer.startsWith(only)) continue;
    for (const [name, cmd] of Object.entries(jobs)) {
      const t = { base: [] as number[], new: [] as number[] };
      // Two warm-ups each: the first run fills the shadow tree.
      for (const v of ['base', 'new'] as const) for (let i = 0; i < 2; i++) await run(v, cmd, extra);
      for (let i = 0; i < runs; i++) for (const v of i % 2 ? (['new', 'base'] as const) : (['base', 'new'] as const)) t[v].push(await run(v, cmd, extra));
      const b = median(t.base);
      const n = median(t.new);
      console.log(`${name} [${layer}]: base ${b.toFixed(0)} ms, new ${n.toFixed(0)} ms (${((n / b - 1) * 100).toFixed(1)} %)`);
    }
  }
} finally {
  await srv.close();
  for (const c of Object.values(caches)) rmSync(c, { recursive: true, force: true });
}
