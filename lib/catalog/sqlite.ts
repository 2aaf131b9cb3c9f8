/**
 * Loads the WASM SQLite engine (sql.js) once per process.
 * @module
 */
import initSqlJs, { type SqlJsStatic } from 'sql.js';

let engine: Promise<SqlJsStatic> | undefined;

/** The shared sql.js engine. */
export function sqlite(): Promise<SqlJsStatic> {
  engine ??= initSqlJs();
  return engine;
}
