/**
 * Where a large downloaded object goes: inflated (or copied) into two reused 1 MiB buffers, each hashed and then
 * written to the object's temporary file while the other fills.
 *
 * Why not a stream pipeline into a write stream: zlib's stream hands out every output buffer freshly allocated,
 * and its output and the writes each cost a thread-pool round trip. Fresh memory is the expensive part on the
 * machines measured: every new 4 KiB page is a page fault, ~12 µs on the development VM, so a 55 MB chunked read
 * faulted in about 40 MB of new pages for nothing (bench/README "Cold chunked reads"). Here the same few buffers
 * serve every download, zlib runs on the main thread into them (inflating is cheap once memory is warm:
 * 55 MB in ~15 ms), and the thread pool only writes.
 *
 * Driving zlib into a buffer of our own needs the engine under Node's zlib stream (`_handle.writeSync`, the call
 * Node's own `inflateSync` makes). {@link bufferedSinkAvailable} says whether this Node has it; without it the
 * object store keeps its stream pipeline.
 * @module
 */
import type { Hash } from 'node:crypto';
import { close, open, write } from 'node:fs';
import type { Inflate } from 'node:zlib';
import { lazyCrypto, lazyZlib } from '../lazy.js';
import { ioError } from '../errors.js';
import type { Compression } from '../format/flags.js';

/** Size of each buffer: large enough that a write costs one round trip per MiB, small enough to keep a few. */
const BUFFER_BYTES = 1024 * 1024;
/** Buffers kept for the next download: two per download in flight (the read-ahead's three, plus one). */
const SPARE_MAX = 8;
const spare: Buffer[] = [];

/** The zlib engine under a Node zlib stream (lib/zlib.js: `handle.writeSync`, `_writeState`). */
interface ZlibEngine {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  onerror: (message: string, errno: number) => void;
}

/** The engine and its state words (out bytes left, in bytes left) of a fresh inflater, if this Node has them. */
function engineOf(z: Inflate): { engine: ZlibEngine; state: Uint32Array } | undefined {
  const inner = z as unknown as { _handle?: Partial<ZlibEngine>; _writeState?: unknown };
  const engine = inner._handle;
  if (!engine || typeof engine.writeSync !== 'function' || !(inner._writeState instanceof Uint32Array)) return undefined;
  return { engine: engine as ZlibEngine, state: inner._writeState };
}

/** zlib.h's flush values (zlib itself loads on first use). */
const Z_NO_FLUSH = 0;
const Z_FINISH = 4;

/** zlib's error codes, for errors shaped as Node's zlib gives them (`code`, `errno`). */
const ZLIB_CODES = ['Z_NEED_DICT', 'Z_ERRNO', 'Z_STREAM_ERROR', 'Z_DATA_ERROR', 'Z_MEM_ERROR', 'Z_BUF_ERROR', 'Z_VERSION_ERROR'] as const;

let available: boolean | undefined;
/** Whether Node's zlib engine can be driven directly (see the module comment); checked once. */
export function bufferedSinkAvailable(): boolean {
  if (available === undefined) {
    const z = lazyZlib().createInflate();
    available = engineOf(z) !== undefined;
    z.close();
  }
  return available;
}

function openFile(path: string): Promise<number> {
  return new Promise((resolve, reject) => open(path, 'wx', 0o600, (e, fd) => (e ? reject(e) : resolve(fd))));
}

function writeAll(fd: number, buf: Buffer, length: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      write(fd, buf, done, length - done, position + done, (e, n) => {
        if (e) reject(e);
        else if (done + n < length) step(done + n);
        else resolve();
      });
    };
    step(0);
  });
}

/** Options of {@link BufferedSink.open}. */
export interface SinkOptions {
  compression: Compression;
  /** At most this many bytes may come out (the catalog's size): a zlib bomb stops here. */
  limit?: number;
  /** Names the object in errors. */
  url: string;
  /** The error to throw when the file cannot be made or written (the object store names its cache in it). */
  writeError: (cause: unknown) => Error;
}

/**
 * Inflates or copies an object's stored bytes into a new file through reused buffers, and hashes what it keeps.
 * Errors: CvmfsError `decompression` (bad zlib data, more bytes than the limit) with the cause, and
 * {@link SinkOptions.writeError}'s when the file cannot be made or written.
 */
export class BufferedSink {
  private readonly bufs: Buffer[] = [];
  private cur = 0;
  private off = 0;
  private pos = 0;
  private writing: Promise<void> | undefined;
  private failed: Error | undefined;
  private ended = false;
  private readonly kept: Hash = lazyCrypto().createHash('sha1');
  private readonly inflater: Inflate | undefined;
  private readonly zlib: { engine: ZlibEngine; state: Uint32Array } | undefined = undefined;

