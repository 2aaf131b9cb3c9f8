/**
 * Names made from text (a user's shadow area, a job's profile file): hexadecimal SHA-256 by @noble/hashes' SHA-2
 * module alone. `exec` names both before its command starts, and the other hashes' modules (small-hash.ts) cost
 * it most of a millisecond to set up.
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js';

/** The first `hexDigits` hexadecimal digits of the SHA-256 of `text` (UTF-8). */
export function nameHash(text: string, hexDigits: number): string {
  return Buffer.from(sha256(Buffer.from(text))).toString('hex').slice(0, hexDigits);
}
