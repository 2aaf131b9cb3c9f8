/**
 * Reads byte ranges of a file's content. A whole-file object is read from its verified cache file; a chunked
 * file fetches only the chunks a range touches (binary search over the chunk list) and prefetches the next one
 * for sequential readers. Nothing here holds more than the caller's buffer in memory.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { FdFile } from './fd-file.js';
import { fsError, ioError } from '../errors.js';
import { abortError } from './arguments.js';
import { hashFromBytes, type ContentHash } from '../format/hash.js';
import { Flag, hashAlgorithmOf } from '../format/flags.js';
import type { ExternalPiece, ObjectStore } from '../store/object-store.js';
import type { Entry } from './entry.js';
import type { Namespace } from './namespace.js';

interface Piece {
  readonly offset: number;
  readonly size: number;
  readonly hash: ContentHash;
  readonly suffix: '' | 'P';
}

/** A piece's verified file in the cache and its place in the file (see {@link ContentReader.pieceFiles}). */
export interface PieceFile {
  path: string;
  offset: number;
  size: number;
  /** Fetches the piece again (its cache file was evicted meanwhile); the new path. */
  again(): Promise<string>;
}

/**
 * Where a piece of an entry's content comes from when the entry is external data (flag 128): the file's path on
 * the external servers, a chunk as the range at `offset`; undefined for content kept under its hash.
 */
export function externalPiece(e: Entry, chunkOffset?: number): ExternalPiece | undefined {
  if (!(e.flags & Flag.FileExternal)) return undefined;
  return chunkOffset === undefined ? { path: e.path } : { path: e.path, offset: chunkOffset };
}

/** How many chunk files one reader keeps open. */
const OPEN_PIECES = 2;
/** How many chunks a sequential read fetches ahead by default (bench group 9 measures the effect). */
export const DEFAULT_READ_AHEAD = 2;

/** Random-access reader over one file's content. */
export class ContentReader {
  private pieces: Piece[] | undefined;
  private readonly fds = new Map<number, Promise<FdFile>>();
  private readonly fetched = new Map<number, Promise<string>>();

  constructor(
    readonly entry: Entry, private readonly store: ObjectStore, private readonly ns: Namespace, private readonly signal?: AbortSignal,
    private readonly readAhead = DEFAULT_READ_AHEAD,
  ) {
    this.downloads = signal ? AbortSignal.any([signal, this.lifetime.signal]) : this.lifetime.signal;
    // Each download in flight listens to it, and a reader may have more than ten (reads at once, read-ahead):
    // no warning about a leak that is none (each listener goes with its download).
    setMaxListeners(0, this.downloads);
  }

  /** Ends with {@link close}: chunks fetched ahead that nobody else wants are not downloaded for nothing. */
  private readonly lifetime = new AbortController();
  private readonly downloads: AbortSignal;

  /** The content pieces: one per chunk, or the whole file. */
  async layout(): Promise<readonly Piece[]> {
    if (this.pieces) return this.pieces;
    const e = this.entry;
    if (e.size === 0) this.pieces = [];
    else if (e.chunked) {
      const rows = await this.ns.chunks(e);
      const algorithm = hashAlgorithmOf(e.flags);
      this.pieces = rows.map((r) => ({ offset: r.offset, size: r.size, hash: hashFromBytes(r.hash, algorithm), suffix: 'P' as const }));
      let at = 0;
      for (const p of this.pieces) {
        if (p.offset !== at) throw ioError('catalog-format', `chunk list of ${e.path} has a gap or overlap at offset ${at}`);
        at += p.size;
      }
      if (at !== e.size) throw ioError('catalog-format', `chunks of ${e.path} add up to ${at} bytes, the file has ${e.size}`);
    } else if (e.hash) {
      this.pieces = [{ offset: 0, size: e.size, hash: e.hash, suffix: '' }];
    } else {
      throw fsError('EIO', 'open', e.path, 'file has neither a content hash nor chunks');
    }
    return this.pieces;
  }

  private fetch(i: number): Promise<string> {
    let p = this.fetched.get(i);
    if (!p) {
      const piece = this.pieces![i]!;
      const external = externalPiece(this.entry, piece.suffix === 'P' ? piece.offset : undefined);
      p = this.store.get(piece.hash, piece.suffix, this.entry.compression, this.downloads, piece.size, external);
      p.catch(() => this.fetched.delete(i));
      this.fetched.set(i, p);
    }
    return p;
  }

