/**
 * Standard output for the CLI's text. Writing through descriptor 1 spares a command `process.stdout`, whose
 * stream loads node:stream and a dozen modules (about 4 ms of a 100 ms start). Text is written whole before the
 * command goes on, as Node writes files (a pipe's stream would queue it). File contents (`cat`) go the same way
 * until a write would block on a non-blocking descriptor; from then on through `process.stdout` (made on first
 * use, it waits for each write), rather than wait in steps of a millisecond.
 * @module
 */
import { fstatSync, writeSync } from 'node:fs';
import { EventEmitter } from 'node:events';

/** Writes all of `data` to standard output; waits while a non-blocking descriptor is full. Throws EPIPE as is. */
export function writeOut(data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => plainWriter(1).write(data, (e) => (e ? reject(e) : resolve())));
}

let streamMade = false;

/**
 * Writes all of `data` to standard output for `cat`: through descriptor 1 while it takes the bytes, then (after a
 * write that would block) through {@link stdoutStream} for this and every later call. Throws EPIPE as is.
 */
export async function writeContent(data: Uint8Array): Promise<void> {
  let off = 0;
  if (!streamMade) {
    try {
      while (off < data.length) off += writeSync(1, data, off, data.length - off);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  }
  const rest = data.subarray(off);
  await new Promise<void>((resolve, reject) => stdoutStream().write(rest, (e) => (e ? reject(e) : resolve())));
}
/** `process.stdout` for large output, which leaves quietly when the reader has gone (EPIPE), as `cat` does. */
export function stdoutStream(): NodeJS.WriteStream {
  if (!streamMade) {
    streamMade = true;
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
    });
  }
  return process.stdout;
}

/** One write of {@link PlainWriter} not yet taken by the descriptor, and who waits for it. */
interface Queued {
  data: Uint8Array;
  done?: (e?: Error | null) => void;
}

/**
 * A standard descriptor as the little of a writable stream that ucvmfs's own messages and Node's console use.
 * Written synchronously while the descriptor takes the bytes. Once a write would block (the command made the
 * pipe non-blocking, which it shares, and the reader is behind), the rest waits in order for a later try: this
 * process must go on answering the command, whose progress the reader may be waiting for.
 */
class PlainWriter extends EventEmitter {
  readonly isTTY = false;
  readonly writable = true;
  private readonly queue: Queued[] = [];

  constructor(readonly fd: number) {
    super();
  }

  write(chunk: string | Uint8Array, encoding?: BufferEncoding | ((e?: Error | null) => void), done?: (e?: Error | null) => void): boolean {
    if (typeof encoding === 'function') [done, encoding] = [encoding, undefined];
    this.queue.push({ data: typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk, ...(done ? { done } : {}) });
    if (this.queue.length === 1) this.flush();
    return true;
  }

  end(chunk?: string | Uint8Array | (() => void), encoding?: BufferEncoding | (() => void), done?: () => void): this {
    if (typeof chunk === 'function') done = chunk;
    else if (chunk !== undefined) this.write(chunk, typeof encoding === 'function' ? undefined : encoding);
    if (typeof encoding === 'function') done = encoding;
    if (done) process.nextTick(done);
    return this;
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const q = this.queue[0]!;
      try {
        while (q.data.length > 0) q.data = q.data.subarray(writeSync(this.fd, q.data));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(() => this.flush(), 1);
          return;
        }
        // The reader is gone: what is left of ucvmfs's messages is dropped, as nobody would read it.
        for (const dropped of this.queue.splice(0)) if (dropped.done) process.nextTick(dropped.done, e as Error);
        return;
      }
      this.queue.shift();
      if (q.done) process.nextTick(q.done, null);
    }
  }
}

const writers = new Map<number, PlainWriter>();

/** The one {@link PlainWriter} of a descriptor, so that everything written through it keeps its order. */
function plainWriter(fd: number): PlainWriter {
  let w = writers.get(fd);
  if (!w) writers.set(fd, (w = new PlainWriter(fd)));
  return w;
}

/**
 * For `exec`: `process.stdout` and `process.stderr`, where they are pipes or sockets, become plain writers on
 * descriptors 1 and 2 that Node never turns into streams. Such a stream loads node:net and a dozen modules before
 * the command starts (3-5 ms of `exec -- true | cat`), and it makes the pipe non-blocking, a flag the command
 * shares (buildStdioStreams in lib/connector/exec.ts made them early for that reason). These write at once, as
 * those streams did once the tracer made the pipe blocking again for the command, and queue what a pipe the
 * command made non-blocking cannot take yet. Only ucvmfs's own messages go this way. Files and terminals keep
 * Node's streams (they change no flag).
 */
export function plainStdio(): void {
  for (const [fd, name] of [[1, 'stdout'], [2, 'stderr']] as const) {
    let shared = false;
    try {
      const st = fstatSync(fd);
      shared = st.isFIFO() || st.isSocket();
    } catch {
      // closed: Node's own stream says so on use
    }
    if (shared) Object.defineProperty(process, name, { configurable: true, enumerable: true, writable: true, value: plainWriter(fd) });
  }
}
