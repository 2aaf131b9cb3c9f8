/**
 * Speculative fetching for cold starts. A program that opens one file of a directory usually opens its siblings
 * next: the modules of a Python package (`json/__pycache__/*.pyc`), the headers of a library, the shared objects of
 * one installation. A program opens them one after the other and would pay a round trip to the Stratum-1 for each;
 * fetched together, while the program works on the first, they cost about one. So when a directory's first file is
 * opened, its other small regular files are fetched into the cache, a few at a time, behind nothing the program
 * asks for itself (a file the program wants while it is being prefetched joins that download).
 *
 * Only while round trips cost something: a server that answers within `minLatencyMs` gets no speculative
 * requests. Bounded: per directory at most `maxFiles` files and `maxBytes` bytes, no file larger than `maxFileBytes` and no
 * chunked file, and at most `maxTotalBytes` for the prefetcher's life; each directory is considered once. Every
 * object is verified like any other: a prefetch that fails is dropped without a word, and the program's own open
 * fetches the object again and sees the error.
 * @module
 */
import type { Repository } from '../repository.js';
import type { Entry } from './entry.js';
import { externalPiece } from './content.js';

/** Bounds of a {@link SiblingPrefetcher}. */
export interface PrefetchOptions {
  /** Largest file prefetched (bytes, as the catalog gives them). Default 256 KiB. */
  maxFileBytes?: number;
  /** Files per directory at most. Default 64. */
  maxFiles?: number;
  /** Bytes per directory at most. Default 4 MiB. */
  maxBytes?: number;
  /** Bytes over the prefetcher's life at most. Default 64 MiB. */
  maxTotalBytes?: number;
  /** Downloads at a time. Default 8. */
  concurrency?: number;
  /**
   * Only while the server takes at least this long to answer (ms, the fetcher's moving average): prefetch hides
   * round trips, and where there are none to hide (loopback, a squid in the same rack) it only takes CPU from the
   * job for files it may never open (bench 11a: 1.35 s with it, 1.13 s without, on loopback; over 20 ms it wins
   * 1.37x). Default 5; 0 always prefetches.
   */
  minLatencyMs?: number;
  /**
   * Only siblings of the same kind as the opened file: the same compound extension (what follows the first dot
   * of the name: `.cpython-311.pyc`, `.h`, `.so.1`), or no extension when it has none. Default true: a program
   * that opens `json/__pycache__/decoder.cpython-311.pyc` wants the other compiled modules there, not the sources
   * or the optimised variants beside them.
   */
  sameKind?: boolean;
}

/** What a prefetcher did. */
export interface PrefetchStats {
  directories: number;
  files: number;
  bytes: number;
  failed: number;
}

/** Fetches the small siblings of the files a program opens; see the module comment. */
export class SiblingPrefetcher {
  readonly stats: PrefetchStats = { directories: 0, files: 0, bytes: 0, failed: 0 };
  private readonly seen = new Set<string>();
  private readonly queue: Entry[] = [];
  private active = 0;
  private budget: number;
  private readonly o: Required<PrefetchOptions>;
  private readonly stop = new AbortController();

  constructor(private readonly repo: Repository, opts: PrefetchOptions = {}) {
    this.o = { maxFileBytes: 256 * 1024, maxFiles: 64, maxBytes: 4 << 20, maxTotalBytes: 64 << 20, concurrency: 8, sameKind: true, minLatencyMs: 5, ...opts };
    this.budget = this.o.maxTotalBytes;
  }

  /**
   * A file of `dir` (a repository path) was opened: queue its siblings, once per directory. Never throws and never
   * waits; the opened file itself is skipped.
   */
  opened(dir: string, name: string): void {
    if (this.seen.has(dir) || this.budget <= 0 || this.stop.signal.aborted) return;
    // Not marked as seen: when answers slow down, the next file opened here still brings its siblings.
    if (this.repo.objects.fetcher.latencyMs < this.o.minLatencyMs) return;
    this.seen.add(dir);
    this.repo.fs.entries(dir).then((children) => {
      let files = 0;
      let bytes = 0;
      const kind = kindOf(name);
      for (const e of children) {
        if (e.name === name || e.type !== 'file' || e.chunked || !e.hash || e.size === 0 || e.size > this.o.maxFileBytes) continue;
        if (this.o.sameKind && kindOf(e.name) !== kind) continue;
        if (files >= this.o.maxFiles || bytes + e.size > this.o.maxBytes || e.size > this.budget) break;
        files++;
        bytes += e.size;
        this.budget -= e.size;
        this.queue.push(e);
      }
      if (files > 0) this.stats.directories++;
      this.pump();
    }, () => { /* the program's own calls will meet whatever went wrong */ });
  }

  /** Cancels what is queued and in flight (the program ended). */
  close(): void {
    this.queue.length = 0;
    this.stop.abort();
  }

  private pump(): void {
    while (this.active < this.o.concurrency && this.queue.length > 0) {
      const e = this.queue.shift()!;
      this.active++;
      this.repo.objects.get(e.hash!, '', e.compression, this.stop.signal, e.size, externalPiece(e)).then(
        () => { this.stats.files++; this.stats.bytes += e.size; },
        () => { this.stats.failed++; },
      ).finally(() => {
        this.active--;
        this.pump();
      });
    }
  }
}

/** What follows the first dot of a name (not counting a leading one), or '' when nothing does. */
function kindOf(name: string): string {
  const i = name.indexOf('.', 1);
  return i < 0 ? '' : name.slice(i);
}
