/**
 * `fs.Dir` for the fs view (`opendir`): a directory read a slice at a time, so that going through a directory of
 * any size holds one slice of entries, not the listing.
 * @module
 */
import { argError } from './arguments.js';
import type { Entry } from './entry.js';
import { CvmfsDirent } from './stats.js';
import { Flag } from '../format/flags.js';
import { nameAs } from '../format/byte-names.js';

/** Where a {@link CvmfsDir} gets a directory's entries, and the subdirectories' (for `recursive`). */
export interface DirSource {
  slices(dir: Entry, size: number): AsyncGenerator<Entry[]>;
  /** A subdirectory looked up again by its path: a nested catalog's mountpoint, as its parent lists it, holds nothing. */
  lookup(path: string): Promise<Entry>;
}

/** Mirrors `fs.Dir`: `read()` gives one Dirent or null at the end; iterating closes it at the end. */
export class CvmfsDir {
  private closed = false;
  private readonly buffered: CvmfsDirent<string | Buffer>[] = [];
  private readonly pending: Array<{ path: string; dir: Entry }>;
  private slices: AsyncGenerator<Entry[]> | undefined;
  private current = '';

  /** @param path the directory as it was asked for (the Dirents' `parentPath`) */
  constructor(readonly path: string, dir: Entry, private readonly source: DirSource, private readonly options: {
    bufferSize: number; encoding: BufferEncoding | 'buffer' | undefined; recursive: boolean;
  }) {
    this.pending = [{ path, dir }];
  }

  private check(): void {
    if (this.closed) throw argError(Error, 'ERR_DIR_CLOSED', 'Directory handle was closed');
  }

  /** Reads one after another, as Node's Dir queues them: two at once would both step the same slice. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Reads not yet finished: closeSync refuses to close under them, as Node's does. */
  private pendingReads = 0;

  /**
   * The next entry (hidden ones are left out, as readdir leaves them out), or null when there is none left; with a
   * callback, as Node's `dir.read(cb)`.
   */
  read(callback?: (err: Error | null, dirent?: CvmfsDirent<string | Buffer> | null) => void): Promise<CvmfsDirent<string | Buffer> | null> {
    this.pendingReads++;
    const next = this.queue.then(() => this.readNext()).finally(() => { this.pendingReads--; });
    this.queue = next.catch(() => undefined);
    if (callback) next.then((d) => callback(null, d), (e: Error) => callback(e));
    return next;
  }

  private async readNext(): Promise<CvmfsDirent<string | Buffer> | null> {
    this.check();
    while (this.buffered.length === 0) {
      if (!this.slices) {
        const next = this.pending.shift();
        if (!next) return null;
        this.current = next.path;
        this.slices = this.source.slices(next.dir, this.options.bufferSize);
      }
      const r = await this.slices.next();
      this.check();
      if (r.done) { this.slices = undefined; continue; }
      for (const e of r.value) {
        if (e.flags & Flag.Hidden) continue;
        this.buffered.push(new CvmfsDirent(nameAs(e.name, this.options.encoding), this.current, e.mode));
        if (this.options.recursive && e.type === 'dir') {
          const sub = `${this.current.replace(/\/+$/, '')}/${e.name}`;
          this.pending.push({ path: sub, dir: await this.source.lookup(sub) });
        }
      }
    }
    return this.buffered.shift()!;
  }

  /**
   * Closes the handle once the reads asked before are done; a second close, or a read after it, fails with
   * ERR_DIR_CLOSED as Node's does. With a callback, as Node's `dir.close(cb)`.
   */
  close(callback?: (err: Error | null) => void): Promise<void> {
    const done = this.closed ? Promise.reject(argError(Error, 'ERR_DIR_CLOSED', 'Directory handle was closed')) : this.queue.then(() => this.shut());
    this.queue = done.catch(() => undefined);
    if (callback) done.then(() => callback(null), (e: Error) => callback(e));
    return done;
  }

  /** Closes at once; ERR_DIR_CONCURRENT_OPERATION while a read is under way, as Node's. */
  closeSync(): void {
    this.check();
    if (this.pendingReads > 0) throw argError(Error, 'ERR_DIR_CONCURRENT_OPERATION', 'Cannot do synchronous work on directory handle with concurrent asynchronous operations');
    this.shut();
  }

  private shut(): void {
    this.check();
    this.closed = true;
    this.buffered.length = 0;
    void this.slices?.return(undefined);
  }

  /** Every entry, then the handle closed (also when the loop stops early). */
  async *entries(): AsyncGenerator<CvmfsDirent<string | Buffer>> {
    try {
      for (let e = await this.read(); e; e = await this.read()) yield e;
    } finally {
      if (!this.closed) this.shut();
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<CvmfsDirent<string | Buffer>> {
    return this.entries();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.closed) await this.close();
  }
}
