/**
 * A cache directory that other users can write (a cache shared by a UNIX group, or an alien cache on a shared
 * file system) cannot be trusted: anyone with write access could replace an object. Such a directory is used as
 * a mirror of the Stratum-1 instead of as a cache: it holds the objects exactly as the server serves them
 * (compressed, `data/xx/<rest><suffix>`), so every byte read from it is checked against the content hash the
 * signed catalog gives, with the same pipeline as a download, before it reaches this user's own cache. An
 * object that fails is removed and fetched again from the network; what is downloaded is written back for the
 * others, group-writable (files 0664, directories 2775). Paths other users control are never followed through a
 * symlink when writing (lstat and O_NOFOLLOW; a user swapping a directory between the check and the write can
 * still win a race, and lands only a hash-named verified object or a dot-named temporary file).
 *
 * Memory: nothing per object. Disk: each user keeps verified, decompressed copies of what they read in their
 * own cache (bounded by its quota); the mirror has no quota.
 * @module
 */
import { promises as fsp, constants, readFileSync, statSync, type Stats } from 'node:fs';
import { lazyCrypto } from '../lazy.js';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { debug } from '../debug.js';

const FILE_MODE = 0o664;
const DIR_MODE = 0o2775;

/** The name of group `gid` from /etc/group, if listed there. */
function groupEntry(gid: number): { name: string; members: string[] } | undefined {
  try {
    for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , id, members] = line.split(':');
      if (Number(id) === gid && name) return { name, members: (members ?? '').split(',').filter(Boolean) };
    }
  } catch {
    // no /etc/group
  }
  return undefined;
}

/**
 * Whether users other than this one (and root) can change what is in `dir`: it is world-writable, owned by
 * another user, or group-writable by a group that is not this user's private group (a group named after the
 * user, with no other listed members, as `useradd` makes with USERGROUPS_ENAB).
 */
export function othersCanWrite(dir: string, st?: Stats): boolean {
  let s: Stats;
  try {
    s = st ?? statSync(dir);
  } catch {
    return false; // not there yet: this user will create it, private
  }
  const uid = process.getuid?.() ?? 0;
  if (s.mode & 0o002) return true;
  if (s.uid !== uid && s.uid !== 0) return true;
  if (s.mode & 0o020) {
    let me: string | undefined;
    try {
      me = userInfo().username;
    } catch {
      // a uid with no passwd entry (containers, batch systems): no private group to recognise by name
    }
    const g = groupEntry(s.gid);
    const privateGroup = g && me ? g.name === me && g.members.every((m) => m === me) : s.gid === uid;
    return !privateGroup;
  }
  return false;
}

/** A directory of raw objects shared with other users, read as a source that must be verified. */
export class SharedMirror {
  constructor(readonly dir: string) {}

  private path(rel: string): string {
    return join(this.dir, rel);
  }

  /**
   * The raw object at `rel` (`data/xx/…`) as a stream, or undefined when the mirror does not have it (or holds
   * something that is not a regular file: a FIFO would block a thread forever, a device never end).
   */
  async open(rel: string): Promise<Readable | undefined> {
    // Opened first, so that what is streamed is the file that was found even if it is replaced meanwhile.
    const fh = await fsp.open(this.path(rel), constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW).catch(() => undefined);
    if (!fh) return undefined;
    const st = await fh.stat().catch(() => undefined);
    if (!st?.isFile()) {
      await fh.close().catch(() => undefined);
      return undefined;
    }
    // The handle's own stream closes the handle once: a stream on its bare descriptor number closed it, and then
    // the handle closed that number again, by then perhaps another file's (EBADF far away, or worse).
    return fh.createReadStream({ highWaterMark: 256 * 1024 });
  }

  /**
   * Removes a bad object; never fails. (Not moved aside into `quarantaine/`: other users control that path, and a
   * rename through a directory they replaced with a symlink would put the file wherever they chose.)
   */
  async quarantine(rel: string): Promise<void> {
    await fsp.rm(this.path(rel), { force: true }).catch(() => undefined);
    debug(`shared cache: removed ${rel}, which failed verification`);
  }

  /**
   * Makes `d` and any missing parent below the mirror, each group-writable (mkdir's mode goes through the umask).
   * Refuses a symlink anywhere on the way: other users could point it at this user's own directories.
   */
  private async mkdirShared(d: string): Promise<void> {
    const levels: string[] = [];
    for (let p = d; p.length > this.dir.length; p = dirname(p)) levels.unshift(p);
    for (const p of [this.dir, ...levels]) {
      const st = await fsp.lstat(p).catch(() => undefined);
      if (st?.isSymbolicLink()) throw new Error(`${p} is a symbolic link`);
      if (st) continue;
      try {
        await fsp.mkdir(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (!(await fsp.lstat(p)).isDirectory()) throw new Error(`${p} is not a directory`);
        continue; // made by someone else meanwhile: not ours to chmod
      }
      await fsp.chmod(p, DIR_MODE).catch(() => undefined);
    }
  }

  /**
   * A writer for the raw bytes of `rel`: write them as they are downloaded, then `commit` once they are verified
   * (renamed into place, group-writable) or `discard`.
   */
  async writer(rel: string): Promise<{ write(b: Buffer): void; commit(): Promise<void>; discard(): Promise<void> }> {
    const txn = join(this.dir, 'txn');
    await this.mkdirShared(txn);
    // A dot name: not matched by a `*` glob if the directory was swapped for one that is sourced (.bashrc.d).
    const tmp = join(txn, `.${rel.replace(/\//g, '_')}.${process.pid}.${lazyCrypto().randomBytes(4).toString('hex')}`);
    const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, FILE_MODE);
    let pending: Promise<unknown> = Promise.resolve();
    let failed = false;
    return {
      write: (b) => {
        pending = pending.then(() => fh.write(b)).catch(() => { failed = true; });
      },
      commit: async () => {
        await pending;
        await fh.chmod(FILE_MODE).catch(() => undefined);
        await fh.close();
        if (failed) return void (await fsp.rm(tmp, { force: true }));
        const dest = this.path(rel);
        await this.mkdirShared(dirname(dirname(dest)));
        await this.mkdirShared(dirname(dest));
        await fsp.rename(tmp, dest);
      },
      discard: async () => {
        await pending;
        await fh.close().catch(() => undefined);
        await fsp.rm(tmp, { force: true });
      },
    };
  }
}
