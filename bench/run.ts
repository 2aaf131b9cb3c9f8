/**
 * `npm run bench`: ucvmfs against baselines measured in the same run, on the shared fixture
 * fixture.test.example.org. Rows and methods are described in bench/README.md.
 *
 *   node dist/bench/run.js [--json] [--only=1,2,5] [--runs=N] [--inproc-server] [--keep]
 *
 * --json           print JSON (rows with every sample, environment, targets) instead of the table
 * --only=LIST      run only these row groups (1…14; 5 = cold, 6 = dependency choices, 7 = connector, 8 = shared cache,
 *                  9 = network: squid, first byte, read-ahead, 10 = publisher deflate, 11 = cold starts of whole
 *                  commands, with a delaying relay and the genuine client, 12 = many jobs at once on one cache,
 *                  13 = the publisher at scale, 14 = cold and warm metadata at scale)
 * --publish-files=N  files of group 13's generated tree (default 20000)
 * --scale-entries=N  entries of group 14's generated repository (default 100000)
 * --scale-flat=N   entries of group 14's one-catalog repository (rows 14g-14i; default 200000, 0 skips them)
 * --runs=N         samples per contender for the warm and dependency rows (default 7; the median is reported)
 * --cold-runs=N    fresh-cache runs for the cold rows (default 5)
 * --exec-runs=N    timed runs per contender and workload for the connector rows (default 5)
 * --proot=PATH     the proot binary for the connector rows (default: proot on PATH; a missing path such as
 *                  `none` leaves proot out)
 * --inproc-server  serve the fixture from this process instead of a child process
 * --keep           keep the temporary directory (extracted tree, caches) and print its path
 * --genuine-mount=CMD, --genuine-umount=CMD
 *                  group 11 compares with the genuine client: `CMD FQRN SERVER_URL PUBKEY MOUNTPOINT CACHEDIR` mounts
 *                  it with that (empty) cache, `CMD MOUNTPOINT` unmounts (build and mount scripts are yours)
 * --cache-base=DIR where the temporary directory goes (default: os.tmpdir()); e.g. /dev/shm to take the disk's
 *                  file-creation cost out of the cold rows
 */
import { fixturesDir } from '../test/fixtures-location.js';
import { chmod, copyFile, lstat, mkdir, mkdtemp, open, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { constants as cryptoConstants, createHash, createPublicKey, publicDecrypt, randomBytes, verify as nodeVerify, X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createInflate, deflateSync, inflateSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { httpGet } from '../lib/net/http.js';
import { ripemd160 as nobleRipemd160, sha1 as nobleSha1 } from '@noble/hashes/legacy.js';
import { shake128 as nobleShake128 } from '@noble/hashes/sha3.js';
import { Unzlib, unzlibSync } from 'fflate';
import { openRepository, publish, type OpenOptions, type Repository } from '../lib/index.js';
import type { Entry } from '../lib/fs/entry.js';
import { Flag } from '../lib/format/flags.js';
import { objectPath } from '../lib/format/hash.js';
import { deflateStandard } from '../lib/publish/deflate.js';
import { parseManifest } from '../lib/format/manifest.js';
import { parseWhitelist } from '../lib/format/whitelist.js';
import { parseCertificate, rsaKeysFromPem, verifyRaw, verifySha1 } from '../lib/crypto/rsa.js';
import { compareRates, fmt, makeRow, median, nowMs, pool, table, targets, type Row } from './harness.js';
import { startServer, type BenchServer } from './server.js';
import { SQUID, startSquid } from '../test/squid.js';
import { coldStartGroup } from './cold-start.js';
import { manyJobsGroup } from './many-jobs.js';
import { startupGroup } from './startup.js';
import { publishScaleGroup } from './publish-scale.js';
import { flatCatalogRows, scaleGroup } from './scale.js';

// ---------------------------------------------------------------------------------------------------------------
// Configuration

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURES = fixturesDir();
const FQRN = 'fixture.test.example.org';
const SRV = join(FIXTURES, FQRN, 'srv');
const KEY = join(FIXTURES, FQRN, `${FQRN}.pub`);
const MiB = 1 << 20;
const MB = 1e6;
/** Group 7: the second repository, published by the bench (python modules and C headers). */
const SW_FQRN = 'pysw.bench.example.org';
// Whole commands run what the installed `ucvmfs` runs: the one-file build (npm run build makes it) unless the ES
// modules are newer (a tsc alone), as bin/ucvmfs.js chooses.
const CLI_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'lib', 'cli');
const CLI = existsSync(join(CLI_DIR, 'ucvmfs.cjs')) && statSync(join(CLI_DIR, 'ucvmfs.cjs')).mtimeMs >= statSync(join(CLI_DIR, 'main.js')).mtimeMs ? join(CLI_DIR, 'ucvmfs.cjs') : join(CLI_DIR, 'main.js');
const PYTHON = '/usr/bin/python3';

const args = process.argv.slice(2);
const argValue = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const JSON_OUT = args.includes('--json');
const KEEP = args.includes('--keep');
const IN_PROCESS = args.includes('--inproc-server');
const RUNS = Math.max(1, Number(argValue('runs') ?? 7));
const COLD_RUNS = Math.max(1, Number(argValue('cold-runs') ?? 5));
const EXEC_RUNS = Math.max(1, Number(argValue('exec-runs') ?? 5));
const PROOT = argValue('proot');
const ONLY = argValue('only')?.split(',').map((s) => s.trim()).filter(Boolean);
const CACHE_BASE = argValue('cache-base') ?? tmpdir();
const want = (group: string): boolean => !ONLY || ONLY.includes(group);
const GENUINE_MOUNT = argValue('genuine-mount');
const GENUINE_UMOUNT = argValue('genuine-umount');

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

if (!existsSync(join(SRV, '.cvmfspublished'))) {
  process.stderr.write(`fixture ${FQRN} not found under ${FIXTURES} (set UCVMFS_FIXTURES)\n`);
  process.exit(2);
}

const rows: Row[] = [];
/** Group 7: the tracer's figures per workload, for the first (cold) and a warm run. */
const connector: { id: string; cold?: TracerStats; warm?: TracerStats }[] = [];
const add = (r: Parameters<typeof makeRow>[0]): void => {
  const row = makeRow(r);
  rows.push(row);
  log(`${row.id}. ${row.name}: ${fmt(row.ucvmfs, row.unit)} vs ${fmt(row.baseline, row.unit)} (${row.ratio.toFixed(2)}x)`);
};

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** Every entry readdir shows, depth first, root included. */
async function listTree(repo: Repository): Promise<Entry[]> {
  const out: Entry[] = [await repo.fs.entry('/', false)];
  const visit = async (dir: string): Promise<void> => {
    for (const e of await repo.fs.entries(dir)) {
      if (e.flags & Flag.Hidden) continue;
      out.push(e);
      if (e.type === 'dir') await visit(e.path);
    }
  };
  await visit('/');
  return out;
}

/** Writes the repository's tree to `dest` with node:fs: directories, file contents, symlinks, FIFOs, modes. */
async function extract(repo: Repository, entries: readonly Entry[], dest: string): Promise<void> {
  const local = (p: string) => (p === '/' ? dest : dest + p);
  for (const e of entries) if (e.type === 'dir') await mkdir(local(e.path), { recursive: true });
  await pool(entries, 8, async (e) => {
    const p = local(e.path);
    if (e.type === 'file') {
      await writeFile(p, (await repo.fs.readFile(e.path)) as Buffer);
      await chmod(p, e.mode & 0o7777);
    } else if (e.type === 'symlink') {
      await symlink(e.target!, p);
    } else if (e.type === 'fifo') {
      execFileSync('mkfifo', ['-m', (e.mode & 0o777).toString(8), p]);
    }
  });
  const rootUser = process.getuid?.() === 0;
  for (const e of [...entries].reverse()) {
    if (e.type === 'dir') await chmod(local(e.path), (e.mode & 0o7777) | (rootUser ? 0 : 0o700));
  }
}

async function walkLib(repo: Repository, dir: string): Promise<number> {
  let n = 0;
  for (const d of await repo.fs.readdir(dir, { withFileTypes: true })) {
    n++;
    if (d.isDirectory()) n += await walkLib(repo, dir === '/' ? `/${d.name}` : `${dir}/${d.name}`);
  }
  return n;
}

async function walkNode(dir: string): Promise<number> {
  let n = 0;
  for (const d of await readdir(dir, { withFileTypes: true })) {
    n++;
    if (d.isDirectory()) n += await walkNode(`${dir}/${d.name}`);
  }
  return n;
}

/** Sequential read of a file with open + read into one 1 MiB buffer; returns the bytes read. */
async function readSeq(openFn: () => Promise<{ read(b: Buffer, o: number, l: number, p: null): Promise<{ bytesRead: number }>; close(): Promise<void> }>, buf: Buffer): Promise<number> {
  const fh = await openFn();
  let total = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return total;
}

async function drain(stream: Readable): Promise<number> {
  let n = 0;
  for await (const c of stream) n += (c as Buffer).length;
  return n;
}

/** GETs a URL with undici and discards the body; returns the body size. */
async function getUndici(url: string, dispatcher: Agent): Promise<number> {
  const res = await request(url, { dispatcher });
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode} for ${url}`);
  let n = 0;
  for await (const c of res.body) n += (c as Buffer).length;
  return n;
}

/** GETs a URL with lib/net/http.ts (what the fetcher uses) and discards the body; returns the body size. */
async function getLib(url: string): Promise<number> {
  const res = await httpGet({ url, proxy: 'DIRECT', timeoutMs: 10_000 });
  if (res.status !== 200) throw new Error(`HTTP ${res.status} for ${url}`);
  let n = 0;
  for await (const c of res.body) n += (c as Buffer).length;
  return n;
}

/** GETs a URL with node:http and discards the body; returns the body size. */
function getHttp(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    http.get(url, { agent }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode} for ${url}`));
      let n = 0;
      res.on('data', (c: Buffer) => { n += c.length; });
      res.on('end', () => resolvePromise(n));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** Fetches every URL with `concurrency` in flight; returns the bytes moved. */
