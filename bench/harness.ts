/**
 * Timing helpers for the benchmark: interleaved samples of two contenders, medians, and the result table.
 * Every row compares "ucvmfs" (the project's code or a JavaScript dependency) with a baseline measured in the
 * same run, and its ratio is a speed ratio: above 1 means the ucvmfs column is faster.
 */

/** Monotonic time in milliseconds (from process.hrtime.bigint). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** How a figure is shown. */
export type Unit = 'ops/s' | 'walks/s' | 'MB/s' | 'ms' | 's' | 'objects/s';

/** Whether a unit is a time (smaller is better) rather than a rate. */
const isTime = (u: Unit): boolean => u === 'ms' || u === 's';

/** One line of the result table. */
export interface Row {
  /** Row number as in bench/README.md, e.g. `1`, `5b`, `6c`. */
  id: string;
  name: string;
  unit: Unit;
  /** Median of the ucvmfs samples. */
  ucvmfs: number;
  /** Median of the baseline samples. */
  baseline: number;
  /** Speed ratio (ucvmfs rate / baseline rate; for times baseline / ucvmfs): > 1 means ucvmfs is faster. */
  ratio: number;
  /** What the baseline is. */
  baselineName: string;
  ucvmfsSamples: number[];
  baselineSamples: number[];
  /** A claimed minimum for the ucvmfs median, in the row's unit. */
  target?: number;
  /** A claimed maximum for the ucvmfs median, in the row's unit (time rows). */
  targetMax?: number;
  /** A claimed maximum for ucvmfs time / baseline time (time rows): 1.15 means at most 15 % slower. */
  maxSlowdown?: number;
  /** Shown instead of the ucvmfs median (a contender that is missing or failed). */
  ucvmfsText?: string;
  /** Anything a reader needs to interpret the row. */
  note?: string;
}

/** Builds a row from samples. */
export function makeRow(r: Omit<Row, 'ucvmfs' | 'baseline' | 'ratio'>): Row {
  const u = median(r.ucvmfsSamples);
  const b = median(r.baselineSamples);
  const ratio = isTime(r.unit) ? b / u : u / b;
  return { ...r, ucvmfs: u, baseline: b, ratio };
}

/** Options of {@link compareRates}. */
export interface RateOptions {
  /** Samples per contender (the median is reported). */
  runs: number;
  /** Each sample repeats its pass until at least this much time has passed. */
  minMs: number;
  /** Work units (operations, bytes…) done by one pass; the rate is units × passes / seconds. */
  units: number;
  /** Divides the rate for display (1e6 for MB/s). */
  scale?: number;
}

async function sampleRate(pass: () => unknown, o: RateOptions): Promise<number> {
  let passes = 0;
  const t0 = nowMs();
  let t = t0;
  do {
    await pass();
    passes++;
    t = nowMs();
  } while (t - t0 < o.minMs);
  return (o.units * passes) / ((t - t0) / 1000) / (o.scale ?? 1);
}

/**
 * Samples two contenders alternately (A B, B A, A B, …), so that a slow phase of the machine (another job on the
 * same cores) hits both alike. Returns the rate samples of each.
 */
export async function compareRates(a: () => unknown, b: () => unknown, o: RateOptions, ob: Partial<RateOptions> = {}): Promise<[number[], number[]]> {
  const sa: number[] = [];
  const sb: number[] = [];
  const bo = { ...o, ...ob };
  for (let i = 0; i < o.runs; i++) {
    if (i % 2 === 0) {
      sa.push(await sampleRate(a, o));
      sb.push(await sampleRate(b, bo));
    } else {
      sb.push(await sampleRate(b, bo));
      sa.push(await sampleRate(a, o));
    }
  }
  return [sa, sb];
}

/** Runs `fn` with a bounded number of workers over `items`. */
export async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** A figure with its unit, rounded for reading. */
export function fmt(v: number, unit: Unit): string {
  if (!Number.isFinite(v)) return String(v);
  let s: string;
  if (unit === 'ms') s = v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
  else if (unit === 's') s = v < 0.01 ? v.toFixed(4) : v < 10 ? v.toFixed(3) : v.toFixed(1);
  else if (v >= 1e6) s = `${(v / 1e6).toFixed(2)}M`;
  else if (v >= 1e4) s = `${(v / 1e3).toFixed(1)}k`;
  else if (v >= 100) s = v.toFixed(0);
  else s = v.toFixed(v >= 10 ? 1 : 2);
  return `${s} ${unit}`;
}

/** The plain-text table. */
export function table(rows: readonly Row[]): string {
  const head = ['benchmark', 'ucvmfs median', 'baseline median', 'ratio', 'baseline'];
  const body = rows.map((r) => [`${r.id}. ${r.name}`, r.ucvmfsText ?? fmt(r.ucvmfs, r.unit), fmt(r.baseline, r.unit), Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : '-', r.baselineName]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((l) => l[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 1 || i === 2 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

/** Lines that say whether each claimed target was met, and by how much it was missed. */
export function targets(rows: readonly Row[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    const label = `${r.id}. ${r.name}`;
    if (r.target !== undefined) {
      const t = r.target;
      const ok = r.ucvmfs >= t;
      const pct = ((r.ucvmfs / t - 1) * 100).toFixed(0);
      out.push(`${ok ? 'MET   ' : 'MISSED'} ${label}: ${fmt(r.ucvmfs, r.unit)} vs target >= ${fmt(t, r.unit)} (${ok ? '+' : ''}${pct}%)`);
    }
    if (r.targetMax !== undefined) {
      const t = r.targetMax;
      const ok = r.ucvmfs <= t;
      out.push(`${ok ? 'MET   ' : 'MISSED'} ${label}: ${fmt(r.ucvmfs, r.unit)} vs target <= ${fmt(t, r.unit)} (${(r.ucvmfs / t).toFixed(2)}x the target)`);
    }
    if (r.maxSlowdown !== undefined) {
      // A time ratio here (ucvmfs time / baseline time), the inverse of the table's ratio column.
      const s = r.ucvmfs / r.baseline;
      const ok = s <= r.maxSlowdown;
      out.push(`${ok ? 'MET   ' : 'MISSED'} ${label}: ${Number.isFinite(s) ? s.toFixed(2) : '?'}x the baseline's time (${fmt(r.ucvmfs, r.unit)} vs ${fmt(r.baseline, r.unit)}) vs target <= ${r.maxSlowdown}x`);
    }
  }
  return out;
}
