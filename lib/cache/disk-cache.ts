/**
 * The on-disk object cache. Layout follows the genuine client's posix cache: objects stored decompressed and
 * verified, at `<dir>/<first 2 hex>/<rest of hash>[-algo]`, written into `<dir>/txn/` first and published with
 * rename(2), so that a crash at any point leaves either no file or a whole verified one. Small per-repository
 * state (last trusted revision, the verified signed files) sits beside the objects.
 * @module
 */
import { appendAsync, mkdirAllAsync, renameAsync, statAsync, writeFileAsync } from '../fs/callback-fs.js';
import { promises as fsp, appendFileSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { unlinkIfPresent } from '../unlink.js';
import { dirname, join } from 'node:path';
import { hashToString, type ContentHash } from '../format/hash.js';
import { claim, pidAlive, startTime, type Claim } from './claim.js';
import { lazyCrypto } from '../lazy.js';

/** One object file of a cache. */
export interface CachedObject {
  path: string;
  /** Hash (and algorithm suffix) as in the file name, without the `/`. */
  name: string;
  size: number;
  /** Last use (see {@link DiskCache.touch}), ms. */
  mtime: number;
}

/** Objects one eviction round considers at most (its memory bound). */
const EVICT_BATCH = 20_000;

/** A binary heap whose top is the greatest element by `cmp`. */
class MaxHeap<T> {
  private readonly a: T[] = [];
  constructor(private readonly cmp: (x: T, y: T) => number) {}
  get size(): number {
    return this.a.length;
  }
  push(v: T): void {
    const a = this.a;
    a.push(v);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (this.cmp(a[i]!, a[p]!) <= 0) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.cmp(a[l]!, a[m]!) > 0) m = l;
        if (r < a.length && this.cmp(a[r]!, a[m]!) > 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
  /** Every element, greatest first (empties the heap). */
  drain(): T[] {
    const out: T[] = [];
    for (let v = this.pop(); v !== undefined; v = this.pop()) out.push(v);
    return out;
  }
}

/** What the cache remembers of one repository between processes. */
export interface RepositoryState {
  /** Highest revision ever trusted in this cache (rollback protection). */
  revision: number;
  /** Root catalog hash of that revision. */
  rootHash: string;
  /** Publish timestamp of that revision. */
  timestamp: number;
}

/** Where the digests of kept objects are logged (see {@link DiskCache.commit}). */
export const DIGEST_LOG = 'digests.log';

/** Pin files this process made (see DiskCache.pin). */
let pinFiles = 0;

/** A content-addressed directory of verified, decompressed objects. */
export class DiskCache {
  /** Directory that holds the objects. */
  readonly dir: string;
  private readonly txn: string;
  private ready: Promise<void> | undefined;
  /** Whether {@link init} has made the cache's directories (objects may then be looked up synchronously). */
  initialized = false;

  private quota: { limit: number; low: number } | undefined;
  private writtenSinceCheck = 0;
  private enforcing: Promise<void> | undefined;
  private readonly pinned = new Set<string>();
  private readonly touched = new Map<string, number>();
  private pinFile: string | undefined;
  private pinFd = -1;
  private pinsReleased = false;

  constructor(dir: string) {
    this.dir = dir;
    this.txn = join(dir, 'txn');
  }

  /**
   * Bounds the objects' total size (CVMFS_QUOTA_LIMIT, in bytes here): when it is exceeded, the least recently
   * used objects go until `low` (default 3/4 of the limit) is reached. Pinned objects (this process's catalogs)
   * stay. Processes sharing the cache each enforce it; files already open stay readable (unlink), and an
   * object evicted before it is opened is fetched again.
   */
  setQuota(limit: number, low = Math.floor(limit * 0.75)): void {
    this.quota = limit > 0 ? { limit, low: Math.min(low, limit) } : undefined;
  }

  /**
   * Keeps an object out of eviction while this process runs, by this process and, through a pin file in
   * `pins/` (`<host>.<pid>.<start time>.<count>`, one object per line), by every other process on this host
   * that enforces the quota. A pin file whose process is gone is removed by the next eviction.
   */
  pin(h: ContentHash): void {
    const name = hashToString(h);
    if (this.pinned.has(name)) return;
    this.pinned.add(name);
    if (!this.quota || this.pinsReleased) return; // no quota, no eviction (an alien cache); or closed
    // Host, pid and start time name the process, the clock tells apart processes that share them (containers with
    // one hostname, started in one tick), the count this process's caches; no crypto to load for it.
    this.pinFile ??= join(this.dir, 'pins', `${hostname()}.${process.pid}.${startTime(process.pid)}.${(process.hrtime.bigint() & 0xffffffffffn).toString(16)}${(++pinFiles).toString(16)}`);
    // Written at once and synchronously (a line to a descriptor kept open): a warm command pins its root catalog,
    // and waiting for the thread pool three times (and loading node:fs/promises) cost more than the writes.
    try {
      if (this.pinFd < 0) {
        mkdirSync(dirname(this.pinFile), { recursive: true, mode: 0o700 });
        this.pinFd = openSync(this.pinFile, 'a', 0o600);
      }
      writeSync(this.pinFd, `${name}\n`);
    } catch {
      // A cache that cannot take the pin: the object may be evicted by others and is then fetched again.
    }
  }

  /** Removes this process's pin file (the repository is closed). */
  async releasePins(): Promise<void> {
    this.pinsReleased = true;
    if (this.pinFd >= 0) closeSync(this.pinFd);
    this.pinFd = -1;
    if (this.pinFile) unlinkIfPresent(this.pinFile);
  }

  /** Objects pinned by other live processes on this host; pin files of dead ones are removed. */
  private async othersPins(): Promise<Set<string>> {
    const out = new Set<string>();
    const dir = join(this.dir, 'pins');
    const me = hostname();
    for (const f of await fsp.readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, f);
      if (path === this.pinFile) continue;
      const m = /^(.*)\.(\d+)\.(\d*)\.[0-9a-f]+$/.exec(f);
      if (!m) continue;
      if (m[1] === me && !(pidAlive(Number(m[2])) && startTime(Number(m[2])) === m[3])) {
        await fsp.rm(path, { force: true });
        continue;
      }
      if (m[1] !== me) continue; // another host's processes are not this one's to judge; its quota is its own
      for (const line of (await fsp.readFile(path, 'latin1').catch(() => '')).split('\n')) if (line) out.add(line);
    }
    return out;
  }

  /** Marks an object as used now (its mtime is the LRU clock), at most once a minute per object. */
  touch(h: ContentHash): void {
    if (!this.quota) return;
    const name = hashToString(h);
    const now = Date.now();
    if ((this.touched.get(name) ?? 0) > now - 60_000) return;
    if (this.touched.size > 100_000) this.touched.clear();
    this.touched.set(name, now);
    const t = now / 1000;
    // Synchronous, as `has` before it: one system call, where the promise API would load node:fs/promises and
    // wait for the thread pool at every warm command's first catalog.
    try {
      utimesSync(this.pathOf(h), t, t);
    } catch {
      // gone meanwhile (evicted): nothing to mark
    }
  }

  /** Counts bytes written; past an eighth of the quota's slack since the last look, the quota is enforced. */
  private async noteWritten(bytes: number): Promise<void> {
    if (!this.quota) return;
    this.writtenSinceCheck += bytes;
    if (this.writtenSinceCheck < Math.max(1, (this.quota.limit - this.quota.low) / 8)) return;
    this.writtenSinceCheck = 0;
    // Downloads wait for it: the cache then exceeds the limit by what is in flight at most.
    this.enforcing ??= this.enforceQuota().then(() => undefined, () => undefined).finally(() => (this.enforcing = undefined));
    await this.enforcing;
  }

  /** Every object in the cache: path, name (hash and suffix), size, mtime (last use, see {@link touch}). */
  async scan(): Promise<CachedObject[]> {
    const objects: CachedObject[] = [];
    await this.eachObject((o) => void objects.push(o));
    return objects;
  }

  private async eachObject(fn: (o: CachedObject) => void): Promise<void> {
    for (const sub of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      for (const name of await fsp.readdir(join(this.dir, sub)).catch(() => [] as string[])) {
        const path = join(this.dir, sub, name);
        const st = await fsp.stat(path).catch(() => undefined);
        if (st) fn({ path, name: sub + name, size: st.size, mtime: st.mtimeMs });
      }
    }
  }

  /**
   * Sums the objects and, over the limit, removes the least recently used ones (oldest mtime first, pinned ones
   * skipped) down to the low mark. Memory is bounded however big the cache: each round keeps only the
   * {@link EVICT_BATCH} oldest unpinned objects it saw (a max-heap by mtime), removes them oldest first, and
   * another round follows if that was not enough.
   */
  async enforceQuota(options: { batch?: number } = {}): Promise<{ total: number; removed: number }> {
    if (!this.quota) return { total: 0, removed: 0 };
    const batch = options.batch ?? EVICT_BATCH;
    // What other processes pinned: a directory read, cheap next to the walk over the objects.
    const others = await this.othersPins();
    let removed = 0;
    for (;;) {
      let total = 0;
      const oldest = new MaxHeap<CachedObject>((x, y) => x.mtime - y.mtime);
      await this.eachObject((o) => {
        total += o.size;
        if (this.pinned.has(o.name) || others.has(o.name)) return;
        oldest.push(o);
        if (oldest.size > batch) oldest.pop();
      });
      if ((removed === 0 && total <= this.quota.limit) || total <= this.quota.low) return { total, removed };
      const victims = oldest.drain().reverse();
      if (victims.length === 0) return { total, removed };
      for (const o of victims) {
        if (total <= this.quota.low) return { total, removed };
        await fsp.rm(o.path, { force: true });
        total -= o.size;
        removed++;
      }
    }
  }



  /**
   * Creates txn/ once. The 256 prefix directories are made when first needed (see {@link commit}): making
   * them all up front cost 50 to 300 ms on the first open of a repository here.
   */
  init(): Promise<void> {
    // Synchronous: on a warm cache both calls find little to do, and a command's start would otherwise wait for
    // the thread pool twice and load node:fs/promises.
    this.ready ??= new Promise<void>((resolve) => {
      mkdirSync(this.txn, { recursive: true, mode: 0o700 });
      this.removeDeadTemporaries();
      this.initialized = true;
      resolve();
    });
    return this.ready;
  }

  /**
   * Temporary files that processes of this host left when they were killed mid-download, removed by the next
   * process, so that a node's cache needs no cleaning by hand. The directory holds only downloads in flight.
   */
  private removeDeadTemporaries(): void {
    const me = hostname();
    let names: string[] = [];
    try {
      names = readdirSync(this.txn);
    } catch {
      return;
    }
    for (const t of names) {
      const m = /^(\d+)\.[0-9a-f]+\.(.+)\.tmp$/.exec(t);
      if (m && m[2] === me && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) unlinkIfPresent(join(this.txn, t));
    }
  }

  /** Where a verified object lives. */
  pathOf(h: ContentHash): string {
    const name = hashToString(h);
    return join(this.dir, name.slice(0, 2), name.slice(2));
  }

  /** True if the object is present (a present object is always complete: it was renamed into place). */
  async has(h: ContentHash): Promise<boolean> {
    return this.present(h);
  }

  /** {@link has}, synchronously. */
  present(h: ContentHash): boolean {
    // One stat, synchronously and without an exception for a miss: on a cold start every object is a miss, and
    // the promise API builds an error (with its stack trace) for each; ~40 ms less CPU in a cold Python job.
    try {
      return statSync(this.pathOf(h), { throwIfNoEntry: false }) !== undefined;
    } catch {
      return false; // ENOTDIR, EACCES: not usable here either
    }
  }

  /**
   * Claims the download of an object for this process (see claim.ts): resolves to a handle to release when
   * done, or to `'done'` when the object is in the cache (another process finished it meanwhile).
   */
  lockDownload(h: ContentHash, signal?: AbortSignal): Promise<Claim | 'done'> {
    return claim(join(this.txn, `${hashToString(h)}.lock`), () => this.has(h), signal);
  }

  /**
   * Claims a named task shared by the processes of this cache (a repository's trust chain, see claim.ts): resolves
   * to `'done'` once `done()` holds, else to a claim this process must release.
   */
  async claimTask(name: string, done: () => Promise<boolean>): Promise<Claim | 'done'> {
    await this.init();
    return claim(join(this.txn, `${name}.lock`), done);
  }

  /** A fresh temporary path inside txn/. */
  tempPath(): string {
    // Named by host too: an alien cache is shared by nodes, whose pids say nothing here.
    return join(this.txn, `${process.pid}.${lazyCrypto().randomBytes(6).toString('hex')}.${hostname()}.tmp`);
  }

  /**
   * Publishes a verified temporary file under the object's name (atomic). `keptDigest`, the SHA-1 of the bytes
   * kept, goes to `digests.log` first (one small O_APPEND write, safe with several processes), so that every
   * object this cache holds can be checked by fsck.
   */
  async commit(tmp: string, h: ContentHash, keptDigest?: string): Promise<string> {
    const dest = this.pathOf(h);
    if (keptDigest) await appendAsync(join(this.dir, DIGEST_LOG), `${hashToString(h)} ${keptDigest}\n`);
    if (this.quota) await this.noteWritten((await statAsync(tmp)).size);
    try {
      await renameAsync(tmp, dest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await mkdirAllAsync(dirname(dest), 0o700);
      await renameAsync(tmp, dest);
    }
    return dest;
  }

  /**
   * {@link commit} for an object held in memory (a small one): written, logged and renamed synchronously. Each
   * step is a few microseconds of system call, where a thread-pool round trip per step cost a cold job of many
   * small files about 2 ms per file.
   */
  async commitBytes(h: ContentHash, data: Uint8Array, keptDigest: string): Promise<string> {
    const tmp = this.tempPath();
    const dest = this.pathOf(h);
    try {
      writeFileSync(tmp, data, { flag: 'wx' });
      appendFileSync(join(this.dir, DIGEST_LOG), `${hashToString(h)} ${keptDigest}\n`);
      try {
        renameSync(tmp, dest);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        mkdirSync(dirname(dest), { recursive: true, mode: 0o700 });
        renameSync(tmp, dest);
      }
    } catch (e) {
      unlinkIfPresent(tmp);
      throw e;
    }
    if (this.quota) await this.noteWritten(data.length);
    return dest;
  }

  /**
   * Drops a temporary file, best effort: it runs after something already failed, and that failure (a full disk, a
   * txn/ gone) is the one to report. What is left behind in txn/ fsck removes once its process is gone.
   */
  async discard(tmp: string): Promise<void> {
    try {
      unlinkIfPresent(tmp);
    } catch {
      // the earlier failure is the one reported
    }
  }

  /**
   * Writes a small file atomically.
   * @param durable synced before the rename (false for a file whose loss or tearing in a crash costs only work)
   */
  async writeAtomic(name: string, data: Uint8Array | string, durable = true): Promise<void> {
    await this.init();
    const tmp = this.tempPath();
    await writeFileAsync(tmp, data, durable);
    await renameAsync(tmp, join(this.dir, name));
  }

  /**
   * Keeps `data` as the small file `name`, written atomically but not synced (a torn one must be worth only a
   * download); when the file holds these very bytes already, it is only marked written now (its mtime is what
   * a TTL counts from), which spares a write and a rename at every refresh that changed nothing.
   */
  async renewSmall(name: string, data: Buffer): Promise<void> {
    const path = join(this.dir, name);
    const old = await this.readSmall(name);
    if (old?.equals(data)) {
      try {
        const now = new Date();
        utimesSync(path, now, now);
        return;
      } catch {
        // gone meanwhile: written below
      }
    }
    await this.writeAtomic(name, data, false);
  }

  /**
   * Reads a small file beside the objects, or undefined. Synchronously: a few hundred bytes cost less than the
   * four thread-pool round trips of an asynchronous read, and every command reads three or four of them at open.
   */
  async readSmall(name: string): Promise<Buffer | undefined> {
    try {
      return readFileSync(join(this.dir, name));
    } catch {
      return undefined;
    }
  }

  /**
   * The last trusted state of a repository, from `cvmfschecksum.<fqrn>` (the genuine client's file:
   * `<root hash>T<timestamp>R<revision>`).
   */
  async readState(fqrn: string): Promise<RepositoryState | undefined> {
    const b = await this.readSmall(`cvmfschecksum.${fqrn}`);
    if (!b) return undefined;
    const m = /^([0-9a-f]{40}(?:-[a-z0-9]+)?)(?:T(\d+))?(?:R(\d+))?/.exec(b.toString('latin1').trim());
    if (!m) return undefined;
    return { rootHash: m[1]!, timestamp: Number(m[2] ?? 0), revision: Number(m[3] ?? 0) };
  }

  /** Records a newly trusted state (only ever moves forward; the caller checks). */
  async writeState(fqrn: string, s: RepositoryState): Promise<void> {
    await this.writeAtomic(`cvmfschecksum.${fqrn}`, `${s.rootHash}T${s.timestamp}R${s.revision}`);
  }
}
