/**
 * Where the B-tree reader gets a database file's pages: bytes already in memory, or the file itself, read a page
 * at a time through a descriptor held open, with the most recently used pages kept. A catalog read from its file
 * holds its page cache (at most {@link FILE_PAGE_CACHE_BYTES}), not the file: what the open catalogs take no
 * longer grows with their size.
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { corrupt } from './sqlite-record.js';

/** Pages of one database file. */
export interface PageSource {
  /** Bytes in the file. */
  readonly length: number;
  /** The first `n` bytes (the header). */
  head(n: number): Uint8Array;
  /** Page `no` (from 1) of `size` bytes: the caller checked it lies within the file. */
  page(no: number, size: number): Uint8Array;
  /** Memory this source may hold, in bytes. */
  readonly memoryBytes: number;
  /** Held by a walk in progress: a close waits for it (a listing streamed across awaits). */
  retain(): void;
  release(): void;
  /** Lets go of the source once no walk holds it. */
  close(): void;
}

/** Pages of a database already in memory. */
export function memoryPages(from: Uint8Array): PageSource {
  // A plain view, whatever `from` is: the values cut from pages are then plain views too, which cost less to
  // make than Buffers (a listing makes several an entry).
  const bytes = new Uint8Array(from.buffer, from.byteOffset, from.length);
  return {
    length: bytes.length,
    head: (n) => bytes.subarray(0, n),
    page: (no, size) => bytes.subarray((no - 1) * size, no * size),
    memoryBytes: bytes.length,
    retain: () => undefined,
    release: () => undefined,
    close: () => undefined,
  };
}

/** Page cache of a catalog read from its file, at most. */
export const FILE_PAGE_CACHE_BYTES = 256 * 1024;

/**
 * Pages read from a file through a descriptor held open until the last walk ends: the cache's eviction may
 * unlink the file meanwhile (the descriptor keeps it), and a descriptor is never read after it was closed (its
 * number could belong to another file by then).
 */
export class FilePages implements PageSource {
  readonly length: number;
  readonly memoryBytes = FILE_PAGE_CACHE_BYTES;
  private fd: number | undefined;
  /** Pages kept, each with when it was last used: a hit only marks it, where a reordering Map cost more than the read it spared. */
  private readonly cache = new Map<number, { data: Uint8Array; used: number }>();
  private clock = 0;
  private holders = 0;
  private closing = false;

  /** Opens `path` (throws as `openSync` does, e.g. ENOENT). */
  constructor(path: string) {
    const fd = openSync(path, 'r');
    try {
      this.length = fstatSync(fd).size;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    this.fd = fd;
  }

  private read(offset: number, n: number): Uint8Array {
    if (this.fd === undefined) throw corrupt('a catalog read after it was closed');
    const b = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const r = readSync(this.fd, b, got, n - got, offset + got);
      if (r === 0) throw corrupt(`a file shorter than it was (${offset + got} of ${this.length} bytes)`);
      got += r;
    }
    return b;
  }

  head(n: number): Uint8Array {
    return this.read(0, Math.min(n, this.length));
  }

  page(no: number, size: number): Uint8Array {
    const hit = this.cache.get(no);
    if (hit) {
      hit.used = ++this.clock;
      return hit.data;
    }
    const data = this.read((no - 1) * size, size);
    this.cache.set(no, { data, used: ++this.clock });
    // Pages handed out stay valid however long they are used: the cache only forgets them.
    if (this.cache.size * size > FILE_PAGE_CACHE_BYTES) this.forgetOldest();
    return data;
  }

  /** Forgets the least recently used page (a scan: at most a few dozen pages are kept). */
  private forgetOldest(): void {
    let oldest = -1;
    let when = Infinity;
    // forEach, not for-of: no [key, value] pair made per page.
    this.cache.forEach((p, no) => {
      if (p.used < when) {
        when = p.used;
        oldest = no;
      }
    });
    this.cache.delete(oldest);
  }

  retain(): void {
    this.holders++;
  }

  release(): void {
    if (--this.holders === 0 && this.closing) this.close();
  }

  close(): void {
    this.closing = true;
    this.cache.clear();
    if (this.holders > 0 || this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
