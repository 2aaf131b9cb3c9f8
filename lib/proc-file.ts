/**
 * Reads a file of /proc whole. Their size shows as 0, which sends readFileSync down a path of its own (64 KiB
 * buffers, then a copy) whose code a command's start compiles for these reads alone: half a millisecond each of
 * the first `/proc/self/stat` and `/proc/self/environ` of `exec -- true`. Reads into one buffer, grown as needed.
 * @module
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** The bytes of `path` (throws as openSync and readSync do). */
export function readProcFile(path: string, sizeHint = 4096): Buffer {
  const fd = openSync(path, 'r');
  try {
    let buf = Buffer.allocUnsafe(sizeHint);
    let got = 0;
    for (;;) {
      if (got === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, got);
        buf = bigger;
      }
      const n = readSync(fd, buf, got, buf.length - got, null);
      if (n === 0) return buf.subarray(0, got);
      got += n;
    }
  } finally {
    closeSync(fd);
  }
}
