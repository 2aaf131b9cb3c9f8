/**
 * Bench group 11: cold starts, as a job on a fresh node lives them. A Python job (the interpreter, its standard
 * library and a script, all from a repository this group publishes from the host's Python) is run under
 * `ucvmfs exec` with an empty cache, whole command timed (Node start, repository open, downloads, the shadow tree,
 * the tracer), on loopback and behind a relay that adds 20 and 50 ms to every request. Baselines: the same job
 * from local disk, and, when `--genuine-mount`/`--genuine-umount` name commands that mount the genuine client
 * (`CMD FQRN SERVER_URL PUBKEY MOUNTPOINT CACHEDIR`, `CMD MOUNTPOINT`), the same job on a genuine mount made with
 * an empty cache just before (mounting not timed).
 */
import { copyFile, cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { publish } from '../lib/index.js';
import { median } from './harness.js';
import { delayProxyProcess } from './delay-proxy.js';
import { NGINX, startNginx } from '../test/nginx.js';
import { startServer } from './server.js';

/** What group 11 needs from the bench. */
export interface ColdStartContext {
  work: string;
  cli: string;
  fixture: { fqrn: string; srv: string; key: string; bigPaths: string[]; bigBytes: number; smallPath: string };
  runs: number;
  genuine?: { mount: string; umount: string };
  runCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }>;
  add(row: { id: string; name: string; unit: 's' | 'MB/s'; ucvmfsSamples: number[]; baselineSamples: number[]; baselineName: string; note?: string; targetMax?: number; maxSlowdown?: number }): void;
  log(msg: string): void;
}

const PY_FQRN = 'py.bench.example.org';
const run = promisify(execFile);
const JOB = `import json, argparse, email.message, http.client, decimal, datetime, collections, re, textwrap, pathlib
import subprocess, logging, csv, hashlib, zipfile, tarfile, urllib.parse, sqlite3, xml.etree.ElementTree as ET
p = argparse.ArgumentParser(); p.add_argument('--n', type=int, default=3); a = p.parse_args()
d = {'x': [decimal.Decimal('1.1') * i for i in range(a.n)], 'when': datetime.date(2026, 12, 1).isoformat()}
print(json.dumps(d, default=str), hashlib.sha1(b'cvmfs').hexdigest(), len(ET.fromstring('<a><b/></a>')))
`;

