/**
 * File names are bytes: Linux allows any byte but `/` and NUL, and catalogs store names and paths as the bytes
 * the publisher read. Inside this library a name is a JavaScript string that holds those bytes losslessly: valid
 * UTF-8 decodes as usual, and every byte that is not part of a valid UTF-8 sequence becomes the lone surrogate
 * U+DC80 + byte (Python's `surrogateescape`). UTF-8 cannot encode a surrogate, so the mapping is one-to-one and
 * names that are valid UTF-8 are the plain strings they always were.
 * @module
 */

const strict = new TextDecoder('utf-8', { fatal: true });

/** Length of the valid UTF-8 sequence starting at `i`, or 0 if the byte there starts none. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0; // no surrogates
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** Bytes of a name or path → the library's string form (invalid bytes as U+DC80 + byte). */
export function decodeName(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    let out = '';
    let i = 0;
    while (i < bytes.length) {
      const n = sequenceLength(bytes, i);
      if (n === 0) {
        out += String.fromCharCode(0xdc00 + bytes[i]!);
        i++;
      } else {
        out += strict.decode(bytes.subarray(i, i + n));
        i += n;
      }
    }
    return out;
  }
}

/** True if `s` holds a surrogate code unit (escaped byte, or something no name can hold). */
function hasSurrogate(s: string): boolean {
  return /[\uD800-\uDFFF]/.test(s);
}

/** The library's string form → the bytes of the name or path (inverse of {@link decodeName}). */
export function encodeName(s: string): Buffer {
  if (!hasSurrogate(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0xdc80 && c <= 0xdcff) {
      if (run) parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.from([c - 0xdc00]));
    } else run += ch;
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** A path argument as node:fs takes it (string or Buffer) → the library's string form. */
export function pathFromArg(p: string | Uint8Array): string {
  return typeof p === 'string' ? p : decodeName(p);
}

/**
 * The library's string form → what to hand node:fs for the same bytes: the string itself when it is plain
 * Unicode, a Buffer when it holds escaped bytes (node:fs would write a string's lone surrogates as U+FFFD).
 */
export function nativePath(s: string): string | Buffer {
  return hasSurrogate(s) ? encodeName(s) : s;
}

/**
 * A name or path in the encoding a caller asked for, as node:fs gives names: the library's string form for
 * UTF-8 (or none), the bytes for `'buffer'`, else the bytes in that encoding (`'latin1'`, `'hex'`, ...).
 */
export function nameAs(s: string, encoding: BufferEncoding | 'buffer' | undefined): string | Buffer {
  if (encoding === undefined || encoding === 'utf8' || encoding === 'utf-8') return s;
  return encoding === 'buffer' ? encodeName(s) : encodeName(s).toString(encoding);
}
