/**
 * Approximate memory of cached metadata, for the byte bounds of the entry and listing caches. The constants are
 * V8's figures on 64-bit Node, measured rather than derived: `process.memoryUsage().heapUsed` after a full GC with
 * 59,581 entries of a real repository cached (bench/mem-walk.ts's tree, one cache at a time, less the same walk
 * with nothing cached) against the sum of these estimates, within 5% for each cache. An entry is about 500 bytes
 * of heap, 650 with its entry-cache slot; names longer than in that tree cost their characters on top.
 * @module
 */
import type { Entry } from './entry.js';

/** The Entry object (21 fields), its location object and its mtimeNs BigInt. */
const ENTRY_FIXED = 300;
/** A slot in an Lru (Map table entry and the size record), beside the value. */
export const LRU_SLOT_BYTES = 160;
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

/** Approximate bytes of a cached listing: its slot and array, plus every entry (counted again if the entry cache has it too). */
export function listingBytes(list: readonly Entry[]): number {
  let n = LRU_SLOT_BYTES + 32 + 8 * list.length;
  for (const e of list) n += entryBytes(e);
  return n;
}
