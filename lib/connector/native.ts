/**
 * The connector's native module (addon/, built by node-gyp at install time), loaded once on first need.
 * @module
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CvmfsError } from '../errors.js';

let native: unknown;

/**
 * Loads the native module built by node-gyp at install time; a clear error when it is missing. Untyped here:
 * `loadTracer` (lib/connector/exec.ts) gives its shape, so that this module depends on nothing of the connector.
 */
export function loadAddon(): unknown {
  if (native) return native;
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  const require = createRequire(import.meta.url);
  try {
    native = require(join(root, 'build/Release/ucvmfs_tracer.node')) as unknown;
    return native;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
  }
  throw new CvmfsError('ENOENT', 'the connector is not built: run `npm run build:addon` (needs g++, make and python3)');
}