  private constructor(private readonly fd: number, private readonly o: SinkOptions) {
    this.bufs.push(spare.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES), spare.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES));
    if (o.compression !== 'zlib') return;
    this.inflater = lazyZlib().createInflate();
    this.zlib = engineOf(this.inflater)!; // open() checked bufferedSinkAvailable()
    // Node's own handler destroys the stream; here the error is kept and thrown by the call that hit it.
    this.zlib.engine.onerror = (message, errno) => {
      const code = ZLIB_CODES.find((c) => lazyZlib().constants[c] === errno) ?? 'Z_ERROR';
      this.failed ??= Object.assign(new Error(message), { errno, code });
    };
  }

  /** Creates the file (`wx`, mode 0600) and a sink writing into it. */
  static async open(path: string, o: SinkOptions): Promise<BufferedSink> {
    if (o.compression === 'zlib' && !bufferedSinkAvailable()) throw new Error('this Node has no zlib engine to drive');
    let fd: number;
    try {
      fd = await openFile(path);
    } catch (e) {
      throw o.writeError(e);
    }
    return new BufferedSink(fd, o);
  }

  /** SHA-1 (hex) of the bytes kept, once {@link end} has returned. */
  keptDigest(): string {
    return this.kept.digest('hex');
  }

  /** Bytes kept so far. */
  get size(): number {
    return this.pos + this.off;
  }

  /** Takes the next piece of the stored bytes; resolves when its buffers may be reused by the caller. */
  async push(piece: Uint8Array): Promise<void> {
    if (this.ended) return; // bytes after the end of the zlib stream: hashed by the caller, not kept (as Node does)
    if (!this.zlib) {
      for (let at = 0; at < piece.length;) {
        const n = Math.min(piece.length - at, BUFFER_BYTES - this.off);
        this.bufs[this.cur]!.set(piece.subarray(at, at + n), this.off);
        at += n;
        await this.advance(n);
      }
      return;
    }
    await this.inflate(piece, Z_NO_FLUSH);
  }

  /** No more input: the zlib stream must be complete. Writes what is left and waits for every write. */
  async end(): Promise<void> {
    if (this.zlib && !this.ended) await this.inflate(new Uint8Array(0), Z_FINISH);
    if (this.off > 0) await this.flush();
    await this.writing;
  }

  /** Closes the file and gives the buffers back; call it once, after success or failure. */
  async close(): Promise<void> {
    await this.writing?.catch(() => undefined);
    this.inflater?.close();
    for (const b of this.bufs.splice(0)) if (spare.length < SPARE_MAX) spare.push(b);
    await new Promise<void>((resolve) => close(this.fd, () => resolve()));
  }

  private async inflate(input: Uint8Array, flush: number): Promise<void> {
    const { engine, state } = this.zlib!;
    let inOff = 0;
    let inLen = input.length;
    for (;;) {
      const room = BUFFER_BYTES - this.off;
      engine.writeSync(flush, input, inOff, inLen, this.bufs[this.cur]!, this.off, room);
      if (this.failed) throw ioError('decompression', `cannot decompress ${this.o.url}: ${this.failed.message}`, this.failed);
      const produced = room - state[0]!;
      const consumed = inLen - state[1]!;
      inOff += consumed;
      inLen -= consumed;
      if (produced > 0) await this.advance(produced);
      else if (state[0]! > 0) {
        // Room left and nothing came out: zlib needs more input, or (input left over) its stream has ended.
        if (inLen > 0 || flush === Z_FINISH) this.ended = true;
        return;
      }
    }
  }

  /** `n` more bytes are in the current buffer: checks the limit, and writes the buffer once it is full. */
  private async advance(n: number): Promise<void> {
    this.off += n;
    if (this.o.limit !== undefined && this.pos + this.off > this.o.limit) {
      throw ioError('decompression', `${this.o.url} ${this.o.compression === 'zlib' ? 'decompresses to' : 'holds'} more than the ${this.o.limit} bytes the catalog gives`);
    }
    if (this.off === BUFFER_BYTES) await this.flush();
  }

  /** Hashes the current buffer, starts its write once the previous write is done, and moves to the other. */
  private async flush(): Promise<void> {
    const buf = this.bufs[this.cur]!;
    const length = this.off;
    this.kept.update(length === BUFFER_BYTES ? buf : buf.subarray(0, length));
    await this.writing;
    this.writing = writeAll(this.fd, buf, length, this.pos).catch((e: unknown) => {
      throw this.o.writeError(e);
    });
    this.writing.catch(() => undefined); // seen by the next flush, end or close
    this.pos += length;
    this.cur ^= 1;
    this.off = 0;
  }
}
