/**
 * Node's heavier builtins, loaded on first use. Every command loads the modules on the library's read path, but
 * a warm one needs neither streams nor zlib (its objects are in the cache, decompressed), and `exec -- true`
 * needs no crypto at all; loading each costs a command 1-6 ms of a start of about 100. Each is kept once loaded:
 * some are called per lookup.
 * @module
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

let crypto: typeof import('node:crypto') | undefined;
let stream: typeof import('node:stream') | undefined;
let streamPromises: typeof import('node:stream/promises') | undefined;
let zlib: typeof import('node:zlib') | undefined;

/** node:crypto, loaded on the first call. */
export const lazyCrypto = (): typeof import('node:crypto') => (crypto ??= require('node:crypto') as typeof import('node:crypto'));

/** node:crypto if something has loaded it through {@link lazyCrypto}, else undefined (small hashes then use
 * @noble/hashes rather than load it). */
export const loadedCrypto = (): typeof import('node:crypto') | undefined => crypto;

/** node:stream, loaded on the first call. */
export const lazyStream = (): typeof import('node:stream') => (stream ??= require('node:stream') as typeof import('node:stream'));

/** node:stream/promises, loaded on the first call. */
export const lazyStreamPromises = (): typeof import('node:stream/promises') => (streamPromises ??= require('node:stream/promises') as typeof import('node:stream/promises'));

/** node:zlib, loaded on the first call. */
export const lazyZlib = (): typeof import('node:zlib') => (zlib ??= require('node:zlib') as typeof import('node:zlib'));
