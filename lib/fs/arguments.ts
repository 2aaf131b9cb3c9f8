/**
 * The argument checks of node:fs, for the calls of the fs view: the same error classes and codes
 * (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE) where Node throws them, so that a wrong argument
 * is reported as Node reports it, never taken for the root (`stat(undefined)`) or handed on to a native call that
 * aborts the process (a fractional stream offset did).
 * @module
 */
import { fileURLToPath } from 'node:url';
import { decodeName } from '../format/byte-names.js';

/** An error of Node's argument or state kind (`code` ERR_...). */
export function argError<E extends Error>(make: new (message: string) => E, code: string, message: string): E {
  const e = new make(message);
  Object.defineProperty(e, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  return e;
}

/** A path argument as the fs view takes it: a string, a Buffer or Uint8Array of its bytes, or a file: URL. */
export function pathArgument(p: unknown, name = 'path'): string {
  let s: string;
  if (typeof p === 'string') s = p;
  else if (p instanceof Uint8Array) s = decodeName(p);
  else if (p instanceof URL) s = fileURLToPath(p);
  else throw argError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be of type string or an instance of Buffer or URL. Received ${describe(p)}`);
  if (s.includes('\0')) throw argError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument '${name}' must be a string, Uint8Array, or URL without null bytes. Received ${JSON.stringify(s)}`);
  return s;
}

/** An integer within [min, max], as Node's validateInteger checks offsets, lengths and stream ranges. */
export function integerArgument(v: unknown, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number') throw argError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be of type number. Received ${describe(v)}`);
  if (!Number.isInteger(v) || v < min || v > max) throw outOfRange(name, Number.isInteger(v) ? `>= ${min} && <= ${max}` : 'an integer', v);
  return v;
}

/** Node's ERR_OUT_OF_RANGE. */
export function outOfRange(name: string, range: string, received: unknown): RangeError {
  return argError(RangeError, 'ERR_OUT_OF_RANGE', `The value of "${name}" is out of range. It must be ${range}. Received ${String(received)}`);
}

/** The names' encoding a call asks for (a string, or an options object's `encoding`), checked as Node checks it. */
export function encodingArgument(options: unknown): BufferEncoding | 'buffer' | undefined {
  if (options !== undefined && options !== null && typeof options !== 'string' && typeof options !== 'object' && typeof options !== 'function') {
    throw argError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "options" argument must be of type string or an instance of Object. Received ${describe(options)}`);
  }
  const enc = (typeof options === 'object' || typeof options === 'function') && options !== null ? (options as { encoding?: unknown }).encoding : options;
  if (enc === undefined || enc === null) return undefined;
  if (enc === 'buffer' || (typeof enc === 'string' && Buffer.isEncoding(enc))) return enc as BufferEncoding | 'buffer';
  throw argError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument 'encoding' is invalid encoding. Received ${typeof enc === 'string' ? `'${enc}'` : String(enc)}`);
}

/**
 * Node's AbortError for a call given an aborted signal (`code` ABORT_ERR, the signal's reason as its cause), as
 * node:fs/promises rejects with; ERR_INVALID_ARG_TYPE for a signal that is no AbortSignal.
 */
export function abortError(signal: unknown): Error {
  if (!(signal instanceof AbortSignal)) {
    return argError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "options.signal" property must be an instance of AbortSignal. Received ${describe(signal)}`);
  }
  const e = new Error('The operation was aborted', { cause: signal.reason });
  e.name = 'AbortError';
  Object.defineProperty(e, 'code', { value: 'ABORT_ERR', enumerable: true, writable: true, configurable: true });
  return e;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'function') return `function ${(v as { name?: string }).name ?? ''}`;
  if (typeof v === 'object') return `an instance of ${(v as object).constructor?.name ?? 'Object'}`;
  return `type ${typeof v} (${String(v)})`;
}
