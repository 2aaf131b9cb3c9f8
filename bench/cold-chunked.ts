/**
 * Cold reads of the fixture's two chunked files (55.5 MB of file bytes, 34 MB on the wire), this checkout against
 * another built one, alternating run by run: through the library (bench row 5b: the repository opened outside the
 * timing), a whole `ucvmfs cat`, and a whole `ucvmfs exec -- cat`. Every run gets an empty cache and shadow tree.
 * The commands' start-up is taken out by timing the same command on one small file (README.txt) on an empty cache
 * right after: MB/s = 55.5 MB / median over the runs of (big − small), paired run by run because the start-up
 * alone moves by 0.1–0.2 s on a shared machine. Also the bytes the command's process tree wrote to the file system (GNU time's
 * `%O`, the kernel's write_bytes: pages dirtied, so before any writeback).
 *
 *   node dist/bench/cold-chunked.js [OTHER_CHECKOUT] [runs] [--cache-base=DIR]
 *
 * Served by Debian's nginx (lib/serve.ts in this process if there is none). OTHER_CHECKOUT is a built checkout
 * (dist/ and build/Release/); without it only this one is measured. Caches go under --cache-base (default the OS
 * temporary directory; on the development VM /tmp is a slow disk, use a directory under /work).
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serveRepositories } from '../lib/serve.js';
import { fixturesDir } from '../test/fixtures-location.js';
import { NGINX, startNginx } from '../test/nginx.js';

const FQRN = 'fixture.test.example.org';
const BIG = ['/big/random_32M.bin', '/big/text_20M.txt'];
const FILE_MB = 55.508992;
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const cacheBase = process.argv.find((a) => a.startsWith('--cache-base='))?.slice('--cache-base='.length) ?? tmpdir();
const other = args[0] && Number.isNaN(Number(args[0])) ? args.shift() : undefined;
const runs = Number(args[0] ?? 5);
const roots: Record<string, string> = { new: resolve(fileURLToPath(import.meta.url), '../../..') };
if (other) roots.base = resolve(other);
const srvDir = join(fixturesDir(), FQRN, 'srv');
const nginx = NGINX ? await startNginx({ [FQRN]: srvDir }) : undefined;
const inproc = nginx ? undefined : await serveRepositories({ [FQRN]: srvDir });
const url = nginx ? nginx.url : `${inproc!.url}/@fqrn@`;
const key = join(fixturesDir(), FQRN, `${FQRN}.pub`);
const TIME = '/usr/bin/time';

/** One whole command on an empty cache and shadow tree: ms, and MB written (undefined without GNU time). */
async function command(root: string, argv: string[]): Promise<{ ms: number; mb?: number }> {
  const dir = mkdtempSync(join(cacheBase, 'ucvmfs-cold-'));
  const env = { ...process.env, CVMFS_SERVER_URL: url, CVMFS_PUBLIC_KEY: key, CVMFS_CACHE_BASE: join(dir, 'c'), UCVMFS_SHADOW_DIR: join(dir, 's') };
  const main = [join(root, 'dist/lib/cli/main.js'), ...argv];
  const timed = existsSync(TIME);
  const [cmd, cmdArgs] = timed ? [TIME, ['-o', join(dir, 'time'), '-f', '%O', process.execPath, ...main]] : [process.execPath, main];
  try {
    const t0 = process.hrtime.bigint();
    const code = await new Promise<number | null>((r) => spawn(cmd, cmdArgs, { env, stdio: ['ignore', 'ignore', 'inherit'] }).on('close', r));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (code !== 0) throw new Error(`${argv.join(' ')} exited with ${code}`);
    return timed ? { ms, mb: (Number(readFileSync(join(dir, 'time'), 'utf8').trim().split('\n').pop()) * 512) / 1e6 } : { ms };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The library: repository opened on an empty cache (not timed), then both files read in 1 MiB reads. */
async function library(root: string): Promise<number> {
  const lib = (await import(pathToFileURL(join(root, 'dist/lib/index.js')).href)) as typeof import('../lib/index.js');
  const dir = mkdtempSync(join(cacheBase, 'ucvmfs-cold-'));
  const repo = await lib.openRepository(FQRN, { serverUrls: [url.replace('@fqrn@', FQRN)], publicKeys: [key], cacheDir: dir });
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    const t0 = process.hrtime.bigint();
    for (const p of BIG) {
      const fh = await repo.fs.open(p);
      while ((await fh.read(buf, 0, buf.length, null)).bytesRead > 0);
      await fh.close();
    }
    return Number(process.hrtime.bigint() - t0) / 1e6;
  } finally {
    repo.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const workloads: Record<string, { big: string[]; small: string[] }> = {
  cat: { big: ['cat', ...BIG.map((p) => `${FQRN}:${p}`)], small: ['cat', `${FQRN}:/README.txt`] },
  exec: { big: ['exec', '--', 'cat', ...BIG.map((p) => `/cvmfs/${FQRN}${p}`)], small: ['exec', '--', 'cat', `/cvmfs/${FQRN}/README.txt`] },
};
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const samples: Record<string, number[]> = {};
const add = (k: string, v: number) => (samples[k] ??= []).push(v);
try {
  const versions = Object.keys(roots);
  for (let i = 0; i < runs; i++) {
    for (const v of i % 2 ? [...versions].reverse() : versions) {
      add(`${v} library`, await library(roots[v]!));
      for (const [w, a] of Object.entries(workloads)) {
        const big = await command(roots[v]!, a.big);
        const small = await command(roots[v]!, a.small);
        add(`${v} ${w} big`, big.ms);
        add(`${v} ${w} small`, small.ms);
        add(`${v} ${w} data`, big.ms - small.ms);
        if (big.mb !== undefined) add(`${v} ${w} MB written`, big.mb);
      }
      process.stderr.write(`run ${i + 1}/${runs} ${v} done\n`);
    }
  }
  for (const v of versions) {
    const lib = median(samples[`${v} library`]!);
    const line = [`${v}: library ${lib.toFixed(0)} ms = ${(FILE_MB / lib * 1000).toFixed(0)} MB/s`];
    for (const w of Object.keys(workloads)) {
      const big = median(samples[`${v} ${w} big`]!);
      const data = median(samples[`${v} ${w} data`]!);
      const mb = samples[`${v} ${w} MB written`];
      line.push(`${w} ${big.toFixed(0)} ms whole, ${data.toFixed(0)} ms start-up subtracted = ${(FILE_MB / data * 1000).toFixed(0)} MB/s${mb ? `, ${median(mb).toFixed(1)} MB written` : ''}`);
    }
    console.log(line.join('; '));
  }
  console.log(JSON.stringify(samples));
} finally {
  nginx?.stop();
  await inproc?.close();
}
