/**
 * The RSA public key inside a DER structure: a SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`), a PKCS#1 RSAPublicKey
 * (`BEGIN RSA PUBLIC KEY`) or an X.509 certificate's. Read here rather than by node:crypto, whose loading costs a
 * warm command about 8 ms of 110. Strict DER: definite lengths in their shortest form, nothing past the end of a
 * structure; anything else throws, and the caller may hand the bytes to node:crypto instead (lib/crypto/rsa.ts),
 * so a key OpenSSL accepts is never refused for this reader's sake.
 * @module
 */

/** One element: its tag byte, where it begins (the tag) and where its contents lie in the buffer. */
interface Element {
  tag: number;
  at: number;
  start: number;
  end: number;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const NULL = 0x05;
const OID = 0x06;
/** `[0]` constructed: the version of a certificate's TBSCertificate. */
const CONTEXT_0 = 0xa0;
/** 1.2.840.113549.1.1.1, rsaEncryption. */
const RSA_ENCRYPTION = Buffer.from('2a864886f70d010101', 'hex');

/** Reads the element at `at`, which must end at or before `limit`. */
function element(der: Uint8Array, at: number, limit: number): Element {
  if (at + 2 > limit) throw new Error('DER: truncated');
  const tag = der[at]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: long tags are not used in keys');
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    if (der[start]! === 0 || len < 0x80) throw new Error('DER: length not in its shortest form');
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new Error('DER: element runs past its parent');
  return { tag, at, start, end };
}

/** The elements directly inside a constructed one, in order. */
function children(der: Uint8Array, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.start; at < parent.end;) {
    const e = element(der, at, parent.end);
    out.push(e);
    at = e.end;
  }
  return out;
}

function expect(e: Element | undefined, tag: number, what: string): Element {
  if (!e || e.tag !== tag) throw new Error(`DER: expected ${what}`);
  return e;
}

/** A positive INTEGER as a BigInt (the leading zero byte DER puts before a high bit is allowed). */
function positive(der: Uint8Array, e: Element): bigint {
  if (e.end === e.start) throw new Error('DER: empty INTEGER');
  if (der[e.start]! & 0x80) throw new Error('DER: negative INTEGER');
  if (der[e.start] === 0 && e.end - e.start > 1 && !(der[e.start + 1]! & 0x80)) throw new Error('DER: INTEGER not minimal');
  const hex = Buffer.from(der.buffer, der.byteOffset + e.start, e.end - e.start).toString('hex');
  return BigInt(`0x${hex}`);
}

/** The whole of `der` as one element of `tag`. */
function whole(der: Uint8Array, tag: number, what: string): Element {
  const e = expect(element(der, 0, der.length), tag, what);
  if (e.end !== der.length) throw new Error('DER: bytes after the end');
  return e;
}

/**
 * An AlgorithmIdentifier checked all through (an OID and optional parameters, every length in its shortest
 * form): OpenSSL re-encodes a certificate's outer signature fields, and its fingerprint is of those bytes, so only
 * where they are canonical are the bytes read here the bytes it would hash.
 */
function algorithm(der: Uint8Array, e: Element | undefined): void {
  const [oid, params, ...more] = children(der, expect(e, SEQUENCE, 'AlgorithmIdentifier'));
  expect(oid, OID, 'algorithm');
  if (more.length) throw new Error('DER: extra fields in AlgorithmIdentifier');
  if (params && params.tag === SEQUENCE) children(der, params);
  else if (params && (params.tag !== NULL || params.end !== params.start)) throw new Error('DER: unexpected algorithm parameters');
}

/** n and e of a PKCS#1 RSAPublicKey element. */
function rsaPublicKey(der: Uint8Array, seq: Element): { n: bigint; e: bigint } {
  const [n, e, ...rest] = children(der, expect(seq, SEQUENCE, 'RSAPublicKey'));
  if (rest.length) throw new Error('DER: extra fields in RSAPublicKey');
  return { n: positive(der, expect(n, INTEGER, 'modulus')), e: positive(der, expect(e, INTEGER, 'exponent')) };
}

