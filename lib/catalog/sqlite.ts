/**
 * Loads the WASM SQLite engine (sql.js) once per process.
 * @module
 */
import { createRequire } from 'node:module';
import type { SqlJsStatic } from 'sql.js';

let engine: Promise<SqlJsStatic> | undefined;

/**
 * The shared sql.js engine, loaded on first use (a warm `ucvmfs exec` job may never open a catalog). Calling it
 * early (e.g. while the trust chain downloads) lets the WASM compile in the background meanwhile.
 */
export function sqlite(): Promise<SqlJsStatic> {
  if (engine) return engine;
  // sql.js compiles its WASM asynchronously, and V8 hands the result back through a platform task, not a libuv
  // handle. With nothing else pending, the loop would look empty meanwhile: Node then drains the platform's
  // tasks, waits for every background job (the optimizing compiles of the WASM functions, 150-300 ms here) and
  // runs what follows (the catalog, the first read) from inside that wait, waiting again at its end. A ref'd
  // timer keeps the loop alive until the engine is there, so the result arrives through the loop at once.
  const alive = setInterval(() => undefined, 1 << 30);
  // sql.js is CommonJS: require() loads it without the ESM loader's export scan of its 100 KB of script, and
  // its start-up took half as long that way (35 against 75-100 ms here).
  engine = Promise.resolve()
    .then(() => (createRequire(import.meta.url)('sql.js') as (config?: object) => Promise<SqlJsStatic>)())
    .finally(() => clearInterval(alive));
  return engine;
}
