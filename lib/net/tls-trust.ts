/**
 * Which certificate authorities an https Stratum-1 may be signed by, with the genuine client's conventions: the
 * directory `X509_CERT_DIR` (default `/etc/grid-security/certificates`, where grid sites keep the IGTF CAs), the
 * file `X509_CERT_BUNDLE`, and with `CVMFS_USE_SSL_SYSTEM_CA=yes` the system's CA directory instead of the grid
 * one (the first of the usual places that holds `.pem` or `.crt` files, with its `ca-bundle.crt`). Like curl,
 * which adds its built-in bundle to these, Node's bundled roots (and `NODE_EXTRA_CA_CERTS`) stay trusted.
 * @module
 */
import { existsSync, promises as fsp, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { SecureContext } from 'node:tls';

/** Where to look, as the genuine client's parameters name it. */
export interface TlsTrustConfig {
  /** X509_CERT_DIR. */
  certDir?: string;
  /** X509_CERT_BUNDLE. */
  bundle?: string;
  /** CVMFS_USE_SSL_SYSTEM_CA. */
  useSystemCa?: boolean;
}

const SYSTEM_DIRS = ['/etc/ssl/certs', '/etc/pki/tls/certs', '/etc/ssl', '/etc/pki/tls', '/etc/pki/ca-trust/extracted/pem'];
const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The trusted CAs as PEM texts, or undefined when nothing beyond Node's defaults is configured or present (Node
 * then uses its own store, `NODE_EXTRA_CA_CERTS` included: see {@link deferredCaContext}). `systemDirs`: where
 * the system's CAs may be, in order.
 */
export async function trustedCas(cfg: TlsTrustConfig, systemDirs: readonly string[] = SYSTEM_DIRS): Promise<readonly string[] | undefined> {
  let dir = cfg.certDir || '/etc/grid-security/certificates';
  let bundle = cfg.bundle || undefined;
  if (cfg.useSystemCa) {
    const sys = systemDirs.find(hasCertificates);
    if (sys) {
      dir = sys;
      if (!bundle && existsSync(join(sys, 'ca-bundle.crt'))) bundle = join(sys, 'ca-bundle.crt');
    }
  }
  const found = new Set<string>();
  for (const text of [...await filesIn(dir), ...(bundle ? [await readText(bundle)] : [])]) {
    for (const m of text.matchAll(PEM)) found.add(m[0]);
  }
  if (found.size === 0) return undefined;
  const extra = process.env.NODE_EXTRA_CA_CERTS ? (await readText(process.env.NODE_EXTRA_CA_CERTS)).match(PEM) ?? [] : [];
  // node:tls is loaded only by a client that talks https (it costs every start a few ms).
  const { rootCertificates } = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
  return [...new Set([...rootCertificates, ...extra, ...found])];
}

/** NODE_EXTRA_CA_CERTS when bin/ucvmfs.js kept it from Node's start: Node's own store then lacks them. */
let deferred: string | undefined;
/** Node's default store plus those certificates, made on the first https connection that needs it. */
let deferredContext: SecureContext | null | undefined;

/**
 * Takes back NODE_EXTRA_CA_CERTS, which bin/ucvmfs.js hands over as UCVMFS_DEFERRED_CA_CERTS so that Node does
 * not parse the whole certificate store at every start (Node 20 does when the variable is set, whether or not
 * the command ever talks https). The variable is put back at once, so that every process the CLI starts sees it
 * as the caller set it; {@link deferredCaContext} then adds those certificates to Node's store itself.
 */
export function adoptDeferredCaCerts(env: NodeJS.ProcessEnv = process.env): void {
  const file = env.UCVMFS_DEFERRED_CA_CERTS;
  if (file === undefined) return;
  delete env.UCVMFS_DEFERRED_CA_CERTS;
  // Set by someone else as well: Node loaded that one itself.
  if (env.NODE_EXTRA_CA_CERTS !== undefined || file === '') return;
  env.NODE_EXTRA_CA_CERTS = file;
  deferred = file;
}

/**
 * What an https connection that is given no CAs must trust: undefined for Node's default store as it is, or, when
 * {@link adoptDeferredCaCerts} kept NODE_EXTRA_CA_CERTS from Node's start, a context with Node's default store
 * (whichever it is: bundled, OpenSSL's or the system's) plus those certificates, as Node would have made it. Made
 * once, on first use: building a store costs what the deferral saved at start.
 */
export function deferredCaContext(tls: typeof import('node:tls')): SecureContext | undefined {
  if (deferred === undefined) return undefined;
  if (deferredContext === undefined) {
    let pems: string[] = [];
    let why = 'no certificate in it could be read';
    try {
      pems = readFileSync(deferred, 'latin1').match(PEM) ?? [];
    } catch (e) {
      why = (e as Error).message;
    }
    const ctx = tls.createSecureContext();
    let added = 0;
    for (const pem of pems) {
      try {
        // Adding to a context whose store is Node's shared root store gives the context its own copy first.
        (ctx.context as { addCACert(pem: string): void }).addCACert(pem);
        added++;
      } catch {
        // a certificate that does not parse is skipped
      }
    }
    // Node's words when it cannot load the file (on standard error, as Node writes them at start); it goes on
    // with its own store, and so does ucvmfs.
    if (added === 0) process.stderr.write(`Warning: Ignoring extra certs from \`${deferred}\`, load failed: ${why}\n`);
    deferredContext = added ? ctx : null;
  }
  return deferredContext ?? undefined;
}

function hasCertificates(dir: string): boolean {
  try {
    return readdirSync(dir).some((n) => n.endsWith('.pem') || n.endsWith('.crt'));
  } catch {
    return false;
  }
}

// A CA directory holds certificates (`*.pem`, `*.0` hash links, `*.crt`) among policies, CRLs and notes; every
// file is read and only certificates are taken, so that a name scheme of one site or another does not matter.
async function filesIn(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  return Promise.all(names.filter((n) => !/\.(r\d+|crl_url|signing_policy|namespaces|info)$/.test(n)).map((n) => readText(join(dir, n))));
}

async function readText(path: string): Promise<string> {
  try {
    return await fsp.readFile(path, 'latin1');
  } catch {
    return '';
  }
}
