/**
 * The repository manifest `.cvmfspublished` (manifest.cc): root catalog, certificate, history, TTL, revision.
 * @module
 */
import { ioError } from '../errors.js';
import { parseHash, type ContentHash } from './hash.js';
import { parseLetter, type Letter } from './letter.js';

/** A parsed (not yet signature-checked) manifest. */
export interface Manifest {
  /** The letter it came from (for signature checks). */
  readonly letter: Letter;
  readonly fqrn: string;
  /** Root catalog hash (C). */
  readonly rootCatalog: ContentHash;
  /** Root catalog size in bytes (B), when given. */
  readonly rootCatalogSize?: number;
  /** Certificate object hash (X). */
  readonly certificate: ContentHash;
  /** History database hash (H), when the repository has one. */
  readonly history?: ContentHash;
  /** Meta-information object (M). */
  readonly metainfo?: ContentHash;
  /** Reference log (Y). */
  readonly reflog?: ContentHash;
  /** Time to live of this manifest, seconds (D). */
  readonly ttl: number;
  readonly revision: number;
  /** Publish time, Unix seconds (T). */
  readonly timestamp: number;
  /** Whether the repository is garbage-collectable (G). */
  readonly garbageCollectable: boolean;
  /** Whether object names may also be served under their alternative names (A). */
  readonly alternativeName: boolean;
  /** All fields as written. */
  readonly fields: ReadonlyMap<string, string>;
}

function int(v: string | undefined, what: string, dflt?: number): number {
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw ioError('manifest-format', `manifest: missing ${what}`);
  }
  if (!/^\d+$/.test(v)) throw ioError('manifest-format', `manifest: ${what} is not a number: '${v}'`);
  return Number(v);
}

function optHash(v: string | undefined): ContentHash | undefined {
  return v === undefined || v === '' ? undefined : parseHash(v);
}

/**
 * Parses `.cvmfspublished` and checks its internal hash; the signature is checked by the trust module.
 * @param hashChecked the very bytes passed the hash check before (see {@link parseLetter})
 */
export function parseManifest(raw: Uint8Array, hashChecked = false): Manifest {
  // A text that does not match its signed hash is tampering, so it is reported as a signature failure.
  const letter = parseLetter(raw, 'manifest', 'manifest-signature', hashChecked);
  const f = letter.fields;
  const C = f.get('C'), X = f.get('X'), N = f.get('N');
  if (!C) throw ioError('manifest-format', 'manifest: no root catalog (C)');
  if (!X) throw ioError('manifest-format', 'manifest: no certificate (X)');
  if (!N) throw ioError('manifest-format', 'manifest: no repository name (N)');
  const B = f.get('B');
  return {
    letter,
    fqrn: N,
    rootCatalog: parseHash(C),
    ...(B !== undefined ? { rootCatalogSize: int(B, 'catalog size (B)') } : {}),
    certificate: parseHash(X),
    ...(optHash(f.get('H')) ? { history: optHash(f.get('H'))! } : {}),
    ...(optHash(f.get('M')) ? { metainfo: optHash(f.get('M'))! } : {}),
    ...(optHash(f.get('Y')) ? { reflog: optHash(f.get('Y'))! } : {}),
    ttl: int(f.get('D'), 'TTL (D)', 240),
    revision: int(f.get('S'), 'revision (S)'),
    timestamp: int(f.get('T'), 'timestamp (T)', 0),
    garbageCollectable: f.get('G') === 'yes',
    alternativeName: f.get('A') === 'yes',
    fields: f,
  };
}
