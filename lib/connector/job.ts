/**
 * One `ucvmfs exec` job's state, apart from the tracer's event loop (lib/connector/exec.ts): the repositories it
 * opened, their object stores, its shadow tree (loaded on first need), its access profile, and the answers to the
 * tracer's questions.
 * @module
 */
import type { Repository } from '../repository.js';
import type { ObjectStore } from '../store/object-store.js';
import type { ShadowTree } from './shadow.js';
import type { PrefetchOptions, PrefetchStats } from '../fs/prefetch.js';
import type { ProfileRecorder, ProfileReplay } from './profile.js';
import type { ExecOptions, ExecResult, NativeTracer } from './exec-options.js';
import { decodeName, encodeName } from '../format/byte-names.js';
import { removeSmallTree, removeTree } from './shadow-bounds.js';

/** Counters of a job whose shadow tree was never asked anything. */
/** `UCVMFS_LIST_AHEAD`: a number of directories, or off; anything else keeps the default. */
function listAheadFromEnv(v: string | undefined, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  if (/^(off|no|false)$/i.test(v)) return 0;
  return /^\d{1,6}$/.test(v) ? Number(v) : fallback;
}

const NO_REQUESTS: ShadowTree['counters'] = { requests: 0, directories: 0, listedAhead: 0, names: 0, files: 0, bytes: 0, listMs: 0, fillMs: 0, fetchMs: 0 };
const NOTHING_PREFETCHED: PrefetchStats = { directories: 0, files: 0, bytes: 0, failed: 0 };

/** The profile a job replays or records, once its file is read. */
interface JobProfile {
  file: string;
  module: typeof import('./profile.js');
  old: ReturnType<typeof import('./profile.js')['readProfile']>;
  recorder: ProfileRecorder;
  write: () => boolean;
}

/** A job's state; see the module comment. */
export class Job {
  /** Repositories the job opened, closed with it. */
  readonly opened: Repository[] = [];
  /** The shadow tree, once loaded. */
  shadow: ShadowTree | undefined;
  /** True once the tracer said why the command could not start (so it is not said twice). */
  startErrorTold = false;
  private shadowReady: Promise<ShadowTree> | undefined;
  private readonly stores = new Map<string, { promise: Promise<ObjectStore>; resolve: (s: ObjectStore) => void }>();
  private profile: JobProfile | undefined;
  private replay: ProfileReplay | undefined;
  // Questions of the program not yet answered; the replay waits for none to be.
  private waiting = 0;
  private wake: (() => void)[] = [];

  constructor(
    private readonly base: string,
    readonly root: string,
    private readonly options: ExecOptions,
    private readonly tracer: NativeTracer,
    private readonly quotaBytes: number,
    private readonly prefetch: PrefetchOptions | false,
  ) {}

  /** Reads the access profile at `file` (replayed when it exists, recorded into otherwise). */
  async useProfile(file: string): Promise<void> {
    const module = await import('./profile.js');
    const old = module.readProfile(file);
    const recorder = new module.ProfileRecorder();
    // Written when the command ends (a caller that returns then, through the front, may start the next job at
    // once), and again at the very end if what the command left running added to it.
    const write = module.profileWriter(recorder, file, old, this.options.warn);
    this.profile = { file, module, old, recorder, write };
    await this.shadowTree();
  }

  /** Whether the job records a new profile (the preload library then leaves every /cvmfs path to the tracer). */
  get recordingFresh(): boolean {
    return !!this.profile && !this.profile.old;
  }

  /** The shadow tree, its code loaded on first need: `exec -- true` and jobs that never touch /cvmfs skip it. */
  shadowTree(): Promise<ShadowTree> {
    return (this.shadowReady ??= this.loadShadowTree());
  }

  private async loadShadowTree(): Promise<ShadowTree> {
    const { ShadowTree } = await import('./shadow.js');
    const { tracer } = this;
    const t = new ShadowTree(this.base, this.root, (fqrn) => this.openRepo(fqrn), { setxattr: tracer.setxattr, copyInto: tracer.copyInto, copyAt: tracer.copyAt, makeEntries: tracer.makeEntries });
    t.prefetch = this.prefetch;
    t.listAheadDepth = this.options.listAhead ?? listAheadFromEnv(process.env.UCVMFS_LIST_AHEAD, t.listAheadDepth);
    t.quotaBytes = this.quotaBytes;
    const p = this.profile;
    if (p) {
      t.recorder = p.recorder;
      t.recording = !p.old;
    }
    if (p?.old) {
      // The profile knows what the command opens; guessing siblings besides would fetch what it does not.
      if (this.options.prefetch === undefined) t.prefetch = false;
      if (this.options.listAhead === undefined) t.listAheadDepth = 0;
      this.replay = new p.module.ProfileReplay(p.old, (fqrn) => t.mount(fqrn), (op, path) => t.prepare(op, path, true), { idle: () => this.idle(), ...this.options.replay }, (fqrn) => this.storeOf(fqrn).promise);
    }
    return (this.shadow = t);
  }

