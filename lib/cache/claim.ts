/**
 * Claims between processes of one cache: the first process to need a thing (an object's download, a
 * repository's trust chain) makes it while the others wait for the result, without fcntl/flock (which GPFS,
 * Lustre and NFS break). A claim is a lock file made with O_EXCL that holds `host pid starttime`; waiters
 * watch it (inotify, so they wake the moment it goes) with a slow poll beside the watch, for file systems that
 * send no events and for holders that die.
 * @module
 */
import { watch, promises as fsp, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { unlinkIfPresent } from '../unlink.js';
import { readProcFile } from '../proc-file.js';

/** A lock untouched this long is taken over (its holder may be on another host, where its pid says nothing). */
export const STALE_LOCK_MS = 60_000;
/** An empty lock this old was left by a process that died right after making it. */
const EMPTY_LOCK_MS = 2_000;
/** Waiters look again at least this often (no inotify event arrives over NFS, nor from another host). */
const POLL_MS = 100;

/** When a process started (clock ticks since boot, from /proc), to tell a reused pid from its first owner. */
export function startTime(pid: number): string {
  try {
    const stat = readProcFile(`/proc/${pid}/stat`, 1024).toString('latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** Whether a process of this host is alive (EPERM: alive, another user's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the holder written in a lock (`host pid starttime`) is known to be gone: on this host, its process
 * has exited or its pid now belongs to another process (pids are reused).
 */
export function holderGone(holder: string): boolean {
  const [host, pid, started] = holder.split(' ');
  if (host !== hostname() || !pid) return false;
  return !pidAlive(Number(pid)) || startTime(Number(pid)) !== started;
}

/**
 * Whether a lock may be taken over: its holder is gone, or it was left empty (the holder died between creating
 * and writing it, which takes microseconds), or it has not changed for {@link STALE_LOCK_MS}.
 */
export function lockStale(holder: string, ageMs: number): boolean {
  // A live holder on this host is never taken over, however long it works (a fill of a large file on a slow
  // link): two writers of one shadow file would have it open for writing while a third job runs it.
  const here = holder.split(' ')[0] === hostname();
  return holderGone(holder) || (holder === '' && ageMs > EMPTY_LOCK_MS) || (!here && ageMs > STALE_LOCK_MS);
}

/** A claim this process holds: release it once the result is in place (or the attempt failed). */
export interface Claim {
  release(): Promise<void>;
}

/** What this process writes into its locks. */
let me: string | undefined;

/** What this process writes into the locks it holds (`host pid starttime`). */
export function holderId(): string {
  return (me ??= `${hostname()} ${process.pid} ${startTime(process.pid)}`);
}

/**
 * Claims `lock` for this process. Resolves to `'done'` as soon as `done()` says the result exists (made by
 * another process, or found before any lock was needed), else to a claim once this process holds the lock.
 * A lock whose holder is gone is taken over. When the lock cannot be made at all (a read-only directory) the
 * caller goes on alone: coordination saves downloads, it never decides whether a read works.
 */
export async function claim(lock: string, done: () => boolean | Promise<boolean>, signal?: AbortSignal): Promise<Claim | 'done'> {
  // Made when a lock is written: a task already done (a warm command's trust chain) needs no name.
  let id: string | undefined;
  for (;;) {
    signal?.throwIfAborted();
    if (await done()) return 'done';
    try {
      // Synchronously: a claim nobody contends (nearly all of them) costs two system calls, not two thread-pool
      // round trips per object.
      writeFileSync(lock, (id ??= holderId()), { flag: 'wx', mode: 0o600 });
      // The previous holder may have finished between our look and our lock.
      if (await done()) {
        unlinkIfPresent(lock);
        return 'done';
      }
      // Touched while held, so that a holder on another host (a shared cache) working longer than
      // STALE_LOCK_MS is not taken for dead.
      const keep = setInterval(() => void fsp.utimes(lock, new Date(), new Date()).catch(() => undefined), STALE_LOCK_MS / 3);
      keep.unref();
      return {
        release: async () => {
          clearInterval(keep);
          unlinkIfPresent(lock);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return { release: async () => undefined };
    }
    const holder = await fsp.readFile(lock, 'latin1').catch(() => '');
    const st = await fsp.stat(lock).catch(() => undefined);
    if (st && lockStale(holder, Date.now() - st.mtimeMs)) {
      // A lock that cannot be removed (a directory made read-only, a quota): the caller goes on alone.
      if (!(await takeOver(lock, holder, st.ino, signal))) return { release: async () => undefined };
      continue;
    }
    await lockGone(lock, signal);
  }
}

/**
 * Removes a lock judged stale, so that the caller may make its own. Two waiters that judged it at once must not
 * both remove it: the second would remove the lock the first had just made, and both would hold the claim. So
 * the removal is made under a second lock, `<lock>.takeover`, and only if the lock is still the one judged
 * (same inode, same holder). A takeover lock whose own holder died is removed the same way as any stale lock
 * (a double removal there needs a death in the middle of a takeover, which takes microseconds, and two waiters).
 */
async function takeOver(lock: string, holder: string, ino: number, signal?: AbortSignal): Promise<boolean> {
  const guard = `${lock}.takeover`;
  try {
    writeFileSync(guard, holderId(), { flag: 'wx', mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return false;
    // Another waiter is taking over: look again after it (or remove its guard if it died there).
    const g = await fsp.readFile(guard, 'latin1').catch(() => undefined);
    const gst = await fsp.stat(guard).catch(() => undefined);
    if (g === undefined || !gst || !lockStale(g, Date.now() - gst.mtimeMs)) await lockGone(guard, signal);
    else if (!removeIfSame(guard, g, gst.ino)) return false;
    return true;
  }
  try {
    return removeIfSame(lock, holder, ino);
  } finally {
    unlinkIfPresent(guard);
  }
}

/**
 * Removes the takeover guards in `dir` whose holder is gone (a waiter killed in the microseconds of a takeover);
 * a later takeover of the same lock would remove its guard too, but a lock nobody waits for again would keep it.
 * `names`: the directory's listing, when the caller has it already.
 */
export function removeDeadGuards(dir: string, names?: readonly string[]): void {
  try {
    names ??= readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) if (name.endsWith('.lock.takeover')) deadLock(join(dir, name), true);
}

/**
 * Whether the lock (or guard) file `path` is stale: its holder is gone, or see {@link lockStale}; with `remove`,
 * a stale one is removed if it is still the one judged (see {@link removeIfSame}).
 */
export function deadLock(path: string, remove: boolean): boolean {
  try {
    const st = statSync(path);
    const holder = readFileSync(path, 'latin1');
    if (!lockStale(holder, Date.now() - st.mtimeMs)) return false;
    if (remove) removeIfSame(path, holder, st.ino);
    return true;
  } catch {
    return false; // gone meanwhile
  }
}

/**
 * Removes the lock file `path` if it is still the one judged stale (same inode, same holder, still stale); true
 * when it is gone or was replaced (the caller looks again), false when it cannot be removed.
 */
export function removeIfSame(path: string, holder: string, ino: number): boolean {
  try {
    const now = statSync(path, { throwIfNoEntry: false });
    if (now?.ino === ino && readFileSync(path, 'latin1') === holder && lockStale(holder, Date.now() - now.mtimeMs)) unlinkSync(path);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Resolves when `lock` is removed or renamed, or after {@link POLL_MS} at most (then the caller looks again). */
function lockGone(lock: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let watcher: FSWatcher | undefined;
    const finish = () => {
      clearTimeout(timer);
      watcher?.close();
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    const timer = setTimeout(finish, POLL_MS);
    signal?.addEventListener('abort', finish, { once: true });
    try {
      watcher = watch(lock, { persistent: false }, finish);
      watcher.on('error', finish);
      // Gone between our look and the watch: no event would come.
      if (!statSync(lock, { throwIfNoEntry: false })) finish();
    } catch {
      finish();
    }
  });
}
