/**
 * What the CREATE statements in an SQLite file's schema table say that a reader needs: each table's columns in
 * stored order, their defaults (rows written before `ALTER TABLE ... ADD COLUMN` lack the later columns), the
 * column that aliases the rowid, and which columns each usable index orders by.
 * @module
 */
import type { Value } from './sqlite-record.js';

/** A table as its CREATE TABLE statement declares it. */
export interface TableDecl {
  readonly columns: readonly string[];
  readonly defaults: readonly Value[];
  /** Index of an `INTEGER PRIMARY KEY` column (stored as NULL, read as the rowid), or -1. */
  readonly rowidColumn: number;
  /** Columns of each automatic index (`sqlite_autoindex_<table>_<n>` is the n-th), in declaration order. */
  readonly autoIndexes: readonly (readonly string[])[];
}

const IDENT = /^\s*("(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[^\s(),]+)\s*/;
const CONSTRAINT_START = /^(CONSTRAINT|PRIMARY|UNIQUE|CHECK|FOREIGN)\b/i;

/** An identifier without its quotes, lower-cased (SQLite's names are case-insensitive). */
function unquote(id: string): string {
  const q = id[0];
  if (q === '"' || q === '`') return id.slice(1, -1).replaceAll(q + q, q).toLowerCase();
  if (q === '[') return id.slice(1, -1).toLowerCase();
  return id.toLowerCase();
}

/** The text inside the statement's first parenthesis, split at its top-level commas. */
function parts(sql: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = '';
  let start = -1;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (quote) {
      if (c === quote) quote = '';
      continue;
    }
    if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '[') quote = ']';
    else if (c === '(') {
      if (depth++ === 0) start = i + 1;
    } else if (c === ')') {
      if (--depth === 0) {
        out.push(sql.slice(start, i));
        return out;
      }
    } else if (c === ',' && depth === 1) {
      out.push(sql.slice(start, i));
      start = i + 1;
    }
  }
  return out;
}

/** The entries of a column list such as `(a, b COLLATE BINARY)`: their names, or undefined where one is not a plain column. */
function columnList(items: readonly string[]): string[] | undefined {
  const names: string[] = [];
  for (const p of items) {
    const m = IDENT.exec(p);
    const rest = m ? p.slice(m[0].length).trim().toUpperCase() : 'x';
    // Descending or non-binary entries order differently from the plain comparison the reader searches with.
    if (!m || !/^(ASC|COLLATE\s+BINARY(\s+ASC)?)?$/.test(rest)) return undefined;
    names.push(unquote(m[1]!));
  }
  return names;
}

function defaultValue(rest: string): Value {
  const m = /\bDEFAULT\s+(\(?\s*([-+]?\d+(?:\.\d*)?)\s*\)?|'((?:[^']|'')*)'|NULL|TRUE|FALSE)/i.exec(rest);
  if (!m) return null;
  if (m[2] !== undefined) return Number(m[2]);
  if (m[3] !== undefined) return Buffer.from(m[3].replaceAll("''", "'"));
  const word = m[1]!.toUpperCase();
  return word === 'TRUE' ? 1 : word === 'FALSE' ? 0 : null;
}

/** Parses a CREATE TABLE statement. */
export function parseCreateTable(sql: string): TableDecl {
  const columns: string[] = [];
  const defaults: Value[] = [];
  const autoIndexes: string[][] = [];
  let rowidColumn = -1;
  for (const part of parts(sql)) {
    const text = part.trim();
    if (CONSTRAINT_START.test(text)) {
      const m = /\b(PRIMARY\s+KEY|UNIQUE)\s*\(([^)]*)\)/i.exec(text);
      const cols = m ? columnList(parts(`(${m[2]!})`)) : undefined;
      if (m) autoIndexes.push(cols ?? []);
      continue;
    }
    const m = IDENT.exec(text);
    if (!m) continue;
    const name = unquote(m[1]!);
    const rest = text.slice(m[0].length).toUpperCase();
    const type = rest.split(/\b(?:CONSTRAINT|PRIMARY|NOT|NULL|UNIQUE|CHECK|DEFAULT|COLLATE|REFERENCES|GENERATED|AS)\b/)[0]!.trim();
    if (/\bPRIMARY\s+KEY\b/.test(rest)) {
      if (type === 'INTEGER' && !/PRIMARY\s+KEY\s+DESC\b/.test(rest)) rowidColumn = columns.length;
      else autoIndexes.push([name]);
    }
    if (/\bUNIQUE\b/.test(rest)) autoIndexes.push([name]);
    columns.push(name);
    defaults.push(defaultValue(text.slice(m[0].length)));
  }
  return { columns, defaults, rowidColumn, autoIndexes };
}

/** The columns a CREATE INDEX statement orders by, or undefined for an index the reader cannot search. */
export function parseCreateIndex(sql: string): string[] | undefined {
  const m = /\bON\s+("(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[^\s(]+)\s*\(/i.exec(sql);
  if (!m) return undefined;
  const items = parts(sql.slice(m.index + m[0].length - 1));
  // A partial index holds only some rows: a lookup through it could miss one.
  if (items.length === 0 || /\)\s*WHERE\b/i.test(sql.slice(m.index))) return undefined;
  return columnList(items);
}
