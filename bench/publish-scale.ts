/**
 * Bench group 13: the publisher at scale. A deterministic tree of small files (`--publish-files=N`, default
 * 20,000: 100 directories of N/100 files of 10 B to 2 KiB, from a fixed seed) is published whole, then 1% of its
 * files change and it is published again. Baselines from the same run: `cp -a` of the tree (every file read and
 * one written, as a publish of one object per file must) for the full publish, and the full publish itself for
 * the republish. Each publish runs as a whole CLI command; max resident memory from GNU time when present.
 * Row 13c: the same tree with each of its 100 directories a nested catalog, republished after every file of one
 * directory changed (1% of the files, in one catalog): the case where unchanged catalogs are kept.
 */
import { mkdir, rm, writeFile, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { nowMs } from './harness.js';

/** What group 13 needs from the bench. */
export interface PublishScaleContext {
  work: string;
  cli: string;
  runs: number;
  files: number;
  add(row: { id: string; name: string; unit: 's'; ucvmfsSamples: number[]; baselineSamples: number[]; baselineName: string; note?: string }): void;
  log(msg: string): void;
}

const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Runs a command; its wall time in seconds and max RSS in MB (0 without GNU time). Fails on a non-zero status. */
function timed(argv: string[]): Promise<{ s: number; rssMb: number }> {
  const cmd = TIME ? [TIME, '-f', '%M', ...argv] : argv;
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const p = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d; });
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`));
      else resolve({ s: (nowMs() - t0) / 1000, rssMb: TIME ? Number(err.trim().split('\n').pop()) / 1024 : 0 });
    });
  });
}

/** xorshift32: the same tree on every machine. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

/** Writes the tree: 100 directories (each a nested catalog if `nested`), `files` small files in all. */
async function makeTree(dir: string, files: number, nested = false): Promise<string[]> {
  const r = rng(13);
  const paths: string[] = [];
  for (let d = 0; d < 100; d++) {
    await mkdir(join(dir, `d${String(d).padStart(3, '0')}`), { recursive: true });
    if (nested) await writeFile(join(dir, `d${String(d).padStart(3, '0')}`, '.cvmfscatalog'), '');
    for (let f = 0; f < files / 100; f++) {
      const p = join(dir, `d${String(d).padStart(3, '0')}`, `f${String(f).padStart(5, '0')}.txt`);
      await writeFile(p, `file ${d}/${f} ${'x'.repeat(10 + Math.floor(r() * 2000))}\n`);
      paths.push(p);
    }
  }
  return paths;
}

/** Runs group 13; see the module comment. */
export async function publishScaleGroup(ctx: PublishScaleContext): Promise<void> {
  const src = join(ctx.work, 'pubscale-src');
  const paths = await makeTree(src, ctx.files);
  const full: number[] = [];
  const again: number[] = [];
  const copy: number[] = [];
  let rss = { full: 0, again: 0 };
  for (let i = 0; i < ctx.runs; i++) {
    const out = join(ctx.work, `pubscale-out-${i}`);
    const cp = join(ctx.work, `pubscale-cp-${i}`);
    copy.push((await timed(['cp', '-a', src, cp])).s);
    await rm(cp, { recursive: true, force: true });
    const publish = ['node', ctx.cli, 'publish', src, '--fqrn', 'scale.bench.example.org', '--out', out];
    const a = await timed(publish);
    full.push(a.s);
    // 1% of the files change (every 100th), then the next revision.
    for (let k = i; k < paths.length; k += 100) await appendFile(paths[k]!, `changed in run ${i}\n`);
    const b = await timed(publish);
    again.push(b.s);
    rss = { full: Math.max(rss.full, a.rssMb), again: Math.max(rss.again, b.rssMb) };
    await rm(out, { recursive: true, force: true });
    await rm(`${out}.keys`, { recursive: true, force: true });
    ctx.log(`publish of ${ctx.files} files: ${a.s.toFixed(2)} s, republish after 1% changed: ${b.s.toFixed(2)} s, cp -a: ${copy[copy.length - 1]!.toFixed(2)} s`);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const rate = (s: number) => `${Math.round((ctx.files + 101) / s).toLocaleString('en')} entries/s`;
  ctx.add({ id: '13a', name: `publish ${ctx.files.toLocaleString('en')} small files (whole command)`, unit: 's', ucvmfsSamples: full, baselineSamples: copy, baselineName: 'cp -a of the tree',
    note: `${rate(median(full))}; max RSS ${rss.full.toFixed(0)} MB` });
  ctx.add({ id: '13b', name: 'republish after 1% of the files changed', unit: 's', ucvmfsSamples: again, baselineSamples: full, baselineName: 'the full publish',
    note: `${(100 * median(again) / median(full)).toFixed(0)}% of a full publish; max RSS ${rss.again.toFixed(0)} MB` });
  await rm(src, { recursive: true, force: true });
  await localizedRepublish(ctx, median);
}

/**
 * Rows 13c and 13d: 1% changed in one of 100 nested catalogs, republished as it is (13c) and with that catalog's
 * directory named as changed (13d: `--changed`, the other 99 catalogs kept unscanned) into a copy of the same
 * revision; the baseline is the full publish of that tree.
 */
async function localizedRepublish(ctx: PublishScaleContext, median: (xs: number[]) => number): Promise<void> {
  const src = join(ctx.work, 'pubscale-nested-src');
  const paths = await makeTree(src, ctx.files, true);
  const perDir = paths.length / 100;
  const full: number[] = [];
  const again: number[] = [];
  const named: number[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    const out = join(ctx.work, `pubscale-nested-out-${i}`);
    const copy = `${out}-copy`;
    const publish = (to: string) => ['node', ctx.cli, 'publish', src, '--fqrn', 'scale.bench.example.org', '--out', to, '--keys', `${out}.keys`];
    full.push((await timed(publish(out))).s);
    await timed(['cp', '-a', out, copy]);
    for (const p of paths.slice(i * perDir, (i + 1) * perDir)) await appendFile(p, `changed in run ${i}\n`);
    again.push((await timed(publish(out))).s);
    named.push((await timed([...publish(copy), '--changed', `d${String(i).padStart(3, '0')}`])).s);
    for (const d of [out, copy, `${out}.keys`]) await rm(d, { recursive: true, force: true });
    ctx.log(`nested tree: publish ${full[full.length - 1]!.toFixed(2)} s, republish after one catalog's files changed: ${again[again.length - 1]!.toFixed(2)} s, with it named: ${named[named.length - 1]!.toFixed(2)} s`);
  }
  ctx.add({ id: '13c', name: 'republish after 1% changed in one nested catalog (of 100)', unit: 's', ucvmfsSamples: again, baselineSamples: full, baselineName: 'the full publish of that tree',
    note: `${(100 * median(again) / median(full)).toFixed(0)}% of a full publish` });
  ctx.add({ id: '13d', name: 'the same, its directory named (--changed)', unit: 's', ucvmfsSamples: named, baselineSamples: full, baselineName: 'the full publish of that tree',
    note: `${(100 * median(named) / median(full)).toFixed(0)}% of a full publish` });
  await rm(src, { recursive: true, force: true });
}
