/**
 * Access profiles: what a command needed from /cvmfs, recorded once and replayed at its next cold start.
 *
 * On a fresh node every path a job touches costs a round trip, one after the other, because the program asks
 * for one file at a time. A profile lists the questions the connector heard last time (look up, open, run, in
 * the order they came) and the objects and catalogs behind them. Replayed at start, the objects are fetched
 * many at a time into the cache while the repository opens and SQLite loads, and the questions are answered
 * ahead of the program, so that when it asks, the answer is mostly there.
 *
 * A profile is a hint, never a source of truth: each path is walked through verified catalogs as if the program
 * had asked, and each object is fetched by its content hash and verified before it is kept. A stale profile
 * (another revision, another command) costs bounded wasted downloads, never a wrong byte. A profile that cannot
 * be read is ignored and recorded anew.
 * @module
 */
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { Flag, type Compression } from '../format/flags.js';
import { hashToString, parseHash } from '../format/hash.js';
import type { Entry } from '../fs/entry.js';
import type { Repository } from '../repository.js';
import type { ObjectStore } from '../store/object-store.js';
import { isRepositoryName } from '../format/names.js';

/** The questions a profile replays: look up, open, execute (see ShadowTree.prepare). */
export type ProfileOp = 'l' | 'o' | 'x';

/** The file format (JSON). */
export interface AccessProfile {
  ucvmfsProfile: 1;
  /** Questions in the order they first came: `[op, /cvmfs path]`. */
  steps: [ProfileOp, string][];
  /**
   * Per repository: the revision recorded, and the catalogs and content objects used: `[content hash,
   * compression, size]`, with a fourth element `P` for a chunk of a chunked file.
   */
  repositories: Record<string, { root: string; catalogs: string[]; objects: ProfileObject[] }>;
}

/** A content object in a profile; see {@link AccessProfile.repositories}. */
export type ProfileObject = [hash: string, compression: Compression, size: number, suffix?: 'P'];

/** Bounds of a replay. */
export interface ReplayOptions {
  /** Object bytes fetched ahead at most (as the catalogs give sizes). Default 1 GiB. */
  maxBytes?: number;
  /** Downloads at a time. Default 16. */
  concurrency?: number;
  /** Questions answered ahead at a time. Default 4. */
  stepConcurrency?: number;
  /**
   * Resolves when the program has no question waiting: the replay answers no question of its own before (what
   * it started goes on; downloads go on too, as the network, not the CPU, bounds them). The program's own
   * questions come first; the replay answers ahead in the time the program computes.
   */
  idle?: () => Promise<void>;
}

/** What a replay did. */
export interface ReplayStats {
  steps: number;
  objects: number;
  bytes: number;
  failed: number;
}

/** At most this many questions and objects are kept in a profile: a job's working set, not a repository's. */
const MAX_STEPS = 100_000;
const MAX_OBJECTS = 100_000;
const MAX_FILE_BYTES = 64 << 20;

const OPS = new Set(['l', 'o', 'x']);

/**
 * Reads a profile; undefined when the file does not exist, and when it is not a profile of ours (it is then
 * recorded anew). Every field is checked: the file may be old, foreign or damaged.
 */
