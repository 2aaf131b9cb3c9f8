/**
 * Keys, certificates and small digests read without node:crypto (lib/crypto/der.ts, lib/crypto/small-hash.ts)
 * give what node:crypto gives: the fixtures' keys and certificates as the genuine server tools made them, keys
 * and certificates made here and by openssl; malformed ones are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { pemBlocks, rsaFromCertificateDer, rsaFromPublicKeyDer } from '../lib/crypto/der.js';
import { parseCertificate, rsaKeysFromPem } from '../lib/crypto/rsa.js';
import { nobleDigest } from '../lib/crypto/small-hash.js';
import { loadedCrypto } from '../lib/lazy.js';
import { parseManifest } from '../lib/format/manifest.js';
import { objectPath } from '../lib/format/hash.js';
import { createSelfSignedCertificate } from '../lib/publish/x509.js';
import { fixtureNames, keyOf, tempDir, FIXTURES } from './helpers.js';

const b64 = (n: bigint) => Buffer.from(n.toString(16).padStart(2, '0').replace(/^(.(..)*)$/, '0$1'), 'hex').toString('base64url');
const numbers = (k: KeyObject) => {
  const jwk = k.export({ format: 'jwk' });
  return { n: jwk.n, e: jwk.e };
};
const same = (got: { n: bigint; e: bigint }, want: KeyObject, what: string) => assert.deepEqual({ n: b64(got.n), e: b64(got.e) }, numbers(want), what);

test('the fixtures\' master keys and certificates read as node:crypto reads them, without it', () => {
  for (const fqrn of fixtureNames()) {
    const pem = readFileSync(keyOf(fqrn), 'utf8');
    const blocks = pemBlocks(pem, /PUBLIC KEY$/);
    assert.ok(blocks.length > 0, fqrn);
    for (const { label, der } of blocks) same(rsaFromPublicKeyDer(der, label === 'RSA PUBLIC KEY'), createPublicKey({ key: der, format: 'der', type: label === 'RSA PUBLIC KEY' ? 'pkcs1' : 'spki' }), fqrn);
    const keys = rsaKeysFromPem(pem);
    same(keys[0]!, createPublicKey(pem), `${fqrn} through rsaKeysFromPem`);

    const srv = join(FIXTURES, fqrn, 'srv');
    const m = parseManifest(readFileSync(join(srv, '.cvmfspublished')));
    const certBytes = inflateSync(readFileSync(join(srv, objectPath(m.certificate, 'X'))));
    const x = new X509Certificate(certBytes);
    same(rsaFromCertificateDer(x.raw), x.publicKey, `${fqrn} certificate`);
    const cert = parseCertificate(certBytes);
    same(cert.key, x.publicKey, `${fqrn} certificate through parseCertificate`);
    assert.equal(cert.fingerprint('sha1').hex, x.fingerprint.replace(/:/g, '').toLowerCase());
    for (const a of ['rmd160', 'shake128'] as const) assert.equal(cert.fingerprint(a).hex, (a === 'rmd160' ? createHash('ripemd160') : createHash('shake128', { outputLength: 20 })).update(x.raw).digest('hex'));
  }
  // All of it without node:crypto (a fallback to it, or a digest through it, would have loaded it).
  assert.equal(loadedCrypto(), undefined);
  // The PEM shown for `user.pubkeys` is node:crypto's export, made when asked for.
  const pem = readFileSync(keyOf(fixtureNames()[0]!), 'utf8');
  assert.equal(rsaKeysFromPem(pem)[0]!.pem, createPublicKey(pem).export({ format: 'pem', type: 'spki' }).toString());
});

test('keys and certificates made here and by openssl: SPKI and PKCS#1, 1024 to 4096 bits, exponents 3 and 65537', () => {
  for (const [bits, e] of [[1024, 3], [2048, 65537], [4096, 65537], [2048, 3]] as const) {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: e });
    same(rsaFromPublicKeyDer(publicKey.export({ format: 'der', type: 'spki' }), false), publicKey, `${bits} spki`);
    same(rsaFromPublicKeyDer(publicKey.export({ format: 'der', type: 'pkcs1' }), true), publicKey, `${bits} pkcs1`);
    const both = `${publicKey.export({ format: 'pem', type: 'spki' })}${publicKey.export({ format: 'pem', type: 'pkcs1' })}`;
    for (const k of rsaKeysFromPem(both)) same(k, publicKey, `${bits} from a .pub with both`);
    const c = createSelfSignedCertificate({ privateKey, publicKey, commonName: 'x', notBefore: new Date(0), notAfter: new Date(2 ** 41) });
    same(rsaFromCertificateDer(c.der), publicKey, `${bits} certificate`);
    same(parseCertificate(Buffer.from(c.pem)).key, publicKey, `${bits} certificate PEM`);
  }
  const dir = tempDir();
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:3072', '-nodes', '-subj', '/CN=ucvmfs test/O=x', '-days', '30', '-keyout', join(dir, 'k'), '-out', join(dir, 'c'), '-addext', 'subjectAltName=DNS:example.org'], { encoding: 'utf8' });
  if (r.status === 0) {
    const pem = readFileSync(join(dir, 'c'));
    const x = new X509Certificate(pem);
    same(parseCertificate(pem).key, x.publicKey, 'openssl certificate');
    same(rsaFromCertificateDer(x.raw), x.publicKey, 'openssl certificate DER');
  } else assert.equal(r.error && (r.error as NodeJS.ErrnoException).code, 'ENOENT', r.stderr);
});

test('malformed keys and certificates are refused: every truncation, a long length, trailing bytes, an EC key', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const { der } = createSelfSignedCertificate({ privateKey, publicKey, commonName: 'x', notBefore: new Date(0), notAfter: new Date(2 ** 41) });
  for (let n = 0; n < der.length; n++) {
    assert.throws(() => rsaFromCertificateDer(der.subarray(0, n)), /DER/, `cut at ${n}`);
    assert.throws(() => parseCertificate(der.subarray(0, n)), Error, `parseCertificate cut at ${n}`);
  }
  assert.throws(() => rsaFromCertificateDer(Buffer.concat([der, Buffer.from([0])])), /after the end/);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  // The same length written with one byte more than it needs.
  const long = Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), spki.subarray(2)]);
  assert.throws(() => rsaFromPublicKeyDer(long, false), /shortest form/);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
  assert.throws(() => rsaFromPublicKeyDer(ec, false), /not an RSA key/);
  assert.throws(() => rsaKeysFromPem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString()), /not an RSA public key/);
  assert.throws(() => pemBlocks('-----BEGIN PUBLIC KEY-----\nA$==\n-----END PUBLIC KEY-----\n', /PUBLIC KEY/), /bad base64/);

  // A signature algorithm written with a longer length than it needs: OpenSSL re-encodes it, and the fingerprint
  // must be of its bytes, so this reader refuses it and OpenSSL reads it.
  const alg = Buffer.from('300d06092a864886f70d01010b0500', 'hex');
  const at = der.lastIndexOf(alg); // the outer one, after the TBSCertificate
  assert.ok(at > 0);
  const longAlg = Buffer.from('300e0681092a864886f70d01010b0500', 'hex');
  const body = Buffer.concat([der.subarray(4, at), longAlg, der.subarray(at + alg.length)]);
  const odd = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
  assert.throws(() => rsaFromCertificateDer(odd), /shortest form/);
  const x = new X509Certificate(odd);
  assert.equal(parseCertificate(odd).fingerprint('sha1').hex, createHash('sha1').update(x.raw).digest('hex'));
  assert.notEqual(createHash('sha1').update(x.raw).digest('hex'), createHash('sha1').update(odd).digest('hex'));

  // Hostile text (a certificate comes from the network unchecked): many BEGIN lines without an END, in one pass.
  const t0 = Date.now();
  assert.throws(() => parseCertificate(Buffer.from('-----BEGIN CERTIFICATE-----\n'.repeat(2_000))));
  assert.deepEqual(pemBlocks('-----BEGIN CERTIFICATE-----\n'.repeat(200_000), /CERTIFICATE/), []);
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms: a quadratic scan`);
});

test('small digests by @noble/hashes equal node:crypto\'s: md5, sha1, ripemd160, shake128 at block edges', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 65_536]) {
    const data = randomBytes(n);
    for (const a of ['md5', 'sha1', 'ripemd160', 'sha256'] as const) assert.equal(nobleDigest(a, data).toString('hex'), createHash(a).update(data).digest('hex'), `${a} of ${n}`);
    assert.equal(nobleDigest('shake128', data, 20).toString('hex'), createHash('shake128', { outputLength: 20 }).update(data).digest('hex'), `shake128 of ${n}`);
  }
});
