/**
 * The types of `execCommand`'s options and result, and of the native tracer: shared by exec.ts, which runs
 * the command, and job.ts, which holds the job's state.
 * @module
 */
import type { OpenOptions } from '../repository.js';
import type { ShadowTree } from './shadow.js';
import type { PrefetchOptions, PrefetchStats } from '../fs/prefetch.js';
import type { ReplayOptions, ReplayStats } from './profile.js';

/** What the native module offers. */
export interface NativeTracer {
  run(
    o: { file: string | Buffer; argv: Array<string | Buffer>; envp: Array<string | Buffer>; cwd: string | Buffer; shadow: string; base: string; record?: boolean; ignored?: string; blocked?: string; nofile?: string; fsize?: string; fds?: number[]; closed?: number[] },
    onRequest: (op: string, path: Buffer, reply: (answer: Array<string | Buffer> | null) => void) => void,
  ): Promise<{ code: number; signal: number; error?: string }>;
  setxattr(path: string | Buffer, name: string, value: Buffer): number;
  /** Copies a whole file over the start of an open one (a reflink, else copy_file_range); bytes copied. */
  copyInto(src: string, fd: number): Promise<number>;
  /** Copies a whole file into an open one from `offset` on (copy_file_range); bytes copied. Absent in older builds. */
  copyAt?(src: string, fd: number, offset: number): Promise<number>;
  /** Makes new entries of one shadow directory in a worker thread; `[index, errno]` of those it could not. */
  makeEntries(dir: string | Buffer, packed: Buffer, count: number): Promise<Array<[number, number]>>;
  /** Sets atime and mtime of a path or descriptor to the nanosecond (0, or an errno). Absent in older builds. */
  setTimes?(target: string | Buffer | number, sec: number, nsec: number, nofollow: boolean): number;
  /** Points standard input, output and error at /dev/null (0, or an errno). */
  detachStdio(): number;
  /** Marks a descriptor close-on-exec (0, or an errno). */
  closeOnExec(fd: number): number;
  arch: string;
}

/** Options of `execCommand`. */
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
   * far; the promise of `execCommand` still resolves only when every process it started has ended, since
   * those keep seeing /cvmfs until then.
   */
  onExit?: (result: ExecResult) => void;
  /**
   * Signal dispositions and mask for the command, as masks with bit n-1 for signal n (a shell's child inherits
   * ignored signals and the mask; Node resets both in itself at start, so a caller that knows the original ones
   * passes them here). Default: nothing ignored, nothing blocked.
   */
  signals?: { ignored: bigint; blocked: bigint };
  /**
   * The command's soft limit of open files (Infinity: unlimited; capped by the hard limit). Node raises its own
   * soft limit to the hard one at start, and a command inherits that; a caller that knows the original limit
   * passes it here (programs that use select() rely on the usual 1024). Default: this process's.
   */
  openFilesLimit?: number;
  /**
   * The command's soft limit of file size in bytes, decimal (`inf`: unlimited; capped by the hard limit): the
   * caller's, where the front raised this process's own so that the cache and shadow files are not bound by a
   * batch system's limit on what the job writes. Default: this process's.
   */
  fileSizeLimit?: string;
  /**
   * Descriptors above 2 the command inherits (Node marks every descriptor it inherited close-on-exec at start; a
   * caller that knows which ones a shell would have passed on names them here: a lock held on fd 9, make's
   * jobserver, bash's `<(...)`). Default: none.
   */
  inheritedFds?: readonly number[];
  /** Which of descriptors 0-2 are closed for the command (the caller had closed them, `<&-`). Default: none. */
  closedStdio?: readonly number[];
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
   * Directories listed ahead of a program that walks a tree (lib/connector/list-ahead.ts) and not yet asked for
   * by it, at most; 0 turns it off. Default: `UCVMFS_LIST_AHEAD`, else 8.
   */
  listAhead?: number;
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
