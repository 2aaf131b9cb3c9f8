/**
 * Removing one file. `rmSync(path, { force: true })` loads Node's recursive remover on first use (0.4 ms of a
 * warm command, whose exit removes its pin file): a single file needs only unlink(2).
 * @module
 */
import { unlinkSync } from 'node:fs';

/** Removes the file at `path`; a name already gone is no error (as `rmSync` with `force`). */
export function unlinkIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
