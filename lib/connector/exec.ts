/**
 * Runs an unmodified command so that it sees `/cvmfs/<fqrn>` as if mounted: the native tracer (addon/) stops
 * the command only at path system calls, and the shadow tree supplies what those paths name.
 * @module
 */
import { chmodSync, existsSync, fstatSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { nameHash } from '../crypto/name-hash.js';
import { dirname, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CvmfsError } from '../errors.js';
import { defaultCacheBase, privateCacheBase } from '../cache/location.js';
import { privateDir, shadowArea, TRAVERSE } from './shadow-dir.js';
import { pruneShadow, removeTree } from './shadow-bounds.js';
import type { PrefetchOptions } from '../fs/prefetch.js';
import { pidAlive, startTime } from '../cache/claim.js';
import { Job } from './job.js';
import type { ExecOptions, ExecResult, NativeTracer } from './exec-options.js';
import { loadAddon } from './native.js';

/** The connector's native module (addon/): the tracer and the file calls Node lacks. */
export function loadTracer(): NativeTracer {
  return loadAddon() as NativeTracer;
}

export type { ExecOptions, ExecResult } from './exec-options.js';
import { mayBeRepository } from '../format/names.js';
import { racing } from './entry-maker.js';
import { argumentBytes, environmentBytes, workingDirectory } from './environ.js';
import { encodeName } from '../format/byte-names.js';


/** The preload library built beside the tracer (x86_64 only), or undefined. */
function preloadLibrary(): string | undefined {
  if (process.arch !== 'x64' || process.env.UCVMFS_NO_PRELOAD) return undefined;
  const p = resolve(dirname(fileURLToPath(import.meta.url)), '../../..', 'build/Release/ucvmfs_preload.so');
  return existsSync(p) ? p : undefined;
}


/** The shadow tree's bound in bytes (negative: none), from the option or the environment. */
function shadowQuotaBytes(mb = Number(process.env.UCVMFS_SHADOW_QUOTA_LIMIT || 4000)): number {
  if (!Number.isFinite(mb)) throw new CvmfsError('EINVAL', `UCVMFS_SHADOW_QUOTA_LIMIT must be a number of MB or -1, not ${process.env.UCVMFS_SHADOW_QUOTA_LIMIT}`);
  return mb < 0 ? -1 : mb * 1024 * 1024;
}



/**
 * The profile of a command line in a directory of profiles (`UCVMFS_PROFILE_DIR`, made if missing): one file per
 * command line and working directory, so that the same job finds its own profile on any node that shares the
 * directory (a home directory often is shared where caches are node-local).
 */
function profileIn(dir: string | undefined, argv: readonly string[], cwd: string): string | undefined {
  if (!dir) return undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    return undefined;
  }
  return join(dir, `${nameHash(JSON.stringify([cwd, ...argv]), 32)}.profile`);
}

/** How long after the command's start the shadow tree's code is loaded when no /cvmfs question came first. */
const SHADOW_LOAD_DELAY_MS = 15;

/** Sibling prefetch as `UCVMFS_PREFETCH` says: off, always (whatever the round trip), or by default when it pays. */
function prefetchFromEnv(v = ''): PrefetchOptions | false {
  if (/^(off|no|0|false)$/i.test(v)) return false;
  return /^(always|on|yes|1|true)$/i.test(v) ? { minLatencyMs: 0 } : {};
}

export { privateDir };

/**
 * Session directories of processes that died without cleaning up (to be removed). A session is named `<host>.<pid>@<start>-XXXXXX`
 * (the start time tells a reused pid from the session's own process: a dead session kept for a reused pid would
 * keep its shadow generations from ever being removed); `<host>.<pid>-XXXXXX` and `<pid>-XXXXXX` are older names.
 */
function removeStale(sessions: string): string[] {
  const me = hostname();
  const stale: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(sessions);
  } catch {
    // none yet
  }
  for (const name of names) {
    const m = /^(?:(.*)\.)?(\d+)(?:@(\d+))?-[^-]*$/.exec(name);
    if (!m || (m[1] !== undefined && m[1] !== me)) continue; // another node's session is that node's to judge
    const pid = Number(m[2]);
    const gone = !pidAlive(pid) || (m[3] !== undefined && startTime(pid) !== m[3]);
    if (pid > 0 && pid !== process.pid && gone) stale.push(join(sessions, name));
  }
  return stale;
}