export function readProfile(file: string): AccessProfile | undefined {
  let raw: unknown;
  try {
    // A profile of MAX_STEPS questions and MAX_OBJECTS objects fits well within this; anything larger is not ours.
    if (statSync(file).size > MAX_FILE_BYTES) return undefined;
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  const p = raw as Partial<AccessProfile>;
  if (!p || p.ucvmfsProfile !== 1 || !Array.isArray(p.steps) || typeof p.repositories !== 'object' || !p.repositories) return undefined;
  const steps = p.steps.filter((s): s is [ProfileOp, string] =>
    Array.isArray(s) && OPS.has(s[0] as string) && typeof s[1] === 'string' && s[1].startsWith('/cvmfs/') && !s[1].includes('\0')).slice(0, MAX_STEPS);
  const repositories: AccessProfile['repositories'] = {};
  for (const [fqrn, r] of Object.entries(p.repositories)) {
    if (!isRepositoryName(fqrn) || !r || typeof r !== 'object') continue;
    const validHash = (h: unknown): h is string => {
      try {
        parseHash(h as string);
        return true;
      } catch {
        return false;
      }
    };
    repositories[fqrn] = {
      root: typeof r.root === 'string' ? r.root : '',
      catalogs: (Array.isArray(r.catalogs) ? r.catalogs : []).filter(validHash).slice(0, MAX_OBJECTS),
      objects: (Array.isArray(r.objects) ? r.objects : []).filter((o): o is ProfileObject =>
        Array.isArray(o) && validHash(o[0]) && (o[1] === 'zlib' || o[1] === 'none') && Number.isSafeInteger(o[2]) && o[2] >= 0 &&
        (o[3] === undefined || o[3] === 'P')).slice(0, MAX_OBJECTS),
    };
  }
  return { ucvmfsProfile: 1, steps, repositories };
}

/** Collects what a job needs; {@link ProfileRecorder.write} merges it into the profile file. */
export class ProfileRecorder {
  private readonly steps = new Map<string, [ProfileOp, string]>();
  private readonly repos = new Map<string, { root: string; catalogs: Set<string>; objects: Map<string, ProfileObject> }>();

  /** A question the job asked. */
  step(op: string, path: string): void {
    if (!OPS.has(op) || !path.startsWith('/cvmfs/') || this.steps.size >= MAX_STEPS) return;
    const key = op + path;
    if (!this.steps.has(key)) this.steps.set(key, [op as ProfileOp, path]);
  }

  /** An entry the connector walked through in `repo`: its catalog is needed. */
  used(repo: Repository, e: Entry): void {
    this.repo(repo).catalogs.add(hashToString(e.loc.catalog));
  }

  /**
   * A file the connector filled in `repo`: its catalog and its objects (the one of a file, or a chunked file's
   * chunks). Never rejects: a profile is a hint.
   */
  async filled(repo: Repository, e: Entry): Promise<void> {
    this.used(repo, e);
    // An external file's pieces are fetched by its path from other servers, not by their hash: not replayable.
    if (e.type !== 'file' || e.size === 0 || e.flags & Flag.FileExternal) return;
    const r = this.repo(repo);
    for (const p of await repo.fs.contentObjects(e).catch(() => [])) {
      const h = hashToString(p.hash);
      if (!r.objects.has(h) && r.objects.size < MAX_OBJECTS) r.objects.set(h, p.suffix ? [h, e.compression, p.size, p.suffix] : [h, e.compression, p.size]);
    }
  }

  private repo(repo: Repository): { root: string; catalogs: Set<string>; objects: Map<string, ProfileObject> } {
    let r = this.repos.get(repo.fqrn);
    if (!r) this.repos.set(repo.fqrn, r = { root: hashToString(repo.rootHash), catalogs: new Set(), objects: new Map() });
    return r;
  }

  /**
   * The profile after this job: the earlier questions first, then the new ones; per repository, the objects
   * and catalogs of this job, plus the earlier ones when the revision is the same (another revision's may be
   * gone from the server).
   */
  merge(old: AccessProfile | undefined): AccessProfile {
    const steps = new Map<string, [ProfileOp, string]>();
    for (const s of [...(old?.steps ?? []), ...this.steps.values()]) if (steps.size < MAX_STEPS) steps.set(s[0] + s[1], s);
    const repositories: AccessProfile['repositories'] = {};
    for (const [fqrn, r] of Object.entries(old?.repositories ?? {})) repositories[fqrn] = r;
    for (const [fqrn, r] of this.repos) {
      const before = old?.repositories[fqrn];
      const same = before?.root === r.root;
      const objects = new Map<string, ProfileObject>();
      for (const o of [...(same ? before.objects : []), ...r.objects.values()]) if (objects.size < MAX_OBJECTS) objects.set(o[0], o);
      repositories[fqrn] = {
        root: r.root,
        catalogs: [...new Set([...(same ? before.catalogs : []), ...r.catalogs])],
        objects: [...objects.values()],
      };
    }
    return { ucvmfsProfile: 1, steps: [...steps.values()], repositories };
  }

  /** How much the job has recorded (steps, catalogs and objects): grows whenever anything is added. */
  size(): number {
    let n = this.steps.size;
    for (const r of this.repos.values()) n += r.catalogs.size + r.objects.size;
    return n;
  }

  /** Whether the job added anything to `old`. */
  adds(old: AccessProfile | undefined): boolean {
    if (!old) return this.steps.size > 0 || this.repos.size > 0;
    const known = new Set(old.steps.map((s) => s[0] + s[1]));
    for (const k of this.steps.keys()) if (!known.has(k)) return true;
    for (const [fqrn, r] of this.repos) {
      const before = old.repositories[fqrn];
      if (!before || before.root !== r.root) return true;
      const objs = new Set(before.objects.map((o) => o[0]));
      for (const h of r.objects.keys()) if (!objs.has(h)) return true;
    }
    return false;
  }

  /** Writes the merged profile atomically (a crash leaves the old file or the new one). */
  write(file: string, old: AccessProfile | undefined): void {
    // Named by host too: a directory of profiles is often shared by a cluster's nodes.
    const tmp = `${file}.${hostname()}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.merge(old)) + '\n', { mode: 0o644 });
    renameSync(tmp, file);
  }
}

/**
 * Writes a job's profile each time it is called: the first time if the job added to `old` (the profile it started
 * with), later only if it recorded more since; returns whether the profile was ever written. A failure is reported once, and
 * not at all for a profile that exists and cannot be written (shipped read-only with a job, to be replayed).
 */
export function profileWriter(recorder: ProfileRecorder, file: string, old: AccessProfile | undefined, warn?: (line: string) => void): () => boolean {
  let written = false;
  let sizeWritten = 0;
  let failed = false;
  return () => {
    // Again only if the job recorded more since (a profile at its bounds would never look complete to adds()).
    if (written ? recorder.size() === sizeWritten : !recorder.adds(old)) return written;
    try {
      sizeWritten = recorder.size();
      recorder.write(file, old);
      written = true;
    } catch (e) {
      const readOnly = ['EACCES', 'EROFS', 'EPERM'].includes((e as NodeJS.ErrnoException).code ?? '');
      if ((!old || !readOnly) && !failed) warn?.(`cannot write the access profile ${file}: ${(e as Error).message}`);
      failed = true;
    }
    return written;
  };
}

/** Runs tasks with at most `n` at a time, in order, each once `idle` allows; resolves when all settled. */
async function bounded<T>(items: readonly T[], n: number, task: (item: T) => Promise<unknown>, stop: AbortSignal, idle?: () => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !stop.aborted) {
      if (idle) await idle();
      if (next >= items.length || stop.aborted) break;
      const item = items[next++]!;
      await task(item).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/**
 * Replays a profile: per repository, opens it, fetches its catalogs and then its objects into the cache
 * (`concurrency` at a time, within `maxBytes`), and meanwhile asks `prepare` the recorded questions in order
 * (`stepConcurrency` at a time). Failures are dropped without a word: the program's own call meets them again.
 */
export class ProfileReplay {
  readonly stats: ReplayStats = { steps: 0, objects: 0, bytes: 0, failed: 0 };
  private readonly stop = new AbortController();
  private readonly o: Required<Omit<ReplayOptions, 'idle'>> & Pick<ReplayOptions, 'idle'>;
  /** Settles when the replay has finished or was stopped. */
  readonly done: Promise<void>;

  constructor(
    private readonly profile: AccessProfile,
    private readonly mount: (fqrn: string) => Promise<Repository | null>,
    private readonly prepare: (op: ProfileOp, path: string) => Promise<unknown>,
    opts: ReplayOptions = {},
    /**
     * A repository's object store as soon as its open has made it (before the trust chain): the downloads start
     * then, alongside the open's own requests, instead of after them.
     */
    private readonly early?: (fqrn: string) => Promise<ObjectStore>,
  ) {
    this.o = { maxBytes: 1 << 30, concurrency: 16, stepConcurrency: 4, ...opts };
    // Every download in flight listens to it.
    setMaxListeners(0, this.stop.signal);
    this.done = Promise.all([this.fetchAll(), this.answerAll()]).then(() => undefined);
  }

  /** Stops what is queued and cancels downloads nobody else waits for (the job ended). */
  close(): void {
    this.stop.abort();
  }

  private async fetchAll(): Promise<void> {
    let budget = this.o.maxBytes;
    await Promise.all(Object.entries(this.profile.repositories).map(async ([fqrn, r]) => {
      const mounted = this.mount(fqrn).catch(() => null);
      const store = await Promise.race([mounted.then((m) => m?.objects ?? null), ...(this.early ? [this.early(fqrn)] : [])]);
      if (!store || this.stop.signal.aborted) return;
      // A repository that cannot be opened after all (its trust chain fails) gets nothing more fetched.
      const stop = new AbortController();
      setMaxListeners(0, stop.signal);
      const end = () => stop.abort();
      this.stop.signal.addEventListener('abort', end, { once: true });
      void mounted.then((m) => { if (!m) end(); });
      const jobs: [string, 'C' | 'P' | '', Compression, number][] = r.catalogs.map((h) => [h, 'C', 'zlib', 0]);
      for (const [h, c, size, suffix] of r.objects) {
        if (size > budget) continue;
        budget -= size;
        jobs.push([h, suffix ?? '', c, size]);
      }
      await bounded(jobs, this.o.concurrency, async ([h, suffix, c, size]) => {
        try {
          await store.get(parseHash(h), suffix, c, stop.signal, size || undefined);
          this.stats.objects++;
          this.stats.bytes += size;
        } catch (e) {
          if (!stop.signal.aborted) this.stats.failed++;
          throw e;
        }
      }, stop.signal);
      this.stop.signal.removeEventListener('abort', end);
    }));
  }

  private async answerAll(): Promise<void> {
    await bounded(this.profile.steps, this.o.stepConcurrency, async ([op, path]) => {
      await this.prepare(op, path);
      this.stats.steps++;
    }, this.stop.signal, this.o.idle);
  }
}
