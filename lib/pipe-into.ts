/**
 * `src.pipe(dest)`, ending `dest` when `src` ends. Readable.pipe's own ending looks at `process.stdout` and
 * `process.stderr` (it never ends those), and reading them makes both streams: 2-4 ms of a cold command here,
 * which writes to neither while it downloads.
 * @module
 */
import type { Readable, Writable } from 'node:stream';

/** Pipes `src` into `dest` and ends `dest` after the last byte; returns `dest`. Errors are not passed on (as pipe). */
export function pipeInto<T extends Writable>(src: Readable, dest: T): T {
  src.pipe(dest, { end: false });
  src.once('end', () => dest.end());
  return dest;
}
