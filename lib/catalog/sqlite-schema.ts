/**
 * What the CREATE statements in an SQLite file's schema table say that a reader needs: each table's columns in
 * stored order, their defaults (rows written before `ALTER TABLE ... ADD COLUMN` lack the later columns), the
 * column that aliases the rowid, and which columns each index orders by, in an order the reader can search (no
 * DESC key, no collation but BINARY, no partial index).
 * @module
 */
import type { Value } from './sqlite-record.js';

/** One key column of an index, as declared. */
export interface KeyColumn {
  readonly name: string;
  /** The index's own COLLATE, if it names one. */
  readonly collate?: string;
  readonly desc: boolean;
}

/** A table as its CREATE TABLE statement declares it. */
export interface TableDecl {
  readonly columns: readonly string[];
  readonly defaults: readonly Value[];
  /** Each column's declared collation (BINARY where none is named). */
  readonly collations: readonly string[];
  /** Index of an `INTEGER PRIMARY KEY` column (stored as NULL, read as the rowid), or -1. */
  readonly rowidColumn: number;
  /** Keys of the automatic indexes (`sqlite_autoindex_<table>_<n>` is the n-th); undefined where not plain columns. */
  readonly autoIndexes: readonly (readonly KeyColumn[] | undefined)[];
  /** Why the reader cannot read this table's records, if it cannot (generated columns are not stored). */
  readonly unreadable?: string;
}

const IDENT = /^\s*("(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|[^\s(),]+)\s*/;
const CONSTRAINT_START = /^(CONSTRAINT|PRIMARY|UNIQUE|CHECK|FOREIGN)\b/i;
/** The words that end a column's type and begin its constraints (`x UNIQUE` has no type, only a constraint). */
const CONSTRAINT_WORDS = ['CONSTRAINT', 'PRIMARY', 'NOT', 'NULL', 'UNIQUE', 'CHECK', 'DEFAULT', 'COLLATE', 'REFERENCES', 'GENERATED', 'AS'];
const CONSTRAINT_WORD = new Set(CONSTRAINT_WORDS);
const TYPE_END = new RegExp(`\\b(?:${CONSTRAINT_WORDS.join('|')})\\b`);

/** An identifier without its quotes, lower-cased (SQLite's names are case-insensitive). */
function unquote(id: string): string {
  const q = id[0];
  if (q === '"' || q === '`') return id.slice(1, -1).replaceAll(q + q, q).toLowerCase();
  if (q === '[') return id.slice(1, -1).toLowerCase();
  return id.toLowerCase();
}

/** The statement without its comments (SQLite keeps them in the schema), quoted text left as it is. */
function withoutComments(sql: string): string {
  // Most statements have none (a cold JIT pays for every character copied below).
  if (!sql.includes('--') && !sql.includes('/*')) return sql;
  let out = '';
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c;
      const end = sql.indexOf(close, i + 1);
      const stop = end < 0 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end;
      out += ' ';
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 1;
      out += ' ';
    } else out += c;
  }
  return out;
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

/** The entries of a key list such as `(a, b COLLATE NOCASE DESC)`, or undefined where one is not a plain column. */
function keyList(items: readonly string[]): KeyColumn[] | undefined {
  const keys: KeyColumn[] = [];
  for (const p of items) {
    const m = IDENT.exec(p);
    if (!m) return undefined;
    const rest = /^(?:COLLATE\s+("?)(\w+)\1\s*)?(ASC|DESC)?\s*$/i.exec(p.slice(m[0].length));
    if (!rest) return undefined;
    keys.push({ name: unquote(m[1]!), ...(rest[2] ? { collate: rest[2].toUpperCase() } : {}), desc: rest[3]?.toUpperCase() === 'DESC' });
  }
  return keys;
}

/** A DEFAULT clause's value, with the column's affinity applied as SQLite applies it to a literal. */
function defaultValue(rest: string, type: string): Value {
  const m = /\bDEFAULT\s+(\(?\s*([-+]?(?:0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[-+]?\d+)?))\s*\)?|'((?:[^']|'')*)'|NULL|TRUE|FALSE)/i.exec(rest);
  if (!m) return null;
  const numeric = /INT|REAL|FLOA|DOUB|NUM|DEC|BOOL|DATE/i.test(type) && !/CHAR|CLOB|TEXT|BLOB/i.test(type);
  const number = (t: string): Value => {
    const hex = /^[-+]?0x/i.test(t);
    if (!hex && !/^[-+]?\d+$/.test(t)) return Number(t);
    const b = hex ? BigInt.asIntN(64, BigInt(t.replace(/^[-+]/, ''))) * (t.startsWith('-') ? -1n : 1n) : BigInt(t);
    return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  };
  if (m[2] !== undefined) return number(m[2]);
  if (m[3] !== undefined) {
    const text = m[3].replaceAll("''", "'");
    return numeric && /^\s*[-+]?\d+(\.\d*)?\s*$/.test(text) ? number(text.trim()) : Buffer.from(text);
  }
  const word = m[1]!.toUpperCase();
  return word === 'TRUE' ? 1 : word === 'FALSE' ? 0 : null;
}

