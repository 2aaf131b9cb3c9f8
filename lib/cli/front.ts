/**
 * The CLI's side of the exec front (addon/front.c): the process the caller waits for, which started this one.
 * It hands over the caller's signal dispositions and mask (lost when Node started) and a pipe on which this
 * process says when the command started and how it ended, so that the caller sees the command's end even while
 * processes the command left behind keep using /cvmfs through this process.
 * @module
 */
import { closeSync, writeSync } from 'node:fs';

/** What the front handed over, taken out of the environment so that the command does not inherit it. */
export interface Front {
  /** The caller's ignored signals and mask (bit n-1 for signal n). */
  signals?: { ignored: bigint; blocked: bigint };
  /** The caller's soft limit of open files (Infinity: none), which Node raised at start. */
  openFilesLimit?: number;
  /** The caller's soft limit of file size in bytes (`inf`: none), which the front raised to the hard limit. */
  fileSizeLimit?: string;
  /** Descriptors above 2 the caller left open for the command, which Node marked close-on-exec at start. */
  inheritedFds?: number[];
  /** Which of 0-2 the caller had closed (the front held them on /dev/null). */
  closedStdio?: number[];
  /** Tells the front the command's process id (signals sent to the front go there). */
  started(pid: number): void;
  /** Tells the front how the command ended; the front then exits the same way. Once only. */
  ended(code: number | null, signal: number): void;
  /** Whether a front waits for {@link ended} (else this process's own exit is the command's). */
  readonly present: boolean;
}

/** Reads and removes `UCVMFS_SIGNALS` and `UCVMFS_FRONT_FD` from this process's environment. */
export function takeFront(env: NodeJS.ProcessEnv = process.env, closeOnExec?: (fd: number) => number): Front {
  const sig = /^([0-9a-f]{1,16}):([0-9a-f]{1,16})$/.exec(env.UCVMFS_SIGNALS ?? '');
  const fdText = env.UCVMFS_FRONT_FD ?? '';
  const nofile = /^(\d{1,15}|inf)$/.exec(env.UCVMFS_NOFILE ?? '')?.[1];
  const fsize = /^(\d{1,19}|inf)$/.exec(env.UCVMFS_FSIZE ?? '')?.[1];
  const fds = /^\d{1,9}(,\d{1,9})*$/.test(env.UCVMFS_FDS ?? '') ? env.UCVMFS_FDS!.split(',').map(Number) : undefined;
  const closed = /^[0-2](,[0-2]){0,2}$/.test(env.UCVMFS_CLOSED ?? '') ? env.UCVMFS_CLOSED!.split(',').map(Number) : undefined;
  delete env.UCVMFS_CLOSED;
  delete env.UCVMFS_NOFILE;
  delete env.UCVMFS_FSIZE;
  delete env.UCVMFS_FDS;
  delete env.UCVMFS_SIGNALS;
  delete env.UCVMFS_FRONT_FD;
  let fd = /^\d+$/.test(fdText) && Number(fdText) > 2 ? Number(fdText) : -1;
  if (fd >= 0 && closeOnExec?.(fd)) fd = -1; // not a descriptor of ours after all
  const say = (line: string) => {
    if (fd < 0) return;
    try {
      writeSync(fd, `${line}\n`);
    } catch {
      fd = -1; // the front is gone (killed): nobody waits for the answer
    }
  };
  return {
    signals: sig ? { ignored: BigInt(`0x${sig[1]}`), blocked: BigInt(`0x${sig[2]}`) } : undefined,
    ...(nofile ? { openFilesLimit: nofile === 'inf' ? Infinity : Number(nofile) } : {}),
    ...(fsize ? { fileSizeLimit: fsize } : {}),
    ...(fds ? { inheritedFds: fds } : {}),
    ...(closed ? { closedStdio: closed } : {}),
    present: fd >= 0,
    started: (pid) => say(`p${pid}`),
    ended(code, signal) {
      say(signal ? `s${signal}` : `x${code ?? 1}`);
      if (fd >= 0) closeSync(fd);
      fd = -1;
    },
  };
}

/** Whether signal number `n` is in a mask of {@link Front.signals}. */
export function inMask(mask: bigint | undefined, n: number): boolean {
  return mask !== undefined && n >= 1 && n <= 64 && ((mask >> BigInt(n - 1)) & 1n) === 1n;
}