  private fd(i: number): Promise<FdFile> {
    let p = this.fds.get(i);
    if (p) {
      this.fds.delete(i);
      this.fds.set(i, p);
      return p;
    }
    p = (async () => {
      let path = await this.fetch(i);
      let fh: FdFile;
      try {
        fh = await FdFile.open(path);
      } catch (e) {
        // Evicted (quota) between the lookup and the open, by this process or another: fetch it again.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        this.fetched.delete(i);
        path = await this.fetch(i);
        fh = await FdFile.open(path);
      }
      const size = await fh.size();
      if (size !== this.pieces![i]!.size) {
        await fh.close();
        throw ioError('catalog-format', `${this.entry.path}: object ${this.pieces![i]!.hash.hex} holds ${size} bytes, the catalog says ${this.pieces![i]!.size}`);
      }
      return fh;
    })();
    p.catch(() => this.fds.delete(i));
    this.fds.set(i, p);
    while (this.fds.size > OPEN_PIECES) {
      const [k, old] = this.fds.entries().next().value as [number, Promise<FdFile>];
      this.fds.delete(k);
      old.then((h) => h.close(), () => undefined);
    }
    return p;
  }

  private indexAt(pos: number): number {
    const ps = this.pieces!;
    let lo = 0, hi = ps.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ps[mid]!.offset <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Reads up to `length` bytes at `position` into `buf[offset…]`; returns the byte count (0 at end of file). Once
   * the signal the reader was opened with fires, Node's AbortError (`ABORT_ERR`, the reason as its cause).
   */
  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    if (this.signal?.aborted) throw abortError(this.signal);
    try {
      return await this.readRange(buf, offset, length, position);
    } catch (e) {
      if (this.signal?.aborted) throw abortError(this.signal);
      throw e;
    }
  }

  private async readRange(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const ps = await this.layout();
    const size = this.entry.size;
    if (position >= size || length <= 0 || ps.length === 0) return 0;
    const end = Math.min(size, position + length);
    let done = 0;
    let pos = position;
    let i = this.indexAt(pos);
    while (pos < end) {
      const piece = ps[i]!;
      // Read-ahead starts once the chunk being read is in: started together they would share the link and the
      // CPU, and the first byte would come later (bench row 9c).
      if (this.readAhead > 0 && ps.length > 1 && i + 1 < ps.length) {
        const from = i;
        void this.fetch(from).then(() => {
          for (let k = 1; k <= this.readAhead && from + k < ps.length; k++) void this.fetch(from + k).catch(() => undefined);
        }, () => undefined);
      }
      const fh = await this.fd(i);
      const want = Math.min(end, piece.offset + piece.size) - pos;
      let got = 0;
      while (got < want) {
        const n = await fh.read(buf, offset + done + got, want - got, pos - piece.offset + got);
        if (n === 0) throw ioError('catalog-format', `${this.entry.path}: object shorter than expected`);
        got += n;
      }
      done += want;
      pos += want;
      i++;
    }
    return done;
  }

  /**
   * The verified cache file of every piece, in order, with where it goes in the file; the read-ahead's depth of
   * pieces is fetched ahead. For copying a file's content in the kernel (the connector's shadow tree), where
   * reading it through JavaScript would be a second pass over every byte. `again` fetches a piece anew, for a
   * cache file evicted (quota) before it was copied.
   */
  async *pieceFiles(): AsyncGenerator<PieceFile> {
    const ps = await this.layout();
    for (let i = 0; i < ps.length; i++) {
      for (let k = 1; k <= this.readAhead && i + k < ps.length; k++) void this.fetch(i + k).catch(() => undefined);
      const again = (): Promise<string> => {
        this.fetched.delete(i);
        return this.fetch(i);
      };
      yield { path: await this.fetch(i), offset: ps[i]!.offset, size: ps[i]!.size, again };
    }
  }

  /** Downloads (or finds cached) every piece without reading it: for preloading a cache. */
  async fetchAll(): Promise<number> {
    const ps = await this.layout();
    for (let i = 0; i < ps.length; i++) await this.fetch(i);
    return ps.length;
  }

  /** Closes the chunk files this reader holds open. */
  async close(): Promise<void> {
    this.lifetime.abort();
    const all = [...this.fds.values()];
    this.fds.clear();
    await Promise.all(all.map((p) => p.then((h) => h.close(), () => undefined)));
  }
}
