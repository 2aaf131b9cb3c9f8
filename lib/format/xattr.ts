/**
 * The xattr BLOB of a catalog entry (XattrList serialization): a version byte (1), an entry count byte, then for
 * each entry a key-length byte, a value-length byte, the key and the value. One-byte lengths are why the genuine
 * publisher stores a 256-byte value as empty.
 * @module
 */
import { ioError } from '../errors.js';

/** Extended attributes as name → raw value. */
export type Xattrs = Map<string, Buffer>;

/** Decodes an xattr BLOB; hostile input raises EIO instead of reading out of bounds. */
export function parseXattrs(blob: Uint8Array): Xattrs {
  const out: Xattrs = new Map();
  if (blob.length === 0) return out;
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.length);
  if (b.length < 2 || b[0] !== 1) throw ioError('catalog-format', `xattr blob: unknown version ${b[0]}`);
  const count = b[1]!;
  let p = 2;
  for (let i = 0; i < count; i++) {
    if (p + 2 > b.length) throw ioError('catalog-format', 'xattr blob truncated');
    const kl = b[p]!, vl = b[p + 1]!;
    p += 2;
    if (p + kl + vl > b.length) throw ioError('catalog-format', 'xattr blob truncated');
    const key = b.toString('utf8', p, p + kl);
    out.set(key, Buffer.from(b.subarray(p + kl, p + kl + vl)));
    p += kl + vl;
  }
  return out;
}

/**
 * Encodes xattrs the way the genuine publisher does: keys sorted, at most 255 entries, a key of at most 255 bytes;
 * a value longer than 256 bytes is dropped and one of exactly 256 bytes is stored empty (its uint8 length wraps).
 */
export function serializeXattrs(xattrs: Xattrs): Buffer | null {
  const keys = [...xattrs.keys()].filter((k) => {
    const kl = Buffer.byteLength(k);
    return kl > 0 && kl < 256 && xattrs.get(k)!.length <= 256;
  }).sort();
  if (keys.length === 0) return null;
  const parts: Buffer[] = [Buffer.from([1, Math.min(keys.length, 255)])];
  for (const k of keys.slice(0, 255)) {
    const key = Buffer.from(k, 'utf8');
    const value = xattrs.get(k)!;
    const stored = value.length === 256 ? Buffer.alloc(0) : value;
    parts.push(Buffer.from([key.length, stored.length]), key, stored);
  }
  return Buffer.concat(parts);
}
