/**
 * Bench group 14: cold and warm metadata at scale. A deterministic tree (`--scale-entries=N`, default 100,000;
 * the sizes are 250,000 and 1,000,000) is published with `ucvmfs publish` and served by nginx: a directory
 * `huge/` of min(50,000, N/4) files, and nested catalogs `cats/cNN/` of 50 directories of 200 files each for the
 * rest. Each workload runs as a whole `ucvmfs exec` command, first on an empty cache and shadow tree, then warm;
 * the baseline is the same command on the source tree on local disk, in the same run. Per row: medians, max
 * resident memory (GNU time) and the shadow entries the cold run made. Two rows again with the shadow tree on
 * tmpfs (`UCVMFS_SHADOW_DIR` under /dev/shm) against the default (in the cache's directory). Rows `14g`-`14i`: a
 * second repository whose root catalog alone holds `--scale-flat=N` entries (default 200,000; 0 skips them), which
 * a cold command must download whole before it answers anything.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { nowMs } from './harness.js';
import { NGINX, startNginx } from '../test/nginx.js';

/** What group 14 needs from the bench. */
export interface ScaleContext {
  work: string;
  cli: string;
  runs: number;
  entries: number;
  add(row: { id: string; name: string; unit: 's'; ucvmfsSamples: number[]; baselineSamples: number[]; baselineName: string; note?: string }): void;
  log(msg: string): void;
}

const FQRN = 'scale.bench.example.org';
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Writes the tree; the paths of the 500 small files of the "500 files" workload and one file of `huge/`. */
export async function makeTree(dir: string, entries: number): Promise<{ small: string[]; inHuge: string }> {
  const huge = Math.min(50_000, Math.floor(entries / 4));
  await mkdir(join(dir, 'huge'), { recursive: true });
  const body = (i: number) => `entry ${i} ${'y'.repeat(16 + (i * 7919) % 184)}\n`;
  for (let i = 0; i < huge; i++) await writeFile(join(dir, 'huge', `f${String(i).padStart(6, '0')}.dat`), body(i));
  const small: string[] = [];
  let made = huge;
  for (let c = 0; made < entries; c++) {
    const cat = join(dir, 'cats', `c${String(c).padStart(2, '0')}`);
    await mkdir(cat, { recursive: true });
    await writeFile(join(cat, '.cvmfscatalog'), '');
    for (let d = 0; d < 50 && made < entries; d++) {
      await mkdir(join(cat, `d${d}`));
      made++;
      for (let f = 0; f < 200 && made < entries; f++, made++) {
        const p = join(cat, `d${d}`, `f${f}.txt`);
        await writeFile(p, body(made));
        if (c === 0 && f < 10) small.push(p.slice(dir.length));
      }
    }
  }
  return { small, inHuge: `/huge/f${String(Math.floor(huge / 2)).padStart(6, '0')}.dat` };
}

/** Writes a tree of `entries` entries in directories of 500 files, for one catalog; the path of one file. */
export async function makeFlatTree(dir: string, entries: number): Promise<string> {
  let made = 0;
  for (let d = 0; made < entries; d++) {
    const sub = join(dir, `d${String(d).padStart(4, '0')}`);
    await mkdir(sub, { recursive: true });
    made++;
    for (let f = 0; f < 500 && made < entries; f++, made++) await writeFile(join(sub, `f${f}.txt`), `flat ${made}\n`);
  }
  return '/d0001/f250.txt';
}

interface Run { s: number; rssMb: number }

/** Runs a command; wall time and max RSS. Fails on a non-zero status. */
function run(command: readonly string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const argv = [...(TIME ? [TIME, '-f', '%M'] : []), ...command];
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d; });
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`${command.join(' ').slice(0, 300)} exited ${code}: ${err.slice(-2000)}`));
      else resolve({ s: (nowMs() - t0) / 1000, rssMb: TIME ? Number(err.trim().split('\n').pop()) / 1024 : 0 });
    });
  });
}

/** `sh -c script`, under `prefix` (`ucvmfs exec --`) or not. */
const sh = (prefix: readonly string[], script: string, env: NodeJS.ProcessEnv) => run([...prefix, '/bin/sh', '-c', script], env);

/** Entries of the shadow tree (every revision directory of it), counted without following links. */
function shadowEntries(shadow: string): number {
  let n = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      n++;
      if (e.isDirectory()) walk(join(d, e.name));
    }
  };
  const rev = join(shadow, 'rev');
  for (const r of existsSync(rev) ? readdirSync(rev) : []) if (!r.endsWith('.state') && !r.endsWith('.hidden')) walk(join(rev, r));
  return n;
}

/** Max resident memory of runs, for a row's note. */
function maxRss(rs: Run[]): string {
  return TIME ? `max RSS ${Math.max(...rs.map((r) => r.rssMb)).toFixed(0)} MB` : 'RSS not measured (no /usr/bin/time)';
}

