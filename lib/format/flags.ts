/**
 * Bits of the catalog `flags` column (catalog_sql.h) and what they say about an entry.
 * @module
 */
import { HASH_ALGORITHMS, type HashAlgorithm } from './hash.js';
import { ioError } from '../errors.js';

/** Flag bits of a catalog entry. */
export const Flag = {
  Directory: 1,
  NestedMountpoint: 2,
  File: 4,
  Link: 8,
  FileSpecial: 16,
  NestedRoot: 32,
  FileChunk: 64,
  FileExternal: 128,
  BindMountpoint: 0x4000,
  Hidden: 0x8000,
  DirectIo: 0x10000,
} as const;

const HASH_SHIFT = 8;
const COMPRESSION_SHIFT = 11;

/** How an object's bytes are stored on the server. */
export type Compression = 'zlib' | 'none';

/** The content-hash algorithm recorded in bits 8-10 (0 = SHA-1, 1 = RIPEMD-160, 2 = SHAKE-128). */
export function hashAlgorithmOf(flags: number): HashAlgorithm {
  const i = (flags >>> HASH_SHIFT) & 7;
  const a = HASH_ALGORITHMS[i];
  if (!a) throw ioError('catalog-format', `unknown hash algorithm ${i} in catalog flags ${flags}`);
  return a;
}

/** The compression recorded in bits 11-13 (0 = zlib, 1 = none). */
export function compressionOf(flags: number): Compression {
  const c = (flags >>> COMPRESSION_SHIFT) & 7;
  if (c === 0) return 'zlib';
  if (c === 1) return 'none';
  throw ioError('catalog-format', `unknown compression ${c} in catalog flags ${flags}`);
}

/** Flag bits that encode a hash algorithm and compression, for the publisher. */
export function encodeContentFlags(algorithm: HashAlgorithm, compression: Compression): number {
  return (HASH_ALGORITHMS.indexOf(algorithm) << HASH_SHIFT) | ((compression === 'none' ? 1 : 0) << COMPRESSION_SHIFT);
}