/** Adds an automatic index unless one on the same key exists: SQLite makes none for a repeated constraint. */
function addAutoIndex(list: (KeyColumn[] | undefined)[], key: KeyColumn[] | undefined): void {
  const same = (a: readonly KeyColumn[]) => key && a.length === key.length && a.every((k, i) => k.name === key[i]!.name);
  if (!list.some((k) => k && same(k))) list.push(key);
}

/** Parses a CREATE TABLE statement. */
export function parseCreateTable(statement: string): TableDecl {
  const sql = withoutComments(statement);
  const columns: string[] = [];
  const types: string[] = [];
  const defaults: Value[] = [];
  const collations: string[] = [];
  const autoIndexes: (KeyColumn[] | undefined)[] = [];
  let rowidColumn = -1;
  let unreadable: string | undefined;
  for (const part of parts(sql)) {
    const text = part.trim();
    if (CONSTRAINT_START.test(text)) {
      const m = /\b(PRIMARY\s+KEY|UNIQUE)\s*\(([^)]*)\)/i.exec(text);
      if (!m) continue;
      const key = keyList(parts(`(${m[2]!})`));
      const i = key?.length === 1 ? columns.indexOf(key[0]!.name) : -1;
      // PRIMARY KEY(id) on an INTEGER column makes id the rowid, as the column constraint does.
      if (/^PRIMARY/i.test(m[1]!) && i >= 0 && types[i] === 'INTEGER' && !key![0]!.desc) rowidColumn = i;
      else addAutoIndex(autoIndexes, key);
      continue;
    }
    const m = IDENT.exec(text);
    if (!m) continue;
    const name = unquote(m[1]!);
    const rest = text.slice(m[0].length);
    const upper = rest.toUpperCase();
    // Most columns are a name and a type (`size INTEGER`): their constraints' expressions are not run at all,
    // since each compiles on its first use, at every command's first catalog.
    const plain = /^[A-Z]*$/.test(upper) && !CONSTRAINT_WORD.has(upper);
    const type = plain ? upper : upper.split(TYPE_END)[0]!.trim();
    if (!plain && /\bGENERATED\b|\bAS\s*\(/.test(upper)) unreadable = `generated column ${name}`;
    const collate = (!plain && /\bCOLLATE\s+("?)(\w+)\1/i.exec(rest)?.[2]?.toUpperCase()) || 'BINARY';
    const pk = plain ? null : /\bPRIMARY\s+KEY\b(\s+DESC\b)?/.exec(upper);
    if (pk) {
      if (type === 'INTEGER' && !pk[1]) rowidColumn = columns.length;
      else addAutoIndex(autoIndexes, [{ name, desc: !!pk[1] }]);
    }
    if (!plain && /\bUNIQUE\b/.test(upper)) addAutoIndex(autoIndexes, [{ name, desc: false }]);
    columns.push(name);
    types.push(type);
    collations.push(collate);
    defaults.push(plain ? null : defaultValue(rest, type));
  }
  return { columns, defaults, collations, rowidColumn, autoIndexes, ...(unreadable ? { unreadable } : {}) };
}

/** The key of a CREATE INDEX statement, or undefined for an index the reader cannot search. */
export function parseCreateIndex(statement: string): KeyColumn[] | undefined {
  const sql = withoutComments(statement);
  const m = /\bON\s+("(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[^\s(]+)\s*\(/i.exec(sql);
  if (!m) return undefined;
  const items = parts(sql.slice(m.index + m[0].length - 1));
  // A partial index holds only some rows: a lookup through it could miss one.
  if (items.length === 0 || /\)\s*WHERE\b/i.test(sql.slice(m.index))) return undefined;
  return keyList(items);
}

/**
 * The key's column names if the reader can search the index: ascending, and compared as bytes (the index's
 * COLLATE, else the column's, is BINARY); else undefined.
 */
export function searchableKey(key: readonly KeyColumn[] | undefined, table: TableDecl): string[] | undefined {
  if (!key || key.length === 0) return undefined;
  for (const k of key) {
    const i = table.columns.indexOf(k.name);
    if (i < 0 || k.desc || (k.collate ?? table.collations[i]) !== 'BINARY') return undefined;
  }
  return key.map((k) => k.name);
}