/** The job's session directory in its shadow area (made private, stale sessions and generations pruned first). */
async function sessionDir(options: ExecOptions): Promise<{ base: string; root: string }> {
  // Private even when the cache base is shared with others: the shadow tree is served to programs unchecked.
  const own = privateCacheBase(options.open?.cacheDir ?? defaultCacheBase());
  // The cache base may be a symlink of the user's; below it, every directory must be a real one.
  mkdirSync(own, { recursive: true, mode: 0o700 });
  if (statSync(own).uid !== (process.getuid?.() ?? 0)) privateDir(own, true);
  // Where other users (a job that switches user) can reach it, yet only this user can change it.
  const base = shadowArea(own, options.shadowDir);
  const sessions = join(base, 'sessions');
  for (const d of [sessions, join(base, 'rev'), join(base, 'root'), join(base, 'locks'), join(base, 'trash')]) privateDir(d, false, TRAVERSE);
  for (const dead of removeStale(sessions)) await removeTree(dead).catch(() => undefined);
  await pruneShadow(base, sessions);
  // Named by host too: a home directory (and so this cache) is often shared by the nodes of a cluster.
  const start = startTime(process.pid);
  const root = mkdtempSync(join(sessions, `${hostname()}.${process.pid}${start ? `@${start}` : ''}-`));
  // The job's /cvmfs: listable by any user it switches to (`ls /cvmfs`), writable by none.
  chmodSync(root, 0o755);
  // Configured repositories show in `ls /cvmfs` at once (empty until opened) and open on first access, like
  // autofs; 0755 whatever the umask: a job's processes that switched to another user must not write them.
  const configured = [...(options.repositories ?? []), ...(process.env.CVMFS_REPOSITORIES ?? '').split(',')];
  for (const fqrn of new Set(configured.map((r) => r.trim()).filter(Boolean))) if (mayBeRepository(fqrn)) racing(() => mkdirSync(join(root, fqrn), 0o755));
  return { base, root };
}

/** The command's working directory as the kernel must see it: under /cvmfs, the same place in the shadow tree. */
async function jobCwd(job: Job, cwd: string): Promise<string> {
  if (cwd !== '/cvmfs' && !cwd.startsWith('/cvmfs/')) return cwd;
  const t = await job.shadowTree();
  await t.prepare('d', cwd);
  const fqrn = cwd.split('/')[2];
  const rev = fqrn ? t.revisionDir(fqrn) : undefined;
  return rev ? rev + cwd.slice(`/cvmfs/${fqrn}`.length) : job.root + cwd.slice('/cvmfs'.length);
}

/** The command's environment: the caller's (its bytes), with the preload library and what it needs to know. */
function jobEnv(options: ExecOptions, job: Job, base: string): Buffer[] {
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  // The preload library reads it: while recording, it leaves every /cvmfs path to the tracer.
  if (job.recordingFresh) env.UCVMFS_RECORD = '1';
  else delete env.UCVMFS_RECORD;
  const preload = options.preload === false ? undefined : preloadLibrary();
  if (preload) {
    // The in-process fast path for dynamically linked programs; static ones and anything it leaves out stop
    // in the tracer as before.
    env.LD_PRELOAD = env.LD_PRELOAD ? `${preload} ${env.LD_PRELOAD}` : preload;
    env.UCVMFS_SESSION = job.root;
    env.UCVMFS_SHADOW = base;
    // Our mount namespace: in any other (a container) the library leaves every call to the tracer.
    env.UCVMFS_MNTNS = String(statSync('/proc/self/ns/mnt').ino);
  }
  return environmentBytes(env, options.env === undefined);
}

/**
 * What the command inherits from the caller besides its environment, as the tracer takes it: the signal state, the
 * open-files and file-size limits, the descriptors above 2 and the closed standard ones (see ExecOptions).
 */
