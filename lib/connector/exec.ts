/**
 * Runs an unmodified command so that it sees `/cvmfs/<fqrn>` as if mounted: the native tracer (addon/) stops
 * the command only at path system calls, and the shadow tree supplies what those paths name.
 * @module
 */
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CvmfsError } from '../errors.js';
import type { OpenOptions, Repository } from '../repository.js';
import type { ObjectStore } from '../store/object-store.js';
import { defaultCacheBase, privateCacheBase } from '../cache/location.js';
import type { ShadowTree } from './shadow.js';
import type { BatchEntry } from './entry-maker.js';
import { privateDir, shadowArea, TRAVERSE } from './shadow-dir.js';
import { pruneShadow, removeTree } from './shadow-bounds.js';
import type { PrefetchOptions, PrefetchStats } from '../fs/prefetch.js';
import { decodeName, encodeName } from '../format/byte-names.js';
import { pidAlive } from '../cache/claim.js';
import type { ProfileRecorder, ProfileReplay, ReplayOptions, ReplayStats } from './profile.js';
import { mayBeRepository } from '../format/names.js';
import { racing } from './entry-maker.js';

/** What the native module offers. */
interface NativeTracer {
  run(
    o: { file: string; argv: string[]; envp: string[]; cwd: string; shadow: string; base: string; record?: boolean; ignored?: string; blocked?: string },
    onRequest: (op: string, path: Buffer, reply: (answer: Array<string | Buffer> | null) => void) => void,
  ): Promise<{ code: number; signal: number; error?: string }>;
  setxattr(path: string | Buffer, name: string, value: Buffer): number;
  /** Copies a whole file over the start of an open one (a reflink, else copy_file_range); bytes copied. */
  copyInto(src: string, fd: number): Promise<number>;
  /** Copies a whole file into an open one from `offset` on (copy_file_range); bytes copied. Absent in older builds. */
  copyAt?(src: string, fd: number, offset: number): Promise<number>;
  /** Makes new entries of one shadow directory in a worker thread; `[index, errno]` of those it could not. */
  makeEntries(dir: string | Buffer, entries: BatchEntry[]): Promise<Array<[number, number]>>;
  /** Points standard input, output and error at /dev/null (0, or an errno). */
  detachStdio(): number;
  /** Marks a descriptor close-on-exec (0, or an errno). */
  closeOnExec(fd: number): number;
  arch: string;
}

let native: NativeTracer | undefined;

/** Counters of a job whose shadow tree was never asked anything. */
const NO_REQUESTS: ShadowTree['counters'] = { requests: 0, directories: 0, names: 0, files: 0, bytes: 0, listMs: 0, fillMs: 0, fetchMs: 0 };
const NOTHING_PREFETCHED: PrefetchStats = { directories: 0, files: 0, bytes: 0, failed: 0 };

/** Loads the tracer built by node-gyp at install time; a clear error when it is missing. */
export function loadTracer(): NativeTracer {
  if (native) return native;
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  const require = createRequire(import.meta.url);
  try {
    native = require(join(root, 'build/Release/ucvmfs_tracer.node')) as NativeTracer;
    return native;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
  }
  throw new CvmfsError('ENOENT', 'the connector is not built: run `npm run build:addon` (needs g++, make and python3)');
}

/** The preload library built beside the tracer (x86_64 only), or undefined. */
function preloadLibrary(): string | undefined {
  if (process.arch !== 'x64' || process.env.UCVMFS_NO_PRELOAD) return undefined;
  const p = resolve(dirname(fileURLToPath(import.meta.url)), '../../..', 'build/Release/ucvmfs_preload.so');
  return existsSync(p) ? p : undefined;
}