/** A published repository served by nginx, and the environment `ucvmfs exec` reads it with (no debug, no proxy). */
async function serveByNginx(fqrn: string, out: string): Promise<{ nginx: Awaited<ReturnType<typeof startNginx>>; env: NodeJS.ProcessEnv }> {
  const nginx = await startNginx({ [fqrn]: out });
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', CVMFS_SERVER_URL: nginx.url, CVMFS_PUBLIC_KEY: join(`${out}.keys`, `${fqrn}.pub`) };
  for (const k of ['UCVMFS_TRACER_DEBUG', 'NODE_DEBUG', 'CVMFS_HTTP_PROXY', 'UCVMFS_PREFETCH']) delete env[k];
  return { nginx, env };
}

/** Stops the server and removes the source tree, the repository and its keys. */
async function stopAndRemove(nginx: { stop(): void }, src: string, out: string): Promise<void> {
  nginx.stop();
  for (const d of [src, out, `${out}.keys`]) await rm(d, { recursive: true, force: true });
}

/** Runs group 14; see the module comment. */
export async function scaleGroup(ctx: ScaleContext): Promise<void> {
  if (!NGINX) return ctx.log('group 14 skipped: needs nginx');
  const src = join(ctx.work, 'scale-src');
  const out = join(ctx.work, 'scale-repo');
  const t0 = nowMs();
  const { small, inHuge } = await makeTree(src, ctx.entries);
  const published = await run(['node', ctx.cli, 'publish', src, '--fqrn', FQRN, '--out', out], process.env);
  ctx.log(`group 14: ${ctx.entries.toLocaleString('en')} entries written in ${((nowMs() - t0) / 1000 - published.s).toFixed(1)} s, published in ${published.s.toFixed(1)} s (max RSS ${published.rssMb.toFixed(0)} MB)`);
  const { nginx, env } = await serveByNginx(FQRN, out);
  const R = `/cvmfs/${FQRN}`;
  // The shadow tree on tmpfs (UCVMFS_SHADOW_DIR) for the rows that make most of it, beside the default (in the cache).
  const tmpfs = existsSync('/dev/shm') ? '/dev/shm' : undefined;
  const workloads: [string, string, (root: string) => string][] = [
    ['a', `find of the whole repository (${ctx.entries.toLocaleString('en')} entries)`, (r) => `find ${r} >/dev/null`],
    ['b', 'cat of one file in the large directory', (r) => `cat ${r}${inHuge} >/dev/null`],
    ['c', 'stat of one file in the large directory', (r) => `stat ${r}${inHuge} >/dev/null`],
    ['d', 'ls -l of the large directory', (r) => `ls -l ${r}/huge >/dev/null`],
    ['e', 'ls -lR of one nested catalog (10,050 entries)', (r) => `ls -lR ${r}/cats/c00 >/dev/null`],
    ['f', `cat of ${small.length} small files in ${small.length / 10} directories`, (r) => `cat ${small.map((p) => r + p).join(' ')} >/dev/null`],
  ];
  try {
    for (const [letter, name, script] of workloads) {
      const cold: Run[] = [];
      const warm: Run[] = [];
      const local: number[] = [];
      let made = 0;
      for (let i = 0; i < ctx.runs; i++) {
        const cache = await mkdtemp(join(ctx.work, 'scale-cache-'));
        const e = { ...env, CVMFS_CACHE_BASE: cache, UCVMFS_SHADOW_DIR: join(cache, 'shadow') };
        const exec = ['node', ctx.cli, 'exec', '--'];
        cold.push(await sh(exec, script(R), e));
        made = shadowEntries(join(cache, 'shadow'));
        warm.push(await sh(exec, script(R), e));
        local.push((await sh([], script(src), env)).s);
        await rm(cache, { recursive: true, force: true });
      }
      const onTmpfs: Run[] = [];
      // For the walk, the same alternated with listing ahead off (lib/connector/list-ahead.ts).
      const notAhead: Run[] = [];
      if (tmpfs && (letter === 'a' || letter === 'f')) {
        for (let i = 0; i < ctx.runs; i++) {
          for (const ahead of letter === 'a' ? [true, false] : [true]) {
            const cache = await mkdtemp(join(ctx.work, 'scale-cache-'));
            const shadow = await mkdtemp(join(tmpfs, 'ucvmfs-scale-shadow-'));
            try {
              const r = await sh(['node', ctx.cli, 'exec', '--'], script(R), { ...env, CVMFS_CACHE_BASE: cache, UCVMFS_SHADOW_DIR: shadow, ...(ahead ? {} : { UCVMFS_LIST_AHEAD: 'off' }) });
              (ahead ? onTmpfs : notAhead).push(r);
            } finally {
              await rm(cache, { recursive: true, force: true });
              await rm(shadow, { recursive: true, force: true });
            }
          }
        }
      }
      ctx.log(`group 14${letter}: cold ${cold.map((r) => r.s.toFixed(2)).join('/')} s, warm ${warm.map((r) => r.s.toFixed(2)).join('/')} s, local ${local.map((s) => s.toFixed(3)).join('/')} s; ${made} shadow entries`);
      ctx.add({ id: `14${letter}`, name: `${name}, EMPTY cache (whole command)`, unit: 's', ucvmfsSamples: cold.map((r) => r.s), baselineSamples: local, baselineName: 'the same command on local disk',
        note: `${made.toLocaleString('en')} shadow entries made; ${maxRss(cold)}` });
      if (onTmpfs.length > 0) {
        ctx.add({ id: `14${letter}t`, name: `${name}, EMPTY cache, shadow tree on tmpfs`, unit: 's', ucvmfsSamples: onTmpfs.map((r) => r.s), baselineSamples: cold.map((r) => r.s), baselineName: 'the same with the shadow tree in the cache', note: maxRss(onTmpfs) });
      }
      if (notAhead.length > 0) {
        ctx.add({ id: `14${letter}l`, name: `${name}, EMPTY cache, shadow tree on tmpfs, listing ahead`, unit: 's', ucvmfsSamples: onTmpfs.map((r) => r.s), baselineSamples: notAhead.map((r) => r.s), baselineName: 'the same with UCVMFS_LIST_AHEAD=off', note: `${maxRss(onTmpfs)}; off: ${maxRss(notAhead)}` });
      }
      ctx.add({ id: `14${letter}w`, name: `${name}, warm`, unit: 's', ucvmfsSamples: warm.map((r) => r.s), baselineSamples: local, baselineName: 'the same command on local disk', note: maxRss(warm) });
    }
  } finally {
    await stopAndRemove(nginx, src, out);
  }
}

