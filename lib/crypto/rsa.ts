/**
 * RSA signature checks done with BigInt arithmetic, so that they never depend on the host's OpenSSL policy (some
 * distributions refuse SHA-1 signatures system-wide, and CernVM-FS manifests are signed with SHA-1). Keys and
 * certificates are decoded by lib/crypto/der.ts, and by node:crypto (which only decodes and never judges the
 * algorithm) where that strict reader refuses them: a warm command then never loads node:crypto.
 * @module
 */
import type { KeyObject } from 'node:crypto';
import { lazyCrypto } from '../lazy.js';
import { pemBlocks, rsaFromCertificateDer, rsaFromPublicKeyDer } from './der.js';
import { smallDigest } from './small-hash.js';
import { hashBytes, type ContentHash, type HashAlgorithm } from '../format/hash.js';

/** An RSA public key as numbers. */
export interface RsaPublicKey {
  readonly n: bigint;
  readonly e: bigint;
  /** Modulus length in bytes. */
  readonly size: number;
  /** SPKI PEM, for display (`user.pubkeys`). */
  readonly pem: string;
}

function b64urlToBigInt(s: string): bigint {
  return BigInt('0x' + (Buffer.from(s, 'base64url').toString('hex') || '0'));
}

/** Converts a node:crypto public key into numbers. */
export function rsaFromKeyObject(key: KeyObject): RsaPublicKey {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'RSA' || !jwk.n || !jwk.e) throw new Error('not an RSA public key');
  const n = b64urlToBigInt(jwk.n);
  return { n, e: b64urlToBigInt(jwk.e), size: Math.ceil(n.toString(16).length / 2), pem: key.export({ format: 'pem', type: 'spki' }).toString() };
}

/** n and e as a key; its PEM (SPKI) made by node:crypto only if asked for (`user.pubkeys`). */
function rsaFromNumbers({ n, e }: { n: bigint; e: bigint }, der: Buffer, pkcs1: boolean): RsaPublicKey {
  let pem: string | undefined;
  return {
    n,
    e,
    size: Math.ceil(n.toString(16).length / 2),
    get pem() {
      return (pem ??= lazyCrypto().createPublicKey({ key: der, format: 'der', type: pkcs1 ? 'pkcs1' : 'spki' }).export({ format: 'pem', type: 'spki' }).toString());
    },
  };
}

/** Reads every RSA public key in a PEM text (a .pub file may hold several). */
export function rsaKeysFromPem(pem: string): RsaPublicKey[] {
  const blocks = pem.match(/-----BEGIN (?:RSA )?PUBLIC KEY-----[\s\S]+?-----END (?:RSA )?PUBLIC KEY-----/g) ?? [];
  return blocks.map((b) => {
    try {
      const [{ label, der }] = pemBlocks(b, /^(RSA )?PUBLIC KEY$/) as [{ label: string; der: Buffer }];
      const pkcs1 = label === 'RSA PUBLIC KEY';
      return rsaFromNumbers(rsaFromPublicKeyDer(der, pkcs1), der, pkcs1);
    } catch {
      return rsaFromKeyObject(lazyCrypto().createPublicKey(b)); // what the strict reader refuses, OpenSSL judges
    }
  });
}

/** A parsed X.509 certificate: its RSA key and its fingerprint in the algorithm the whitelist uses. */
export interface Certificate {
  readonly key: RsaPublicKey;
  fingerprint(algorithm: HashAlgorithm): ContentHash;
}

/** Parses a PEM or DER certificate. */
export function parseCertificate(bytes: Uint8Array): Certificate {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  // Certificates are a few KB; anything far larger is left to OpenSSL whole.
  if (buf.length <= 64 * 1024) try {
    const der = buf[0] === 0x30 ? buf : pemBlocks(buf.toString('latin1'), /^CERTIFICATE$/)[0]?.der;
    if (der) {
      const key = rsaFromCertificateDer(der);
      return { key: rsaFromNumbers(key, Buffer.from(key.spki), false), fingerprint: (a) => hashBytes(der, a) };
    }
  } catch {
    // what the strict reader refuses, OpenSSL judges
  }
  const x = new (lazyCrypto().X509Certificate)(buf);
  const der = x.raw;
  return { key: rsaFromKeyObject(x.publicKey), fingerprint: (a) => hashBytes(der, a) };
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return r;
}

/** Applies the public key to a signature (s^e mod n) and strips PKCS#1 type-1 padding; null if malformed. */
export function rsaRecover(key: RsaPublicKey, signature: Uint8Array): Buffer | null {
  if (signature.length !== key.size) return null;
  const s = BigInt('0x' + Buffer.from(signature).toString('hex'));
  if (s >= key.n) return null;
  const hex = modPow(s, key.e, key.n).toString(16).padStart(key.size * 2, '0');
  const em = Buffer.from(hex, 'hex');
  if (em[0] !== 0 || em[1] !== 1) return null;
  let i = 2;
  while (i < em.length && em[i] === 0xff) i++;
  if (i < 10 || i >= em.length || em[i] !== 0) return null;
  return em.subarray(i + 1);
}

/** Raw PKCS#1 v1.5 check: the recovered payload equals `expected` (the whitelist's scheme: no DigestInfo). */
export function verifyRaw(key: RsaPublicKey, signature: Uint8Array, expected: Uint8Array): boolean {
  const payload = rsaRecover(key, signature);
  return payload !== null && payload.equals(expected);
}

const SHA1_DIGEST_INFO = Buffer.from('3021300906052b0e03021a05000414', 'hex');

/** RSASSA-PKCS1-v1_5 with SHA-1 (the manifest's scheme): payload is DigestInfo(SHA-1) ‖ SHA-1(message). */
export function verifySha1(key: RsaPublicKey, signature: Uint8Array, message: Uint8Array): boolean {
  const payload = rsaRecover(key, signature);
  if (payload === null) return false;
  const expected = Buffer.concat([SHA1_DIGEST_INFO, smallDigest('sha1', message)]);
  return payload.equals(expected);
}

/** Pads a payload for signing with PKCS#1 type 1 (used by the publisher with a private key via node:crypto). */
export function sha1DigestInfo(message: Uint8Array): Buffer {
  return Buffer.concat([SHA1_DIGEST_INFO, smallDigest('sha1', message)]);
}
