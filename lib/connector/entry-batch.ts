/**
 * A directory's new entries packed into one buffer for the native batch (`makeEntries`, addon/files.cc), which
 * reads it in its worker thread. One buffer instead of an array of arrays: reading eight properties of every
 * entry through N-API on the main thread cost about 3 µs an entry, more than decoding its catalog row.
 *
 * Layout of an entry, little-endian: kind u8 (0 file, 1 directory, 2 symlink), mode u32, size f64, mtime i64
 * (nanoseconds), name (u16 length, bytes), target (u16 length, bytes; symlinks), attribute count u16, then each
 * attribute as name (u16 length, bytes) and value (u32 length, bytes).
 * @module
 */
import { encodeName } from '../format/byte-names.js';

/** The kinds the native batch makes. */
export const BatchKind = { File: 0, Dir: 1, Symlink: 2 } as const;
export type BatchKind = (typeof BatchKind)[keyof typeof BatchKind];

const FIXED = 1 + 4 + 8 + 8 + 2 + 2 + 2;

/** Entries to make, packed as addon/files.cc reads them. */
export class EntryBatch {
  private buf: Buffer;
  private at = 0;
  /** Entries packed so far. */
  count = 0;

  constructor(expected = 64) {
    this.buf = Buffer.allocUnsafe(Math.max(256, expected * 48));
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }

  /** Writes a name or path as u16 length and its bytes (the library's string form, see format/byte-names.ts). */
  private text(s: string): void {
    // Worst case 3 bytes per UTF-16 unit; names are at most 255 bytes, targets at most PATH_MAX.
    this.room(2 + s.length * 3);
    const n = /[\uD800-\uDFFF]/.test(s) ? encodeName(s).copy(this.buf, this.at + 2) : this.buf.write(s, this.at + 2, 'utf8');
    this.buf.writeUInt16LE(n, this.at);
    this.at += 2 + n;
  }

  /** Adds an entry; `target` for symlinks, `attributes` for files and directories. */
  add(name: string, kind: BatchKind, size: number, mode: number, mtimeNs: bigint, target: string | null, attributes: ReadonlyArray<readonly [string, Buffer]>): void {
    this.room(FIXED);
    const b = this.buf;
    b[this.at] = kind;
    b.writeUInt32LE(mode, this.at + 1);
    b.writeDoubleLE(size, this.at + 5);
    b.writeBigInt64LE(mtimeNs, this.at + 13);
    this.at += 21;
    this.text(name);
    if (target === null) {
      this.room(2);
      this.buf.writeUInt16LE(0, this.at);
      this.at += 2;
    } else {
      this.text(target);
    }
    this.room(2);
    this.buf.writeUInt16LE(attributes.length, this.at);
    this.at += 2;
    for (const [k, v] of attributes) {
      this.text(k);
      this.room(4 + v.length);
      this.buf.writeUInt32LE(v.length, this.at);
      v.copy(this.buf, this.at + 4);
      this.at += 4 + v.length;
    }
    this.count++;
  }

  /** The packed entries. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}
