/**
 * Text output of the CLI: `ls -l` lines, sizes, progress.
 * @module
 */
import type { CvmfsStats } from '../fs/stats.js';
import type { ExecResult } from '../connector/exec.js';

const TYPE_CHAR: [number, string][] = [[0o040000, 'd'], [0o120000, 'l'], [0o010000, 'p'], [0o140000, 's'], [0o020000, 'c'], [0o060000, 'b']];

/** `drwxr-xr-x`-style mode string. */
export function modeString(mode: number): string {
  const t = TYPE_CHAR.find(([m]) => (mode & 0o170000) === m)?.[1] ?? '-';
  const rwx = (bits: number, special: boolean, ch: string) =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  return t + rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') + rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') + rwx(mode & 7, (mode & 0o1000) !== 0, 't');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** One `ls -l` line (UTC times). */
export function longLine(st: CvmfsStats, name: string, target?: string): string {
  const d = st.mtime;
  const date = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  return `${modeString(st.mode)} ${String(st.nlink).padStart(3)} ${String(st.uid).padStart(5)} ${String(st.gid).padStart(5)} ${String(st.size).padStart(10)} ${date} ${name}${target !== undefined ? ` -> ${target}` : ''}`;
}

/** Human-readable byte count. */
export function bytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${u[i]}`;
}

/**
 * Progress on stderr: a rewritten line on a TTY, plain lines at most every few seconds otherwise; silent when
 * `quiet`.
 */
export class Progress {
  private last = 0;
  private readonly tty = process.stderr.isTTY === true;
  constructor(private readonly label: string, private readonly quiet = false) {}

  update(text: string, force = false): void {
    if (this.quiet) return;
    const now = Date.now();
    if (!force && now - this.last < (this.tty ? 100 : 5000)) return;
    this.last = now;
    if (this.tty) process.stderr.write(`\r\x1b[K${this.label}: ${text}`);
    else process.stderr.write(`${this.label}: ${text}\n`);
  }

  done(text: string): void {
    if (this.quiet) return;
    if (this.tty) process.stderr.write(`\r\x1b[K${this.label}: ${text}\n`);
    else process.stderr.write(`${this.label}: ${text}\n`);
  }
}

/** The `exec --stats` line: what the job asked of the tracer, what was made, downloaded and prefetched. */
export function execStatsLine(res: ExecResult): string {
  const c = res.counters;
  const pf = res.prefetched;
  const p = res.profile;
  const profile = !p ? '' : `; profile ${p.recorded ? 'recorded' : p.replayed ? `replayed (${p.replayed.steps} paths ahead, ${p.replayed.objects} objects (${bytes(p.replayed.bytes)}) fetched, ${p.replayed.failed} failed)` : 'read'}${p.written ? ', written' : ''}`;
  return `ucvmfs: ${c.requests} tracer requests, ${c.directories} directories listed (${c.listedAhead} ahead of the program), ${c.names} names made on their own, ${c.files} files (${bytes(c.bytes)}) materialized; ` +
    `listing ${(c.listMs / 1000).toFixed(3)} s, filling ${(c.fillMs / 1000).toFixed(3)} s (of which ${(c.fetchMs / 1000).toFixed(3)} s waiting for objects); ${res.downloads.objects} objects (${bytes(res.downloads.bytes)}) downloaded, ` +
    `prefetch made ${pf.files} files (${bytes(pf.bytes)}) ready in ${pf.directories} directories; ${res.downloads.catalogs} catalogs loaded${profile}\n`;
}
