/**
 * The shadow tree: a real directory that stands for `/cvmfs` while a traced command runs. The tracer rewrites
 * `/cvmfs/<fqrn>/p` to `<root>/<fqrn>/p` and asks this module to make what the kernel will touch exist first:
 * each name a path passes through (a subdirectory, a symlink, or a sparse placeholder file of the right size,
 * mode and mtime), a directory's every entry when a program looks the directory up or reads it, and a file's
 * content (verified, by the library) before the kernel opens it. A path through a directory of 50,000 entries
 * costs its one name there.
 * Everything else (open, read, mmap, getdents, fstat) is then done by the kernel at native speed.
 * @module
 */
import { mayBeRepository } from '../format/names.js';
import { posix } from 'node:path';
import { constants } from 'node:os';
import { chmodSync, existsSync, lstatSync, mkdirSync, opendirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import type { Entry } from '../fs/entry.js';
import { Flag } from '../format/flags.js';
import { magicNames } from '../fs/magic-xattrs.js';
import { externalPiece } from '../fs/content.js';
import type { Repository } from '../repository.js';
import { hashToString } from '../format/hash.js';
import { ExecPlanner, PLAN_FORMAT } from './exec-plan.js';
import { EntryMaker, inWritable, racing } from './entry-maker.js';
import { EntryBatch } from './entry-batch.js';
import { HIDDEN_TOP, lstatOrNull, settledByListing, type ShadowLayout } from './settled.js';
import { underVirtualRoot } from './virtual-root.js';
import { fillFile, removeDeadTemporaries, type CopyAt, type CopyInto, type FillSource } from './file-filler.js';
import { claim } from '../cache/claim.js';
import { SiblingPrefetcher, type PrefetchOptions, type PrefetchStats } from '../fs/prefetch.js';
import { decodeName, encodeName, nativePath } from '../format/byte-names.js';
import type { ProfileRecorder } from './profile.js';
import { CvmfsError } from '../errors.js';
import { shadowMode, whileMade } from './modes.js';
import { setTimes } from './times.js';
import { bindBounds, completeSubtree, type BindBounds } from './bind-source.js';
import { contentBytes, ENTRY_BYTES, generationsOf, joinGeneration, markLinked, markLinkedEarly, parseGeneration, pruneRetired, rootMayMove, UsageMeter } from './shadow-bounds.js';
import { nowMs } from '../clock.js';
import { smallDigest } from '../crypto/small-hash.js';
import { VariantKeys } from './variant-keys.js';
import { ListAhead } from './list-ahead.js';

export { shadowMode };

const MAX_SYMLINKS = 40;
const { EEXIST } = constants.errno;

/** Opens a repository on first access of `/cvmfs/<fqrn>`; resolves to null when it cannot be opened. */
export type RepositoryProvider = (fqrn: string) => Promise<Repository | null>;

/** Where a walk ended: a repository path, or `/cvmfs` itself (repo null). */
interface Place {
  repo: Repository | null;
  fqrn: string;
  parts: string[];
  entry: Entry | null;
  /** Whether the walk followed a link into another repository (see crossInto). */
  crossed?: boolean;
}

/** Codes by which the library says a name is not there (anything else is a failure to read the repository). */
const NOT_THERE = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG']);
/** Entries of a directory made per native batch. */
const LIST_SLICE = 2048;
/** Directories listed ahead of a walking program by default (`UCVMFS_LIST_AHEAD`). */
export const DEFAULT_LIST_AHEAD = 8;





/** What the native module does for the shadow tree that Node cannot. */
export interface ShadowNative {
  /** lsetxattr; 0 or an errno. */
  setxattr(path: string | Buffer, name: string, value: Buffer): number;
  copyInto: CopyInto;
  /** Copies a file into a place in another; without it, a chunked file's content is streamed. */
  copyAt?: CopyAt | undefined;
  /**
   * Makes new entries of one directory (`count` of them, packed by lib/connector/entry-batch.ts) in a worker
   * thread; `[index, errno]` of those it could not.
   */
  makeEntries(dir: string | Buffer, packed: Buffer, count: number): Promise<Array<[number, number]>>;
}

/**
 * A shadow directory's subdirectories in the order the kernel lists them, which a walking program sees (readdir
 * sorts names: libuv's scandir; a Dir reads them as they come).
 */
function subdirectoriesInKernelOrder(dir: string): string[] {
  const d = opendirSync(nativePath(dir), { encoding: 'buffer' as BufferEncoding, bufferSize: 256 });
  try {
    const out: string[] = [];
    for (let e = d.readSync(); e; e = d.readSync()) if (e.isDirectory()) out.push(decodeName(e.name as unknown as Buffer));
    return out;
  } finally {
    d.closeSync();
  }
}

/** A slice of a directory's entries whose native batch is under way (see ShadowTree.startSlice). */
interface SliceInMaking {
  batch: Entry[];
  oneByOne: Entry[];
  failed: Promise<[number, number][]>;
}

/** Materializes repositories below one real directory, on demand. */
export class ShadowTree {
  private readonly mounts = new Map<string, Promise<Repository | null>>();
  private readonly revs = new Map<string, string>();
  /** Each mounted repository's revision (`<fqrn>@<root hash>`), whose generation `revs` holds. */
  private readonly stems = new Map<string, string>();
  private readonly variants: VariantKeys;
  /** What this job made, charged to each generation's account. */
  private readonly usage = new UsageMeter();
  /** Repositories into which this job made links from another one. */
  private readonly linkedEarly = new Set<string>();
  /** Repositories this job entered through a link from another one (see crossInto). */
  private readonly crossed = new Set<string>();
  /** Removals of retired generations under way. */
  private readonly pruning: Promise<unknown>[] = [];
  private readonly listed = new Map<string, Promise<void>>();
  /** Directories listed ahead of the program whose markers wait for its open (see lib/connector/list-ahead.ts). */
  private readonly unmarked = new Map<string, string>();
  /** Directories this process listed that hold no subdirectory (nothing below them to list ahead). */
  private readonly leaves = new Set<string>();
  private ahead: ListAhead | undefined;
  private readonly filled = new Map<string, Promise<void>>();
  private readonly prefetchers = new Map<string, SiblingPrefetcher>();
  private readonly owned = new Map<string, Promise<boolean>>();
  /** Names made complete one by one (`<fqrn>:<path>`), and repositories whose top got its mode and attributes. */
  private readonly named = new Set<string>();
  private readonly topReady = new Set<string>();
  /** Counters for the connector's report (times in ms). */
  readonly counters = { requests: 0, directories: 0, listedAhead: 0, names: 0, files: 0, bytes: 0, listMs: 0, fillMs: 0, fetchMs: 0 };
  /** Sibling prefetch (lib/fs/prefetch.ts) on the first file filled in each directory; false turns it off. */
  prefetch: PrefetchOptions | false = {};
  /** Told of every entry walked through and every file filled (an access profile being recorded or extended). */
  recorder?: ProfileRecorder;
  /**
   * Recording a whole profile: what earlier jobs left complete is walked again (not taken from markers), so that
   * the recorder sees the catalogs and objects behind every answer.
   */
  recording = false;
  /** The bound on a revision's tree, in bytes (negative: none); lib/connector/shadow-bounds.ts. */
  quotaBytes = -1;
  /** Directories listed ahead that the program has not asked for, at most (lib/connector/list-ahead.ts); 0: none. */
  listAheadDepth = DEFAULT_LIST_AHEAD;

  /**
   * @param base the shared shadow area (in the cache): `rev/<fqrn>@<root hash>/` holds one revision's tree,
   *   filled on demand by any process and kept for the next; `rev/<fqrn>@<root hash>.state/` its markers;
   *   `root/<fqrn>` links to the newest revision seen (the target of absolute links between repositories).
   * @param session this session's stand-in for `/cvmfs` itself (a directory per repository opened).
   * @param native what the native module does for the tree that Node cannot (extended attributes, kernel copies).
   */
  constructor(readonly base: string, readonly session: string, private readonly provider: RepositoryProvider, private readonly native: ShadowNative) {
    this.entries = new EntryMaker(base, (fqrn) => this.revs.get(fqrn)!, native.setxattr, (fqrn) => {
      if (!this.linkedEarly.has(fqrn)) markLinkedEarly(base, fqrn);
      this.linkedEarly.add(fqrn);
    }, (fqrn, raw) => this.variants.made(fqrn, raw));
    this.variants = new VariantKeys(base);
    this.layout = { base, revisionOf: (fqrn) => this.revs.get(fqrn)!, marker: (fqrn, kind, key) => this.marker(fqrn, kind, key) };
    this.execs = new ExecPlanner({ prepare: (op, path) => this.prepare(op, path), walk: (path, follow) => this.walk(path, follow) });
  }

  private readonly entries: EntryMaker;
  private readonly layout: ShadowLayout;
  private readonly execs: ExecPlanner;

  /** What the sibling prefetchers did, over all repositories. */
  prefetched(): PrefetchStats {
    const t: PrefetchStats = { directories: 0, files: 0, bytes: 0, failed: 0 };
    for (const p of this.prefetchers.values()) for (const k of Object.keys(t) as (keyof PrefetchStats)[]) t[k] += p.stats[k];
    return t;
  }

  /** Stops every prefetch and writes what this job made to the generations' accounts (the job ended). */
  close(): void {
    for (const p of this.prefetchers.values()) p.close();
    this.ahead?.close();
    // Listed ahead and complete: the next job takes them as they are.
    for (const done of this.unmarked.values()) writeFileSync(done, '', { mode: 0o600 });
    this.unmarked.clear();
    this.usage.flush();
  }

  /** Lists ahead of a walking program (made on the first directory a job opens). */
  private listAhead(): ListAhead {
    return this.ahead ??= new ListAhead({
      listAhead: async (fqrn, parts) => {
        const repo = await this.mounts.get(fqrn);
        if (repo) await this.list(repo, fqrn, parts, true);
      },
      subdirectories: (fqrn, parts) => {
        const dir = this.real(fqrn, parts);
        return this.leaves.has(dir) ? [] : subdirectoriesInKernelOrder(dir);
      },
      isListed: (fqrn, parts) => this.listed.has(this.real(fqrn, parts)) || this.isListed(fqrn, parts),
    }, this.recording ? 0 : this.listAheadDepth);
  }

  /** Charges `entries` entries made and `bytes` of content to the generation of `fqrn`. */
  private charge(fqrn: string, entries: number, bytes = 0): void {
    this.usage.charge(this.revs.get(fqrn)!, entries * ENTRY_BYTES + contentBytes(bytes));
  }

  /** Real path of `/cvmfs/<fqrn>/<parts>` (the repository must be mounted). */
  real(fqrn: string, parts: readonly string[]): string {
    // The hidden top-level /.cvmfs lives beside the tree, so that no listing of the root ever shows it.
    if (parts[0] === HIDDEN_TOP) return posix.join(`${this.revs.get(fqrn)!}.hidden`, ...parts);
    return posix.join(this.revs.get(fqrn)!, ...parts);
  }

  /** The revision directory of a mounted repository. */
  revisionDir(fqrn: string): string | undefined {
    return this.revs.get(fqrn);
  }

  /**
   * A marker file recording what is complete in a revision directory: `l` a directory listed in full, `n` one name
   * made in a directory not listed, `a` a name found absent there, `f` a file's content written, `x` an exec plan,
   * `t` a container's bind source completed.
   */
  private marker(fqrn: string, kind: 'l' | 'n' | 'a' | 'f' | 'x' | 't', key: string): string {
    // The MD5 of the path's bytes, as the tracer and the preload library compute it (names need not be UTF-8).
    return `${this.revs.get(fqrn)!}.state/${kind}-${smallDigest('md5', encodeName(key)).toString('hex')}`;
  }


  /** Opens `/cvmfs/<fqrn>` (once): its revision directory, the `root/` link, the session's directory. */
  mount(fqrn: string): Promise<Repository | null> {
    let m = this.mounts.get(fqrn);
    if (!m) {
      m = (async () => {
        if (!mayBeRepository(fqrn)) return null;
        const repo = await this.provider(fqrn).catch(() => null);
        if (!repo) return null;
        // Trees of a repository with variant links are kept apart by the values of their variables.
        const stem = this.variants.stemFor(fqrn, `${fqrn}@${hashToString(repo.rootHash)}`, (n) => repo.variable(n));
        let made = false;
        const { dir: rev, started } = await joinGeneration(this.base, stem, this.quotaBytes, async (rev) => {
          made = await this.enter(fqrn, rev);
        });
        // Its top's time, once the lock is let go (the root catalog may have to be downloaded for it).
        if (made) {
          const top = await repo.fs.lstat('/');
          setTimes(rev, top.mtimeNs);
        }
        this.revs.set(fqrn, rev);
        this.stems.set(fqrn, stem);
        // The generations this one replaces go now unless other jobs use them (removed while the command runs).
        if (started) this.pruning.push(pruneRetired(this.base, posix.dirname(this.session), stem).catch(() => []));
        // What jobs killed while filling left (once per job and repository: a short directory).
        removeDeadTemporaries(this.fillTemporaries(fqrn));
        return repo;
      })();
      this.mounts.set(fqrn, m);
    }
    return m;
  }

  /**
   * Makes a generation's directories (as needed; true when it made the tree) and links them: `root/<fqrn>` (the
   * newest revision seen, for links between repositories) and the session's `/cvmfs/<fqrn>`. Runs under the
   * repository's lock.
   */
  private async enter(fqrn: string, rev: string): Promise<boolean> {
    mkdirSync(`${rev}.state`, { recursive: true, mode: 0o700 });
    // Traversable, not listable: a job's processes that switched to another user find the markers (and so
    // the preload library's fast path) too; `fill/` inside stays 0700.
    chmodSync(`${rev}.state`, 0o711);
    // In use from now: old revisions are pruned only after an hour without a mount or a new marker.
    const now = Date.now() / 1000;
    utimesSync(`${rev}.state`, now, now);
    const made = !existsSync(rev);
    if (made) mkdirSync(rev, { recursive: true, mode: 0o700 });
    // Not moved away from a tree another running job reaches through links (its kernel follows this one).
    if (await rootMayMove(this.base, posix.dirname(this.session), fqrn, rev)) {
      mkdirSync(posix.join(this.base, 'root'), { recursive: true, mode: 0o711 });
      const link = posix.join(this.base, 'root', fqrn);
      const tmp = `${link}.${process.pid}.tmp`;
      rmSync(tmp, { force: true });
      symlinkSync(rev, tmp);
      renameSync(tmp, link);
    }
    // The session's /cvmfs/<fqrn>: a link to the revision (the preload library finds the revision there).
    const entry = posix.join(this.session, fqrn);
    if (lstatOrNull(entry)?.isDirectory()) rmSync(entry, { recursive: true });
    racing(() => symlinkSync(rev, entry));
    return made;
  }

  /**
   * At the job's end, once its session is gone: removes the generations this job was the last to use (a newer
   * one exists), and waits for the removals it started.
   */
  async retire(): Promise<void> {
    await Promise.all(this.pruning);
    for (const [fqrn, stem] of this.stems) {
      const rev = this.revs.get(fqrn)!;
      const gen = parseGeneration(posix.basename(rev))?.gen ?? 0;
      if (generationsOf(posix.dirname(rev), stem).some((g) => g > gen)) await pruneRetired(this.base, posix.dirname(this.session), stem).catch(() => []);
    }
  }

  /**
   * Answers the tracer: `l` look up, `o` open, `d` list, `x` execute. For `x`, the exec plan of
   * {@link execPlan} (empty when the kernel can run the file from the shadow tree by itself); `y` the plan of a
   * program outside /cvmfs whose interpreter or loader is under it (`path` is the tracer's path to the file).
   */
  async prepare(op: string, path: string, ahead = false): Promise<Array<string | Buffer>> {
    // Questions answered ahead of the program (a profile replayed) are not the program's.
    if (!ahead) this.counters.requests++;
    if (op === 'g') return this.magic(path);
    if (op === 'y') return this.execs.planOutside(path);
    if (op === 'm') return (await this.mount(path)) ? [this.revs.get(path)!] : [];
    if (op === 't') return this.completeBindSource(path);
    // An exec plan made before for this path in this revision (the program then was complete in the shadow tree):
    // a warm job that runs programs from /cvmfs needs no catalog, and so no SQLite, at all.
    const fqrn0 = op === 'x' ? path.split('/')[2] : undefined;
    // Keyed by the plan's format too: a plan holding AS_GIVEN would be run wrong by an older ucvmfs sharing the cache.
    const saved = fqrn0 && mayBeRepository(fqrn0) && (await this.mount(fqrn0)) ? this.marker(fqrn0, 'x', `${path}\0${PLAN_FORMAT}`) : undefined;
    if (saved && !this.recording) {
      try {
        return JSON.parse(readFileSync(nativePath(saved), 'utf8')) as string[];
      } catch {
        // none yet
      }
    }
    if ((op === 'l' || op === 'o') && fqrn0 === undefined && !this.recording) {
      const f = path.split('/')[2];
      if (f && this.revs.has(f) && settledByListing(this.layout, f, path, op)) return [];
    }
    const place = await this.walk(path, true, op === 'o' || op === 'x');
    if (!place || !place.repo || !place.entry) return [];
    const { repo, fqrn, parts, entry } = place;
    // A directory is listed even when only looked up: its link count, as the kernel reports it, counts the
    // subdirectories, which must therefore exist.
    if (entry.type === 'dir') {
      const hit = await this.list(repo, fqrn, parts);
      // A directory looked up or opened (a walk does both to each) may be followed by its subdirectories.
      if (!ahead && !place.crossed) this.listAhead().opened(fqrn, parts, hit);
    }
    if (entry.type === 'file' && (op === 'o' || op === 'x')) await this.fill(repo, fqrn, parts, entry);
    if (entry.type !== 'file' || op !== 'x') return [];
    const plan = await this.execs.plan(repo, path, '/' + parts.join('/'));
    // Not kept when the path crosses into another repository: each exec then walks it again, and so checks
    // that the links lead to this job's copy (a saved plan answers without a walk).
    if (saved && !place.crossed) {
      const tmp = `${saved}.${process.pid}.tmp`;
      writeFileSync(nativePath(tmp), JSON.stringify(plan), { mode: 0o600 });
      renameSync(nativePath(tmp), nativePath(saved));
      this.charge(fqrn0!, 1);
    }
    return plan;
  }

  /** Bounds of a subtree that may become a container's bind source (see lib/connector/bind-source.ts). */
  bindBounds: BindBounds = bindBounds();

  /**
   * Completes what a container is about to bind (`t`): the whole subtree of a /cvmfs path, listed and filled, or
   * an error (the mount then fails with EIO). A path that is not there needs nothing: the kernel answers ENOENT.
   */
  private async completeBindSource(path: string): Promise<string[]> {
    // A subtree once complete stays so (a revision never changes): a warm job binds it without any catalog.
    const top = path.split('/')[2] ?? '';
    const opened = mayBeRepository(top) ? await this.mount(top) : null;
    // A repository that cannot be opened must not be bound as the empty directory that stands for it.
    if (mayBeRepository(top) && !opened) throw new CvmfsError('EIO', `/cvmfs/${top} cannot be opened, so ${path} cannot be a container's bind source`, { path });
    const done = opened ? this.marker(top, 't', path) : undefined;
    if (done && !this.recording && existsSync(done)) return [];
    const place = await this.walk(path, true);
    if (!place?.repo || !place.entry) return [];
    const { repo, fqrn } = place;
    await completeSubtree(path, place.parts, place.entry, {
      list: async (parts) => {
        await this.list(repo, fqrn, parts);
        return [...(await repo.fs.entries('/' + parts.join('/')))];
      },
      fill: (parts, e) => this.fill(repo, fqrn, parts, e),
    }, this.bindBounds);
    // Only for a subtree of the repository named (a link into another one may lead to a newer revision of it).
    if (done && fqrn === top) writeFileSync(done, '', { mode: 0o600 });
    return [];
  }



  /** A magic attribute (`path\0` + `l`|`f` + name): its value, or nothing when the name is not magic here. */
  private async magic(request: string): Promise<Buffer[]> {
    const nul = request.indexOf('\0');
    const path = request.slice(0, nul);
    const follow = request[nul + 1] !== 'l';
    const name = request.slice(nul + 2);
    const place = await this.walk(path, follow);
    if (!place?.repo || !place.entry || !magicNames(place.entry).includes(name)) return [];
    return [await place.repo.fs.getxattr('/' + place.parts.join('/'), name, { noFollow: true })];
  }

  /**
   * Resolves a `/cvmfs` path the way the kernel will (symlinks, `..`), listing every directory it passes
   * through so that the kernel finds each component. Null when the path leaves `/cvmfs` or does not exist.
   */
  private async walk(path: string, followLast: boolean, fillsLast = false): Promise<Place | null> {
    const todo = path.split('/').reverse();
    todo.pop(); // ''
    if (todo.pop() !== 'cvmfs') return null;
    let place: Place = { repo: null, fqrn: '', parts: [], entry: null };
    let links = 0;
    // The repository whose symlink the components being walked come from: entering another one from there is a
    // crossing. `ends`: where each followed link's components end in `todo`, and what `via` was before it.
    let via: string | undefined;
    const ends: { at: number; via: string | undefined }[] = [];
    let crossed = false;
    while (todo.length > 0) {
      while (ends.length > 0 && todo.length <= ends[ends.length - 1]!.at) via = ends.pop()!.via;
      const c = todo.pop()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (place.parts.length > 0) place.parts.pop();
        else if (place.repo) place = { repo: null, fqrn: '', parts: [], entry: null };
        else return null;
        // The directory climbed to is where the path may end (`ls d/e/..`): it must be known, to be listed.
        place.entry = place.repo ? await place.repo.fs.entry('/' + place.parts.join('/'), false) : null;
        continue;
      }
      if (!place.repo) {
        const repo = await this.mount(c);
        if (!repo) return null;
        if (via !== undefined && via !== c) {
          await this.crossInto(c);
          crossed = true;
        }
        place = { repo, fqrn: c, parts: [], entry: await repo.fs.entry('/', false) };
        this.recorder?.used(repo, place.entry!);
        continue;
      }
      // Below a file: the kernel answers ENOTDIR by itself.
      if (place.entry && place.entry.type !== 'dir') return null;
      let e: Entry;
      try {
        e = await place.repo.fs.entry('/' + [...place.parts, c].join('/'), false);
      } catch (err) {
        // Only an answer about the name means "no such entry"; a catalog that could not be fetched or verified
        // fails the call (EIO), never shows an empty directory or a missing file.
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (!NOT_THERE.has(code)) throw err;
        if (code === 'ENOENT') this.markAbsent(place.fqrn, place.parts, c);
        return null;
      }
      this.recorder?.used(place.repo, e);
      if (!(e.flags & Flag.Hidden)) await this.ensureName(place.repo, place.fqrn, place.parts, e, fillsLast && todo.length === 0);
      else {
        // Kept out of listings, as the genuine client does, but reachable by path: made on first access.
        const p = this.real(place.fqrn, [...place.parts, c]);
        if (!existsSync(nativePath(p))) {
          const top = place.parts.length === 0 && c === HIDDEN_TOP;
          const parent = await place.repo.fs.entry('/' + place.parts.join('/'), false);
          const pdir = posix.dirname(p);
          if (top) mkdirSync(nativePath(pdir), { recursive: true, mode: 0o700 });
          inWritable(pdir, () => this.entries.make(p, e, place.fqrn, place.parts, new Map()));
          // Read-only again: the `.hidden` directory beside the tree has no mode of its own to show.
          // The top's `.hidden` is as closed to others as the repository's top.
          const topMode = lstatSync(nativePath(this.revs.get(place.fqrn)!)).mode & 0o005 ? 0o555 : 0o500;
          chmodSync(nativePath(pdir), top ? topMode : await this.dirMode(place.repo, place.fqrn, place.parts, parent));
          if (!top) setTimes(nativePath(pdir), parent.mtimeNs);
        }
      }
      if (e.type === 'symlink' && (todo.length > 0 || followLast)) {
        if (++links > MAX_SYMLINKS) return null;
        ends.push({ at: todo.length, via });
        via = place.fqrn;
        const t = e.target ?? '';
        const comps = t.split('/').reverse();
        if (t.startsWith('/')) {
          if (!underVirtualRoot(t)) return null;
          comps.pop();
          comps.pop();
          place = { repo: null, fqrn: '', parts: [], entry: null };
        }
        todo.push(...comps);
        continue;
      }
      place.parts.push(c);
      place.entry = e;
    }
    return crossed ? { ...place, crossed } : place;
  }

  /**
   * A walk that follows a symlink into another repository: the kernel will follow the shadow tree's link through
   * `root/<fqrn>`, which all jobs share and which names the tree the newest job joined. The first crossing marks
   * the repository as reached by links (under its revision's lock), after which no job starts a new generation
   * of it; if `root/<fqrn>` leads elsewhere than this job's tree (a generation started before the mark, or a newer
   * revision), the call fails: the kernel would read entries this job never prepared.
   */
  private async crossInto(fqrn: string): Promise<void> {
    // By name: another job may spell the shadow area differently (a cache base reached through a symlink).
    const mine = posix.basename(this.revs.get(fqrn)!);
    const leads = () => {
      try {
        return posix.basename(readlinkSync(posix.join(this.base, 'root', fqrn)));
      } catch {
        return undefined;
      }
    };
    if (!this.crossed.has(fqrn)) {
      await markLinked(this.base, fqrn, () => {
        if (leads() !== mine) throw this.foreignTree(fqrn);
      });
      this.crossed.add(fqrn);
    } else if (leads() !== mine) {
      throw this.foreignTree(fqrn);
    }
  }

  private foreignTree(fqrn: string): CvmfsError {
    return new CvmfsError('EIO', `/cvmfs/${fqrn} is reached through a link from another repository, and the link now leads to another job's copy of it (a newer revision, or a generation started after this job's): the call fails rather than read what this job did not prepare`, { path: `/cvmfs/${fqrn}` });
  }

  /** Whether a repository's top is kept to this user (its root catalog requires membership): asked once. */
  private ownTop(repo: Repository, fqrn: string): Promise<boolean> {
    let p = this.owned.get(fqrn);
    if (!p) this.owned.set(fqrn, p = repo.membershipRequirement().then((m) => m !== undefined));
    return p;
  }

  /** The on-disk mode of a shadow directory: the top of a repository kept to this user has no bits for others. */
  private async dirMode(repo: Repository, fqrn: string, parts: readonly string[], e: Entry): Promise<number> {
    return shadowMode(e.mode, parts.length === 0 && (await this.ownTop(repo, fqrn)));
  }

  /** Whether a directory of the tree is listed in full (by this process, or by any before: its marker). */
  private isListed(fqrn: string, parts: readonly string[]): boolean {
    return existsSync(this.marker(fqrn, 'l', '/' + parts.join('/'))) || (this.unmarked.size > 0 && this.unmarked.has(this.real(fqrn, parts)));
  }

  /**
   * Makes one name of a directory that a path passes through, without the rest of the directory: the first touch
   * of a name costs that name, not its directory's size. Its `n` marker says the name is complete (the tracer and
   * the preload library answer later calls on it without asking), while the directory stays unlisted until a
   * program reads or looks up the directory itself ({@link list}). A hardlink group is made with its whole
   * directory (its names must share one inode).
   */
  private async ensureName(repo: Repository, fqrn: string, parts: readonly string[], e: Entry, filling = false): Promise<void> {
    const key = '/' + [...parts, e.name].join('/');
    if (this.named.has(`${fqrn}:${key}`) || this.isListed(fqrn, parts)) return;
    if (e.type === 'file' && e.nlink > 1) {
      await this.list(repo, fqrn, parts);
      return;
    }
    // A file with content says it is complete by its content marker (`f`), which a file about to be filled gets
    // next: no `n` marker for it (on a slow disk each marker file costs a create).
    const content = e.type === 'file' && e.size > 0;
    const done = this.marker(fqrn, 'n', key);
    if (!existsSync(done) && !(content && existsSync(this.marker(fqrn, 'f', key)))) {
      const dir = this.real(fqrn, parts);
      const self = await repo.fs.entry('/' + parts.join('/'), false);
      const own = parts.length === 0 && (await this.ownTop(repo, fqrn));
      // The top gets its own mode and attributes here when no listing gave them yet (it was made 0700).
      if (parts.length === 0 && !this.topReady.has(fqrn)) {
        chmodSync(nativePath(dir), whileMade(shadowMode(self.mode, own), true));
        this.entries.setAttributes(dir, self, own);
        this.topReady.add(fqrn);
      }
      inWritable(dir, () => this.entries.make(posix.join(dir, e.name), e, fqrn, parts, new Map()));
      chmodSync(nativePath(dir), shadowMode(self.mode, own));
      setTimes(nativePath(dir), self.mtimeNs);
      if (!(filling && content)) writeFileSync(nativePath(done), '', { mode: 0o600 });
      this.charge(fqrn, filling && content ? 1 : 2);
      this.counters.names++;
    }
    this.named.add(`${fqrn}:${key}`);
  }

  /** Whether a name was made complete on its own (its `n` marker, or `f` for a file with content). */
  private madeAlone(fqrn: string, path: readonly string[], e: Entry): boolean {
    const key = '/' + path.join('/');
    return existsSync(this.marker(fqrn, 'n', key)) || (e.type === 'file' && e.size > 0 && existsSync(this.marker(fqrn, 'f', key)));
  }

  /**
   * Records that a name looked up in a directory not listed in full is not there (its `a` marker), so that the
   * next lookup of it (a warm job probing for optional files) is answered without the catalogs.
   */
  private markAbsent(fqrn: string, parts: readonly string[], name: string): void {
    if (this.isListed(fqrn, parts)) return;
    racing(() => writeFileSync(nativePath(this.marker(fqrn, 'a', '/' + [...parts, name].join('/'))), '', { mode: 0o600, flag: 'wx' }));
    this.charge(fqrn, 1);
  }

  /**
   * Creates the children of a directory in the shadow tree (once per revision, whichever process does it); true
   * when it had been listed ahead of the program (`ahead`: listed so now, its marker left for the program's ask).
   */
  private async list(repo: Repository, fqrn: string, parts: readonly string[], ahead = false): Promise<boolean> {
    const dir = this.real(fqrn, parts);
    let p = this.listed.get(dir);
    if (!p) {
      p = this.doList(repo, fqrn, parts, dir, ahead);
      this.listed.set(dir, p);
      p.catch(() => this.listed.delete(dir));
    }
    await p;
    const done = ahead ? undefined : this.unmarked.get(dir);
    if (done === undefined) return false;
    this.unmarked.delete(dir);
    writeFileSync(done, '', { mode: 0o600 });
    return true;
  }

  private async doList(repo: Repository, fqrn: string, parts: readonly string[], dir: string, ahead: boolean): Promise<void> {
    const done = this.marker(fqrn, 'l', '/' + parts.join('/'));
    if (existsSync(done)) return;
    const t0 = nowMs();
    const rpath = '/' + parts.join('/');
    const self = await repo.fs.entry(rpath, false);
    const ndir = nativePath(dir);
    // A repository that requires membership (which this client cannot check) stays this user's: its top is
    // closed to others (lib/connector/modes.ts), and everything below is reached through it only.
    const own = parts.length === 0 && (await this.ownTop(repo, fqrn));
    chmodSync(ndir, whileMade(shadowMode(self.mode, own), true));
    // The top has no parent listing to give it its attributes (every other directory got them when made).
    if (parts.length === 0) this.entries.setAttributes(dir, self, own);
    const firstOfInode = new Map<number, string>();
    // In slices: a directory of 50,000 entries took 1 KB an entry of memory while made all at once.
    let made = 1; // and the marker
    let subdirectories = 0;
    // One slice ahead: the next is read from the catalog and packed while a worker thread makes this one (a
    // directory of 50,000 entries waited on each in turn); the slices are finished in order.
    let previous: SliceInMaking | undefined;
    for await (const slice of repo.fs.entrySlices(rpath, LIST_SLICE)) {
      for (const e of slice) if (e.type === 'dir') subdirectories++;
      const next = this.startSlice(slice, fqrn, parts, dir);
      if (previous) await this.finishSlice(previous, fqrn, parts, dir, firstOfInode);
      previous = next;
      made += slice.length;
    }
    if (previous) await this.finishSlice(previous, fqrn, parts, dir, firstOfInode);
    if (subdirectories === 0 && this.listAheadDepth > 0) this.leaves.add(dir);
    // Read-only only now: until the directory is filled, this process must be able to write it.
    chmodSync(ndir, shadowMode(self.mode, own));
    setTimes(ndir, self.mtimeNs);
    // Listed ahead: its marker waits for the program's ask, or for the job's end (after which it is written now).
    if (ahead && !this.ahead?.closed) this.unmarked.set(dir, done);
    else writeFileSync(done, '', { mode: 0o600 });
    this.charge(fqrn, made);
    this.usage.flush();
    this.counters.directories++;
    if (ahead) this.counters.listedAhead++;
    this.counters.listMs += nowMs() - t0;
  }

  /** Starts one slice of a directory's entries: new names packed into one native batch, made in a worker thread. */
  private startSlice(children: readonly Entry[], fqrn: string, parts: readonly string[], dir: string): SliceInMaking {
    const packed = new EntryBatch(children.length);
    const batch: Entry[] = [];
    const oneByOne: Entry[] = [];
    for (const e of children) {
      if (e.flags & Flag.Hidden) continue;
      if (this.entries.batchInto(packed, e, fqrn, parts)) batch.push(e);
      else oneByOne.push(e);
    }
    // Each made through its descriptor. Handled now, awaited in finishSlice: a failure while the next slice is
    // read must not count as unhandled.
    const failed = packed.count > 0 ? this.native.makeEntries(nativePath(dir), packed.bytes(), packed.count) : Promise.resolve([]);
    failed.catch(() => undefined);
    return { batch, oneByOne, failed };
  }

  /**
   * Ends a slice: names that were there already (another process, a listing that died half-way) are checked and
   * repaired one by one, then what the batch does not make (hardlinks) is made.
   */
  private async finishSlice(slice: SliceInMaking, fqrn: string, parts: readonly string[], dir: string, firstOfInode: Map<number, string>): Promise<void> {
    for (const [i, errno] of await slice.failed) {
      const e = slice.batch[i]!;
      // A name made on its own before (a path passed through) is complete: left as it is (a file may be open or
      // running by now; a repair would change its ctime and, for a moment, its mode).
      if (errno === EEXIST && this.madeAlone(fqrn, [...parts, e.name], e)) continue;
      inWritable(dir, () => this.entries.make(posix.join(dir, e.name), e, fqrn, parts, firstOfInode));
    }
    for (const e of slice.oneByOne) inWritable(dir, () => this.entries.make(posix.join(dir, e.name), e, fqrn, parts, firstOfInode));
  }

  /** Writes a file's verified content over its placeholder (in place, so hardlinks stay linked). */
  private async fill(repo: Repository, fqrn: string, parts: readonly string[], entry: Entry): Promise<void> {
    const file = this.real(fqrn, parts);
    const key = `${fqrn}:${entry.ino}`;
    void this.recorder?.filled(repo, entry);
    let p = this.filled.get(key);
    if (!p) {
      p = this.doFill(repo, fqrn, parts, entry, file);
      this.filled.set(key, p);
      p.catch(() => this.filled.delete(key));
    }
    await p;
    // Each name of a hardlink group gets its own marker (the preload library checks names, not inodes).
    const done = this.marker(fqrn, 'f', '/' + parts.join('/'));
    if (entry.size > 0 && !existsSync(done)) writeFileSync(done, '', { mode: 0o600 });
  }

  /**
   * The names of a file's hardlink group (one directory, CernVM-FS allows no other), sorted: they share one inode,
   * so one of them filled is all of them filled (and refilling another would open a running program for writing).
   */
  private async groupOf(repo: Repository, parts: readonly string[], entry: Entry): Promise<string[][]> {
    if (entry.nlink <= 1) return [[...parts]];
    const dir = parts.slice(0, -1);
    const names = (await repo.fs.entries('/' + dir.join('/'))).filter((e) => e.ino === entry.ino).map((e) => e.name).sort();
    return names.map((n) => [...dir, n]);
  }

  private async doFill(repo: Repository, fqrn: string, parts: readonly string[], entry: Entry, file: string): Promise<void> {
    if (entry.size === 0) return;
    const group = await this.groupOf(repo, parts, entry);
    const markers = group.map((g) => this.marker(fqrn, 'f', '/' + g.join('/')));
    const filled = () => markers.some((m) => existsSync(m));
    if (filled()) return;
    const tmpDir = this.fillTemporaries(fqrn);
    mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
    // A program (any execute bit): jobs started together wait for one fill (a killed filler's claim is taken over;
    // one lock per inode, the group's first name), since a second writer would hold it open for writing while a
    // third job runs it (ETXTBSY). Other files need no lock: jobs filling one at once write the same verified
    // bytes at the same offsets (the object itself is still downloaded once, under the cache's claim), and a lock
    // file is a create and an unlink more per file.
    const claimed = entry.mode & 0o111 ? await claim(posix.join(tmpDir, `${posix.basename(markers[0]!)}.lock`), filled) : { release: async () => undefined };
    if (claimed === 'done') return;
    try {
      await this.fillClaimed(repo, fqrn, parts, entry, file, tmpDir);
      for (const m of markers) writeFileSync(m, '', { mode: 0o600 });
      this.charge(fqrn, markers.length, entry.size);
      this.usage.flush();
    } finally {
      await claimed.release();
    }
  }

  private async fillClaimed(repo: Repository, fqrn: string, parts: readonly string[], entry: Entry, file: string, tmpDir: string): Promise<void> {
    const t0 = nowMs();
    const dirPath = '/' + parts.slice(0, -1).join('/');
    if (this.prefetch && parts.length > 0) {
      let pf = this.prefetchers.get(fqrn);
      if (!pf) this.prefetchers.set(fqrn, pf = new SiblingPrefetcher(repo, this.prefetch));
      pf.opened(dirPath, parts[parts.length - 1]!);
    }
    let source: FillSource;
    if (entry.hash && !entry.chunked) {
      // One verified object in the cache holds the whole content: the kernel copies it.
      const tf = nowMs();
      source = await repo.objects.get(entry.hash, '', entry.compression, undefined, entry.size, externalPiece(entry));
      this.counters.fetchMs += nowMs() - tf;
    } else if (this.native.copyAt) {
      // Each chunk goes from its verified cache file into place in the kernel, as it arrives.
      source = { pieces: repo.fs.pieceFiles('/' + parts.join('/')) };
    } else {
      source = () => repo.fs.createReadStream('/' + parts.join('/'));
    }
    const parent = await repo.fs.entry(dirPath, false);
    // A hardlink group lives in one directory (CernVM-FS allows no other): each name gets the filled inode.
    const links = entry.nlink > 1
      ? (await repo.fs.entries(dirPath)).filter((e) => e.ino === entry.ino && e.name !== entry.name).map((e) => posix.join(posix.dirname(file), e.name))
      : [];
    await fillFile({
      file, mode: shadowMode(entry.mode), mtimeNs: entry.mtimeNs, size: entry.size, links,
      dir: { mode: await this.dirMode(repo, fqrn, parts.slice(0, -1), parent), mtimeNs: parent.mtimeNs },
      tmpDir,
    }, source, { into: this.native.copyInto, at: this.native.copyAt });
    this.counters.files++;
    this.counters.bytes += entry.size;
    this.counters.fillMs += nowMs() - t0;
  }

  /** Where the fills of a revision write their temporaries: beside its markers, on the tree's file system. */
  private fillTemporaries(fqrn: string): string {
    return `${this.revs.get(fqrn)!}.state/fill`;
  }
}