/** Options of {@link execCommand}. */
export interface ExecOptions {
  /** How repositories are opened on first access (server URLs with `@fqrn@`, keys, cache ...). */
  open?: OpenOptions;
  /** Repositories listed in `/cvmfs` from the start (opened on first access); CVMFS_REPOSITORIES adds more. */
  repositories?: string[];
  /** Working directory of the command (may be under /cvmfs). */
  cwd?: string;
  /** Environment of the command (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Called with the command's process id once it runs (to pass signals on). */
  onStart?: (pid: number) => void;
  /**
   * Called as soon as the command itself ends (status, or the signal that ended it), with what the job did so
   * far; the promise of {@link execCommand} still resolves only when every process it started has ended, since
   * those keep seeing /cvmfs until then.
   */
  onExit?: (result: ExecResult) => void;
  /**
   * Signal dispositions and mask for the command, as masks with bit n-1 for signal n (a shell's child inherits
   * ignored signals and the mask; Node resets both in itself at start, so a caller that knows the original ones
   * passes them here). Default: nothing ignored, nothing blocked.
   */
  signals?: { ignored: bigint; blocked: bigint };
  /** Use the in-process fast path for dynamically linked programs (default true; env UCVMFS_NO_PRELOAD=1 turns it off). */
  preload?: boolean;
  /** Called with a line of diagnostics on problems opening repositories. */
  warn?: (line: string) => void;
  /**
   * Fetch the small siblings of the first file opened in a directory (lib/fs/prefetch.ts); false turns it off.
   * Default on while the server takes 5 ms or more to answer; the environment's `UCVMFS_PREFETCH=off` turns it
   * off, `=always` on whatever the round trip.
   */
  prefetch?: PrefetchOptions | false;
  /**
   * An access profile file (lib/connector/profile.ts; default the environment's `UCVMFS_PROFILE`, else, when
   * `UCVMFS_PROFILE_DIR` names a directory, a file there named by the command line and working directory).
   * When it exists it is replayed at start (objects fetched many at a time, paths made ready ahead of the
   * command) and extended with whatever the command needed beyond it; when it does not, the command's needs are
   * recorded into it (the shadow tree's completed entries are then not taken as given, so a recording job is
   * slower).
   */
  profile?: string;
  /** Bounds of the profile's replay. */
  replay?: ReplayOptions;
  /**
   * Where the shadow area goes (default the environment's `UCVMFS_SHADOW_DIR`, else `<cache>/shadow` when other
   * users can reach it, else `${TMPDIR:-/tmp}/ucvmfs-shadow-<uid>/<hash of the cache>`): see shadow-dir.ts.
   */
  shadowDir?: string;
  /**
   * The bound on each repository's shadow tree, in MB (default the environment's `UCVMFS_SHADOW_QUOTA_LIMIT`,
   * else 4000 as the cache's quota; -1 for none): a job that finds its revision's tree charged more starts a
   * fresh generation of it, and the old one is removed once no job uses it (lib/connector/shadow-bounds.ts).
   */
  shadowQuotaLimitMb?: number;
}

/** The shadow tree's bound in bytes (negative: none), from the option or the environment. */
function shadowQuotaBytes(mb = Number(process.env.UCVMFS_SHADOW_QUOTA_LIMIT || 4000)): number {
  if (!Number.isFinite(mb)) throw new CvmfsError('EINVAL', `UCVMFS_SHADOW_QUOTA_LIMIT must be a number of MB or -1, not ${process.env.UCVMFS_SHADOW_QUOTA_LIMIT}`);
  return mb < 0 ? -1 : mb * 1024 * 1024;
}

/** How the command ended. */
export interface ExecResult {
  /** Exit status, or null when a signal ended it. */
  code: number | null;
  /** The signal that ended it (number), or 0. */
  signal: number;
  /** Shadow-tree counters: requests from the tracer, directories listed, files written and their bytes. */
  counters: ShadowTree['counters'];
  /** What the sibling prefetch fetched. */
  prefetched: PrefetchStats;
  /** Objects downloaded and their bytes (on the wire), and catalogs loaded, over the repositories the job opened. */
  downloads: { objects: number; bytes: number; catalogs: number };
  /** What the profile's replay did (absent without a profile to replay), and whether the profile was written. */
  profile?: { replayed?: ReplayStats; recorded: boolean; written: boolean };
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
  return join(dir, `${createHash('sha256').update(JSON.stringify([cwd, ...argv])).digest('hex').slice(0, 32)}.profile`);
}

