/**
 * An open file, shaped like node:fs/promises' FileHandle for the read-only calls.
 * @module
 */
import type { Readable } from 'node:stream';
import { lazyStream } from '../lazy.js';
import { fsError } from '../errors.js';
import type { ContentReader } from './content.js';
import { statsOf, type CvmfsBigIntStats, type CvmfsStats } from './stats.js';
import { abortError, argError, integerArgument, outOfRange } from './arguments.js';

let nextFd = 1 << 20;
/** Bytes per read of a handle's readFile: a signal is looked at between two (Node reads 512 KiB at a time). */
const READ_FILE_PIECE = 512 * 1024;

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
  /** Strings in this encoding instead of Buffers. */
  encoding?: BufferEncoding;
}

/** The options form of {@link CvmfsFileHandle.read}. */
export interface ReadOptions {
  offset?: number;
  length?: number;
  position?: number | bigint | null;
}

/** A stream's range and piece size, checked as node:fs checks them (ERR_OUT_OF_RANGE, never a wrong read). */
export function streamRange(opts: ReadStreamOptions): { start: number; end: number; hwm: number } {
  const start = opts.start === undefined ? 0 : integerArgument(opts.start, 'start');
  const end = opts.end === undefined || opts.end === Infinity ? Infinity : integerArgument(opts.end, 'end');
  if (start > end) throw outOfRange('start', `<= "end" (here: ${end})`, start);
  const hwm = opts.highWaterMark === undefined ? 256 * 1024 : integerArgument(opts.highWaterMark, 'highWaterMark', 1);
  return { start, end, hwm };
}

/** Result of a read, as node's FileHandle.read gives it. */
export interface ReadResult<T extends NodeJS.ArrayBufferView> {
  bytesRead: number;
  buffer: T;
}