/** n and e of a SubjectPublicKeyInfo element holding an RSA key. */
function spkiKey(der: Uint8Array, spki: Element): { n: bigint; e: bigint } {
  const [alg, bits, ...rest] = children(der, expect(spki, SEQUENCE, 'SubjectPublicKeyInfo'));
  if (rest.length) throw new Error('DER: extra fields in SubjectPublicKeyInfo');
  const [oid, params, ...more] = children(der, expect(alg, SEQUENCE, 'AlgorithmIdentifier'));
  const o = expect(oid, OID, 'algorithm');
  if (!Buffer.from(der.buffer, der.byteOffset + o.start, o.end - o.start).equals(RSA_ENCRYPTION)) throw new Error('DER: not an RSA key');
  if (more.length || (params && (params.tag !== NULL || params.end !== params.start))) throw new Error('DER: bad RSA parameters');
  const b = expect(bits, BIT_STRING, 'subjectPublicKey');
  if (b.end === b.start || der[b.start] !== 0) throw new Error('DER: key bits not whole bytes');
  const inner = expect(element(der, b.start + 1, b.end), SEQUENCE, 'RSAPublicKey');
  if (inner.end !== b.end) throw new Error('DER: bytes after the key');
  return rsaPublicKey(der, inner);
}

/** n and e of a DER public key: SubjectPublicKeyInfo, or PKCS#1 RSAPublicKey when `pkcs1`. */
export function rsaFromPublicKeyDer(der: Uint8Array, pkcs1: boolean): { n: bigint; e: bigint } {
  const top = whole(der, SEQUENCE, pkcs1 ? 'RSAPublicKey' : 'SubjectPublicKeyInfo');
  return pkcs1 ? rsaPublicKey(der, top) : spkiKey(der, top);
}

/**
 * n and e of the RSA key in a DER X.509 certificate, and the DER of its TBSCertificate's SubjectPublicKeyInfo.
 */
export function rsaFromCertificateDer(der: Uint8Array): { n: bigint; e: bigint; spki: Uint8Array } {
  const [tbs, sigAlg, sig, ...rest] = children(der, whole(der, SEQUENCE, 'Certificate'));
  if (rest.length || !sigAlg || !sig) throw new Error('DER: not a certificate');
  algorithm(der, sigAlg);
  const s = expect(sig, BIT_STRING, 'signature');
  if (s.end === s.start || der[s.start] !== 0) throw new Error('DER: signature not whole bytes');
  const fields = children(der, expect(tbs, SEQUENCE, 'TBSCertificate'));
  // [0] version (optional), serial, signature, issuer, validity, subject, subjectPublicKeyInfo.
  const spki = expect(fields[fields[0]?.tag === CONTEXT_0 ? 6 : 5], SEQUENCE, 'SubjectPublicKeyInfo');
  return { ...spkiKey(der, spki), spki: der.subarray(spki.at, spki.end) };
}

/**
 * The DER bytes of every PEM block of `label` in a text, in order, up to a block without its END line (one pass
 * over the text, whatever it holds: a certificate comes from the network before it is checked).
 */
export function pemBlocks(text: string, label: RegExp): Array<{ label: string; der: Buffer }> {
  const out: Array<{ label: string; der: Buffer }> = [];
  for (let at = text.indexOf('-----BEGIN '); at >= 0; at = text.indexOf('-----BEGIN ', at)) {
    const head = /^-----BEGIN ([A-Z0-9 ]{1,64})-----/.exec(text.slice(at, at + 80));
    if (!head) {
      at += 11;
      continue;
    }
    const name = head[1]!;
    const start = at + head[0].length;
    const end = text.indexOf(`-----END ${name}-----`, start);
    if (end < 0) break;
    at = end + name.length + 14;
    if (!label.test(name)) continue;
    const body = text.slice(start, end).replace(/[ \t\r\n]+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) throw new Error(`PEM: bad base64 in ${name}`);
    out.push({ label: name, der: Buffer.from(body, 'base64') });
  }
  return out;
}
