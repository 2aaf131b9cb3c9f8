/**
 * The trust chain, as the genuine client checks it: the whitelist is signed by a master key, names the repository
 * and has not expired; it lists the fingerprint of the certificate; the certificate's key signed the manifest,
 * which names the repository. Each failed check is its own error reason.
 * @module
 */
import { ioError } from './errors.js';
import { hashToString } from './format/hash.js';
import type { Manifest } from './format/manifest.js';
import { parseWhitelist, type Whitelist } from './format/whitelist.js';
import { parseCertificate, verifyRaw, verifySha1, type Certificate, type RsaPublicKey } from './crypto/rsa.js';

/** A verified whitelist. */
export function verifyWhitelist(raw: Uint8Array, fqrn: string, masterKeys: readonly RsaPublicKey[], now: Date): Whitelist {
  const wl = named(parseWhitelist(raw), fqrn);
  const hashText = Buffer.from(wl.letter.hashText, 'latin1');
  if (!masterKeys.some((k) => verifyRaw(k, wl.letter.signature, hashText))) {
    throw ioError('whitelist-signature', `whitelist of ${fqrn}: signature does not verify with any of the ${masterKeys.length} master key(s)`);
  }
  return inForce(wl, fqrn, now);
}

function named(wl: Whitelist, fqrn: string): Whitelist {
  if (wl.fqrn !== fqrn) throw ioError('whitelist-name', `whitelist of ${fqrn} names another repository: '${wl.fqrn}'`);
  return wl;
}

/**
 * The checks a whitelist must pass at every open, even one whose signature passed before (lib/open/verified-memo.ts):
 * it names the repository and has not expired.
 */
export function inForce(wl: Whitelist, fqrn: string, now: Date): Whitelist {
  if (named(wl, fqrn).expires.getTime() <= now.getTime()) {
    throw ioError('whitelist-expired', `whitelist of ${fqrn} expired on ${wl.expires.toISOString()}`);
  }
  return wl;
}

/** A certificate checked against the whitelist's fingerprints. */
export function verifyCertificate(pem: Uint8Array, wl: Whitelist, fqrn: string): Certificate {
  let cert: Certificate;
  try {
    cert = parseCertificate(pem);
  } catch (e) {
    throw ioError('certificate-format', `certificate of ${fqrn} cannot be parsed`, e);
  }
  const listed = wl.fingerprints.some((f) => cert.fingerprint(f.algorithm).hex === f.hex);
  if (!listed) {
    throw ioError('certificate-not-whitelisted', `certificate of ${fqrn} (${hashToString(cert.fingerprint('sha1'))}) is not on the whitelist`);
  }
  return cert;
}

/** A parsed manifest whose signature is checked with the certificate. */
export function verifyManifest(m: Manifest, fqrn: string, cert: Certificate): Manifest {
  namesRepository(m, fqrn);
  if (!verifySha1(cert.key, m.letter.signature, Buffer.from(m.letter.hashText, 'latin1'))) {
    throw ioError('manifest-signature', `manifest of ${fqrn}: signature does not verify with the whitelisted certificate`);
  }
  return m;
}

/** A manifest names the repository it is the manifest of (checked at every open). */
export function namesRepository(m: Manifest, fqrn: string): Manifest {
  if (m.fqrn !== fqrn) throw ioError('manifest-name', `manifest of ${fqrn} names another repository: '${m.fqrn}'`);
  return m;
}