/** Sibling prefetch as `UCVMFS_PREFETCH` says: off, always (whatever the round trip), or by default when it pays. */
function prefetchFromEnv(v = ''): PrefetchOptions | false {
  if (/^(off|no|0|false)$/i.test(v)) return false;
  return /^(always|on|yes|1|true)$/i.test(v) ? { minLatencyMs: 0 } : {};
}

export { privateDir };

/** Session directories of processes that died without cleaning up. */
async function removeStale(sessions: string): Promise<void> {
  const me = hostname();
  for (const name of await readdir(sessions).catch(() => [] as string[])) {
    const m = /^(?:(.*)\.)?(\d+)-[^-]*$/.exec(name);
    if (!m || (m[1] !== undefined && m[1] !== me)) continue; // another node's session is that node's to judge
    const pid = Number(m[2]);
    if (pid > 0 && pid !== process.pid && !pidAlive(pid)) await removeTree(join(sessions, name)).catch(() => undefined);
  }
}

/**
 * Runs `argv` with `/cvmfs` available, and resolves when it and every process it started have exited.
 * Only one command can run per process at a time (the tracer waits for any child of this process).
 */
export async function execCommand(argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
  if (argv.length === 0) throw new CvmfsError('EINVAL', 'exec needs a command');
  const quotaBytes = shadowQuotaBytes(options.shadowQuotaLimitMb);
  const tracer = loadTracer();
  // Private even when the cache base is shared with others: the shadow tree is served to programs unchecked.
  const own = privateCacheBase(options.open?.cacheDir ?? defaultCacheBase());
  // The cache base may be a symlink of the user's; below it, every directory must be a real one.
  await mkdir(own, { recursive: true, mode: 0o700 });
  const ownStat = await stat(own);
  if (ownStat.uid !== (process.getuid?.() ?? 0)) await privateDir(own, true);
  // Where other users (a job that switches user) can reach it, yet only this user can change it.
  const base = await shadowArea(own, options.shadowDir);
  const sessions = join(base, 'sessions');
  for (const d of [sessions, join(base, 'rev'), join(base, 'root'), join(base, 'locks'), join(base, 'trash')]) await privateDir(d, false, TRAVERSE);
  await removeStale(sessions);
  await pruneShadow(base, sessions);
  // Named by host too: a home directory (and so this cache) is often shared by the nodes of a cluster.
  const root = await mkdtemp(join(sessions, `${hostname()}.${process.pid}-`));
  // The job's /cvmfs: listable by any user it switches to (`ls /cvmfs`), writable by none.
  await chmod(root, 0o755);
  const opened: Repository[] = [];
  // Each repository's object store as soon as its open makes it (a profile's replay fetches ahead with it).
  const stores = new Map<string, { promise: Promise<ObjectStore>; resolve: (s: ObjectStore) => void }>();
  const storeOf = (fqrn: string) => {
    let s = stores.get(fqrn);
    if (!s) {
      let resolve!: (s: ObjectStore) => void;
      const promise = new Promise<ObjectStore>((r) => { resolve = r; });
      stores.set(fqrn, s = { promise, resolve });
    }
    return s;
  };
  const openRepo = async (fqrn: string): Promise<Repository | null> => {
    try {
      // Loaded on first access: a job that never touches /cvmfs does not pay for the client.
      const { openRepository } = await import('../repository.js');
      const r = await openRepository(fqrn, {
        lazyRoot: true, autoReload: false, ...options.open,
        onObjectStore: (s) => {
          storeOf(fqrn).resolve(s);
          options.open?.onObjectStore?.(s);
        },
      });
      opened.push(r);
      return r;
    } catch (e) {
      // Once per job and repository (the shadow tree asks once per name).
      options.warn?.(`cannot open /cvmfs/${fqrn}: ${(e as Error).message}`);
      return null;
    }
  };
  const profileFile = options.profile ?? (process.env.UCVMFS_PROFILE || undefined) ?? profileIn(process.env.UCVMFS_PROFILE_DIR, argv, options.cwd ?? process.cwd());
  const profiles = profileFile ? await import('./profile.js') : undefined;
  const oldProfile = profileFile ? profiles!.readProfile(profileFile) : undefined;
  const recorder = profileFile ? new profiles!.ProfileRecorder() : undefined;
  let replay: ProfileReplay | undefined;
  // Questions of the program not yet answered; the replay waits for none to be.
  let waiting = 0;
  let wake: (() => void)[] = [];
  const idle = (): Promise<void> => (waiting === 0 ? Promise.resolve() : new Promise((r) => wake.push(r)));
  // The shadow tree's code (a score of modules) loads while the command starts, not before: `exec -- true` and
  // jobs that never touch /cvmfs do not wait for it.
  let shadow: ShadowTree | undefined;
  let shadowReady: Promise<ShadowTree> | undefined;
  const shadowTree = (): Promise<ShadowTree> => (shadowReady ??= (async () => {
    const { ShadowTree } = await import('./shadow.js');
    const t = new ShadowTree(base, root, openRepo, { setxattr: tracer.setxattr, copyInto: tracer.copyInto, copyAt: tracer.copyAt, makeEntries: tracer.makeEntries });
    t.prefetch = options.prefetch ?? prefetchFromEnv(process.env.UCVMFS_PREFETCH);
    t.quotaBytes = quotaBytes;
    if (recorder) {
      t.recorder = recorder;
      t.recording = !oldProfile;
    }
    if (oldProfile) {
      // The profile knows what the command opens; guessing siblings besides would fetch what it does not.
      if (options.prefetch === undefined) t.prefetch = false;
      replay = new profiles!.ProfileReplay(oldProfile, (fqrn) => t.mount(fqrn), (op, path) => t.prepare(op, path, true), { idle, ...options.replay }, (fqrn) => storeOf(fqrn).promise);
    }
    return (shadow = t);
  })());
  // Configured repositories show in `ls /cvmfs` at once (empty until opened) and open on first access, like
  // autofs; 0755 whatever the umask: a job's processes that switched to another user must not write them.
  const configured = [...(options.repositories ?? []), ...(process.env.CVMFS_REPOSITORIES ?? '').split(',')];
  for (const fqrn of new Set(configured.map((r) => r.trim()).filter(Boolean))) if (mayBeRepository(fqrn)) racing(() => mkdirSync(join(root, fqrn), 0o755));
  let cwd = options.cwd ?? process.cwd();
  if (profileFile) await shadowTree();
  if (cwd === '/cvmfs' || cwd.startsWith('/cvmfs/')) {
    const t = await shadowTree();
    await t.prepare('d', cwd);
    const fqrn = cwd.split('/')[2];
    const rev = fqrn ? t.revisionDir(fqrn) : undefined;
    cwd = rev ? rev + cwd.slice(`/cvmfs/${fqrn}`.length) : root + cwd.slice('/cvmfs'.length);
  }
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  // The preload library reads it: while recording, it leaves every /cvmfs path to the tracer.
  if (recorder && !oldProfile) env.UCVMFS_RECORD = '1';
  else delete env.UCVMFS_RECORD;
  const preload = options.preload === false ? undefined : preloadLibrary();
  if (preload) {
    // The in-process fast path for dynamically linked programs; static ones and anything it leaves out stop
    // in the tracer as before.
    env.LD_PRELOAD = env.LD_PRELOAD ? `${preload} ${env.LD_PRELOAD}` : preload;
    env.UCVMFS_SESSION = root;
    env.UCVMFS_SHADOW = base;
    // Our mount namespace: in any other (a container) the library leaves every call to the tracer.
    env.UCVMFS_MNTNS = String(statSync('/proc/self/ns/mnt').ino);
  }
  // What the job did up to now (at the command's end, and again when every process it started is gone).
  const soFar = (code: number | null, signal: number): ExecResult => {
    const downloads = { objects: 0, bytes: 0, catalogs: 0 };
    for (const r of opened) {
      downloads.objects += r.stats().objectsDownloaded;
      downloads.bytes += r.stats().bytesDownloaded;
      downloads.catalogs += r.stats().catalogsLoaded;
    }
    return { code, signal, counters: { ...(shadow?.counters ?? NO_REQUESTS) }, prefetched: shadow?.prefetched() ?? NOTHING_PREFETCHED, downloads };
  };
  const envp = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  let startErrorTold = false;
  // Written when the command ends (a caller that returns then, through the front, may start the next job at
  // once), and again at the very end if what the command left running added to it.
  const writeProfile = recorder && profileFile ? profiles!.profileWriter(recorder, profileFile, oldProfile, options.warn) : undefined;
  const saveProfile = (): ExecResult['profile'] => writeProfile && { replayed: replay?.stats, recorded: !oldProfile, written: writeProfile() };
  try {
    const signals = options.signals ? { ignored: options.signals.ignored.toString(16), blocked: options.signals.blocked.toString(16) } : {};
    void shadowTree().catch(() => undefined);
    const res = await tracer.run({ file: argv[0]!, argv, envp, cwd, shadow: root, base, record: !!recorder && !oldProfile, ...signals }, (op, raw, reply) => {
      // Paths are bytes both ways: names that are not UTF-8 travel as their string form (U+DC80 + byte) here.
      const path = decodeName(raw);
      if (op === 's' || op === 'e') {
        if (op === 's') options.onStart?.(Number(path));
        else {
          // "code:signal", then ":why" when the command could not be started: said before onExit, after which
          // the caller may have its answer and this process its stdio gone.
          const [code, signal, ...why] = path.split(':');
          if (why.length) {
            options.warn?.(why.join(':'));
            startErrorTold = true;
          }
          options.onExit?.({ ...soFar(Number(signal) ? null : Number(code), Number(signal)), profile: saveProfile() });
        }
        reply(null);
        return;
      }
      if (process.env.UCVMFS_TEST_FAULT === 'js') throw new Error('injected fault (UCVMFS_TEST_FAULT=js)');
      recorder?.step(op, path);
      waiting++;
      shadowTree().then((t) => t.prepare(op, path)).finally(() => {
        if (--waiting > 0) return;
        const w = wake;
        wake = [];
        for (const r of w) r();
      }).then((a) => reply(a.map((x) => (typeof x === 'string' ? encodeName(x) : x))), (e: Error) => {
        // The call fails with EIO: never let the kernel read a placeholder whose content could not be written.
        options.warn?.(`${path.split('\0')[0]}: ${e.message}`);
        reply(['\0EIO']);
      });
    });
    if (res.error) {
      // The command could not be started: say why; its status (126, 127) is what a shell would give.
      if (res.code < 0) throw new CvmfsError(res.error.startsWith('ptrace') ? 'EPERM' : 'EINVAL', res.error);
      if (!startErrorTold) options.warn?.(res.error);
    }
    replay?.close();
    return { ...soFar(res.signal ? null : res.code, res.signal), profile: saveProfile() };
  } finally {
    replay?.close();
    // A tree still loading was never asked anything: nothing to close or prune, and no reason to wait for it.
    const tree = shadow;
    tree?.close();
    for (const r of opened) r.close();
    await removeTree(root).catch(() => undefined);
    // A generation this job was the last to use, now that a newer one exists, goes with the job.
    await tree?.retire();
  }
}