const FLAT_FQRN = 'flat.bench.example.org';

/**
 * Rows 14g-14i: one catalog of `ctx.flat` entries (the root catalog, no nested one), cold and warm: one `stat`,
 * `ls -l` of a directory of 500 entries in it, `find` of all of it. Baseline: the same command on the source tree.
 */
export async function flatCatalogRows(ctx: ScaleContext & { flat: number }): Promise<void> {
  if (!NGINX || ctx.flat <= 0) return;
  const src = join(ctx.work, 'flat-src');
  const out = join(ctx.work, 'flat-repo');
  const one = await makeFlatTree(src, ctx.flat);
  const published = await run(['node', ctx.cli, 'publish', src, '--fqrn', FLAT_FQRN, '--out', out], process.env);
  ctx.log(`group 14 (flat): ${ctx.flat.toLocaleString('en')} entries in one catalog published in ${published.s.toFixed(1)} s`);
  const { nginx, env } = await serveByNginx(FLAT_FQRN, out);
  const R = `/cvmfs/${FLAT_FQRN}`;
  const dir = one.slice(0, one.lastIndexOf('/'));
  const workloads: [string, string, (root: string) => string][] = [
    ['g', `stat of one file in a catalog of ${ctx.flat.toLocaleString('en')} entries`, (r) => `stat ${r}${one} >/dev/null`],
    ['h', 'ls -l of a directory of 500 entries there', (r) => `ls -l ${r}${dir} >/dev/null`],
    ['i', `find of all of that catalog`, (r) => `find ${r} >/dev/null`],
  ];
  try {
    for (const [letter, name, script] of workloads) {
      const cold: Run[] = [];
      const warm: Run[] = [];
      const local: number[] = [];
      for (let i = 0; i < ctx.runs; i++) {
        const cache = await mkdtemp(join(ctx.work, 'flat-cache-'));
        const e = { ...env, CVMFS_CACHE_BASE: cache, UCVMFS_SHADOW_DIR: join(cache, 'shadow') };
        const exec = ['node', ctx.cli, 'exec', '--'];
        try {
          cold.push(await sh(exec, script(R), e));
          warm.push(await sh(exec, script(R), e));
          local.push((await sh([], script(src), env)).s);
        } finally {
          await rm(cache, { recursive: true, force: true });
        }
      }
      ctx.log(`group 14${letter}: cold ${cold.map((r) => r.s.toFixed(2)).join('/')} s, warm ${warm.map((r) => r.s.toFixed(2)).join('/')} s, local ${local.map((s) => s.toFixed(3)).join('/')} s`);
      ctx.add({ id: `14${letter}`, name: `${name}, EMPTY cache (whole command)`, unit: 's', ucvmfsSamples: cold.map((r) => r.s), baselineSamples: local, baselineName: 'the same command on local disk', note: maxRss(cold) });
      ctx.add({ id: `14${letter}w`, name: `${name}, warm`, unit: 's', ucvmfsSamples: warm.map((r) => r.s), baselineSamples: local, baselineName: 'the same command on local disk', note: maxRss(warm) });
    }
  } finally {
    await stopAndRemove(nginx, src, out);
  }
}
