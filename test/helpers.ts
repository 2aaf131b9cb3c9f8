/**
 * Test helpers: the shared fixtures, served over loopback, and truth.json read with exact nanosecond times.
 */
import { fixturesDir } from './fixtures-location.js';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, mkdtempSync, cpSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openRepository, type OpenOptions, type Repository } from '../lib/index.js';
import { serveRepositories, type RepositoryServer } from '../lib/serve.js';

/** Project root (tests run from dist/test). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the shared fixtures live: beside the checkout, or named by UCVMFS_FIXTURES. */
export const FIXTURES = fixturesDir();

/** The fixture repositories present (folders with srv/ and truth.json). */
export function fixtureNames(): string[] {
  if (!existsSync(FIXTURES)) throw new Error(`fixtures not found at ${FIXTURES} (set UCVMFS_FIXTURES)`);
  return readdirSync(FIXTURES).filter((n) => existsSync(join(FIXTURES, n, 'srv', '.cvmfspublished')) && existsSync(join(FIXTURES, n, 'truth.json'))).sort();
}

/** One entry of truth.json. */
export interface TruthEntry {
  type: string;
  mode: number;
  perm: string;
  size: number;
  nlink: number;
  mtime: number;
  mtime_ns: string;
  uid: number;
  gid: number;
  target?: string;
  sha1?: string;
  entries?: string[];
  xattrs: Record<string, { hex: string; text: string | null }>;
  magic?: Record<string, string>;
  hidden_from_readdir?: boolean;
}

/** A truth file, with mtime_ns kept as exact decimal strings. */
export interface Truth {
  fqrn: string;
  entries: Record<string, TruthEntry>;
  tags: { name: string; hash: string; revision: number; timestamp: number; description: string; size: number; channel: number; branch: string; truth_file: string }[];
  manifest_fields: Record<string, string>;
  hardlink_groups: string[][];
  variant_symlinks?: Record<string, Record<string, string>>;
  exec_checks?: unknown[];
}

/** Reads truth.json (or truth-revN.json). */
export function readTruth(fqrn: string, file = 'truth.json'): Truth {
  const text = readFileSync(join(FIXTURES, fqrn, file), 'utf8').replace(/"mtime_ns": (\d+)/g, '"mtime_ns": "$1"');
  return JSON.parse(text) as Truth;
}

const temps: string[] = [];

/**
 * A fresh temp directory, removed when the test file's process exits (UCVMFS_KEEP_TEMP=1 keeps them to look
 * at): a run of the suite makes about 4 GB of them, and a machine that runs it often would fill its disk.
 */
export function tempDir(prefix = 'ucvmfs-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (temps.length === 0 && process.env.UCVMFS_KEEP_TEMP !== '1') process.on('exit', removeTemps);
  temps.push(dir);
  return dir;
}

function removeTemps(): void {
  for (const dir of temps) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A test may leave a directory without write permission (a read-only cache, a publisher's output).
      spawnSync('chmod', ['-R', 'u+rwX', dir]);
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
      } catch (e) {
        process.stderr.write(`# left ${dir}: ${(e as Error).message}\n`);
      }
    }
  }
}

// The compiled code (lib/cli/code-cache.ts) of every command the tests start goes to a directory of this test
// process's (and of the processes it starts, which inherit the variable), removed at its end, not to the user's
// cache. It is named by the process's pid: one left by a process that was killed is removed by the next.
if (!process.env.UCVMFS_CODE_CACHE) {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(/^ucvmfs-code-(\d+)-/.exec(name)?.[1]);
    if (pid > 0 && !alive(pid)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  process.env.UCVMFS_CODE_CACHE = join(tempDir(`ucvmfs-code-${process.pid}-`), 'cache');
}

/** Whether a process of this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A writable copy of a fixture's srv/ (for tamper tests). */
export function copyFixture(fqrn: string): string {
  const dir = join(tempDir('ucvmfs-tamper-'), 'srv');
  cpSync(join(FIXTURES, fqrn, 'srv'), dir, { recursive: true });
  chmodRecursive(dir);
  return dir;
}

function chmodRecursive(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chmodRecursive(p);
    else chmodSync(p, 0o644);
  }
}

/** Path of a fixture's master public key. */
export function keyOf(fqrn: string): string {
  return join(FIXTURES, fqrn, `${fqrn}.pub`);
}

/** Serves fixtures (or given directories) on 127.0.0.1. */
export async function serve(repos: Record<string, string>): Promise<RepositoryServer> {
  return serveRepositories(repos);
}

/** A repository published here from `src` and served on 127.0.0.1, with the environment `ucvmfs` needs for it. */
export interface PublishedRepository {
  server: RepositoryServer;
  /** CVMFS_SERVER_URL, CVMFS_PUBLIC_KEY and a fresh CVMFS_CACHE_BASE (and `extra`). */
  env(extra?: Record<string, string>): Record<string, string>;
}

/** Publishes `src` as `fqrn` and serves it (close the server after the tests). */
export async function servePublished(src: string, fqrn: string): Promise<PublishedRepository> {
  const { publish } = await import('../lib/index.js');
  const out = join(tempDir('ucvmfs-published-'), 'repo');
  const { publicKeyPath } = await publish(src, { fqrn, out, readSourceXattrs: false });
  const server = await serve({ [fqrn]: out });
  return {
    server,
    env: (extra = {}) => ({ CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: publicKeyPath, CVMFS_CACHE_BASE: tempDir('ucvmfs-published-cache-'), ...extra }),
  };
}

/** Serves one fixture and opens it with a fresh cache. */
export async function openFixture(fqrn: string, opts: OpenOptions = {}, srvDir?: string): Promise<{ repo: Repository; server: RepositoryServer; cacheDir: string }> {
  const server = await serve({ [fqrn]: srvDir ?? join(FIXTURES, fqrn, 'srv') });
  const cacheDir = opts.cacheDir ?? tempDir('ucvmfs-cache-');
  try {
    const repo = await openRepository(fqrn, {
      serverUrls: [`${server.url}/@fqrn@`],
      publicKeys: [keyOf(fqrn)],
      variables: { SOME_VAR: 'alpha' },
      ...opts,
      cacheDir,
    });
    return { repo, server, cacheDir };
  } catch (e) {
    await server.close();
    throw e;
  }
}

/** The built CLI's ES module entry, as `node CLI ...` runs it. */
export const CLI = join(ROOT, 'dist', 'lib', 'cli', 'main.js');
/** The installed command (a shell script that runs the CLI's one-file build, `exec` through the front). */
export const BIN = join(ROOT, 'bin', 'ucvmfs.js');

/** What a finished CLI process left. */
export interface CliResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs the command as a user does, through bin/ucvmfs.js, asynchronously (a server in this process must keep
 * answering meanwhile). Tests that start `node CLI` themselves cover the ES modules.
 */
export function ucvmfs(args: string[], env: Record<string, string> = {}, input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { env: { ...process.env, ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (input !== undefined) p.stdin!.end(input);
    const out: Buffer[] = [];
    let err = '';
    p.stdout!.on('data', (d: Buffer) => out.push(d));
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout: Buffer.concat(out), stderr: err }));
  });
}

/** Deterministic pseudo-random bytes (xorshift32), incompressible enough to be cut into many chunks. */
export function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
