/**
 * A self-signed X.509 certificate for the repository's certificate key. node:crypto can parse certificates but not
 * create them, so the few DER constructs a certificate needs are encoded here by hand.
 * @module
 */
import { randomBytes, sign, type KeyObject } from 'node:crypto';

/** DER type-length-value with a definite length (short form below 128 bytes, long form above). */
function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Uint8Array[]): Buffer => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);
const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const bitString = (bytes: Uint8Array): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));

/** An unsigned big-endian integer, with the leading zero DER wants when the top bit is set. */
function integer(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = Buffer.from(bytes.subarray(i));
  return tlv(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const group: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) group.unshift(0x80 | (v & 0x7f));
    out.push(...group);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime up to 2049, GeneralizedTime from 2050 on, as RFC 5280 requires. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2) + 'Z', 'latin1')) : tlv(0x18, Buffer.from(iso + 'Z', 'latin1'));
}

const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const COMMON_NAME = '2.5.4.3';

/** What goes into the certificate. */
export interface CertificateRequest {
  /** The key that signs the certificate (its own private key: the certificate is self-signed). */
  readonly privateKey: KeyObject;
  /** The matching public key, placed in the certificate. */
  readonly publicKey: KeyObject;
  /** Common name of issuer and subject. */
  readonly commonName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A certificate in both encodings. */
export interface EncodedCertificate {
  readonly der: Buffer;
  /** PEM text with a trailing newline, as openssl writes it. */
  readonly pem: string;
}

/** Builds and signs (sha256WithRSAEncryption) a version 3 certificate with issuer = subject. */
export function createSelfSignedCertificate(req: CertificateRequest): EncodedCertificate {
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // positive, and at most 20 octets as RFC 5280 demands
  if (serial[0] === 0) serial[0] = 1;
  const algorithm = sequence(oid(SHA256_WITH_RSA), nullValue());
  const name = sequence(set(sequence(oid(COMMON_NAME), utf8String(req.commonName))));
  const spki = req.publicKey.export({ type: 'spki', format: 'der' });
  const tbs = sequence(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    algorithm,
    name,
    sequence(time(req.notBefore), time(req.notAfter)),
    name,
    spki,
  );
  const signature = sign('sha256', tbs, req.privateKey);
  const der = sequence(tbs, algorithm, bitString(signature));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return { der, pem: `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n` };
}
