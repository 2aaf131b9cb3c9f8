/**
 * SQLite's record format (https://www.sqlite.org/fileformat2.html#record_format): a header of serial types, then
 * the values. Decoded here without an SQL engine, for the catalog reader.
 * @module
 */
import { ioError } from '../errors.js';

/**
 * A stored value: integers beyond 2^53 as bigint (the MD5 path keys are full 64-bit), TEXT and BLOB as bytes
 * (a catalog's TEXT need not be UTF-8, so it is never decoded here).
 */
export type Value = null | number | bigint | Uint8Array;

/** The error every malformed structure in a database file raises. */
export function corrupt(what: string): Error {
  return ioError('catalog-format', `malformed SQLite database: ${what}`);
}

/** A rowid: exact, as a bigint beyond 2^53 (SQLite's rowids are signed 64-bit). */
export type Rowid = number | bigint;

/** A bigint as a number where that is exact. */
function narrow(v: bigint): number | bigint {
  return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Where the varint last read by {@link readVarint64} or {@link readVarint} ended. The readers return the value
 * alone and leave the end here: a listing reads some forty varints an entry, and a tuple for each was a large
 * share of the garbage it made.
 */
export const cursor = { end: 0 };

/**
 * A varint at `p` read as SQLite reads a rowid (nine bytes make a signed 64-bit value); its end in
 * {@link cursor}. Seven bytes or fewer hold at most 49 bits, exact as a number; longer ones are assembled as a
 * bigint.
 */
export function readVarint64(b: Uint8Array, p: number): Rowid {
  let v = 0;
  for (let i = 0; i < 7; i++) {
    const x = b[p + i];
    if (x === undefined) throw corrupt('varint past the end of a page');
    v = v * 128 + (x & 0x7f);
    if (x < 0x80) {
      cursor.end = p + i + 1;
      return v;
    }
  }
  const x7 = b[p + 7];
  if (x7 === undefined) throw corrupt('varint past the end of a page');
  let big = (BigInt(v) << 7n) | BigInt(x7 & 0x7f);
  if (x7 < 0x80) {
    cursor.end = p + 8;
    return narrow(big);
  }
  const x8 = b[p + 8];
  if (x8 === undefined) throw corrupt('varint past the end of a page');
  big = BigInt.asIntN(64, (big << 8n) | BigInt(x8));
  cursor.end = p + 9;
  return narrow(big);
}

/** A varint that counts something (a size, a serial type): a number, or the file is malformed; its end in {@link cursor}. */
export function readVarint(b: Uint8Array, p: number): number {
  // Nearly every one is a single byte (serial types, small sizes).
  const x = b[p];
  if (x !== undefined && x < 0x80) {
    cursor.end = p + 1;
    return x;
  }
  const v = readVarint64(b, p);
  if (typeof v !== 'number' || v < 0) throw corrupt(`a size of ${v}`);
  return v;
}

/** {@link readVarint64} with its end. */
export function varint64(b: Uint8Array, p: number): [Rowid, number] {
  const v = readVarint64(b, p);
  return [v, cursor.end];
}

/** {@link readVarint} with its end. */
export function varint(b: Uint8Array, p: number): [number, number] {
  const v = readVarint(b, p);
  return [v, cursor.end];
}

/** Compares two rowids. */
export function compareRowids(a: Rowid, b: Rowid): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const INT_BYTES = [0, 1, 2, 3, 4, 6, 8];

function readInt(b: Uint8Array, p: number, n: number): number | bigint {
  if (n === 8) {
    const hi = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >> 0;
    const lo = b[p + 4]! * 0x1000000 + ((b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!);
    // Within 2^53 (sizes, times) a number; beyond (the MD5 path keys) exact as a bigint.
    if (hi >= -0x200000 && hi < 0x200000) return hi * 0x100000000 + lo;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[p + i]!;
  // Big-endian two's complement: a set top bit means the field's range lies below zero.
  return b[p]! >= 0x80 ? v - 2 ** (8 * n) : v;
}

/** A record's header size, checked; its first serial type starts at {@link cursor}'s end. */
function headerOf(b: Uint8Array): number {
  const headerSize = readVarint(b, 0);
  if (headerSize > b.length || headerSize < cursor.end) throw corrupt('record header size');
  return headerSize;
}

/** The bytes a value of serial type `t` takes in a record's body. */
function valueSize(t: number): number {
  if (t >= 12) return (t - (t & 1 ? 13 : 12)) / 2;
  if (t === 7) return 8;
  if (t <= 6) return INT_BYTES[t]!;
  if (t === 8 || t === 9) return 0;
  throw corrupt(`serial type ${t}`);
}

/**
 * The values of a record, at most `columns` of them. A record with fewer values than its table has columns was
 * written before `ALTER TABLE ... ADD COLUMN`; the caller fills in the defaults. Columns marked in `skip` read as
 * null without being decoded: a listing needs neither a row's own key nor its parent's, and those four 64-bit
 * values were most of the garbage a large listing made.
 */
export function decodeRecord(b: Uint8Array, columns = Infinity, skip?: readonly boolean[]): Value[] {
  const headerSize = headerOf(b);
  let h = cursor.end;
  const out: Value[] = [];
  let p = headerSize;
  while (h < headerSize && out.length < columns) {
    const t = readVarint(b, h);
    h = cursor.end;
    const n = valueSize(t);
    if (p + n > b.length) throw corrupt('record value past its payload');
    if (t === 0 || skip?.[out.length]) out.push(null);
    else if (t <= 6) out.push(readInt(b, p, n));
    else if (t === 7) out.push(new DataView(b.buffer, b.byteOffset + p, 8).getFloat64(0));
    else if (t === 8 || t === 9) out.push(t - 8);
    else out.push(b.subarray(p, p + n));
    p += n;
  }
  return out;
}

/** SQLite's order for the values an index holds: NULL, then numbers, then bytes (BINARY collation). */
export function compareValues(a: Value, b: Value): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  const aBytes = a instanceof Uint8Array;
  const bBytes = b instanceof Uint8Array;
  if (aBytes || bBytes) {
    if (!aBytes) return -1;
    if (!bBytes) return 1;
    return Buffer.compare(a, b);
  }
  if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
  // One bigint, one number: a number that is not an integer cannot be turned into a bigint exactly.
  const x = typeof a === 'number' && !Number.isInteger(a) ? a : BigInt(a);
  const y = typeof b === 'number' && !Number.isInteger(b) ? b : BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const TWO_32 = 2 ** 32;

/**
 * A search key of integers as SQLite's 64-bit values split in two: the upper 32 bits signed, the lower unsigned.
 * Index cells are compared with it without decoding them (no array, no bigint per cell): a listing compares
 * and reads a cell for every entry, and the path keys are full 64-bit values.
 */
export interface IntKey {
  readonly hi: readonly number[];
  readonly lo: readonly number[];
}

/** `values` as an {@link IntKey}, or undefined when one is not an integer of 64 bits. */
export function intKey(values: readonly Value[]): IntKey | undefined {
  const hi: number[] = [];
  const lo: number[] = [];
  for (const v of values) {
    if (typeof v === 'bigint') {
      if (BigInt.asIntN(64, v) !== v) return undefined;
      hi.push(Number(BigInt.asIntN(32, v >> 32n)));
      lo.push(Number(BigInt.asUintN(32, v)));
    } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
      const h = Math.floor(v / TWO_32);
      hi.push(h);
      lo.push(v - h * TWO_32);
    } else return undefined;
  }
  return { hi, lo };
}

/**
 * Compares the leading values of a record with `key` as SQLite orders integers; NaN when one of them is not an
 * integer (the caller then decodes the record and compares it in full).
 */
export function compareIntKey(b: Uint8Array, key: IntKey): number {
  const headerSize = headerOf(b);
  let h = cursor.end;
  let p = headerSize;
  for (let k = 0; k < key.hi.length; k++) {
    if (h >= headerSize) return NaN;
    const t = readVarint(b, h);
    h = cursor.end;
    let vh: number;
    let vl: number;
    let n = 0;
    if (t >= 1 && t <= 6) {
      n = INT_BYTES[t]!;
      if (p + n > b.length) throw corrupt('record value past its payload');
      if (n === 8) {
        vh = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >> 0;
        vl = b[p + 4]! * 0x1000000 + ((b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!);
      } else {
        const v = readInt(b, p, n) as number;
        vh = Math.floor(v / TWO_32);
        vl = v - vh * TWO_32;
      }
    } else if (t === 8 || t === 9) {
      vh = 0;
      vl = t - 8;
    } else return NaN;
    if (vh !== key.hi[k]) return vh < key.hi[k]! ? -1 : 1;
    if (vl !== key.lo[k]) return vl < key.lo[k]! ? -1 : 1;
    p += n;
  }
  return 0;
}

/**
 * The last value of a record that must hold `count` values and end with an integer (an index cell's rowid),
 * read without decoding the others; undefined when the record is not so.
 */
export function lastInteger(b: Uint8Array, count: number): Rowid | undefined {
  const headerSize = headerOf(b);
  let h = cursor.end;
  let p = headerSize;
  for (let k = 0; k < count; k++) {
    if (h >= headerSize) return undefined;
    const t = readVarint(b, h);
    h = cursor.end;
    const n = valueSize(t);
    if (p + n > b.length) throw corrupt('record value past its payload');
    if (k === count - 1) {
      if (h !== headerSize) return undefined;
      if (t >= 1 && t <= 6) return readInt(b, p, n);
      return t === 8 || t === 9 ? t - 8 : undefined;
    }
    p += n;
  }
  return undefined;
}
