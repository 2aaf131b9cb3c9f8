/**
 * Catalog rows are keyed by the MD5 of their path, split into two signed 64-bit integers taken little-endian from
 * the digest (`md5path_1`, `md5path_2`); the root is the empty path.
 * @module
 */
import { encodeName } from './byte-names.js';
import { smallDigest } from '../crypto/small-hash.js';

/** The two halves of an MD5 path key, as SQLite stores them (signed 64-bit). */
export type PathKey = readonly [bigint, bigint];

/** MD5 path key of a catalog-relative path (`''` for the root, else `/a/b`; the MD5 is of the path's bytes). */
export function pathKey(path: string): PathKey {
  const d = smallDigest('md5', encodeName(path));
  return [d.readBigInt64LE(0), d.readBigInt64LE(8)];
}