function inheritance(o: ExecOptions): { ignored?: string; blocked?: string; nofile?: string; fsize?: string; fds?: number[]; closed?: number[] } {
  const limit = o.openFilesLimit;
  return {
    ...(o.signals ? { ignored: o.signals.ignored.toString(16), blocked: o.signals.blocked.toString(16) } : {}),
    ...(limit === undefined || !(limit >= 0) ? {} : { nofile: limit >= 2 ** 53 ? 'inf' : String(Math.floor(limit)) }),
    ...(o.fileSizeLimit && /^(\d{1,19}|inf)$/.test(o.fileSizeLimit) ? { fsize: o.fileSizeLimit } : {}),
    ...(o.inheritedFds?.length ? { fds: o.inheritedFds.filter((fd) => Number.isInteger(fd) && fd > 2) } : {}),
    ...(o.closedStdio?.length ? { closed: o.closedStdio.filter((fd) => fd === 0 || fd === 1 || fd === 2) } : {}),
  };
}

/**
 * Builds `process.stdout` and `process.stderr` now, before the command starts. Node makes a stdio pipe
 * non-blocking when it first builds the stream over it, and that flag belongs to the pipe, which the command
 * shares; the tracer starts the command with blocking stdio, but a stream built later (Node builds both behind
 * the scenes: every `Readable.pipe` looks at them, and opening a repository pipes its downloads) turned the
 * command's stdout and stderr non-blocking mid-run, and `find /cvmfs/... | wc` or `2>&1 | ...` failed with
 * "write error" (EAGAIN) once the reader fell behind. The tracer clears the flag for the command, so this
 * process's own writes there (a warning, `--stats`) block while the reader is behind: the price of the command's
 * output not failing. Nothing may build `process.stdin` (the command would find its input non-blocking).
 */
function buildStdioStreams(): void {
  // Only a pipe's or a socket's stream changes the flag: files get a stream that changes nothing, and a
  // terminal's stream reopens the terminal (a descriptor of its own, which detachStdio would not let go of).
  const shared = (fd: number) => {
    try {
      const st = fstatSync(fd);
      return st.isFIFO() || st.isSocket();
    } catch {
      return false;
    }
  };
  if (shared(1)) void process.stdout;
  if (shared(2)) void process.stderr;
}

/**
 * Runs `argv` with `/cvmfs` available, and resolves when it and every process it started have exited.
 * Only one command can run per process at a time (the tracer waits for any child of this process).
 */
export async function execCommand(argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
  if (argv.length === 0) throw new CvmfsError('EINVAL', 'exec needs a command');
  const quotaBytes = shadowQuotaBytes(options.shadowQuotaLimitMb);
  const tracer = loadTracer();
  const { base, root } = await sessionDir(options);
  const job = new Job(base, root, options, tracer, quotaBytes, options.prefetch ?? prefetchFromEnv(process.env.UCVMFS_PREFETCH));
  try {
    const here = options.cwd ?? workingDirectory();
    const profileFile = options.profile ?? (process.env.UCVMFS_PROFILE || undefined) ?? profileIn(process.env.UCVMFS_PROFILE_DIR, argv, here);
    if (profileFile) await job.useProfile(profileFile);
    const cwd = encodeName(await jobCwd(job, here));
    const envp = jobEnv(options, job, base);
    buildStdioStreams();
    // The shadow tree's code is loaded on the first /cvmfs question, or a moment after the start, once a command
    // that ends at once (`exec -- true`, a quick check) is done: loading it while the command starts held the
    // main thread, and so the command's end, by about 8 ms here.
    const early = setTimeout(() => void job.shadowTree().catch(() => undefined), SHADOW_LOAD_DELAY_MS);
    early.unref();
    const res = await tracer.run({ file: encodeName(argv[0]!), argv: argumentBytes(argv), envp, cwd, shadow: root, base, record: job.recordingFresh, ...inheritance(options) }, (op, raw, reply) => job.ask(op, raw, reply));
    if (res.error) {
      // The command could not be started: say why; its status (126, 127) is what a shell would give.
      if (res.code < 0) throw new CvmfsError(res.error.startsWith('ptrace') ? 'EPERM' : 'EINVAL', res.error);
      if (!job.startErrorTold) options.warn?.(res.error);
    }
    clearTimeout(early);
    job.stopReplay();
    return job.result(res.signal ? null : res.code, res.signal);
  } finally {
    await job.close();
  }
}
