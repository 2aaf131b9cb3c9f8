/**
 * Standard output for the CLI's text. Writing through descriptor 1 spares a command `process.stdout`, whose
 * stream loads node:stream and a dozen modules (about 4 ms of a 100 ms start). Text is written whole before the
 * command goes on, as Node writes files (a pipe's stream would queue it). File contents (`cat`) still go
 * through `process.stdout`, made on first use, which waits for each write.
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
