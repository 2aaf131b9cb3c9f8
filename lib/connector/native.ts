/**
 * The connector's native module (addon/, built by node-gyp at install time), loaded once on first need.
 * @module
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CvmfsError } from '../errors.js';
import type { NativeTracer } from './exec-options.js';

let native: NativeTracer | undefined;

/** Loads the tracer built by node-gyp at install time; a clear error when it is missing. */
export function loadTracer(): NativeTracer {
  if (native) return native;
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  const require = createRequire(import.meta.url);
  try {
    native = require(join(root, 'build/Release/ucvmfs_tracer.node')) as NativeTracer;
    return native;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
  }
  throw new CvmfsError('ENOENT', 'the connector is not built: run `npm run build:addon` (needs g++, make and python3)');
}
