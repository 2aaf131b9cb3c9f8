/**
 * Content hashes as CernVM-FS names them: a hex digest plus an algorithm suffix (`-rmd160`, `-shake128`, none for
 * SHA-1), and the object paths built from them. Pure functions, plus incremental hashers backed by node:crypto
 * (measured faster than the pure-JS ones, see bench/).
 * @module
 */
import type { Hash } from 'node:crypto';
import { ioError } from '../errors.js';
import { lazyCrypto } from '../lazy.js';
import { smallDigest } from '../crypto/small-hash.js';

/** The content-hash algorithms the format allows. All produce 20-byte digests. */
export type HashAlgorithm = 'sha1' | 'rmd160' | 'shake128';

/** The ordered list used by the catalog flags (bits 8-10 hold the index). */
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ['sha1', 'rmd160', 'shake128'];

/** Digest length in bytes for every supported algorithm. */
export const DIGEST_BYTES = 20;

/** A content hash: algorithm and lower-case hex digest. */
export interface ContentHash {
  readonly algorithm: HashAlgorithm;
  readonly hex: string;
}

/** Object-name suffix letters (appended after the algorithm suffix). */
export type ObjectSuffix = '' | 'C' | 'H' | 'X' | 'P' | 'L' | 'M';

const HEX40 = /^[0-9a-f]{40}$/;

/** Parses `hex`, `hex-rmd160` or `hex-shake128` (case-insensitive), as found in manifests and catalogs. */
export function parseHash(text: string): ContentHash {
  const s = text.trim().toLowerCase();
  const dash = s.indexOf('-');
  const hex = dash < 0 ? s : s.slice(0, dash);
  const suffix = dash < 0 ? '' : s.slice(dash + 1);
  const algorithm: HashAlgorithm | undefined = suffix === '' ? 'sha1' : suffix === 'rmd160' ? 'rmd160' : suffix === 'shake128' ? 'shake128' : undefined;
  if (!algorithm || !HEX40.test(hex)) throw ioError('manifest-format', `not a content hash: '${text}'`);
  return { algorithm, hex };
}

/** The textual form used in manifests and object names: hex plus `-rmd160`/`-shake128` where not SHA-1. */
export function hashToString(h: ContentHash): string {
  return h.algorithm === 'sha1' ? h.hex : `${h.hex}-${h.algorithm}`;
}

/** A hash from a catalog BLOB column (raw digest bytes) and the algorithm taken from the entry's flags. */
export function hashFromBytes(bytes: Uint8Array, algorithm: HashAlgorithm): ContentHash {
  if (bytes.length !== DIGEST_BYTES) throw ioError('catalog-format', `hash blob of ${bytes.length} bytes, expected ${DIGEST_BYTES}`);
  return { algorithm, hex: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex') };
}

/** Raw digest bytes of a hash, as stored in catalog BLOB columns. */
export function hashToBytes(h: ContentHash): Buffer {
  return Buffer.from(h.hex, 'hex');
}

/** Path of an object below the repository root URL: `data/ab/cdef…[-algo][suffix]`. */
export function objectPath(h: ContentHash, suffix: ObjectSuffix = ''): string {
  const name = hashToString(h);
  return `data/${name.slice(0, 2)}/${name.slice(2)}${suffix}`;
}

/** True when two hashes name the same object. */
export function hashEquals(a: ContentHash, b: ContentHash): boolean {
  return a.algorithm === b.algorithm && a.hex === b.hex;
}

/** An incremental hasher for one algorithm. */
export interface Hasher {
  update(chunk: Uint8Array): void;
  /** The finished digest; call once. */
  digest(): ContentHash;
}

function nodeHash(algorithm: HashAlgorithm): Hash {
  switch (algorithm) {
    case 'sha1': return lazyCrypto().createHash('sha1');
    case 'rmd160': return lazyCrypto().createHash('ripemd160');
    case 'shake128': return lazyCrypto().createHash('shake128', { outputLength: DIGEST_BYTES });
  }
}

/** Creates an incremental hasher. */
export function createHasher(algorithm: HashAlgorithm): Hasher {
  const h = nodeHash(algorithm);
  return {
    update(chunk) { h.update(chunk); },
    digest() { return { algorithm, hex: h.digest('hex') }; },
  };
}

/** Inputs up to this size are hashed by {@link smallDigest} (no node:crypto needed for a warm command's letters). */
const SMALL_INPUT = 64 * 1024;

/** Hashes a whole buffer at once. */
export function hashBytes(bytes: Uint8Array | string, algorithm: HashAlgorithm): ContentHash {
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  if (data.length <= SMALL_INPUT) {
    return { algorithm, hex: smallDigest(algorithm === 'rmd160' ? 'ripemd160' : algorithm, data, DIGEST_BYTES).toString('hex') };
  }
  const h = nodeHash(algorithm);
  h.update(data);
  return { algorithm, hex: h.digest('hex') };
}
