/**
 * The shadow area's revisions, their generations, and the bound on their size. A job joins the newest generation
 * of the revision it reads (`rev/<fqrn>@<root hash>`, then `…~1`, `…~2`): while any job uses a generation it is
 * only ever added to, since the preload library and the tracer remember what they found complete and a running
 * program may hold any of its files open or mapped. The bound is therefore kept between jobs: each job charges
 * what it makes to its generation's account (`.state/usage`), a job that finds the newest generation charged
 * more than the bound starts the next one (empty), and a generation that is no longer the newest is removed as
 * soon as no live session links it. Old revisions go after an hour unused.
 * @module
 */
import { appendFileSync, chmodSync, existsSync, promises as fsp, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { lazyCrypto } from '../lazy.js';
import { basename, join } from 'node:path';
import { claim, holderId, removeDeadGuards, type Claim } from '../cache/claim.js';

/** What each entry made in the shadow tree (a placeholder, a directory, a marker) is charged, in bytes. */
export const ENTRY_BYTES = 256;
const BLOCK = 4096;

/** What a file's content is charged: its size in whole blocks. */
export const contentBytes = (size: number): number => Math.ceil(size / BLOCK) * BLOCK;

/** The directory name of generation `gen` of a revision (`<fqrn>@<root hash>`). */
function generationName(stem: string, gen: number): string {
  return gen === 0 ? stem : `${stem}~${gen}`;
}

/** The revision and generation a name in `rev/` stands for; undefined for markers, `.hidden`, locks and trash. */
export function parseGeneration(name: string): { stem: string; gen: number } | undefined {
  if (name.startsWith('.') || name.endsWith('.state') || name.endsWith('.hidden')) return undefined;
  const m = /^([^@~]+@[^~]+)(?:~([1-9][0-9]{0,8}))?$/.exec(name);
  return m ? { stem: m[1]!, gen: m[2] ? Number(m[2]) : 0 } : undefined;
}

/** The generations of a revision in `revs`, oldest first. */
export function generationsOf(revs: string, stem: string): number[] {
  const gens: number[] = [];
  for (const name of readdirSync(revs)) {
    const g = parseGeneration(name);
    if (g?.stem === stem) gens.push(g.gen);
  }
  return gens.sort((a, b) => a - b);
}

/** Bytes charged to the generation in `dir` so far (its account: one number a line, appended by each job). */
export function usageOf(dir: string): number {
  let text: string;
  try {
    text = readFileSync(`${dir}.state/usage`, 'latin1');
  } catch {
    return 0;
  }
  let sum = 0;
  for (const line of text.split('\n')) {
    const n = Number(line);
    if (Number.isSafeInteger(n) && n > 0) sum += n;
  }
  return sum;
}

/** What a job made in each generation, appended to the generation's account whenever a fill or listing ends. */
export class UsageMeter {
  private readonly pending = new Map<string, number>();

  charge(dir: string, bytes: number): void {
    this.pending.set(dir, (this.pending.get(dir) ?? 0) + bytes);
  }

  /** Writes what is pending. An account that cannot be written (a full disk) only makes the bound looser. */
  flush(): void {
    for (const [dir, n] of this.pending) {
      try {
        appendFileSync(`${dir}.state/usage`, `${n}\n`, { mode: 0o600 });
      } catch {
        // the bytes stay uncounted
      }
    }
    this.pending.clear();
  }
}

/** The repository a revision (`<fqrn>@<root hash>`) is of. */
const fqrnOf = (stem: string): string => stem.slice(0, stem.indexOf('@'));

/**
 * Holds the lock of a repository (`locks/<fqrn>.lock`, every revision of it): generations are chosen, linked
 * (the session's and `root/`'s links), marked and retired under it. `held` false: the lock could not be made
 * (a read-only or full area), and the caller must change nothing that others rely on.
 */
async function repositoryLock(base: string, fqrn: string): Promise<{ held: boolean; release: Claim['release'] }> {
  const dir = join(base, 'locks');
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const lock = join(dir, `${fqrn}.lock`);
  const c = (await claim(lock, () => false)) as Claim;
  let held = false;
  try {
    held = readFileSync(lock, 'latin1') === holderId();
  } catch {
    // not made: held stays false
  }
  return { held, release: c.release };
}

/**
 * Joins the newest generation of a revision, or starts the next one when the newest is charged more than
 * `quotaBytes` (negative: no bound) and the repository is not reached by links from others (see markLinked).
 * `enter(dir)` makes the generation's directories and links them while the repository's lock is held, so that
 * no pruner removes a generation between its choice and its link. `started`: whether this call started it.
 */
export async function joinGeneration(base: string, stem: string, quotaBytes: number, enter: (dir: string) => void | Promise<void>): Promise<{ dir: string; started: boolean }> {
  const revs = join(base, 'rev');
  const lock = await repositoryLock(base, fqrnOf(stem));
  try {
    const gens = generationsOf(revs, stem);
    let gen = gens.length > 0 ? gens[gens.length - 1]! : 0;
    const started = lock.held && quotaBytes >= 0 && gens.length > 0 && !existsSync(linkedMark(base, fqrnOf(stem))) && usageOf(join(revs, generationName(stem, gen))) > quotaBytes;
    if (started) gen++;
    const dir = join(revs, generationName(stem, gen));
    await enter(dir);
    return { dir, started };
  } finally {
    await lock.release();
  }
}

/** The mark of a repository that jobs reach through links from other repositories (any revision of it). */
function linkedMark(base: string, fqrn: string): string {
  return join(base, 'locks', `${fqrn}.linked`);
}

/**
 * Marks a repository as reached through links from other repositories, under its lock: those links lead through
 * `root/<fqrn>`, which every job shares, so from now on no job starts a new generation of it (its tree is no
 * longer bounded). `check` runs under the same lock, when no generation can be starting and `root/<fqrn>`
 * cannot move.
 */
export async function markLinked(base: string, fqrn: string, check: () => void): Promise<void> {
  const lock = await repositoryLock(base, fqrn);
  try {
    writeFileSync(linkedMark(base, fqrn), '', { mode: 0o600 });
    check();
  } finally {
    await lock.release();
  }
}

/**
 * The same mark, made as soon as a link into `fqrn` is made in a tree (before any job follows it), without the
 * lock: it only makes a generation starting later less likely; {@link markLinked} is what decides.
 */
export function markLinkedEarly(base: string, fqrn: string): void {
  try {
    writeFileSync(linkedMark(base, fqrn), '', { mode: 0o600, flag: 'wx' });
  } catch {
    // there already, or the area is full: markLinked will tell
  }
}

/** Whether `root/<fqrn>` may be pointed at this job's tree `mine`: not while a live job that crossed links into
 * the repository uses the tree it names (the kernel takes that job's links through it). Under the lock. */
export async function rootMayMove(base: string, sessions: string, fqrn: string, mine: string): Promise<boolean> {
  if (!existsSync(linkedMark(base, fqrn))) return true;
  let current: string;
  try {
    current = basename(readlinkSync(join(base, 'root', fqrn)));
  } catch {
    return true;
  }
  return current === basename(mine) || !linkedGenerations(base, sessions, false).has(current);
}

/** Removes a directory tree whose modes may forbid writing. */
export async function removeTree(dir: string): Promise<void> {
  const walk = async (d: string): Promise<void> => {
    await fsp.chmod(d, 0o700).catch(() => undefined);
    for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) await walk(join(d, e.name));
  };
  await walk(dir);
  await fsp.rm(dir, { recursive: true, force: true });
}

