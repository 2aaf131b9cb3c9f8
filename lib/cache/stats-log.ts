/**
 * Counters that outlive a process: each open repository appends one line of JSON with its counters to
 * `<cache>/stats/<fqrn>.log` when it is closed (one small O_APPEND write, so concurrent processes do not
 * mix their lines, and a line cut by a crash is skipped on reading). `ucvmfs stats` sums them. The log is
 * compacted to one line when it grows past 1 MiB.
 * @module
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Counters summed over processes; keys are those of {@link import('../repository.js').RepositoryStats}. */
export type CounterTotals = Record<string, number>;

/** Where the counters of `fqrn` are logged in a cache directory. */
export function statsLogPath(cacheDir: string, fqrn: string): string {
  return join(cacheDir, 'stats', `${fqrn}.log`);
}

/** Appends one process's counters (numbers only). Errors are ignored: counters are never worth a failure. */
export function appendStats(path: string, counters: Readonly<Record<string, number>>): void {
  try {
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
    appendFileSync(path, `${JSON.stringify({ t: Math.floor(Date.now() / 1000), pid: process.pid, ...counters })}\n`);
    if (statSync(path).size > 1 << 20) {
      const total = readStats(path);
      const tmp = `${path}.${process.pid}.tmp`;
      // Two lines, so that the first and last times survive the compaction.
      writeFileSync(tmp, `${JSON.stringify({ t: total.first, pid: 0, sessions: total.sessions, ...total.counters })}\n${JSON.stringify({ t: total.last, pid: 0, sessions: 0 })}\n`);
      renameSync(tmp, path);
    }
  } catch {
    // a read-only cache: nothing recorded
  }
}

/** Sums the log: counters, how many processes recorded, first and last time (Unix seconds). */
export function readStats(path: string): { counters: CounterTotals; sessions: number; first: number; last: number } {
  const counters: CounterTotals = {};
  let sessions = 0;
  let first = 0;
  let last = 0;
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { counters, sessions, first, last };
  }
  for (const line of text.split('\n')) {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // empty, or cut by a crash
    }
    if (typeof rec !== 'object' || rec === null) continue;
    sessions += typeof rec.sessions === 'number' ? rec.sessions : 1;
    const t = typeof rec.t === 'number' ? rec.t : 0;
    if (t && (!first || t < first)) first = t;
    if (t > last) last = t;
    for (const [k, v] of Object.entries(rec)) {
      if (k === 't' || k === 'pid' || k === 'sessions' || typeof v !== 'number' || !Number.isFinite(v)) continue;
      counters[k] = (counters[k] ?? 0) + v;
    }
  }
  return { counters, sessions, first, last };
}
