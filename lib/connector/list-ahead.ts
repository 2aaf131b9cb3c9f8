/**
 * Listing ahead of a walk. A program that walks a tree (`find`, `du`, `rsync`, `ls -R`, Python's `os.walk`) opens
 * each directory after its parent, depth first, in the order the kernel lists names, and waits for each listing
 * in turn: the catalog's rows decoded on the main thread, then the entries created by a worker thread, never at
 * the same time, so one of two cores idles. Once the program's opens of directories follow a walk (a directory
 * opened after its parent), the directories it will open next are listed ahead of it, depth first in the kernel's
 * order, two at a time, so that one directory's rows are decoded while the other's entries are created.
 *
 * Bounded: each listing ahead is paid for by a credit, and the program's ask for a directory listed ahead gives its
 * credit back, so at most `depth` directories listed ahead are ever left that the program did not ask for (a
 * Python start-up that imports from a few package directories, a program that stops walking). A directory listed
 * ahead gets its marker only when the program asks for it (or at the job's end, lib/connector/shadow.ts), so that
 * every step of the walk is seen here. A listing ahead that fails is dropped; the program's own ask lists again
 * and sees the error.
 * @module
 */

/** What listing ahead needs of the shadow tree. */
export interface ListAheadHost {
  /** Lists a directory ahead of the program (its marker waits for the program). */
  listAhead(fqrn: string, parts: readonly string[]): Promise<void>;
  /** The subdirectories of a listed directory, in the order the kernel lists them. */
  subdirectories(fqrn: string, parts: readonly string[]): string[];
  /** Whether a directory is listed, or being listed, already. */
  isListed(fqrn: string, parts: readonly string[]): boolean;
}

interface Place {
  fqrn: string;
  parts: readonly string[];
}

/** Listings under way ahead of the program at a time: one decoding while the other's entries are created. */
const IN_FLIGHT = 2;
/** Directories remembered as opened or listed ahead (for telling a walk), before the memory starts over. */
const REMEMBERED = 100_000;

const keyOf = (fqrn: string, parts: readonly string[]): string => `${fqrn}\0${parts.join('/')}`;

/** Lists the directories a walking program will open next; see the module comment. */
export class ListAhead {
  /** Directories to list, the next one last (a stack: children go on top, so the order is depth first). */
  private readonly stack: Place[] = [];
  private readonly queued = new Set<string>();
  /** Directories the program opened, or that were listed ahead of it. */
  private readonly walked = new Set<string>();
  /**
   * Listings ahead still allowed: each costs one, and the program's ask for a directory listed ahead gives it
   * back. So at most `depth` directories listed ahead are ever not (yet) asked for, whatever the program does.
   */
  private credit: number;
  private running = 0;
  private ended = false;

  /** @param depth directories listed ahead that the program has not asked for, at most (0: none) */
  constructor(private readonly host: ListAheadHost, private readonly depth: number) {
    this.credit = depth;
  }

  /**
   * The program looked up or opened a directory, now listed; `hit`: it had been listed ahead of the program. The
   * walk is taken to go on below a directory asked for after its parent, or listed ahead and asked for.
   */
  opened(fqrn: string, parts: readonly string[], hit: boolean): void {
    if (this.depth <= 0 || this.ended) return;
    if (hit) this.credit = Math.min(this.depth, this.credit + 1);
    const walking = hit || (parts.length > 0 && this.walked.has(keyOf(fqrn, parts.slice(0, -1))));
    this.remember(keyOf(fqrn, parts));
    if (!walking) return;
    // A directory listed ahead put its subdirectories on the stack then.
    if (!hit) this.pushChildren(fqrn, parts);
    this.pump();
  }

  /** Whether the job has ended (see {@link close}). */
  get closed(): boolean {
    return this.ended;
  }

  /** Nothing more is listed ahead (the job has ended). */
  close(): void {
    this.ended = true;
    this.stack.length = 0;
  }

  private remember(key: string): void {
    if (this.walked.size >= REMEMBERED) this.walked.clear();
    this.walked.add(key);
  }

  /** Puts a listed directory's subdirectories on top, the first the kernel lists to be listed first. */
  private pushChildren(fqrn: string, parts: readonly string[]): void {
    let names: string[];
    try {
      names = this.host.subdirectories(fqrn, parts);
    } catch {
      return;
    }
    for (let i = names.length - 1; i >= 0; i--) {
      const child = [...parts, names[i]!];
      const key = keyOf(fqrn, child);
      if (this.queued.has(key) || this.host.isListed(fqrn, child)) continue;
      this.queued.add(key);
      this.stack.push({ fqrn, parts: child });
    }
  }

  private pump(): void {
    while (!this.ended && this.running < IN_FLIGHT && this.credit > 0 && this.stack.length > 0) {
      const { fqrn, parts } = this.stack.pop()!;
      this.queued.delete(keyOf(fqrn, parts));
      if (this.host.isListed(fqrn, parts)) continue;
      this.credit--;
      this.running++;
      this.host.listAhead(fqrn, parts).then(() => {
        this.remember(keyOf(fqrn, parts));
        if (!this.ended) this.pushChildren(fqrn, parts);
      }, () => {
        this.credit = Math.min(this.depth, this.credit + 1); // dropped: nothing made for nothing
      }).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }
}