async function replay(urls: readonly string[], concurrency: number, get: (u: string) => Promise<number>): Promise<number> {
  let bytes = 0;
  await pool(urls, concurrency, async (u) => {
    const n = await get(u); // not `bytes += await get(u)`: that reads `bytes` before the await
    bytes += n;
  });
  return bytes;
}

/** Python modules of group 7's software repository: 24 top-level ones and a package of 6 (30 in all). */
const PY_TOP = Array.from({ length: 24 }, (_, i) => `m${i}`);
const PY_STDLIB = ['json', 're', 'collections', 'functools', 'itertools', 'dataclasses', 'enum', 'textwrap', 'string', 'struct', 'heapq', 'bisect'];

function pyModule(name: string, i: number, imports: string[]): string {
  const lines = [`"""Benchmark module ${name}: a few constants, a class and functions, as a small library has."""`];
  lines.push(`import ${PY_STDLIB[i % PY_STDLIB.length]}`, ...imports.map((m) => `import ${m}`), '');
  lines.push(`TABLE_${i} = {${Array.from({ length: 40 }, (_, k) => `'k${k}': ${k * (i + 1)}`).join(', ')}}`, '');
  lines.push(`class Thing${i}:`, `    """A class with some methods."""`, '', '    def __init__(self, x):', '        self.x = x', '');
  for (let k = 0; k < 12; k++) lines.push(`    def method${k}(self, y):`, `        return self.x * ${k} + y - ${i}`, '');
  for (let k = 0; k < 20; k++) {
    lines.push(`def f${k}(x, y=${k}):`, `    """Function ${k} of ${name}."""`, `    if x > ${k}:`, `        return [v + y for v in range(x)]`, `    return {'x': x, 'y': y, 'n': ${i}}`, '');
  }
  return lines.join('\n') + '\n';
}

function cHeader(k: number): string {
  const lines = [`#ifndef BENCHSW_PART${k}_H`, `#define BENCHSW_PART${k}_H`, '#include <stddef.h>', '#include <stdint.h>', ''];
  lines.push(`enum benchsw_kind${k} { ${Array.from({ length: 16 }, (_, j) => `BENCHSW_K${k}_${j} = ${j}`).join(', ')} };`, '');
  lines.push(`struct benchsw_rec${k} {`, ...Array.from({ length: 12 }, (_, j) => `  uint${[8, 16, 32, 64][j % 4]}_t field${j};`), '};', '');
  for (let j = 0; j < 16; j++) {
    lines.push(`#define BENCHSW_P${k}_M${j}(x) ((x) * ${j + 1} + ${k})`);
    lines.push(`static inline uint64_t benchsw_p${k}_f${j}(const struct benchsw_rec${k} *r, size_t n) {`,
      `  uint64_t s = ${j};`, `  for (size_t i = 0; i < n; i++) s += r[i].field${j % 12} * BENCHSW_P${k}_M${j}(i);`, '  return s;', '}');
  }
  lines.push('#endif', '');
  return lines.join('\n');
}

/** The C file of row 7e: the repository's header, and the usual system headers (searched after -I). */
const C_SOURCE = [
  '#include <stdio.h>', '#include <stdlib.h>', '#include <string.h>', '#include <math.h>', '#include <benchsw.h>', '',
  'int main(int argc, char **argv) {',
  '  struct benchsw_rec3 r[4];',
  '  memset(r, 0, sizeof r);',
  '  r[1].field5 = (uint32_t)argc;',
  '  uint64_t s = benchsw_p3_f5(r, 4) + benchsw_p9_f15((const struct benchsw_rec9 *)0, 0);',
  '  printf("%s %llu %f\\n", argv[0], (unsigned long long)s, sqrt((double)s));',
  '  return s > 1000 ? EXIT_FAILURE : EXIT_SUCCESS;',
  '}', '',
].join('\n');

/**
 * Writes group 7's software tree into `dir`: the python modules with their byte code (compiled here, as a software
 * repository ships it; every contender runs with PYTHONDONTWRITEBYTECODE=1, so none writes byte code) and C headers.
 * Returns the module names to import.
 */
async function makeSoftwareTree(dir: string): Promise<string[]> {
  await mkdir(join(dir, 'py', 'benchpkg'), { recursive: true });
  await mkdir(join(dir, 'include', 'benchsw'), { recursive: true });
  for (const [i, m] of PY_TOP.entries()) await writeFile(join(dir, 'py', `${m}.py`), pyModule(m, i, i % 4 ? [`m${i - 1}`] : []));
  const subs = Array.from({ length: 5 }, (_, k) => `s${k}`);
  for (const [k, m] of subs.entries()) await writeFile(join(dir, 'py', 'benchpkg', `${m}.py`), pyModule(`benchpkg.${m}`, 24 + k, k ? [`benchpkg.s${k - 1}`] : ['m0']));
  await writeFile(join(dir, 'py', 'benchpkg', '__init__.py'), `"""Benchmark package."""\nfrom . import ${subs.join(', ')}\n`);
  execFileSync(PYTHON, ['-m', 'compileall', '-q', join(dir, 'py')]);
  const parts = Array.from({ length: 10 }, (_, k) => k);
  for (const k of parts) await writeFile(join(dir, 'include', 'benchsw', `part${k}.h`), cHeader(k));
  await writeFile(join(dir, 'include', 'benchsw.h'), ['#ifndef BENCHSW_H', '#define BENCHSW_H', ...parts.map((k) => `#include "benchsw/part${k}.h"`), '#endif', ''].join('\n'));
  return [...PY_TOP, 'benchpkg'];
}

/** How a whole command ended, and its wall time. */
interface CommandResult {
  ms: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; wall time from spawn to the close of its output. */
function runCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let errBytes = 0;
    const s = nowMs();
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => {
      if (errBytes < MiB) err.push(c);
      errBytes += c.length;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({
      ms: nowMs() - s, code, signal,
      stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(),
    }));
  });
}

/** The tracer's own account (UCVMFS_TRACER_DEBUG=1) and `exec --stats`, from a command's stderr. */
interface TracerStats {
  tracedS: number;
  stops: number;
  questions: number;
  questionsS: number;
  requests: number;
  dirsListed: number;
  filesMaterialized: number;
  bytesMaterialized: string;
}

