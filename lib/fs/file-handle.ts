/**
 * An open file, shaped like node:fs/promises' FileHandle for the read-only calls.
 * @module
 */
import type { Readable } from 'node:stream';
import { lazyStream } from '../lazy.js';
import { fsError } from '../errors.js';
import type { ContentReader } from './content.js';
import { CvmfsStats } from './stats.js';

let nextFd = 1 << 20;

/** Options of {@link CvmfsFileHandle.createReadStream}. */
export interface ReadStreamOptions {
  /** First byte to read (inclusive). */
  start?: number;
  /** Last byte to read (inclusive), as in node:fs. */
  end?: number;
  /** Bytes per chunk pushed; default 256 KiB. */
  highWaterMark?: number;
  /** Abort the stream. */
  signal?: AbortSignal;
}

/** Result of a read, as node's FileHandle.read gives it. */
export interface ReadResult<T extends Uint8Array> {
  bytesRead: number;
  buffer: T;
}

/** A read-only open file. Writes reject with EROFS. */
export class CvmfsFileHandle {
  /** A process-unique number (not a kernel descriptor). */
  readonly fd = nextFd++;
  private position = 0;
  private closed = false;

  constructor(private readonly reader: ContentReader, private readonly displayPath: string) {}

  private check(syscall: string): void {
    if (this.closed) throw fsError('EBADF', syscall, this.displayPath, 'file handle is closed');
  }

  /**
   * Reads into `buffer`. With `position` null or omitted, reads at the current position and advances it.
   */
  async read<T extends Uint8Array>(buffer: T, offset?: number, length?: number, position?: number | bigint | null): Promise<ReadResult<T>>;
  async read<T extends Uint8Array>(opts: { buffer: T; offset?: number; length?: number; position?: number | bigint | null }): Promise<ReadResult<T>>;
  async read<T extends Uint8Array>(a: T | { buffer: T; offset?: number; length?: number; position?: number | bigint | null }, offset?: number, length?: number, position?: number | bigint | null): Promise<ReadResult<T>> {
    this.check('read');
    let buffer: T;
    if (a instanceof Uint8Array) buffer = a;
    else ({ buffer, offset, length, position } = a);
    const off = offset ?? 0;
    const len = length ?? buffer.byteLength - off;
    if (off < 0 || len < 0 || off + len > buffer.byteLength) throw fsError('EINVAL', 'read', this.displayPath, 'offset/length outside the buffer');
    const usePos = position === null || position === undefined || Number(position) < 0;
    const pos = usePos ? this.position : Number(position);
    const n = await this.reader.read(buffer, off, len, pos);
    if (usePos) this.position += n;
    return { bytesRead: n, buffer };
  }

  /** The whole content (from the start), as a Buffer or, with an encoding, a string. */
  async readFile(options?: { encoding?: BufferEncoding | null } | BufferEncoding | null): Promise<Buffer | string> {
    this.check('read');
    const size = this.reader.entry.size;
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = await this.reader.read(buf, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    const enc = typeof options === 'string' ? options : options?.encoding;
    return enc ? buf.toString(enc, 0, done) : buf.subarray(0, done);
  }

  /** Stats of the open file. */
  async stat(): Promise<CvmfsStats> {
    this.check('fstat');
    return new CvmfsStats(this.reader.entry);
  }

  /** A Readable over `[start, end]` (inclusive), streaming in bounded pieces. */
  createReadStream(opts: ReadStreamOptions = {}): Readable {
    this.check('read');
    const reader = this.reader;
    const size = reader.entry.size;
    const start = opts.start ?? 0;
    const last = Math.min(opts.end ?? size - 1, size - 1);
    const hwm = opts.highWaterMark ?? 256 * 1024;
    async function* gen(): AsyncGenerator<Buffer> {
      let pos = start;
      while (pos <= last) {
        opts.signal?.throwIfAborted();
        const buf = Buffer.allocUnsafe(Math.min(hwm, last - pos + 1));
        const n = await reader.read(buf, 0, buf.length, pos);
        if (n === 0) return;
        pos += n;
        yield n === buf.length ? buf : buf.subarray(0, n);
      }
    }
    return lazyStream().Readable.from(gen(), { objectMode: false, highWaterMark: hwm });
  }

  /** A web ReadableStream of the whole content. */
  readableWebStream(): ReadableStream<Uint8Array> {
    return lazyStream().Readable.toWeb(this.createReadStream()) as unknown as ReadableStream<Uint8Array>;
  }

  /** Iterates over the content in pieces. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this.createReadStream()[Symbol.asyncIterator]();
  }

  /** Closes the handle; further calls fail with EBADF. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.reader.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Always EROFS. */
  async write(): Promise<never> { throw fsError('EROFS', 'write', this.displayPath); }
  /** Always EROFS. */
  async writeFile(): Promise<never> { throw fsError('EROFS', 'write', this.displayPath); }
  /** Always EROFS. */
  async appendFile(): Promise<never> { throw fsError('EROFS', 'write', this.displayPath); }
  /** Always EROFS. */
  async truncate(): Promise<never> { throw fsError('EROFS', 'ftruncate', this.displayPath); }
  /** Always EROFS. */
  async chmod(): Promise<never> { throw fsError('EROFS', 'fchmod', this.displayPath); }
  /** Always EROFS. */
  async chown(): Promise<never> { throw fsError('EROFS', 'fchown', this.displayPath); }
  /** Always EROFS. */
  async utimes(): Promise<never> { throw fsError('EROFS', 'futime', this.displayPath); }
  /** Nothing to flush. */
  async sync(): Promise<void> { this.check('fsync'); }
  /** Nothing to flush. */
  async datasync(): Promise<void> { this.check('fdatasync'); }
}
