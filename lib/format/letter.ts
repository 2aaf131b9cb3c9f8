/**
 * Signed "letters" (`.cvmfspublished`, `.cvmfswhitelist`): key-letter lines, a `--` line, the hash of the text
 * above it, then the raw signature bytes.
 * @module
 */
import { ioError, type FailureReason } from '../errors.js';
import { hashBytes, parseHash, type ContentHash } from './hash.js';

/** A letter split into its parts. */
export interface Letter {
  /** The signed text, up to and including the newline before `--`. */
  readonly text: Buffer;
  /** Key letter → value, in order of appearance (first occurrence wins). */
  readonly fields: Map<string, string>;
  /** Extra lines of the text that are not key-letter lines (whitelist fingerprints, timestamp). */
  readonly lines: string[];
  /** The hash written under `--`, as text (what the signature covers). */
  readonly hashText: string;
  /** The hash written under `--`, parsed. */
  readonly hash: ContentHash;
  /** The signature bytes after the hash line. */
  readonly signature: Buffer;
}

/**
 * Splits a letter and checks that the hash under `--` matches its text.
 * @param hashChecked the very bytes passed this check before (lib/open/verified-memo.ts): not hashed again
 */
export function parseLetter(raw: Uint8Array, what: string, reason: FailureReason, hashChecked = false): Letter {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
  let sep: number;
  if (buf.subarray(0, 3).toString('latin1') === '--\n') sep = -1;
  else {
    sep = buf.indexOf('\n--\n');
    if (sep < 0) throw ioError(reason, `${what}: no signature separator`);
  }
  const text = buf.subarray(0, sep + 1);
  const afterSep = sep + 4;
  const nl = buf.indexOf('\n', afterSep);
  const hashText = buf.toString('latin1', afterSep, nl < 0 ? buf.length : nl).trim();
  const signature = nl < 0 ? Buffer.alloc(0) : Buffer.from(buf.subarray(nl + 1));
  let hash: ContentHash;
  try { hash = parseHash(hashText); } catch (e) { throw ioError(reason, `${what}: bad hash line '${hashText}'`, e); }
  const actual = hashChecked ? hash : hashBytes(text, hash.algorithm);
  if (actual.hex !== hash.hex) throw ioError(reason, `${what}: text does not match its hash (${hashText} written, ${actual.hex} computed)`);
  const fields = new Map<string, string>();
  const lines: string[] = [];
  for (const line of text.toString('utf8').split('\n')) {
    if (line === '') continue;
    lines.push(line);
    const key = line[0]!;
    if (!fields.has(key)) fields.set(key, line.slice(1));
  }
  return { text, fields, lines, hashText, hash, signature };
}

/** Builds a letter from its text (each line ending in `\n`) and a signing function over the hash text. */
export function buildLetter(text: string, algorithm: ContentHash['algorithm'], sign: (hashText: Buffer) => Buffer): Buffer {
  const h = hashBytes(text, algorithm);
  const hashText = h.algorithm === 'sha1' ? h.hex : `${h.hex}-${h.algorithm}`;
  return Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from(`--\n${hashText}\n`, 'latin1'), sign(Buffer.from(hashText, 'latin1'))]);
}