function parseTracerStats(stderr: string): TracerStats | undefined {
  const t = /\[tracer\] ([\d.]+) s, (\d+) stops, (\d+) questions to JavaScript taking ([\d.]+) s/.exec(stderr);
  const c = /ucvmfs: (\d+) tracer requests, (\d+) directories listed, (?:\d+ names made on their own, )?(\d+) files \(([^)]*)\) materialized/.exec(stderr);
  if (!t || !c) return undefined;
  return {
    tracedS: Number(t[1]), stops: Number(t[2]), questions: Number(t[3]), questionsS: Number(t[4]),
    requests: Number(c[1]), dirsListed: Number(c[2]), filesMaterialized: Number(c[3]), bytesMaterialized: c[4]!,
  };
}

const describeStats = (t: TracerStats | undefined): string => (t
  ? `${t.stops} stops, ${t.questions} questions to JavaScript (${t.questionsS.toFixed(3)} s of ${t.tracedS.toFixed(3)} s traced); ` +
    `${t.dirsListed} directories listed, ${t.filesMaterialized} files (${t.bytesMaterialized}) materialized`
  : 'no tracer figures (the UCVMFS_TRACER_DEBUG or --stats line is missing)');

// ---------------------------------------------------------------------------------------------------------------
// Setup

const t0 = nowMs();
const loadBefore = loadavg();
const work = await mkdtemp(join(CACHE_BASE, 'ucvmfs-bench-'));
// Group 7's second repository, published before the server starts (the server serves a fixed set of repositories).
let sw: { src: string; repo: string; key: string; modules: string[] } | undefined;
if (want('7')) {
  try {
    const src = join(work, 'sw-src');
    const modules = await makeSoftwareTree(src);
    const res = await publish(src, { fqrn: SW_FQRN, out: join(work, 'sw-repo') });
    sw = { src, repo: join(work, 'sw-repo'), key: res.publicKeyPath, modules };
  } catch (e) {
    await rm(work, { recursive: true, force: true });
    throw e;
  }
}
const server: BenchServer = await startServer({ [FQRN]: SRV, ...(sw ? { [SW_FQRN]: sw.repo } : {}) }, IN_PROCESS);
const openOpts = (cacheDir: string): OpenOptions => ({
  serverUrls: [`${server.url}/@fqrn@`],
  publicKeys: [KEY],
  cacheDir,
  variables: { SOME_VAR: 'alpha' },
});
const undiciAgent = new Agent({ keepAliveTimeout: 30_000, connections: 32 });
const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });
const toUrl = (p: string): string => server.origin + p;

