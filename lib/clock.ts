/**
 * Monotonic milliseconds for timing steps and requests. `performance.now()` would do, but the global loads
 * perf_hooks and its eight modules on first use (about 2 ms of every command's start).
 * @module
 */

/** Milliseconds on a monotonic clock, with sub-millisecond precision. */
export function nowMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}
