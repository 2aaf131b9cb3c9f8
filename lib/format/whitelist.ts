/**
 * The whitelist `.cvmfswhitelist` (whitelist.cc): creation time, expiry (E), repository name (N) and the
 * fingerprints of the certificates allowed to sign manifests.
 * @module
 */
import { ioError } from '../errors.js';
import { parseHash, type ContentHash } from './hash.js';
import { parseLetter, type Letter } from './letter.js';

/** A parsed (not yet signature-checked) whitelist. */
export interface Whitelist {
  readonly letter: Letter;
  readonly fqrn: string;
  readonly created: Date;
  readonly expires: Date;
  readonly fingerprints: readonly ContentHash[];
}

/** Parses `YYYYMMDDHHMMSS` (UTC). */
export function parseTimestamp14(s: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s.trim());
  if (!m) throw ioError('whitelist-format', `whitelist: bad timestamp '${s}'`);
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, se));
}

/** Formats a date as `YYYYMMDDHHMMSS` (UTC). */
export function formatTimestamp14(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

const FINGERPRINT = /^((?:[0-9A-Fa-f]{2}:){19}[0-9A-Fa-f]{2})(-[A-Za-z0-9]+)?(?:\s*#.*)?$/;

/**
 * Parses `.cvmfswhitelist` and checks its internal hash.
 * @param hashChecked the very bytes passed the hash check before (see {@link parseLetter})
 */
export function parseWhitelist(raw: Uint8Array, hashChecked = false): Whitelist {
  const letter = parseLetter(raw, 'whitelist', 'whitelist-signature', hashChecked);
  const [first, ...rest] = letter.lines;
  if (!first) throw ioError('whitelist-format', 'whitelist: empty');
  const created = parseTimestamp14(first);
  let expires: Date | undefined;
  let fqrn: string | undefined;
  const fingerprints: ContentHash[] = [];
  for (const line of rest) {
    if (line.startsWith('E') && expires === undefined) expires = parseTimestamp14(line.slice(1));
    else if (line.startsWith('N') && fqrn === undefined) fqrn = line.slice(1);
    else {
      const m = FINGERPRINT.exec(line.trim());
      if (m) fingerprints.push(parseHash(m[1]!.replace(/:/g, '') + (m[2] ?? '')));
    }
  }
  if (!expires) throw ioError('whitelist-format', 'whitelist: no expiry (E)');
  if (!fqrn) throw ioError('whitelist-format', 'whitelist: no repository name (N)');
  return { letter, fqrn, created, expires, fingerprints };
}