const q = (x: string): string => `'${x.replace(/'/g, `'\\''`)}'`;

/** The host's Python (binary and standard library) and the job, as a tree to publish. */
async function pythonTree(dir: string): Promise<{ version: string }> {
  const exe = execFileSync('/usr/bin/python3', ['-c', 'import sys, os; print(os.path.realpath(sys.executable)); print(sys.prefix); print(f"{sys.version_info[0]}.{sys.version_info[1]}")']).toString().trim().split('\n');
  const [bin, prefix, version] = exe as [string, string, string];
  await mkdir(join(dir, 'usr', 'bin'), { recursive: true });
  await mkdir(join(dir, 'usr', 'lib'), { recursive: true });
  await copyFile(bin, join(dir, 'usr', 'bin', `python${version}`));
  execFileSync('chmod', ['0755', join(dir, 'usr', 'bin', `python${version}`)]);
  await symlink(`python${version}`, join(dir, 'usr', 'bin', 'python3'));
  // Timestamps kept: a compiled module (`__pycache__/*.pyc`) is used only while its source has the mtime it records.
  await cp(join(prefix, 'lib', `python${version}`), join(dir, 'usr', 'lib', `python${version}`), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  await writeFile(join(dir, 'job.py'), JOB);
  return { version };
}

/** Runs group 11; see the module comment. */
export async function coldStartGroup(ctx: ColdStartContext): Promise<void> {
  const { work, cli, fixture, runs, genuine } = ctx;
  const pySrc = join(work, 'py-src');
  const { version } = await pythonTree(pySrc);
  const pub = await publish(pySrc, { fqrn: PY_FQRN, out: join(work, 'py-repo') });
  const keys = `${fixture.key}:${pub.publicKeyPath}`;
  const repos = { [fixture.fqrn]: fixture.srv, [PY_FQRN]: join(work, 'py-repo') };
  const nginx = NGINX ? await startNginx(repos) : undefined;
  const fallback = nginx ? undefined : await startServer(repos);
  const originUrl = nginx ? nginx.url.replace('/cvmfs/@fqrn@', '') : fallback!.url.replace(/\/cvmfs$/, '');
  const port = Number(new URL(originUrl).port);
  ctx.log(`group 11: python ${version} published (${PY_FQRN}); served by ${nginx ? 'nginx' : 'lib/serve.ts (nginx not installed)'}`);
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', PYTHONDONTWRITEBYTECODE: '1' };
  for (const k of ['UCVMFS_TRACER_DEBUG', 'PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'NODE_DEBUG', 'CVMFS_HTTP_PROXY']) delete baseEnv[k];
  const job = (root: string) => [`${root}/usr/bin/python3`, `${root}/job.py`];
  const expected = (await ctx.runCommand(job(join(pySrc)), baseEnv)).stdout;
  if (!expected.includes('85336fc55e2a8de48608af098e181ba0dd37dd3c')) throw new Error(`group 11: the local Python job failed: ${expected}`);
  const check = (what: string, r: { code: number | null; stdout: string; stderr: string }) => {
    if (r.code !== 0 || r.stdout !== expected) throw new Error(`group 11: ${what} failed (exit ${r.code}): ${r.stderr.slice(-400)}`);
  };

  const local: number[] = [];
  for (let i = 0; i < Math.max(runs, 5); i++) {
    const r = await ctx.runCommand(job(pySrc), baseEnv);
    check('local job', r);
    local.push(r.ms / 1000);
  }

  const exec = (server: string, cache: string, extra: NodeJS.ProcessEnv = {}) => ({
    ...baseEnv, CVMFS_SERVER_URL: `${server}/cvmfs/@fqrn@`, CVMFS_PUBLIC_KEY: keys, CVMFS_CACHE_BASE: cache, UCVMFS_SHADOW_DIR: join(cache, 'shadow'), ...extra,
  });
  const fresh = () => mkdtemp(join(work, 'cold-'));
  const mountAt = join(work, 'genuine-mnt');
  /** Mounts `fqrn` with the genuine client and an empty cache, runs `fn`, unmounts. */
  /** Runs of the genuine client that failed (reported in the log, left out of the samples). */
  let genuineFailures = 0;
  const onGenuine = async <T>(fqrn: string, server: string, fn: (root: string) => Promise<T>): Promise<T | undefined> => {
    const mp = join(mountAt, fqrn);
    await mkdir(mp, { recursive: true });
    const cache = await fresh();
    try {
      // Asynchronous, so that this process stays responsive while cvmfs2 mounts.
      await run(genuine!.mount, [fqrn, `${server}/cvmfs/@fqrn@`, fqrn === PY_FQRN ? pub.publicKeyPath : fixture.key, mp, cache]);
      try {
        return await fn(mp);
      } finally {
        await run(genuine!.umount, [mp]);
      }
    } catch (e) {
      genuineFailures++;
      ctx.log(`group 11: the genuine client failed (${server}): ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`);
      return undefined;
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  };
  const sample = (xs: number[], x: number | undefined) => {
    if (x !== undefined) xs.push(x);
  };

  const proxies = [];
  try {
    // The job's access profile, recorded once on an empty cache (as a first job would), replayed by the `r` rows.
    const profile = join(work, 'py.profile');
    {
      const cache = await fresh();
      check('ucvmfs exec (recording a profile)', await ctx.runCommand([process.execPath, cli, 'exec', '--profile', profile, '--', ...job(`/cvmfs/${PY_FQRN}`)], exec(originUrl, cache)));
      await rm(cache, { recursive: true, force: true });
    }
    // 11a-c: the Python job once, empty cache, whole command; loopback, +20 ms, +50 ms per request.
    for (const [id, delay] of [['11a', 0], ['11b', 20], ['11c', 50]] as const) {
      const relay = delay > 0 ? await delayProxyProcess(port, delay) : undefined;
      if (relay) proxies.push(relay);
      const server = relay?.origin ?? originUrl;
      const u: number[] = [];
      const noPrefetch: number[] = [];
      const replayed: number[] = [];
      const g: number[] = [];
      for (let i = 0; i < runs; i++) {
        for (const [out, extra] of [[u, {}], [noPrefetch, { UCVMFS_PREFETCH: 'off' }], [replayed, { UCVMFS_PROFILE: profile }]] as const) {
          const cache = await fresh();
          const r = await ctx.runCommand([process.execPath, cli, 'exec', '--', ...job(`/cvmfs/${PY_FQRN}`)], exec(server, cache, extra));
          check(`ucvmfs exec (cold, +${delay} ms)`, r);
          out.push(r.ms / 1000);
          await rm(cache, { recursive: true, force: true });
        }
        if (genuine) {
          sample(g, await onGenuine(PY_FQRN, server, async (root) => {
            const r = await ctx.runCommand(job(root), baseEnv);
            check(`genuine client (cold, +${delay} ms)`, r);
            return r.ms / 1000;
          }));
        }
      }
      const label = delay ? `, +${delay} ms per request` : ', loopback';
      ctx.add({ id, name: `Python job once, EMPTY cache${label}: ucvmfs exec, whole command`, unit: 's', ucvmfsSamples: u, baselineSamples: local, baselineName: 'the job from local disk (warm)', note: `without sibling prefetch (UCVMFS_PREFETCH=off): median ${median(noPrefetch).toFixed(3)} s` });
      ctx.add({ id: `${id}p`, name: `Python job once, EMPTY cache${label}: ucvmfs exec with sibling prefetch`, unit: 's', ucvmfsSamples: u, baselineSamples: noPrefetch, baselineName: 'ucvmfs exec with UCVMFS_PREFETCH=off' });
      if (genuine && g.length) ctx.add({ id: `${id}g`, name: `Python job once, EMPTY cache${label}: ucvmfs exec, whole command`, unit: 's', ucvmfsSamples: u, baselineSamples: g, baselineName: 'genuine cvmfs2, mounted with an empty cache (mount not timed)' });
      const rname = `Python job once, EMPTY cache${label}: ucvmfs exec --profile (recorded by an earlier job), whole command`;
      ctx.add({ id: `${id}r`, name: rname, unit: 's', ucvmfsSamples: replayed, baselineSamples: local, baselineName: 'the job from local disk (warm)' });
      ctx.add({ id: `${id}rp`, name: rname, unit: 's', ucvmfsSamples: replayed, baselineSamples: u, baselineName: 'ucvmfs exec without a profile (sibling prefetch)' });
      if (genuine && g.length) ctx.add({ id: `${id}rg`, name: rname, unit: 's', ucvmfsSamples: replayed, baselineSamples: g, baselineName: 'genuine cvmfs2, mounted with an empty cache (mount not timed)' });
    }

    // 11d: the chunked files, cold, whole command.
    {
      const u: number[] = [];
      const g: number[] = [];
      for (let i = 0; i < runs; i++) {
        const cache = await fresh();
        // Output to /dev/null (through a shell): a pipe into this process would measure this process.
        const r = await ctx.runCommand(['bash', '-c', `${q(process.execPath)} ${q(cli)} cat ${fixture.bigPaths.map((p) => q(`${fixture.fqrn}:${p}`)).join(' ')} > /dev/null`], exec(originUrl, cache));
        if (r.code !== 0) throw new Error(`group 11: ucvmfs cat failed: ${r.stderr}`);
        u.push(fixture.bigBytes / 1e6 / (r.ms / 1000));
        await rm(cache, { recursive: true, force: true });
        if (genuine) {
          sample(g, await onGenuine(fixture.fqrn, originUrl, async (root) => {
            const c = await ctx.runCommand(['bash', '-c', `cat ${fixture.bigPaths.map((p) => q(root + p)).join(' ')} > /dev/null`], baseEnv);
            return fixture.bigBytes / 1e6 / (c.ms / 1000);
          }));
        }
      }
      const tree = join(work, 'tree');
      const locals: number[] = [];
      for (let i = 0; i < runs; i++) locals.push(fixture.bigBytes / 1e6 / ((await ctx.runCommand(['bash', '-c', `cat ${fixture.bigPaths.map((p) => q(tree + p)).join(' ')} > /dev/null`], baseEnv)).ms / 1000));
      const name = `cold read of the ${fixture.bigPaths.length} chunked files (${(fixture.bigBytes / 1e6).toFixed(1)} MB): ucvmfs cat, whole command`;
      ctx.add({ id: '11d', name, unit: 'MB/s', ucvmfsSamples: u, baselineSamples: locals, baselineName: 'cat of the local copy (warm page cache)' });
      if (genuine && g.length) ctx.add({ id: '11dg', name, unit: 'MB/s', ucvmfsSamples: u, baselineSamples: g, baselineName: 'genuine cvmfs2: cat on a mount with an empty cache' });
    }

    // 11e: cold `ucvmfs cat` of a small file, whole command.
    {
      const u: number[] = [];
      const g: number[] = [];
      for (let i = 0; i < runs; i++) {
        const cache = await fresh();
        const r = await ctx.runCommand([process.execPath, cli, 'cat', `${fixture.fqrn}:${fixture.smallPath}`], exec(originUrl, cache));
        if (r.code !== 0) throw new Error(`group 11: ucvmfs cat failed: ${r.stderr}`);
        u.push(r.ms / 1000);
        await rm(cache, { recursive: true, force: true });
        if (genuine) sample(g, await onGenuine(fixture.fqrn, originUrl, async (root) => (await ctx.runCommand(['cat', root + fixture.smallPath], baseEnv)).ms / 1000));
      }
      const locals: number[] = [];
      for (let i = 0; i < runs; i++) locals.push((await ctx.runCommand(['cat', join(work, 'tree') + fixture.smallPath], baseEnv)).ms / 1000);
      const name = `cold cat of ${fixture.smallPath}: ucvmfs cat, whole command`;
      ctx.add({ id: '11e', name, unit: 's', ucvmfsSamples: u, baselineSamples: locals, baselineName: 'cat of the local copy' });
      if (genuine && g.length) ctx.add({ id: '11eg', name, unit: 's', ucvmfsSamples: u, baselineSamples: g, baselineName: 'genuine cvmfs2: cat on a mount with an empty cache (mount not timed)' });
    }

    // 11f-i: warm. One cache filled by a first run; the genuine mount kept for all of them.
    {
      const cache = await fresh();
      const warmEnv = exec(originUrl, cache);
      const pyLoop = (root: string) => ['bash', '-c', `for i in $(seq 10); do ${job(root).join(' ')} >/dev/null || exit 1; done`];
      const workloads: { id: string; name: string; argv: (py: string, fix: string) => string[] }[] = [
        { id: '11f', name: 'Python job, 10 runs, warm', argv: (py) => pyLoop(py) },
        { id: '11g', name: 'ls -lR of the main fixture, warm', argv: (_py, fix) => ['bash', '-c', `ls -lR ${fix} >/dev/null`] },
        { id: '11h', name: 'cat of every file of the main fixture, warm', argv: (_py, fix) => ['bash', '-c', `find ${fix} -type f -print0 | xargs -0 cat >/dev/null`] },
        { id: '11i', name: 'exec -- true, warm', argv: () => ['true'] },
      ];
      const tree = join(work, 'tree');
      const hasTree = existsSync(tree);
      const u = new Map<string, number[]>();
      const n = new Map<string, number[]>();
      for (const w of workloads) {
        const argv = w.argv(`/cvmfs/${PY_FQRN}`, `/cvmfs/${fixture.fqrn}`);
        await ctx.runCommand([process.execPath, cli, 'exec', '--', ...argv], warmEnv);
        const us: number[] = [];
        const ns: number[] = [];
        for (let i = 0; i < runs; i++) {
          us.push((await ctx.runCommand([process.execPath, cli, 'exec', '--', ...argv], warmEnv)).ms / 1000);
          if (hasTree || w.id === '11f' || w.id === '11i') ns.push((await ctx.runCommand(w.argv(pySrc, tree), baseEnv)).ms / 1000);
        }
        u.set(w.id, us);
        n.set(w.id, ns);
        if (ns.length) ctx.add({ id: w.id, name: `${w.name}: ucvmfs exec`, unit: 's', ucvmfsSamples: us, baselineSamples: ns, baselineName: 'the same from local disk' });
      }
      if (genuine) {
        await onGenuine(PY_FQRN, originUrl, async (py) => onGenuine(fixture.fqrn, originUrl, async (fix) => {
          for (const w of workloads) {
            if (w.id === '11i') continue;
            await ctx.runCommand(w.argv(py, fix), baseEnv); // fills the genuine cache
            const gs: number[] = [];
            for (let i = 0; i < runs; i++) gs.push((await ctx.runCommand(w.argv(py, fix), baseEnv)).ms / 1000);
            ctx.add({ id: `${w.id}g`, name: `${w.name}: ucvmfs exec`, unit: 's', ucvmfsSamples: u.get(w.id)!, baselineSamples: gs, baselineName: 'genuine cvmfs2 mount, warm' });
          }
        }));
      }
    }
    if (genuineFailures) ctx.log(`group 11: ${genuineFailures} runs of the genuine client failed and are left out`);
  } finally {
    for (const p of proxies) await p.close();
    nginx?.stop();
    await fallback?.close();
  }
}
