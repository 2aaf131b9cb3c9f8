/**
 * node:crypto, loaded on first use. Modules on every command's path (the cache's location, the connector's
 * session) need it only now and then (a temporary name, a hashed directory name), and loading it costs a command
 * about 7 ms of a 125 ms start.
 * @module
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** node:crypto, loaded on the first call. */
export const lazyCrypto = (): typeof import('node:crypto') => require('node:crypto') as typeof import('node:crypto');
