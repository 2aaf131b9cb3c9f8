/**
 * Loads the WASM SQLite engine (sql.js) once per process.
 * @module
 */
import type { SqlJsStatic } from 'sql.js';

let engine: Promise<SqlJsStatic> | undefined;

/** The shared sql.js engine, loaded on first use (a warm `ucvmfs exec` job may never open a catalog). */
export function sqlite(): Promise<SqlJsStatic> {
  engine ??= import('sql.js').then((m) => m.default());
  return engine;
}
