/**
 * What a full check of a repository's trust chain leaves in the cache, so that the next command on the same
 * cache does not do the same work again: the exact bytes of the whitelist and manifest that passed, and the
 * master keys they passed with. A warm command's JavaScript hashes the letters and the certificate on a cold JIT
 * and reads the certificate: about 4-5 ms of a 55 ms command (bench/README.md, group 15, stop 31).
 *
 * The memo vouches only for bytes equal to its own, under the very same keys: a changed key, whitelist or
 * manifest is checked in full again. What it never stands in for: the whitelist's expiry, the names, the TTL and
 * the rollback check, which are redone at every open. It lives in this user's own cache directory (a cache
 * directory others can write is only ever a verified mirror in front of it, lib/cache/location.ts), beside
 * the cached catalogs, which are trusted by their names without being hashed again: whoever can change the memo
 * can change those. Written atomically; a torn or foreign file vouches for nothing.
 * @module
 */
import type { RsaPublicKey } from '../crypto/rsa.js';

/** Names the checks a memo stands for: whatever the full check comes to require beyond them changes this line. */
const MAGIC = 'ucvmfs verified chain 1\n';

/** The master keys, as a memo names them: every modulus and exponent, sorted, so that the same set is the same text. */
export function keysIdentity(keys: readonly RsaPublicKey[]): string {
  return keys.map((k) => `${k.n.toString(16)}:${k.e.toString(16)}`).sort().join(',');
}

/** The memo's name in the cache directory. */
export function memoName(fqrn: string): string {
  return `verified.${fqrn}`;
}

function head(keys: string, whitelist: Uint8Array, manifest: Uint8Array): Buffer {
  return Buffer.from(`${MAGIC}${keys}\n${whitelist.length} ${manifest.length}\n`, 'latin1');
}

/** The memo of a whitelist and manifest that passed every check with the keys `keys` names. */
export function memoOf(keys: string, whitelist: Uint8Array, manifest: Uint8Array): Buffer {
  return Buffer.concat([head(keys, whitelist, manifest), whitelist, manifest]);
}

/** Whether `memo` vouches for exactly these bytes under exactly these keys. */
export function memoVouches(memo: Buffer | undefined, keys: string, whitelist: Uint8Array, manifest: Uint8Array): boolean {
  if (!memo) return false;
  const h = head(keys, whitelist, manifest);
  if (memo.length !== h.length + whitelist.length + manifest.length) return false;
  return memo.subarray(0, h.length).equals(h)
    && memo.subarray(h.length, h.length + whitelist.length).equals(whitelist)
    && memo.subarray(h.length + whitelist.length).equals(manifest);
}