/**
 * Removes a small directory tree whose modes may forbid writing (a job's session: its mount points and links),
 * without the thread pool: at a job's end, fs/promises and its modules alone took 9 ms to load, on a core the
 * caller's next command wants. Fails as the first call that fails.
 */
export function removeSmallTree(dir: string): void {
  chmodSync(dir, 0o700);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) removeSmallTree(p);
    else unlinkSync(p);
  }
  rmdirSync(dir);
}

/**
 * The generations that must stay, by name (`<fqrn>@<hash>[~N]`): what the sessions (of live processes: dead
 * ones are removed first) and, with `root`, `root/` link to. By name, not path: jobs may spell the area
 * differently (a cache base reached through a symlink).
 */
function linkedGenerations(base: string, sessions: string, root = true): Set<string> {
  const inUse = new Set<string>();
  const linkTargets = (dir: string) => {
    for (const name of listOrNone(dir)) {
      try {
        inUse.add(basename(readlinkSync(join(dir, name))));
      } catch {
        // not a link, or gone
      }
    }
  };
  if (root) linkTargets(join(base, 'root'));
  for (const s of listOrNone(sessions)) linkTargets(join(sessions, s));
  return inUse;
}

/** A directory's names; none when it is not there (or not readable). */
function listOrNone(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Moves a generation with its markers into `trash/` (markers first: a tree is never left without them taken
 * for complete), returning what to remove. */
function toTrash(base: string, name: string): string[] {
  mkdirSync(join(base, 'trash'), { recursive: true, mode: 0o711 });
  const to = join(base, 'trash', `${name}.${lazyCrypto().randomBytes(6).toString('hex')}`);
  const moved: string[] = [];
  for (const suffix of ['.state', '.hidden', '']) {
    try {
      renameSync(join(base, 'rev', name + suffix), to + suffix);
      moved.push(to + suffix);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return moved;
}

/**
 * Removes, under the repository's lock, the generations of `fqrn` that `remove(name, inUse)` picks among those
 * no live session or `root/` links: moved into `trash/` at once, then removed. Returns their names.
 */
async function pruneUnder(base: string, sessions: string, fqrn: string, remove: (name: string) => boolean | Promise<boolean>): Promise<string[]> {
  const lock = await repositoryLock(base, fqrn);
  const names: string[] = [];
  const trash: string[] = [];
  try {
    if (!lock.held) return [];
    const inUse = linkedGenerations(base, sessions);
    for (const name of readdirSync(join(base, 'rev'))) {
      const g = parseGeneration(name);
      if (!g || fqrnOf(g.stem) !== fqrn || inUse.has(name) || !(await remove(name))) continue;
      trash.push(...toTrash(base, name));
      names.push(name);
    }
  } finally {
    await lock.release();
  }
  for (const t of trash) await removeTree(t).catch(() => undefined);
  return names;
}

/** Removes the generations of a revision that are no longer its newest and that no live session links. */
export function pruneRetired(base: string, sessions: string, stem: string): Promise<string[]> {
  let newest: number | undefined;
  return pruneUnder(base, sessions, fqrnOf(stem), (name) => {
    // Read once, under the lock (no generation can start meanwhile).
    newest ??= Math.max(...generationsOf(join(base, 'rev'), stem));
    const g = parseGeneration(name)!;
    return g.stem === stem && g.gen < newest;
  });
}

/**
 * Bounds the shadow area to what is in use. Removes, with their markers:
 * - what pruners that died left in `trash/`;
 * - generations no longer their revision's newest that no live session links ({@link pruneRetired});
 * - revisions that are neither a repository's newest (`root/<fqrn>`) nor linked from a live session, and whose
 *   `.state` saw no activity for `graceMs` (a session that just made one has not linked it yet).
 * Returns the names removed.
 */
export async function pruneShadow(base: string, sessions: string, graceMs = 3_600_000): Promise<string[]> {
  // Looked at synchronously: at every job's start there is nearly always nothing to do, and each trip through the
  // thread pool cost more than the look itself (a twentieth of `exec -- true`).
  const revs = join(base, 'rev');
  for (const t of listOrNone(join(base, 'trash'))) await removeTree(join(base, 'trash', t)).catch(() => undefined);
  removeDeadGuards(join(base, 'locks'));
  const names = listOrNone(revs);
  const generations = new Map<string, number>();
  for (const name of names) {
    const g = parseGeneration(name);
    if (g) generations.set(g.stem, (generations.get(g.stem) ?? 0) + 1);
  }
  const removed: string[] = [];
  for (const [stem, count] of generations) if (count > 1) removed.push(...(await pruneRetired(base, sessions, stem)));
  // Idle ones, looked at without the lock first (nearly always nothing), then again under it.
  const inUse = linkedGenerations(base, sessions);
  const idle = (name: string) => Date.now() - (statSync(join(revs, `${name}.state`), { throwIfNoEntry: false })?.mtimeMs ?? 0) >= graceMs;
  const candidates = new Set<string>();
  for (const name of names) {
    const g = parseGeneration(name);
    if (g && !removed.includes(name) && !inUse.has(name) && idle(name)) candidates.add(fqrnOf(g.stem));
  }
  for (const fqrn of candidates) removed.push(...(await pruneUnder(base, sessions, fqrn, idle)));
  return removed;
}
