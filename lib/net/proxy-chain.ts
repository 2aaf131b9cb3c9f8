/**
 * The proxy chain as the genuine client keeps it: CVMFS_HTTP_PROXY groups (`;`) tried in order, members of a
 * group (`|`) load-balanced by a random pick, a failed member "burned" until its whole group has failed, then
 * the next group (wrapping round); CVMFS_FALLBACK_PROXY groups after the regular ones (DIRECT is stripped from
 * the fallback list, and from the regular list when there is a fallback); back to the first group after
 * CVMFS_PROXY_RESET_AFTER seconds on another one.
 * @module
 */
import { debug } from '../debug.js';

/**
 * Groups of a proxy list value (`;` between groups, `|` within one). `auto` is resolved before (pac.ts, at
 * repository open); one still here (in CVMFS_FALLBACK_PROXY, as in the genuine client, or given to a Fetcher
 * directly) is dropped.
 */
export function proxyGroups(value: string | undefined): string[][] {
  return (value ?? '').split(';').map((g) => g.split('|').map((m) => m.trim()).filter(Boolean)
    .map((m) => (m.toUpperCase() === 'DIRECT' ? 'DIRECT' : m))
    .filter((m) => {
      if (m.toLowerCase() !== 'auto') return true;
      debug('proxy "auto" is resolved only in CVMFS_HTTP_PROXY; skipped');
      return false;
    })).filter((g) => g.length > 0);
}

/** The proxy chain of one client. */
export class ProxyChain {
  readonly groups: readonly string[][];
  /** Index of the first fallback group (= groups.length when there is none). */
  readonly fallbackStart: number;
  private group = 0;
  /** Members of the current group not yet failed, the current one among them. */
  private alive: string[] = [];
  private member = 'DIRECT';
  private movedAt = 0;

  constructor(regular: string | undefined, fallback?: string, private readonly resetAfterMs = 300_000, private readonly random: () => number = Math.random) {
    const fb = proxyGroups(fallback).map((g) => g.filter((m) => m !== 'DIRECT')).filter((g) => g.length > 0);
    let reg = proxyGroups(regular);
    if (fb.length > 0) reg = reg.map((g) => g.filter((m) => m !== 'DIRECT')).filter((g) => g.length > 0);
    // Without any proxy configured, requests go straight to the servers (the genuine client refuses to mount).
    if (reg.length === 0 && fb.length === 0) reg = [['DIRECT']];
    this.groups = [...reg, ...fb];
    this.fallbackStart = reg.length;
    this.enter(0);
  }

  /** The proxy to use now (`DIRECT` for none). */
  get current(): string {
    return this.member;
  }

  /** Every member of every group. */
  get size(): number {
    return this.groups.reduce((n, g) => n + g.length, 0);
  }

  /** Whether the current group is a fallback group. */
  get onFallback(): boolean {
    return this.group >= this.fallbackStart;
  }

  private enter(group: number): void {
    this.group = group;
    this.alive = [...this.groups[group]!];
    this.member = this.alive[Math.floor(this.random() * this.alive.length)]!;
  }

  /** Back to the first group after the reset time on another (called before each request). */
  maybeReset(now = Date.now()): void {
    if (this.group !== 0 && this.resetAfterMs > 0 && now - this.movedAt > this.resetAfterMs) {
      debug(`proxy: back to the first group after ${this.resetAfterMs / 1000} s`);
      this.enter(0);
    }
  }

  /** First group, fresh random member: what the genuine client does before moving on to the next host. */
  resetToFirstGroup(): void {
    this.enter(0);
  }

  /**
   * `failed` did not work: burn it (unless another request already moved on) and pick another member of the
   * group, or the next group once all of this one failed. Whether it moved on.
   */
  switchFrom(failed: string, now = Date.now()): boolean {
    const i = this.alive.indexOf(failed);
    if (i < 0 || failed !== this.member) return false;
    this.alive.splice(i, 1);
    if (this.alive.length === 0) {
      const next = (this.group + 1) % this.groups.length;
      this.enter(next);
      if (next !== 0) this.movedAt = now;
    } else {
      this.member = this.alive[Math.floor(this.random() * this.alive.length)]!;
    }
    debug(`proxy: ${failed} failed, now ${this.member}`);
    return true;
  }
}
