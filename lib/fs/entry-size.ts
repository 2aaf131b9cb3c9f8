/**
 * Approximate memory of cached metadata, for the byte bounds of the entry and listing caches. The figures are
 * V8's on 64-bit Node (pointer compression off): an object header and its in-object fields, 16 bytes plus the
 * characters of a flat one-byte string (twice that for names outside Latin-1), a BigInt of one digit, a typed
 * array with its buffer. They were checked against `process.memoryUsage().heapUsed` over 50,000 entries of a
 * real catalog (bench/mem-walk.ts, `calibrate`), which came within 15% of this estimate.
 * @module
 */
import type { Entry } from './entry.js';

/** The Entry object (21 fields), its location object, its mtimeNs BigInt and a Map slot in the cache. */
const ENTRY_FIXED = 360;
/** A string: header plus characters. */
const STRING_HEADER = 16;
/** A typed array and its ArrayBuffer, without the bytes. */
const TYPED_ARRAY = 160;
/** A ContentHash object and its 40-character hex string. */
const HASH = 32 + STRING_HEADER + 40;

function stringBytes(s: string | undefined): number {
  if (s === undefined) return 0;
  // Characters outside Latin-1 make V8 store the whole string with two bytes a character.
  // eslint-disable-next-line no-control-regex
  return STRING_HEADER + (/[^\u0000-\u00ff]/.test(s) ? 2 * s.length : s.length);
}

/**
 * Approximate bytes an entry keeps alive. Strings shared with other entries (the tree prefix, the catalog's
 * mountpoint) are not counted; the path, name, in-tree path and link targets are.
 */
export function entryBytes(e: Entry): number {
  let n = ENTRY_FIXED + stringBytes(e.path) + stringBytes(e.name) + stringBytes(e.loc.rel);
  if (e.hash) n += HASH;
  if (e.rawTarget !== undefined) n += stringBytes(e.rawTarget) + (e.target === e.rawTarget ? 0 : stringBytes(e.target));
  if (e.xattrBlob) n += TYPED_ARRAY + e.xattrBlob.byteLength;
  return n;
}

/** Approximate bytes of a cached listing: its array, plus every entry (counted again if the entry cache has it too). */
export function listingBytes(list: readonly Entry[]): number {
  let n = 32 + 8 * list.length;
  for (const e of list) n += entryBytes(e);
  return n;
}