  private idle(): Promise<void> {
    return this.waiting === 0 ? Promise.resolve() : new Promise((r) => this.wake.push(r));
  }

  // Each repository's object store as soon as its open makes it (a profile's replay fetches ahead with it).
  private storeOf(fqrn: string): { promise: Promise<ObjectStore>; resolve: (s: ObjectStore) => void } {
    let s = this.stores.get(fqrn);
    if (!s) {
      let resolve!: (s: ObjectStore) => void;
      const promise = new Promise<ObjectStore>((r) => { resolve = r; });
      this.stores.set(fqrn, s = { promise, resolve });
    }
    return s;
  }

  private async openRepo(fqrn: string): Promise<Repository | null> {
    const { options } = this;
    try {
      // Loaded on first access: a job that never touches /cvmfs does not pay for the client.
      const { openRepository } = await import('../repository.js');
      const r = await openRepository(fqrn, {
        lazyRoot: true, autoReload: false, ...options.open,
        onObjectStore: (s) => {
          this.storeOf(fqrn).resolve(s);
          options.open?.onObjectStore?.(s);
        },
      });
      this.opened.push(r);
      return r;
    } catch (e) {
      // Once per job and repository (the shadow tree asks once per name).
      options.warn?.(`cannot open /cvmfs/${fqrn}: ${(e as Error).message}`);
      return null;
    }
  }

  /**
   * Answers one question of the tracer: the command's start (`s`) and end (`e`), or a path to make ready. Paths
   * are bytes both ways: names that are not UTF-8 travel as their string form (U+DC80 + byte) here.
   */
  ask(op: string, raw: Buffer, reply: (answer: Array<string | Buffer> | null) => void): void {
    const path = decodeName(raw);
    if (op === 's' || op === 'e') {
      if (op === 's') this.options.onStart?.(Number(path));
      else this.ended(path);
      reply(null);
      return;
    }
    if (process.env.UCVMFS_TEST_FAULT === 'js') throw new Error('injected fault (UCVMFS_TEST_FAULT=js)');
    this.profile?.recorder.step(op, path);
    this.waiting++;
    this.shadowTree().then((t) => t.prepare(op, path)).finally(() => {
      if (--this.waiting > 0) return;
      const w = this.wake;
      this.wake = [];
      for (const r of w) r();
    }).then((a) => reply(a.map((x) => (typeof x === 'string' ? encodeName(x) : x))), (e: Error) => {
      // The call fails with EIO: never let the kernel read a placeholder whose content could not be written.
      this.options.warn?.(`${path.split('\0')[0]}: ${e.message}`);
      reply(['\0EIO']);
    });
  }

  // "code:signal", then ":why" when the command could not be started: said before onExit, after which the caller
  // may have its answer and this process its stdio gone.
  private ended(how: string): void {
    const [code, signal, ...why] = how.split(':');
    if (why.length) {
      this.options.warn?.(why.join(':'));
      this.startErrorTold = true;
    }
    this.options.onExit?.(this.result(Number(signal) ? null : Number(code), Number(signal)));
  }

  /** What the job did up to now (at the command's end, and again when every process it started is gone). */
  result(code: number | null, signal: number): ExecResult {
    const downloads = { objects: 0, bytes: 0, catalogs: 0 };
    for (const r of this.opened) {
      downloads.objects += r.stats().objectsDownloaded;
      downloads.bytes += r.stats().bytesDownloaded;
      downloads.catalogs += r.stats().catalogsLoaded;
    }
    const p = this.profile;
    return {
      code, signal, counters: { ...(this.shadow?.counters ?? NO_REQUESTS) }, prefetched: this.shadow?.prefetched() ?? NOTHING_PREFETCHED, downloads,
      profile: p && { replayed: this.replay?.stats, recorded: !p.old, written: p.write() },
    };
  }

  /** Stops the replay (the command has ended: nothing more to fetch ahead of it). */
  stopReplay(): void {
    this.replay?.close();
  }

  /** Closes what the job opened and removes its session; its shadow generation goes if it was the last user. */
  async close(): Promise<void> {
    this.replay?.close();
    // A tree still loading was never asked anything: nothing to close or prune, and no reason to wait for it.
    const tree = this.shadow;
    tree?.close();
    for (const r of this.opened) r.close();
    try {
      removeSmallTree(this.root);
    } catch {
      // Whatever the walk could not take: the thorough way (every directory made writable first).
      await removeTree(this.root).catch(() => undefined);
    }
    await tree?.retire();
  }
}
