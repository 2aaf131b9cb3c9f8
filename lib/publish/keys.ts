/**
 * The repository's two key pairs, named the way `cvmfs_server` names them in /etc/cvmfs/keys: the master key
 * (`<fqrn>.masterkey` / `<fqrn>.pub`) signs the whitelist, the certificate key (`<fqrn>.key` / `<fqrn>.crt`) signs
 * manifests. Existing files are reused so that every revision is signed by the same keys.
 * @module
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSelfSignedCertificate } from './x509.js';

/** Loaded (or freshly made) keys of one repository. */
export interface RepositoryKeys {
  readonly masterKey: KeyObject;
  readonly masterPublicKey: KeyObject;
  readonly certificateKey: KeyObject;
  /** The certificate as PEM text (what the X object holds, before compression). */
  readonly certificatePem: string;
  /** DER bytes of the certificate (what whitelist fingerprints hash). */
  readonly certificateDer: Buffer;
  readonly paths: { readonly masterKey: string; readonly publicKey: string; readonly certificateKey: string; readonly certificate: string };
}

/** How long a new certificate is valid. The client does not check it (the whitelist expiry is what counts). */
const CERT_YEARS = 10;

async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, path);
}

function newRsaKey(): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }).privateKey;
}

function privatePem(k: KeyObject): string {
  return k.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * Reads the keys of `fqrn` from `dir`, creating whatever is missing: a master key, a certificate key and a
 * self-signed certificate for it (`now` is its start of validity).
 */
export async function loadOrCreateKeys(dir: string, fqrn: string, now: Date): Promise<RepositoryKeys> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const paths = {
    masterKey: join(dir, `${fqrn}.masterkey`),
    publicKey: join(dir, `${fqrn}.pub`),
    certificateKey: join(dir, `${fqrn}.key`),
    certificate: join(dir, `${fqrn}.crt`),
  };

  let masterKey: KeyObject;
  if (existsSync(paths.masterKey)) masterKey = createPrivateKey(await readFile(paths.masterKey));
  else {
    if (existsSync(paths.publicKey)) throw new Error(`${paths.publicKey} exists but its private key ${paths.masterKey} does not`);
    masterKey = newRsaKey();
    await writeAtomic(paths.masterKey, privatePem(masterKey), 0o400);
  }
  const masterPublicKey = createPublicKey(masterKey);
  if (!existsSync(paths.publicKey)) await writeAtomic(paths.publicKey, masterPublicKey.export({ type: 'spki', format: 'pem' }).toString(), 0o444);

  let certificateKey: KeyObject;
  if (existsSync(paths.certificateKey)) certificateKey = createPrivateKey(await readFile(paths.certificateKey));
  else {
    if (existsSync(paths.certificate)) throw new Error(`${paths.certificate} exists but its private key ${paths.certificateKey} does not`);
    certificateKey = newRsaKey();
    await writeAtomic(paths.certificateKey, privatePem(certificateKey), 0o400);
  }

  let certificatePem: string;
  if (existsSync(paths.certificate)) certificatePem = await readFile(paths.certificate, 'utf8');
  else {
    const notAfter = new Date(now);
    notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CERT_YEARS);
    certificatePem = createSelfSignedCertificate({
      privateKey: certificateKey,
      publicKey: createPublicKey(certificateKey),
      // The genuine `cvmfs_server mkfs` names its certificates this way.
      commonName: `${fqrn} CernVM-FS Release Managers`,
      notBefore: now,
      notAfter,
    }).pem;
    await writeAtomic(paths.certificate, certificatePem, 0o444);
  }
  const x509 = new X509Certificate(certificatePem);
  if (!x509.checkPrivateKey(certificateKey)) throw new Error(`${paths.certificate} does not belong to the key in ${paths.certificateKey}`);
  return { masterKey, masterPublicKey, certificateKey, certificatePem, certificateDer: x509.raw, paths };
}
