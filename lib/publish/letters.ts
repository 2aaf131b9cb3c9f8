/**
 * The two signed text files at the top of a repository: the whitelist (signed by the master key) and the
 * manifest (signed by the certificate key).
 * @module
 */
import { constants, privateEncrypt, type KeyObject } from 'node:crypto';
import { hashBytes, hashToString, type ContentHash, type HashAlgorithm } from '../format/hash.js';
import { buildLetter } from '../format/letter.js';
import { formatTimestamp14 } from '../format/whitelist.js';
import { sha1DigestInfo } from '../crypto/rsa.js';

/** The `R` line: MD5 of the empty root path, as every genuine manifest has it. */
const ROOT_PATH_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';

/** PKCS#1 v1.5 type-1 padding around `payload`, with the private key (what OpenSSL's RSA_private_encrypt does). */
function rsaPrivateEncrypt(key: KeyObject, payload: Buffer): Buffer {
  return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, payload);
}

/**
 * The certificate fingerprint line of a whitelist: upper-case colon-separated hex of the hash of the DER
 * certificate, with `-RMD160` / `-SHAKE128` appended for those algorithms (SignatureManager::FingerprintCertificate).
 */
export function certificateFingerprint(der: Uint8Array, algorithm: HashAlgorithm): string {
  const h = hashBytes(der, algorithm);
  const hex = h.hex.toUpperCase().match(/../g)!.join(':');
  return algorithm === 'sha1' ? hex : `${hex}-${algorithm.toUpperCase()}`;
}

/** What a whitelist says. */
export interface WhitelistSpec {
  readonly fqrn: string;
  readonly algorithm: HashAlgorithm;
  readonly certificateDer: Uint8Array;
  readonly created: Date;
  /** Days until expiry; negative gives an already expired whitelist. */
  readonly days: number;
  readonly masterKey: KeyObject;
}

/**
 * `.cvmfswhitelist`: the text, `--`, its hash, and a raw RSA signature of the hash text (no DigestInfo), as
 * Whitelist::CreateString signs it with the master key.
 */
export function buildWhitelist(w: WhitelistSpec): Buffer {
  const expires = new Date(w.created.getTime() + w.days * 86400_000);
  const text = `${formatTimestamp14(w.created)}\nE${formatTimestamp14(expires)}\nN${w.fqrn}\n${certificateFingerprint(w.certificateDer, w.algorithm)}\n`;
  return buildLetter(text, w.algorithm, (hashText) => rsaPrivateEncrypt(w.masterKey, hashText));
}

/** What a manifest says. */
export interface ManifestSpec {
  readonly fqrn: string;
  readonly algorithm: HashAlgorithm;
  readonly rootCatalog: ContentHash;
  /** Size of the uncompressed root catalog. */
  readonly rootCatalogSize: number;
  readonly ttl: number;
  readonly revision: number;
  readonly certificate: ContentHash;
  readonly history: ContentHash;
  /** Unix seconds. */
  readonly timestamp: number;
  readonly certificateKey: KeyObject;
}

/** The manifest text in the order Manifest::ExportString writes it. */
export function manifestText(m: Omit<ManifestSpec, 'certificateKey' | 'algorithm'>): string {
  return [
    `C${hashToString(m.rootCatalog)}`, `B${m.rootCatalogSize}`, `R${ROOT_PATH_MD5}`, `D${m.ttl}`, `S${m.revision}`,
    'Gno', 'Ano', `N${m.fqrn}`, `X${hashToString(m.certificate)}`, `H${hashToString(m.history)}`, `T${m.timestamp}`,
  ].join('\n') + '\n';
}

/**
 * `.cvmfspublished`, signed RSASSA-PKCS1-v1_5 with SHA-1 over the hash text. The DigestInfo is built here and
 * padded with privateEncrypt so that signing works on hosts whose OpenSSL policy refuses SHA-1 signatures.
 */
export function buildManifest(m: ManifestSpec): Buffer {
  return buildLetter(manifestText(m), m.algorithm, (hashText) => rsaPrivateEncrypt(m.certificateKey, sha1DigestInfo(hashText)));
}