/** A read-only open file: writes reject as on a descriptor opened for reading (EBADF), changes with EROFS. */
export class CvmfsFileHandle {
  private readonly number = nextFd++;
  private position = 0;
  private closed = false;
  /** Operations under way: close waits for them, as Node's does. */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly reader: ContentReader, private readonly displayPath: string) {}

  /** A process-unique number (not a kernel descriptor); -1 once closed, as Node's. */
  get fd(): number {
    return this.closed ? -1 : this.number;
  }

  /** Runs an operation that close must wait for. */
  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    const done = () => { this.pending.delete(p); };
    p.then(done, done);
    return p;
  }

  private check(syscall: string): void {
    if (this.closed) throw fsError('EBADF', syscall, this.displayPath, 'file handle is closed');
  }

  /** A directory opened for reading stats as one, but its content reads fail as the kernel's do (EISDIR). */
  private readable(): void {
    this.check('read');
    if (this.reader.entry.type === 'dir') throw fsError('EISDIR', 'read', this.displayPath);
  }

  /**
   * Reads into `buffer`, in node:fs/promises' forms: `(buffer, offset, length, position)`, `(buffer, options)`,
   * `(options)` or `()` (a 16 KiB buffer). With `position` null, omitted or not a safe integer, reads at the current
   * position and advances it.
   */
  async read<T extends NodeJS.ArrayBufferView = Buffer>(buffer?: T, offset?: number, length?: number, position?: number | bigint | null): Promise<ReadResult<T>>;
  async read<T extends NodeJS.ArrayBufferView = Buffer>(buffer: T, options: ReadOptions): Promise<ReadResult<T>>;
  async read<T extends NodeJS.ArrayBufferView = Buffer>(options: ReadOptions & { buffer?: T }): Promise<ReadResult<T>>;
  async read<T extends NodeJS.ArrayBufferView>(a?: T | (ReadOptions & { buffer?: T }), b?: number | ReadOptions, length?: number, position?: number | bigint | null): Promise<ReadResult<T>> {
    this.readable();
    let buffer: T;
    let offset: number | undefined;
    // Any view (a Buffer, another TypedArray, a DataView), its offsets in bytes, as Node's.
    if (ArrayBuffer.isView(a)) {
      buffer = a;
      if (typeof b === 'object' && b !== null) ({ offset, length, position } = b);
      else offset = b;
    } else {
      ({ offset, length, position } = a ?? {});
      buffer = (a?.buffer ?? Buffer.alloc(16384)) as T;
      if (!ArrayBuffer.isView(buffer)) throw argError(TypeError, 'ERR_INVALID_ARG_TYPE', 'The "buffer" argument must be an instance of Buffer, TypedArray, or DataView.');
    }
    const off = integerArgument(offset ?? 0, 'offset', 0);
    // Nothing asked, nothing read (Node does not look at the offset then).
    if ((length ?? buffer.byteLength - off) === 0) return { bytesRead: 0, buffer };
    if (off > buffer.byteLength) throw outOfRange('offset', `<= ${buffer.byteLength}`, off);
    const len = integerArgument(length ?? buffer.byteLength - off, 'length', 0, buffer.byteLength - off);
    const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const pos = typeof position === 'bigint' ? Number(position) : position;
    const usePos = typeof pos !== 'number' || !Number.isSafeInteger(pos) || pos < 0;
    const at = usePos ? this.position : pos;
    const n = await this.track(this.reader.read(bytes, off, len, at));
    if (usePos) this.position = at + n;
    return { bytesRead: n, buffer };
  }

  /**
   * The content from the current position to the end (all of it on a fresh handle), as Node's FileHandle.readFile;
   * a `signal` is looked at between reads, as Node's is.
   */
  async readFile(options?: { encoding?: BufferEncoding | null; signal?: AbortSignal } | BufferEncoding | null): Promise<Buffer | string> {
    this.readable();
    const signal = typeof options === 'object' && options !== null ? options.signal : undefined;
    if (signal?.aborted) throw abortError(signal);
    const from = Math.min(this.position, this.reader.entry.size);
    const buf = Buffer.allocUnsafe(this.reader.entry.size - from);
    let done = 0;
    while (done < buf.length) {
      const n = await this.track(this.reader.read(buf, done, Math.min(buf.length - done, READ_FILE_PIECE), from + done));
      if (n === 0) break;
      done += n;
      if (signal?.aborted) throw abortError(signal);
    }
    this.position = from + done;
    const enc = typeof options === 'string' ? options : options?.encoding;
    return enc ? buf.toString(enc, 0, done) : buf.subarray(0, done);
  }

  /** Stats of the open file; with `bigint`, an `fs.BigIntStats`-like object. */
  async stat(options: { bigint: true }): Promise<CvmfsBigIntStats>;
  async stat(options?: { bigint?: false }): Promise<CvmfsStats>;
  async stat(options: { bigint?: boolean } = {}): Promise<CvmfsStats | CvmfsBigIntStats> {
    this.check('fstat');
    return statsOf(this.reader.entry, options.bigint);
  }

  /** A Readable over `[start, end]` (inclusive), streaming in bounded pieces. */
  createReadStream(opts: ReadStreamOptions = {}): Readable {
    this.check('read');
    const reader = this.reader;
    const size = reader.entry.size;
    const { start, end, hwm } = streamRange(opts);
    const last = Math.min(end, size - 1);
    const readable = () => this.readable();
    const track = <T>(p: Promise<T>) => this.track(p);
    async function* gen(): AsyncGenerator<Buffer> {
      readable(); // a directory's stream fails with its first read, as node:fs's does
      let pos = start;
      while (pos <= last) {
        if (opts.signal?.aborted) throw abortError(opts.signal);
        const buf = Buffer.allocUnsafe(Math.min(hwm, last - pos + 1));
        const n = await track(reader.read(buf, 0, buf.length, pos));
        if (n === 0) return;
        pos += n;
        yield n === buf.length ? buf : buf.subarray(0, n);
      }
    }
    const r = lazyStream().Readable.from(gen(), { objectMode: false, highWaterMark: hwm });
    if (opts.encoding) r.setEncoding(opts.encoding);
    if (opts.signal) lazyStream().addAbortSignal(opts.signal, r);
    return r;
  }

  /** A web ReadableStream of the whole content. */
  readableWebStream(): ReadableStream<Uint8Array> {
    return lazyStream().Readable.toWeb(this.createReadStream()) as unknown as ReadableStream<Uint8Array>;
  }

  /** Iterates over the content in pieces. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this.createReadStream()[Symbol.asyncIterator]();
  }

  /** Closes the handle once the operations under way are done, as Node's does; further calls fail with EBADF. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.pending]);
    await this.reader.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** EBADF, as for any descriptor opened for reading only. */
  async write(): Promise<never> { throw fsError('EBADF', 'write', this.displayPath); }
  /** EBADF, as for any descriptor opened for reading only. */
  async writeFile(): Promise<never> { throw fsError('EBADF', 'write', this.displayPath); }
  /** EBADF, as for any descriptor opened for reading only. */
  async appendFile(): Promise<never> { throw fsError('EBADF', 'write', this.displayPath); }
  /** EINVAL, as ftruncate of a descriptor opened for reading only. */
  async truncate(): Promise<never> { throw fsError('EINVAL', 'ftruncate', this.displayPath); }
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