let exitCode = 0;
try {
  log(`fixture ${SRV}; work dir ${work}; server ${IN_PROCESS ? 'in-process' : `child pid ${server.pid}`} at ${server.url}`);
  const repo = await openRepository(FQRN, openOpts(join(work, 'warm-cache')));
  const entries = await listTree(repo);
  const tree = join(work, 'tree');
  const ts = nowMs();
  await extract(repo, entries, tree);
  await server.take();
  const local = (p: string) => (p === '/' ? tree : tree + p);
  const files = entries.filter((e) => e.type === 'file');
  const small = files.filter((e) => e.size < 64 * 1024);
  const big = files.filter((e) => e.size > 4 * MiB);
  const bigBytes = big.reduce((s, e) => s + e.size, 0);
  const allBytes = files.reduce((s, e) => s + e.size, 0);
  log(`extracted ${entries.length} entries (${files.length} files, ${(allBytes / MB).toFixed(1)} MB) in ${((nowMs() - ts) / 1000).toFixed(1)} s; ` +
    `${small.length} files < 64 KiB, big: ${big.map((e) => `${e.path} (${e.size} B${e.chunked ? ', chunked' : ''})`).join(', ')}`);
  // Sanity: both sides see the same tree.
  const nLib = await walkLib(repo, '/');
  const nNode = await walkNode(tree);
  if (nLib !== nNode || nLib !== entries.length - 1) throw new Error(`tree mismatch: library walk ${nLib}, node walk ${nNode}, entries ${entries.length - 1}`);

  // -------------------------------------------------------------------------------------------------------------
  // 1. warm lstat
  if (want('1')) {
    const libPaths = entries.map((e) => e.path);
    const nodePaths = entries.map((e) => local(e.path));
    for (const p of libPaths) await repo.fs.lstat(p);
    const [a, b] = await compareRates(
      async () => { for (const p of libPaths) await repo.fs.lstat(p); },
      async () => { for (const p of nodePaths) await lstat(p); },
      { runs: RUNS, minMs: 300, units: libPaths.length },
    );
    add({ id: '1', name: `warm lstat, all ${libPaths.length} paths, sequential`, unit: 'ops/s', ucvmfsSamples: a, baselineSamples: b, baselineName: 'node:fs/promises lstat, extracted tree', target: 300_000 });
  }

  // 2. warm full-tree walk
  if (want('2')) {
    const [a, b] = await compareRates(
      () => walkLib(repo, '/'),
      () => walkNode(tree),
      { runs: RUNS, minMs: 300, units: 1 },
    );
    add({ id: '2', name: `warm tree walk, readdir withFileTypes (${nLib} entries)`, unit: 'walks/s', ucvmfsSamples: a, baselineSamples: b, baselineName: 'node:fs/promises readdir, extracted tree', target: 150 });
  }

  // 3. warm small readFile
  if (want('3')) {
    const libPaths = small.map((e) => e.path);
    const nodePaths = small.map((e) => local(e.path));
    const [a, b] = await compareRates(
      async () => { for (const p of libPaths) await repo.fs.readFile(p); },
      async () => { for (const p of nodePaths) await readFile(p); },
      { runs: RUNS, minMs: 300, units: libPaths.length },
    );
    add({ id: '3', name: `warm readFile, ${libPaths.length} files < 64 KiB, sequential`, unit: 'ops/s', ucvmfsSamples: a, baselineSamples: b, baselineName: 'node:fs/promises readFile, extracted tree' });
  }

  // 4. warm sequential read of the chunked files
  if (want('4')) {
    const buf = Buffer.allocUnsafe(MiB);
    const [a, b] = await compareRates(
      async () => { for (const e of big) await readSeq(() => repo.fs.open(e.path), buf); },
      async () => { for (const e of big) await readSeq(() => open(local(e.path), 'r'), buf); },
      { runs: RUNS, minMs: 300, units: bigBytes, scale: MB },
    );
    add({ id: '4a', name: `warm read of the ${big.length} chunked files, open+read 1 MiB`, unit: 'MB/s', ucvmfsSamples: a, baselineSamples: b, baselineName: 'node:fs/promises open+read 1 MiB, extracted' });
    const hwm = 256 * 1024;
    const [c, d] = await compareRates(
      async () => { for (const e of big) await drain(repo.fs.createReadStream(e.path, { highWaterMark: hwm })); },
      async () => { for (const e of big) await drain(createReadStream(local(e.path), { highWaterMark: hwm })); },
      { runs: RUNS, minMs: 300, units: bigBytes, scale: MB },
    );
    add({ id: '4b', name: `warm read of the ${big.length} chunked files, createReadStream 256K`, unit: 'MB/s', ucvmfsSamples: c, baselineSamples: d, baselineName: 'node:fs createReadStream 256 KiB, extracted' });
  }
  repo.close();

  // -------------------------------------------------------------------------------------------------------------
  // 5. cold: fresh cache directory, objects over loopback HTTP
  let treeUrls: string[] = [];
  let bigUrls: string[] = [];
  const cold = async (): Promise<{ repo: Repository; dir: string; openMs: number; openUrls: string[] }> => {
    await server.take();
    const dir = await mkdtemp(join(work, 'cold-'));
    const s = nowMs();
    const r = await openRepository(FQRN, openOpts(dir));
    const openMs = nowMs() - s;
    return { repo: r, dir, openMs, openUrls: (await server.take()).map(toUrl) };
  };
  const dispose = async (c: { repo: Repository; dir: string }) => {
    c.repo.close();
    await rm(c.dir, { recursive: true, force: true });
  };
  const getU = (u: string) => getUndici(u, undiciAgent);
  const getH = (u: string) => getHttp(u, httpAgent);
  if (want('5') || want('6')) {
    const openLib: number[] = [], openBase: number[] = [];
    const bigLib: number[] = [], bigBase: number[] = [];
    const treeLib: number[] = [], treeBase: number[] = [];
    const treeObjLib: number[] = [], treeObjBase: number[] = [], treeObjCopy: number[] = [];
    let wireBig = 0, wireTree = 0;
    const buf = Buffer.allocUnsafe(MiB);
    const runs = want('5') ? COLD_RUNS : 1;
    for (let i = 0; i < runs; i++) {
      // Open, then the two chunked files.
      const c1 = await cold();
      let s = nowMs();
      for (const e of big) await readSeq(() => c1.repo.fs.open(e.path), buf);
      const bigMs = nowMs() - s;
      bigUrls = (await server.take()).map(toUrl);
      await dispose(c1);
      if (i === 0) { await replay(c1.openUrls, 1, getU); await replay(bigUrls, 3, getU); } // warm the baseline's connections
      s = nowMs();
      await replay(c1.openUrls, 1, getU);
      openBase.push(nowMs() - s);
      openLib.push(c1.openMs);
      s = nowMs();
      wireBig = await replay(bigUrls, 3, getU);
      const bigBaseMs = nowMs() - s;
      bigLib.push(bigBytes / MB / (bigMs / 1000));
      bigBase.push(bigBytes / MB / (bigBaseMs / 1000));

      // Open, then every file, 8 at a time.
      const c2 = await cold();
      s = nowMs();
      await pool(files, 8, (e) => c2.repo.fs.readFile(e.path));
      const treeMs = nowMs() - s;
      treeUrls = (await server.take()).map(toUrl);
      await dispose(c2);
      s = nowMs();
      wireTree = await replay(treeUrls, 8, getU);
      const treeBaseMs = nowMs() - s;
      treeLib.push(allBytes / MB / (treeMs / 1000));
      treeBase.push(allBytes / MB / (treeBaseMs / 1000));
      treeObjLib.push(treeUrls.length / (treeMs / 1000));
      treeObjBase.push(treeUrls.length / (treeBaseMs / 1000));
      // The same raw objects copied with node:fs into a fresh 256-directory tree (what `cp -r srv/data` does).
      const dest = await mkdtemp(join(work, 'cp-'));
      s = nowMs();
      await Promise.all(Array.from({ length: 256 }, (_, k) => mkdir(join(dest, k.toString(16).padStart(2, '0')))));
      await pool(treeUrls, 8, (u) => {
        const rel = new URL(u).pathname.slice(`/cvmfs/${FQRN}/data/`.length);
        return copyFile(join(SRV, 'data', rel), join(dest, rel));
      });
      const copyMs = nowMs() - s;
      await rm(dest, { recursive: true, force: true });
      treeObjCopy.push(treeUrls.length / (copyMs / 1000));
      log(`cold run ${i + 1}/${runs}: open ${c1.openMs.toFixed(1)} ms, big ${bigMs.toFixed(0)} ms (${bigUrls.length} objects), tree ${treeMs.toFixed(0)} ms (${treeUrls.length} objects); baselines: big ${bigBaseMs.toFixed(0)} ms, tree GET ${treeBaseMs.toFixed(0)} ms, tree copy ${copyMs.toFixed(0)} ms`);
    }
    if (want('5')) {
      add({ id: '5a', name: 'cold openRepository, fresh cache, loopback HTTP', unit: 'ms', ucvmfsSamples: openLib, baselineSamples: openBase, baselineName: 'undici GET of the same objects, 1 at a time', note: 'includes txn/ creation (prefix directories are made on first use), RSA checks, catalog open' });
      add({ id: '5b', name: `cold read of the ${big.length} chunked files (${(bigBytes / MB).toFixed(1)} MB)`, unit: 'MB/s', ucvmfsSamples: bigLib, baselineSamples: bigBase, baselineName: `undici GET of the same ${bigUrls.length} raw objects, 3 in flight`, target: 270, note: `MB = file bytes / elapsed; the baseline moves ${(wireBig / MB).toFixed(1)} MB of compressed objects and does no hashing, inflating or writing` });
      add({ id: '5c', name: `cold read of every file, 8 at a time (${(allBytes / MB).toFixed(1)} MB)`, unit: 'MB/s', ucvmfsSamples: treeLib, baselineSamples: treeBase, baselineName: `undici GET of the same ${treeUrls.length} raw objects, 8 in flight`, note: `baseline moves ${(wireTree / MB).toFixed(1)} MB` });
      add({ id: '5d', name: `cold read of every file, objects (${treeUrls.length} objects)`, unit: 'objects/s', ucvmfsSamples: treeObjLib, baselineSamples: treeObjBase, baselineName: `undici GET of the same ${treeUrls.length} raw objects, 8 in flight` });
      add({ id: '5e', name: `cold read of every file, objects (same runs as 5d)`, unit: 'objects/s', ucvmfsSamples: treeObjLib, baselineSamples: treeObjCopy, baselineName: `node:fs mkdir 256 + copyFile of the same raw objects, 8 in flight`, note: 'the file-system floor of a cache that creates one file per object' });
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // 6. dependency choices
  if (want('6')) {
    // Hashes: @noble/hashes (pure JS, a declared dependency) vs node:crypto (what lib/format/hash.ts uses).
    const bigBuf = randomBytes(32 * MiB);
    const smalls = Array.from({ length: 256 }, () => randomBytes(4096));
    type HashFn = (b: Uint8Array) => unknown;
    const algos: [string, HashFn, HashFn][] = [
      ['sha1', (b) => nobleSha1(b), (b) => createHash('sha1').update(b).digest()],
      ['ripemd160', (b) => nobleRipemd160(b), (b) => createHash('ripemd160').update(b).digest()],
      ['shake128', (b) => nobleShake128(b, { dkLen: 20 }), (b) => createHash('shake128', { outputLength: 20 }).update(b).digest()],
    ];
    for (const [name, noble, native] of algos) {
      if (Buffer.from(noble(smalls[0]!) as Uint8Array).compare(native(smalls[0]!) as Buffer) !== 0) throw new Error(`${name}: noble and node disagree`);
    }
    let letter = 'a'.charCodeAt(0);
    for (const [name, noble, native] of algos) {
      const [a, b] = await compareRates(() => noble(bigBuf), () => native(bigBuf), { runs: RUNS, minMs: 150, units: bigBuf.length, scale: MB });
      add({ id: `6${String.fromCharCode(letter++)}`, name: `${name}, one 32 MiB buffer: @noble/hashes`, unit: 'MB/s', ucvmfsSamples: a, baselineSamples: b, baselineName: `node:crypto ${name} (used by lib/)` });
    }
    for (const [name, noble, native] of algos) {
      const [a, b] = await compareRates(
        () => { for (const s of smalls) noble(s); },
        () => { for (const s of smalls) native(s); },
        { runs: RUNS, minMs: 150, units: smalls.length * 4096, scale: MB },
      );
      add({ id: `6${String.fromCharCode(letter++)}`, name: `${name}, 4 KiB buffers: @noble/hashes`, unit: 'MB/s', ucvmfsSamples: a, baselineSamples: b, baselineName: `node:crypto ${name} (used by lib/)` });
    }

    // Inflate: fflate vs node:zlib on real chunk objects of the fixture.
    const chunkObjs: { path: string; raw: Buffer; out: number }[] = [];
    for (const d of readdirSync(join(SRV, 'data'))) {
      if (!/^[0-9a-f]{2}$/.test(d)) continue;
      for (const f of readdirSync(join(SRV, 'data', d))) {
        if (!f.endsWith('P')) continue;
        const p = join(SRV, 'data', d, f);
        const raw = readFileSync(p);
        chunkObjs.push({ path: `data/${d}/${f}`, raw, out: inflateSync(raw).length });
      }
    }
    const compressible = [...chunkObjs].sort((x, y) => y.out / y.raw.length - x.out / x.raw.length)[0];
    const incompressible = [...chunkObjs].sort((x, y) => y.raw.length - x.raw.length)[0];
    const inflateCases = [
      ['text chunk', compressible],
      ['random chunk', incompressible],
    ] as const;
    for (const [label, obj] of inflateCases) {
      if (!obj) continue;
      const { raw, out } = obj;
      if (Buffer.from(unzlibSync(raw)).compare(inflateSync(raw)) !== 0) throw new Error(`fflate and zlib disagree on ${obj.path}`);
      const desc = `${label} (${(raw.length / MB).toFixed(2)} -> ${(out / MB).toFixed(2)} MB)`;
      const [a, b] = await compareRates(() => unzlibSync(raw), () => inflateSync(raw), { runs: RUNS, minMs: 150, units: out, scale: MB });
      add({ id: `6${String.fromCharCode(letter++)}`, name: `inflate ${desc}, whole: fflate unzlibSync`, unit: 'MB/s', ucvmfsSamples: a, baselineSamples: b, baselineName: 'node:zlib inflateSync' });
      const pieces: Buffer[] = [];
      for (let o = 0; o < raw.length; o += 64 * 1024) pieces.push(raw.subarray(o, o + 64 * 1024));
      const ffStream = () => {
        let n = 0;
        const u = new Unzlib((chunk) => { n += chunk.length; });
        for (let i = 0; i < pieces.length; i++) u.push(pieces[i]!, i === pieces.length - 1);
        if (n !== out) throw new Error('fflate stream: wrong length');
      };
      const nodeStream = async () => {
        let n = 0;
        await pipeline(Readable.from(pieces), createInflate(), new Writable({ write(c: Buffer, _e, cb) { n += c.length; cb(); } }));
        if (n !== out) throw new Error('zlib stream: wrong length');
      };
      const [c, d] = await compareRates(ffStream, nodeStream, { runs: RUNS, minMs: 150, units: out, scale: MB });
      add({ id: `6${String.fromCharCode(letter++)}`, name: `inflate ${desc}, streamed: fflate Unzlib`, unit: 'MB/s', ucvmfsSamples: c, baselineSamples: d, baselineName: 'node:zlib createInflate(), default 16 KiB buffers' });
      const nodeStreamBig = async () => {
        let n = 0;
        await pipeline(Readable.from(pieces), createInflate({ chunkSize: 256 * 1024 }), new Writable({ write(ch: Buffer, _e, cb) { n += ch.length; cb(); } }));
        if (n !== out) throw new Error('zlib stream: wrong length');
      };
      const [e2, f2] = await compareRates(nodeStreamBig, nodeStream, { runs: RUNS, minMs: 150, units: out, scale: MB });
      add({ id: `6${String.fromCharCode(letter++)}`, name: `inflate ${desc}, streamed: createInflate chunkSize 256K`, unit: 'MB/s', ucvmfsSamples: e2, baselineSamples: f2, baselineName: 'node:zlib createInflate(), default 16 KiB buffers' });
    }

    // RSA: lib/crypto/rsa.ts (BigInt, used by lib/) vs node:crypto, on the fixture's whitelist and manifest.
    {
      const wl = parseWhitelist(readFileSync(join(SRV, '.cvmfswhitelist')));
      const m = parseManifest(readFileSync(join(SRV, '.cvmfspublished')));
      const certBytes = inflateSync(readFileSync(join(SRV, objectPath(m.certificate, 'X'))));
      const cert = parseCertificate(certBytes);
      const wlHash = Buffer.from(wl.letter.hashText, 'latin1');
      const mHash = Buffer.from(m.letter.hashText, 'latin1');
      const master = rsaKeysFromPem(readFileSync(KEY, 'utf8')).find((k) => verifyRaw(k, wl.letter.signature, wlHash));
      if (!master) throw new Error('no master key verifies the whitelist');
      const lib = () => {
        if (!verifyRaw(master, wl.letter.signature, wlHash) || !verifySha1(cert.key, m.letter.signature, mHash)) throw new Error('lib RSA: verification failed');
      };
      const masterKo = createPublicKey(master.pem);
      const certKo = new X509Certificate(certBytes).publicKey;
      const native = () => {
        const p = publicDecrypt({ key: masterKo, padding: cryptoConstants.RSA_PKCS1_PADDING }, wl.letter.signature);
        if (!p.equals(wlHash) || !nodeVerify('sha1', mHash, certKo, m.letter.signature)) throw new Error('node RSA: verification failed');
      };
      let nativeOk = true;
      let why = '';
      try { lib(); native(); } catch (e) { nativeOk = false; why = (e as Error).message; }
      const [a, b] = nativeOk
        ? await compareRates(lib, native, { runs: RUNS, minMs: 200, units: 1 })
        : [(await compareRates(lib, lib, { runs: RUNS, minMs: 200, units: 1 }))[0], [NaN]];
      add({ id: `6${String.fromCharCode(letter++)}`, name: `RSA-${master.size * 8} whitelist+manifest signatures: lib/crypto/rsa.ts`, unit: 'ops/s', ucvmfsSamples: a, baselineSamples: b, baselineName: nativeOk ? 'node:crypto publicDecrypt + verify(sha1)' : `node:crypto unavailable: ${why}`, note: '@noble/curves has no RSA, so it is no candidate here' });
    }

    // HTTP client: lib/net/http.ts (node:http underneath, used by lib/net/fetcher.ts) vs undici, replaying the
    // objects of the cold runs. undici was the transport until it crashed the process on close-delimited bodies.
    {
      const [a, b] = await compareRates(() => replay(treeUrls, 8, getLib), () => replay(treeUrls, 8, getU), { runs: RUNS, minMs: 0, units: treeUrls.length });
      add({ id: `6${String.fromCharCode(letter++)}`, name: `GET ${treeUrls.length} tree objects, 8 in flight: lib/net/http.ts`, unit: 'objects/s', ucvmfsSamples: a, baselineSamples: b, baselineName: 'undici.request, keep-alive Agent' });
      const wire = await replay(bigUrls, 3, getLib);
      const [c, d] = await compareRates(() => replay(bigUrls, 3, getLib), () => replay(bigUrls, 3, getU), { runs: RUNS, minMs: 200, units: wire, scale: MB });
      add({ id: `6${String.fromCharCode(letter++)}`, name: `GET ${bigUrls.length} chunk objects (${(wire / MB).toFixed(1)} MB), 3 in flight: lib/net/http.ts`, unit: 'MB/s', ucvmfsSamples: c, baselineSamples: d, baselineName: 'undici.request, keep-alive Agent' });
      const [e, f] = await compareRates(() => replay(treeUrls, 8, getH), () => replay(treeUrls, 8, getU), { runs: RUNS, minMs: 0, units: treeUrls.length });
      add({ id: `6${String.fromCharCode(letter++)}`, name: `GET ${treeUrls.length} tree objects, 8 in flight: plain node:http`, unit: 'objects/s', ucvmfsSamples: e, baselineSamples: f, baselineName: 'undici.request, keep-alive Agent' });
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // 7. connector: whole commands under `ucvmfs exec`, against the same commands natively on local copies, and
  // under proot with the local copies bound at /cvmfs/<fqrn>
  if (want('7') && sw) {
    const g0 = nowMs();
    const fixRoot = `/cvmfs/${FQRN}`;
    const swRoot = `/cvmfs/${SW_FQRN}`;
    const cSrc = join(work, 'x.c');
    const cObj = join(work, 'x.o');
    await writeFile(cSrc, C_SOURCE);
    const prootBin = (PROOT ? [PROOT] : (process.env.PATH ?? '/usr/bin:/bin').split(':').filter(Boolean).map((d) => join(d, 'proot'))).find((p) => existsSync(p));
    const baseEnv: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', PYTHONDONTWRITEBYTECODE: '1' };
    for (const k of ['UCVMFS_TRACER_DEBUG', 'PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP']) delete baseEnv[k];
    const execEnv: NodeJS.ProcessEnv = {
      ...baseEnv,
      CVMFS_SERVER_URL: `${server.url}/@fqrn@`,
      CVMFS_PUBLIC_KEY: `${KEY}:${sw.key}`,
      // The cache the bench filled while extracting: objects are there, the shadow tree is made by the warm-up.
      CVMFS_CACHE_BASE: join(work, 'warm-cache'),
      // Inside the bench's own directory (private, so the default would go to TMPDIR) and removed with it.
      UCVMFS_SHADOW_DIR: join(work, 'warm-cache', 'shadow'),
    };
    const q = (x: string): string => `'${x.replace(/'/g, `'\\''`)}'`;
    const sh = (script: string): string[] => ['bash', '-c', script];
    type Roots = { fix: string; sw: string };
    interface Workload {
      id: string;
      name: string;
      cmd: (r: Roots) => string[];
      check?: (c: CommandResult) => string | undefined;
      maxSlowdown?: number;
      targetMax?: number;
    }
    const pyProgram = (r: Roots) => `import sys; sys.path.insert(0, ${JSON.stringify(`${r.sw}/py`)}); import ${sw!.modules.join(', ')}`;
    const workloads: Workload[] = [
      {
        id: '7a', name: `find ROOT | wc -l (${entries.length} entries)`, cmd: (r) => sh(`find ${q(r.fix)} | wc -l`),
        check: (c) => (c.stdout.trim() === String(entries.length) ? undefined : `counted ${c.stdout.trim()} entries, not ${entries.length}`),
      },
      { id: '7b', name: 'ls -lR ROOT > /dev/null', cmd: (r) => sh(`ls -lR ${q(r.fix)} > /dev/null`), maxSlowdown: 3 },
      {
        id: '7c', name: `cat of the ${small.length} files < 64 KiB (find -size -65536c | xargs cat)`,
        cmd: (r) => sh(`find ${q(r.fix)} -type f -size -65536c -print0 | xargs -0 cat > /dev/null`), maxSlowdown: 1.5,
      },
      {
        id: '7d', name: `python3 importing ${sw.modules.length - 1} modules + a package of 6, 10 times`,
        cmd: (r) => sh(`for i in $(seq 10); do ${PYTHON} -c ${q(pyProgram(r))} || exit 1; done`), maxSlowdown: 1.15,
      },
      { id: '7e', name: 'gcc -I ROOT/include -c x.c (11 headers under ROOT), once', cmd: (r) => ['gcc', `-I${r.sw}/include`, '-c', cSrc, '-o', cObj], maxSlowdown: 1.15 },
      {
        id: '7e10', name: 'the same gcc, 10 times in a bash loop',
        cmd: (r) => sh(`for i in $(seq 10); do gcc -I${q(r.sw)}/include -c ${q(cSrc)} -o ${q(cObj)} || exit 1; done`), maxSlowdown: 1.15,
      },
      { id: '7f', name: '500 starts of ROOT/sw/bin/busybox true in a bash loop', cmd: (r) => sh(`for i in $(seq 500); do ${q(r.fix)}/sw/bin/busybox true; done`) },
      { id: '7g', name: 'exec -- /bin/true (no /cvmfs access)', cmd: () => ['/bin/true'], targetMax: 0.3 },
      { id: '7h', name: 'exec -- cat ROOT/README.txt (opens one repository)', cmd: (r) => ['cat', `${r.fix}/README.txt`] },
    ];
    interface Contender { name: 'native' | 'ucvmfs' | 'proot'; argv: (w: Workload) => string[]; env: NodeJS.ProcessEnv }
    const cvmfsRoots: Roots = { fix: fixRoot, sw: swRoot };
    const native: Contender = { name: 'native', argv: (w) => w.cmd({ fix: tree, sw: sw!.src }), env: baseEnv };
    const ucvmfs: Contender = { name: 'ucvmfs', argv: (w) => [process.execPath, CLI, 'exec', '--', ...w.cmd(cvmfsRoots)], env: execEnv };
    const proot: Contender | undefined = prootBin
      ? { name: 'proot', argv: (w) => [prootBin, '-b', `${tree}:${fixRoot}`, '-b', `${sw!.src}:${swRoot}`, ...w.cmd(cvmfsRoots)], env: baseEnv }
      : undefined;
    const contenders = [native, ucvmfs, ...(proot ? [proot] : [])];
    /** Why a run does not count (exit status, wrong output), or undefined. */
    const problem = (w: Workload, c: CommandResult): string | undefined => {
      if (c.code !== 0) {
        const line = c.stderr.split('\n').find((l) => l && !l.startsWith('[tracer]') && !/^ucvmfs: \d+ tracer requests/.test(l));
        return `exit ${c.code ?? c.signal}${line ? `: ${line.slice(0, 160)}` : ''}`;
      }
      return w.check?.(c);
    };
    const debugRun = async (w: Workload): Promise<[CommandResult, TracerStats | undefined]> => {
      const c = await runCommand([process.execPath, CLI, 'exec', '--stats', '--', ...w.cmd(cvmfsRoots)], { ...execEnv, UCVMFS_TRACER_DEBUG: '1' });
      return [c, parseTracerStats(c.stderr)];
    };
    for (const w of workloads) {
      const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
      const failed = new Map<string, string>();
      // Warm-up: ucvmfs first (its run fills the shadow tree and opens the repositories' catalogs), with the
      // tracer's figures; then one run of each other contender (page cache).
      const [cold, coldStats] = await debugRun(w);
      const coldProblem = problem(w, cold);
      if (coldProblem) failed.set('ucvmfs', coldProblem);
      for (const c of contenders) {
        if (c === ucvmfs) continue;
        const p = problem(w, await runCommand(c.argv(w), c.env));
        if (p) failed.set(c.name, p);
      }
      if (failed.has('native')) throw new Error(`${w.id}: the native command failed: ${failed.get('native')}`);
      // The tracer's figures on a warm shadow tree (not timed).
      const [, warmStats] = failed.has('ucvmfs') ? [undefined, undefined] : await debugRun(w);
      for (let i = 0; i < EXEC_RUNS; i++) {
        for (const c of i % 2 === 0 ? contenders : [...contenders].reverse()) {
          if (failed.has(c.name)) continue;
          const r = await runCommand(c.argv(w), c.env);
          const p = problem(w, r);
          if (p) failed.set(c.name, p);
          else samples.get(c.name)!.push(r.ms / 1000);
        }
      }
      if (failed.has('native')) throw new Error(`${w.id}: the native command failed: ${failed.get('native')}`);
      const u = samples.get('ucvmfs')!;
      const n = samples.get('native')!;
      const p = samples.get('proot') ?? [];
      const slow = (xs: number[]) => (xs.length ? `${(median(xs) / median(n)).toFixed(2)}x native time` : '');
      connector.push({ id: w.id, cold: coldStats, warm: warmStats });
      add({
        id: w.id, name: `${w.name}: ucvmfs exec`, unit: 's', ucvmfsSamples: u, baselineSamples: n,
        baselineName: 'native: same command, local copy', maxSlowdown: w.maxSlowdown, targetMax: w.targetMax,
        ...(failed.has('ucvmfs') ? { ucvmfsText: 'failed (see note)' } : {}),
        note: failed.has('ucvmfs') ? `ucvmfs failed: ${failed.get('ucvmfs')}` : `ucvmfs ${slow(u)}; warm run: ${describeStats(warmStats)}`,
      });
      add({
        id: `${w.id}-proot`, name: `${w.name}: proot -b`, unit: 's', ucvmfsSamples: p, baselineSamples: n,
        baselineName: 'native: same command, local copy',
        ...(!proot ? { ucvmfsText: 'n/a (proot not installed)' } : failed.has('proot') ? { ucvmfsText: 'failed (see note)' } : {}),
        ...(proot ? { note: failed.has('proot') ? `proot failed: ${failed.get('proot')}` : `proot ${slow(p)}` } : {}),
      });
    }
    log(`group 7 took ${((nowMs() - g0) / 1000).toFixed(1)} s`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // 8. one cache shared by processes: preload, then warm reads and lstats from 1, 4 and 16 processes at once
  if (want('8')) {
    const g0 = nowMs();
    const shared = await mkdtemp(join(work, 'shared-cache-'));
    // Preload: download and verify every object, 8 files at a time; baseline: GET the same raw objects.
    await server.take();
    const { preload, parseSpec } = await import('../lib/index.js');
    const pr = await openRepository(FQRN, openOpts(shared));
    let s = nowMs();
    await preload(pr, parseSpec(''));
    const preMs = nowMs() - s;
    pr.close();
    const preUrls = (await server.take()).map(toUrl);
    await replay(preUrls, 8, getU);
    s = nowMs();
    await replay(preUrls, 8, getU);
    const preBase = nowMs() - s;
    add({ id: '8a', name: `preload of the whole repository (${(allBytes / MB).toFixed(1)} MB, ${preUrls.length} objects)`, unit: 'MB/s', ucvmfsSamples: [allBytes / MB / (preMs / 1000)], baselineSamples: [allBytes / MB / (preBase / 1000)], baselineName: 'undici GET of the same raw objects, 8 in flight (no hashing, inflating, writing)' });
    // N processes: each opens the repository on the shared cache and reads every file (or lstats every path).
    const script = join(work, 'reader.mjs');
    await writeFile(script, `
      import { openRepository } from ${JSON.stringify(join(ROOT, 'dist/lib/index.js'))};
      import { readFile, lstat } from 'node:fs/promises';
      const [mode, what] = process.argv.slice(2);
      const paths = JSON.parse(await readFile(${JSON.stringify(join(work, 'paths.json'))}, 'utf8'))[what];
      if (mode === 'lib') {
        const repo = await openRepository(${JSON.stringify(FQRN)}, ${JSON.stringify(openOpts(shared))});
        if (what === 'files') for (const p of paths) await repo.fs.readFile(p); else for (let i = 0; i < 20; i++) for (const p of paths) await repo.fs.lstat(p);
        repo.close();
      } else {
        const root = ${JSON.stringify(tree)};
        if (what === 'files') for (const p of paths) await readFile(root + p); else for (let i = 0; i < 20; i++) for (const p of paths) await lstat(root + (p === '/' ? '' : p));
      }
    `);
    await writeFile(join(work, 'paths.json'), JSON.stringify({ files: files.map((e) => e.path), all: entries.map((e) => e.path) }));
    const runAll = (n: number, mode: string, what: string) => new Promise<number>((resolve, reject) => {
      const t = nowMs();
      let left = n;
      for (let i = 0; i < n; i++) {
        const c = spawn(process.execPath, [script, mode, what], { stdio: ['ignore', 'ignore', 'inherit'] });
        c.on('close', (code) => (code === 0 ? --left === 0 && resolve(nowMs() - t) : reject(new Error(`reader exited with ${code}`))));
      }
    });
    for (const n of [1, 4, 16]) {
      const lib: number[] = [], nat: number[] = [];
      const libM: number[] = [], natM: number[] = [];
      for (let r = 0; r < 3; r++) {
        lib.push((n * allBytes) / MB / ((await runAll(n, 'lib', 'files')) / 1000));
        nat.push((n * allBytes) / MB / ((await runAll(n, 'node', 'files')) / 1000));
        libM.push((n * 20 * entries.length) / ((await runAll(n, 'lib', 'all')) / 1000));
        natM.push((n * 20 * entries.length) / ((await runAll(n, 'node', 'all')) / 1000));
      }
      add({ id: `8${n === 1 ? 'b' : n === 4 ? 'c' : 'd'}`, name: `warm readFile of every file, ${n} process${n > 1 ? 'es' : ''} on one cache (start included)`, unit: 'MB/s', ucvmfsSamples: lib, baselineSamples: nat, baselineName: `node:fs readFile, ${n} process${n > 1 ? 'es' : ''}, extracted tree` });
      add({ id: `8${n === 1 ? 'e' : n === 4 ? 'f' : 'g'}`, name: `warm lstat of every path x20, ${n} process${n > 1 ? 'es' : ''} on one cache (start included)`, unit: 'ops/s', ucvmfsSamples: libM, baselineSamples: natM, baselineName: `node:fs lstat, ${n} process${n > 1 ? 'es' : ''}, extracted tree` });
    }
    log(`group 8 took ${((nowMs() - g0) / 1000).toFixed(1)} s`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // 9. network: a cold full read through a site squid (Debian's, on loopback) vs straight from the Stratum-1;
  // time to first byte of a cold chunked file; the effect of reading chunks ahead.
  if (want('9')) {
    const g0 = nowMs();
    if (!SQUID) {
      log('group 9 skipped: squid is not installed');
    } else {
      // Not under the work directory: squid runs as its own user, which cannot enter a mode-700 mkdtemp directory.
      const squidDir = await mkdtemp(join(tmpdir(), 'ucvmfs-bench-squid-'));
      const squid = await startSquid(squidDir);
      try {
        const coldRead = async (extra: Partial<OpenOptions>, which: readonly Entry[], concurrency: number): Promise<{ ms: number; objects: number }> => {
          const dir = await mkdtemp(join(work, 'net-'));
          const r = await openRepository(FQRN, { ...openOpts(dir), ...extra });
          const buf = Buffer.allocUnsafe(MiB);
          const s = nowMs();
          if (concurrency === 1) for (const e of which) await readSeq(() => r.fs.open(e.path), buf);
          else await pool(which, concurrency, (e) => r.fs.readFile(e.path));
          const ms = nowMs() - s;
          const objects = r.stats().objectsDownloaded;
          r.close();
          await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }); // aborted read-ahead may still be tidying up
          return { ms, objects };
        };
        const miss = await coldRead({ proxies: squid.url }, files, 8); // fills squid
        const hitMBs: number[] = [], directMBs: number[] = [], hitObj: number[] = [], directObj: number[] = [];
        for (let i = 0; i < COLD_RUNS; i++) {
          const a = await coldRead({ proxies: squid.url }, files, 8);
          const b = await coldRead({}, files, 8);
          hitMBs.push(allBytes / MB / (a.ms / 1000));
          directMBs.push(allBytes / MB / (b.ms / 1000));
          hitObj.push(a.objects / (a.ms / 1000));
          directObj.push(b.objects / (b.ms / 1000));
        }
        const hits = (squid.accessLog().match(/TCP_(MEM_)?HIT\/200/g) ?? []).length;
        add({ id: '9a', name: `cold read of every file, 8 at a time, through squid (objects in squid) (${(allBytes / MB).toFixed(1)} MB)`, unit: 'MB/s', ucvmfsSamples: hitMBs, baselineSamples: directMBs, baselineName: 'ucvmfs straight from the Stratum-1 (DIRECT)', note: `${hits} squid hits in its access log; squid's first (miss) pass: ${(allBytes / MB / (miss.ms / 1000)).toFixed(0)} MB/s` });
        add({ id: '9b', name: 'the same, objects', unit: 'objects/s', ucvmfsSamples: hitObj, baselineSamples: directObj, baselineName: 'ucvmfs straight from the Stratum-1 (DIRECT)' });
        // Time to the first 64 KiB of a cold chunked file: the first chunk must arrive whole and be verified.
        const first = big[0]!;
        const ttfb: number[] = [], rawGet: number[] = [];
        for (let i = 0; i < COLD_RUNS; i++) {
          const dir = await mkdtemp(join(work, 'ttfb-'));
          const r = await openRepository(FQRN, openOpts(dir));
          await server.take();
          const s = nowMs();
          const fh = await r.fs.open(first.path);
          await fh.read(Buffer.allocUnsafe(65536), 0, 65536, 0);
          ttfb.push(nowMs() - s);
          await fh.close();
          const chunkUrl = (await server.take()).map(toUrl).find((u) => u.endsWith('P'))!;
          r.close();
          await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }); // aborted read-ahead may still be tidying up
          const t = nowMs();
          await getU(chunkUrl);
          rawGet.push(nowMs() - t);
        }
        add({ id: '9c', name: `time to the first 64 KiB of cold ${first.path}`, unit: 'ms', ucvmfsSamples: ttfb, baselineSamples: rawGet, baselineName: 'undici GET of its first chunk object (raw)' });
        const withRA: number[] = [], withoutRA: number[] = [];
        for (let i = 0; i < COLD_RUNS; i++) {
          withRA.push(bigBytes / MB / ((await coldRead({}, big, 1)).ms / 1000));
          withoutRA.push(bigBytes / MB / ((await coldRead({ readAhead: 0 }, big, 1)).ms / 1000));
        }
        add({ id: '9d', name: `cold sequential read of the ${big.length} chunked files, 2 chunks read ahead`, unit: 'MB/s', ucvmfsSamples: withRA, baselineSamples: withoutRA, baselineName: 'ucvmfs without read-ahead (readAhead: 0)' });
      } finally {
        squid.stop();
        await new Promise((r) => setTimeout(r, 1500)); // shutdown_lifetime
        await rm(squidDir, { recursive: true, force: true });
      }
    }
    log(`group 9 took ${((nowMs() - g0) / 1000).toFixed(1)} s`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // 10. publisher: deflate with pako in standard zlib's mode (lib/publish/deflate.ts) against node:zlib, which the
  // publisher used before and which writes other bytes (other object names) for the same content
  if (want('10')) {
    const g0 = nowMs();
    const small: Buffer[] = [];
    const chunks: Buffer[] = [];
    let identical = 0;
    let total = 0;
    for (const d of readdirSync(join(SRV, 'data'))) {
      if (!/^[0-9a-f]{2}$/.test(d)) continue;
      for (const f of readdirSync(join(SRV, 'data', d))) {
        const stored = readFileSync(join(SRV, 'data', d, f));
        const plain = inflateSync(stored);
        (f.endsWith('P') ? chunks : small).push(plain);
        total++;
        if (deflateStandard(plain).equals(stored)) identical++;
        else throw new Error(`data/${d}/${f}: pako does not reproduce the genuine object`);
      }
    }
    const nodeSame = [...small, ...chunks].filter((p) => deflateSync(p).equals(deflateStandard(p))).length;
    log(`group 10: pako reproduces ${identical}/${total} genuine objects byte for byte; node:zlib ${nodeSame}/${total}`);
    const smallBytes = small.reduce((n, b) => n + b.length, 0);
    const [a, b] = await compareRates(
      () => { for (const p of small) deflateStandard(p); },
      () => { for (const p of small) deflateSync(p); },
      { runs: RUNS, minMs: 200, units: smallBytes, scale: MB },
    );
    add({ id: '10a', name: `publisher deflate of the fixture's ${small.length} whole-file, catalog and other objects (${(smallBytes / MB).toFixed(1)} MB), one call each: pako (standard zlib bytes)`, unit: 'MB/s', ucvmfsSamples: a, baselineSamples: b, baselineName: 'node:zlib deflateSync (Chromium zlib, other bytes)', note: `pako reproduces ${identical}/${total} objects of the genuine fixture, node:zlib ${nodeSame}/${total}` });
    const text = [...chunks].sort((x, y) => deflateSync(x).length / x.length - deflateSync(y).length / y.length)[0];
    const random = [...chunks].sort((x, y) => deflateSync(y).length / y.length - deflateSync(x).length / x.length)[0];
    for (const [id, label, plain] of [['10b', 'text', text], ['10c', 'random', random]] as const) {
      if (!plain) continue;
      const [c, e] = await compareRates(() => deflateStandard(plain), () => deflateSync(plain), { runs: RUNS, minMs: 200, units: plain.length, scale: MB });
      add({ id, name: `publisher deflate of a ${(plain.length / MB).toFixed(1)} MB ${label} chunk: pako (standard zlib bytes)`, unit: 'MB/s', ucvmfsSamples: c, baselineSamples: e, baselineName: 'node:zlib deflateSync' });
    }
    log(`group 10 took ${((nowMs() - g0) / 1000).toFixed(1)} s`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // 11. cold starts of whole commands (bench/cold-start.ts)
  if (want('11')) {
    const g0 = nowMs();
    await coldStartGroup({
      work, cli: CLI, runs: COLD_RUNS, add, log, runCommand,
      fixture: { fqrn: FQRN, srv: SRV, key: KEY, bigPaths: big.map((e) => e.path), bigBytes, smallPath: small[0]!.path },
      ...(GENUINE_MOUNT && GENUINE_UMOUNT ? { genuine: { mount: GENUINE_MOUNT, umount: GENUINE_UMOUNT } } : {}),
    });
    log(`group 11 took ${((nowMs() - g0) / 1000).toFixed(1)} s`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // 12. many jobs on one node (bench/many-jobs.ts)
  if (want('12')) {
    const g0 = nowMs();
    await manyJobsGroup({ work, cli: CLI, runs: COLD_RUNS, add, log });
    log(`group 12 took ${((nowMs() - g0) / 1000).toFixed(1)} s`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // 13. the publisher at scale (bench/publish-scale.ts)
  if (want('13')) {
    const g0 = nowMs();
    await publishScaleGroup({ work, cli: CLI, runs: COLD_RUNS, files: Math.max(100, Number(argValue('publish-files') ?? 20_000)), add, log });
    log(`group 13 took ${((nowMs() - g0) / 1000).toFixed(1)} s`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // 14. cold and warm metadata at scale (bench/scale.ts)
  if (want('14')) {
    const g0 = nowMs();
    const scale = { work, cli: CLI, runs: COLD_RUNS, entries: Math.max(1000, Number(argValue('scale-entries') ?? 100_000)), add, log };
    await scaleGroup(scale);
    await flatCatalogRows({ ...scale, flat: Math.max(0, Number(argValue('scale-flat') ?? 200_000)) });
    log(`group 14 took ${((nowMs() - g0) / 1000).toFixed(1)} s`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // 15. single commands against `node -e 0` (bench/startup.ts)
  if (want('15')) {
    const g0 = nowMs();
    await startupGroup({ work, runs: Math.max(RUNS, 9), add, log, runCommand, fixture: { fqrn: FQRN, srv: SRV, key: KEY, smallPath: small[0]!.path } });
    log(`group 15 took ${((nowMs() - g0) / 1000).toFixed(1)} s`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Output
  const env = {
    node: process.version,
    openssl: process.versions.openssl,
    zlib: process.versions.zlib,
    cpu: `${cpus().length} x ${cpus()[0]?.model ?? '?'}`,
    loadavgBefore: loadBefore.map((x) => Number(x.toFixed(2))),
    loadavgAfter: loadavg().map((x) => Number(x.toFixed(2))),
    server: IN_PROCESS ? 'this process' : 'a child process',
    runs: RUNS,
    coldRuns: COLD_RUNS,
    execRuns: EXEC_RUNS,
    cacheBase: CACHE_BASE,
    seconds: Number(((nowMs() - t0) / 1000).toFixed(1)),
    fixture: SRV,
  };
  if (JSON_OUT) {
    process.stdout.write(JSON.stringify({ env, rows, targets: targets(rows), ...(connector.length ? { connector } : {}) }, null, 2) + '\n');
  } else {
    const lines = [
      `ucvmfs bench: ${FQRN}, node ${env.node}, ${env.cpu}, server in ${env.server}, medians of ${RUNS} samples (cold: ${COLD_RUNS} runs; connector: ${EXEC_RUNS} runs), ` +
        `load avg ${env.loadavgBefore[0]} -> ${env.loadavgAfter[0]}, ${env.seconds} s`,
      'ratio = speed of the ucvmfs column / speed of the baseline (> 1: ucvmfs column faster); MB = 10^6 bytes',
      ...(connector.length ? ['group 7: times of whole commands in seconds; its targets are slowdowns (ucvmfs time / native time), the inverse of the ratio column; the -proot rows hold proot in the ucvmfs column'] : []),
      '',
      table(rows),
      '',
      ...rows.filter((r) => r.note).map((r) => `note ${r.id}: ${r.note}`),
      '',
      ...connector.map((c) => `tracer ${c.id}, first run (cold shadow tree): ${describeStats(c.cold)}`),
      ...(connector.length ? [''] : []),
      ...targets(rows),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
} catch (e) {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`);
  exitCode = 1;
} finally {
  await server.close();
  await undiciAgent.close();
  httpAgent.destroy();
  if (KEEP) log(`kept ${work}`);
  else await rm(work, { recursive: true, force: true });
}
process.exit(exitCode);
