/**
 * Standard output for the CLI's text. Writing through descriptor 1 spares a command `process.stdout`, whose
 * stream loads node:stream and a dozen modules (about 4 ms of a 100 ms start). Text is written whole before the
 * command goes on, as Node writes files (a pipe's stream would queue it). File contents (`cat`) go the same way
 * until a write would block on a non-blocking descriptor; from then on through `process.stdout` (made on first
 * use, it waits for each write), rather than wait in steps of a millisecond.
 * @module
 */
import { writeSync } from 'node:fs';

/** Writes all of `data` to standard output; waits while a non-blocking descriptor is full. Throws EPIPE as is. */
export async function writeOut(data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) {
    try {
      off += writeSync(1, data, off, data.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }
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
