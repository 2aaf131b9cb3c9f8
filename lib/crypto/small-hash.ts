/**
 * Digests of small inputs (signed letters, certificates, catalog paths, marker names, the names of a user's shadow
 * area and profiles) without node:crypto, whose loading costs a warm command about 8 ms of 110: @noble/hashes until something has loaded node:crypto for
 * larger work (a download), which is then used, being faster per call.
 * @module
 */
import { md5, ripemd160, sha1 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { shake128 } from '@noble/hashes/sha3.js';
import { loadedCrypto } from '../lazy.js';

/** The algorithms of {@link smallDigest}, by node:crypto's names. */
export type SmallAlgorithm = 'md5' | 'sha1' | 'ripemd160' | 'sha256' | 'shake128';

/** The digest of `bytes`; `outputLength` (bytes) for shake128 only. */
export function smallDigest(algorithm: SmallAlgorithm, bytes: Uint8Array, outputLength = 16): Buffer {
  const crypto = loadedCrypto();
  // The one-shot form where it serves (not shake128, whose length it cannot take): no hasher object per call.
  if (crypto && algorithm !== 'shake128' && typeof crypto.hash === 'function') return crypto.hash(algorithm, bytes, 'buffer');
  if (crypto) return crypto.createHash(algorithm, algorithm === 'shake128' ? { outputLength } : {}).update(bytes).digest();
  return nobleDigest(algorithm, bytes, outputLength);
}

/** {@link smallDigest} by @noble/hashes alone. */
export function nobleDigest(algorithm: SmallAlgorithm, bytes: Uint8Array, outputLength = 16): Buffer {
  const d = algorithm === 'md5' ? md5(bytes) : algorithm === 'sha1' ? sha1(bytes) : algorithm === 'ripemd160' ? ripemd160(bytes) : algorithm === 'sha256' ? sha256(bytes) : shake128(bytes, { dkLen: outputLength });
  return Buffer.from(d.buffer, d.byteOffset, d.length);
}
