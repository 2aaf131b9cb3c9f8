/**
 * Bench group 12: many jobs on one node. 1, 4 and 16 `ucvmfs exec` jobs (a Python job: interpreter, modules and
 * a listing from /cvmfs) started at the same moment on one empty cache, then again warm, served by nginx on
 * loopback. Per row: wall time of the whole batch against the same batch from local disk, requests at the server
 * (all and distinct, from nginx's access log), and the sum of the jobs' maximum resident memory (GNU time's %M
 * of each `ucvmfs` process, which holds the largest process of the job: the Node tracer).
 */
import { chmod, copyFile, cp, mkdir, mkdtemp, readFile, realpath, rm, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { publish } from '../lib/index.js';
import { nowMs } from './harness.js';
import { NGINX, startNginx } from '../test/nginx.js';

/** What group 12 needs from the bench. */
export interface ManyJobsContext {
  work: string;
  cli: string;
  runs: number;
  add(row: { id: string; name: string; unit: 's'; ucvmfsSamples: number[]; baselineSamples: number[]; baselineName: string; note?: string }): void;
  log(msg: string): void;
}

const FQRN = 'jobs.bench.example.org';
const PYLIB = '/usr/lib/python3.11';
const MODULES = ['encodings', 'json', 'collections', 're', 'os.py', 'stat.py', 'posixpath.py', 'genericpath.py', 'abc.py', 'codecs.py', 'io.py',
  'enum.py', 'types.py', 'functools.py', 'keyword.py', 'operator.py', 'reprlib.py', 'copyreg.py', 'heapq.py', '_collections_abc.py',
  '_sitebuiltins.py', 'site.py', 'hashlib.py', 'base64.py', 'struct.py'];
const JOB = `import json, hashlib, base64, collections, os
d = os.path.dirname(json.__file__)
print(json.dumps({'json': sorted(os.listdir(d)), 'sha1': hashlib.sha1(open(os.path.join(d, 'decoder.py'), 'rb').read()).hexdigest()}))`;
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

interface Batch { ms: number; failed: number; rssMb: number }

/** Runs `n` copies of `argv` at once; wall time, failures (exit status or output), summed max RSS. */
function batch(n: number, argv: readonly string[], env: NodeJS.ProcessEnv, expected: string): Promise<Batch> {
  const t0 = nowMs();
  const one = () => new Promise<{ ok: boolean; rss: number }>((resolve) => {
    const cmd = TIME ? [TIME, '-f', '%M', ...argv] : [...argv];
    const child = spawn(cmd[0]!, cmd.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('close', (code) => resolve({ ok: code === 0 && out === expected, rss: Number(err.trim().split('\n').pop()) || 0 }));
  });
  return Promise.all(Array.from({ length: n }, one)).then((rs) => ({
    ms: nowMs() - t0, failed: rs.filter((r) => !r.ok).length, rssMb: rs.reduce((a, r) => a + r.rss, 0) / 1024,
  }));
}

/** The job's tree: the host's python3.11 and the modules the job imports. */
async function jobTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'usr/bin'), { recursive: true });
  await mkdir(join(dir, 'usr/lib/python3.11'), { recursive: true });
  await copyFile(await realpath('/usr/bin/python3.11'), join(dir, 'usr/bin/python3.11'));
  await chmod(join(dir, 'usr/bin/python3.11'), 0o755);
  await symlink('python3.11', join(dir, 'usr/bin/python3'));
  for (const m of MODULES) await cp(join(PYLIB, m), join(dir, 'usr/lib/python3.11', m), { recursive: true, preserveTimestamps: true, filter: (s) => !s.includes('__pycache__') });
}

/** Runs group 12; see the module comment. */
export async function manyJobsGroup(ctx: ManyJobsContext): Promise<void> {
  if (!existsSync('/usr/bin/python3.11') || !NGINX) {
    ctx.log('group 12 skipped: needs /usr/bin/python3.11 and nginx');
    return;
  }
  const src = join(ctx.work, 'jobs-src');
  await jobTree(src);
  const pub = await publish(src, { fqrn: FQRN, out: join(ctx.work, 'jobs-repo') });
  const nginx = await startNginx({ [FQRN]: join(ctx.work, 'jobs-repo') });
  const accessLog = join(nginx.proc.spawnargs[2]!, 'access.log');
  const requests = async () => (await readFile(accessLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => l.split('"')[1] ?? '');
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', CVMFS_SERVER_URL: nginx.url, CVMFS_PUBLIC_KEY: pub.publicKeyPath };
  for (const k of ['UCVMFS_TRACER_DEBUG', 'NODE_DEBUG', 'CVMFS_HTTP_PROXY', 'UCVMFS_PREFETCH']) delete baseEnv[k];
  const py = (root: string) => [`${root}/usr/bin/python3`, '-I', '-B', '-c', JOB];
  try {
    const expected = await new Promise<string>((resolve) => {
      const c = spawn(py(src)[0]!, py(src).slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      c.on('close', () => resolve(out));
    });
    const job = [process.execPath, ctx.cli, 'exec', '--', ...py(`/cvmfs/${FQRN}`)];
    for (const [n, letters] of [[1, 'ab'], [4, 'cd'], [16, 'ef']] as const) {
      const cold: Batch[] = [];
      const warm: Batch[] = [];
      const local: number[] = [];
      let reqs: string[] = [];
      for (let i = 0; i < ctx.runs; i++) {
        const cache = await mkdtemp(join(ctx.work, 'jobs-cache-'));
        const env = { ...baseEnv, CVMFS_CACHE_BASE: cache, UCVMFS_SHADOW_DIR: join(cache, 'shadow') };
        const before = (await requests()).length;
        cold.push(await batch(n, job, env, expected));
        await new Promise((r) => setTimeout(r, 100)); // nginx writes its log after the answer
        reqs = (await requests()).slice(before);
        warm.push(await batch(n, job, env, expected));
        local.push((await batch(n, py(src), baseEnv, expected)).ms);
        await rm(cache, { recursive: true, force: true });
      }
      const failed = [...cold, ...warm].reduce((a, b) => a + b.failed, 0);
      const rss = (bs: Batch[]) => (TIME ? `${Math.max(...bs.map((b) => b.rssMb)).toFixed(0)} MB summed max RSS` : 'no /usr/bin/time: RSS not measured');
      const jobs = `${n} job${n > 1 ? 's' : ''} at once`;
      ctx.add({ id: `12${letters[0]}`, name: `${jobs}, one EMPTY cache (whole commands)`, unit: 's', ucvmfsSamples: cold.map((b) => b.ms / 1000), baselineSamples: local.map((x) => x / 1000), baselineName: `the same ${jobs} from local disk`, note: `${reqs.length} requests at the server for ${new Set(reqs).size} distinct URLs; ${rss(cold)}; ${failed} failed` });
      ctx.add({ id: `12${letters[1]}`, name: `${jobs}, warm`, unit: 's', ucvmfsSamples: warm.map((b) => b.ms / 1000), baselineSamples: local.map((x) => x / 1000), baselineName: `the same ${jobs} from local disk`, note: rss(warm) });
    }
  } finally {
    nginx.stop();
  }
}
