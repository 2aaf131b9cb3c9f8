/**
 * Stored mtimes onto shadow entries, to the nanosecond. Node's utimes family takes seconds as a double, and libuv
 * cuts them to microseconds, at times one below: `stat -c %.9Y` showed .216171000 where a mount shows .216172020.
 * The native module sets them exactly (utimensat, futimens).
 * @module
 */
import { futimesSync, lutimesSync, utimesSync } from 'node:fs';
import { nsToSeconds } from '../format/names.js';
import { loadAddon } from './native.js';

/** The native call (addon/files.cc); absent in older builds. */
type SetTimes = (target: string | Buffer | number, sec: number, nsec: number, nofollow: boolean) => number;

const NS = 1_000_000_000n;

/**
 * Sets the atime and mtime of a path (of a symlink itself with `nofollow`) or of a descriptor to `ns` nanoseconds
 * since the epoch. Throws as node:fs does (the call is made again by node:fs when the native one fails, for its error).
 */
export function setTimes(target: string | Buffer | number, ns: bigint, nofollow = false): void {
  const sec = ns >= 0n ? ns / NS : -((-ns + NS - 1n) / NS);
  const set = (loadAddon() as { setTimes?: SetTimes }).setTimes;
  if (set?.(target, Number(sec), Number(ns - sec * NS), nofollow) === 0) return;
  const s = nsToSeconds(ns);
  if (typeof target === 'number') futimesSync(target, s, s);
  else if (nofollow) lutimesSync(target, s, s);
  else utimesSync(target, s, s);
}
