/**
 * Node's heavier builtins, loaded on first use. Every command loads the modules on the library's read path, but
 * a warm one needs neither streams nor zlib (its objects are in the cache, decompressed) and crypto only now and
 * then in some of them; loading each costs a command 2-7 ms of a start of about 100.
 * @module
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** node:crypto, loaded on the first call. */
export const lazyCrypto = (): typeof import('node:crypto') => require('node:crypto') as typeof import('node:crypto');

/** node:stream, loaded on the first call. */
export const lazyStream = (): typeof import('node:stream') => require('node:stream') as typeof import('node:stream');

/** node:stream/promises, loaded on the first call. */
export const lazyStreamPromises = (): typeof import('node:stream/promises') => require('node:stream/promises') as typeof import('node:stream/promises');

/** node:zlib, loaded on the first call. */
export const lazyZlib = (): typeof import('node:zlib') => require('node:zlib') as typeof import('node:zlib');
