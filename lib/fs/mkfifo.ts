/**
 * mkfifo(1) for the few FIFOs a repository holds: Node has no mkfifo, and node:child_process (with what it pulls
 * in) costs every process start ~10 ms, so it is loaded only when a FIFO is made.
 * @module
 */
import { createRequire } from 'node:module';

/** Makes a FIFO at `path` (an ASCII name: argv cannot carry every byte string) with permission bits `mode`. */
export function mkfifo(path: string, mode: number): void {
  const { spawnSync } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  spawnSync('mkfifo', ['-m', (mode & 0o777).toString(8), path]);
}
