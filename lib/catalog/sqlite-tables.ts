/**
 * The tables of an SQLite file by name, read without an SQL engine: rows found through an index whose leading
 * columns are the ones asked for (a full scan where none is), and whole tables. This is all a catalog lookup
 * needs; it starts in microseconds where a WASM SQLite engine takes tens of milliseconds to compile and start,
 * and it holds nothing beyond the file's bytes.
 * @module
 */
import { SqliteFile } from './sqlite-btree.js';
import { memoryPages, type PageSource } from './sqlite-pages.js';
import { compareValues, corrupt, decodeRecord, type Rowid, type Value } from './sqlite-record.js';
import { parseCreateIndex, parseCreateTable, searchableKey, type TableDecl } from './sqlite-schema.js';

/** A row: its rowid and one value per declared column. */
export interface Row {
  readonly rowid: Rowid;
  readonly values: readonly Value[];
}

interface IndexDecl {
  readonly root: number;
  readonly columns: readonly string[];
}

/** One table of the file. */
export class SqliteTable {
  /** @internal */
  constructor(private readonly file: SqliteFile, readonly name: string, private readonly root: number, private readonly decl: TableDecl, private readonly indexes: readonly IndexDecl[]) {}

  /** Declared column names, lower-cased, in stored order. */
  get columns(): readonly string[] {
    return this.decl.columns;
  }

  private complete(rowid: Rowid, record: Uint8Array, skip?: readonly boolean[]): Row {
    const { columns, defaults, rowidColumn, unreadable } = this.decl;
    if (unreadable) throw corrupt(`table ${this.name} has a ${unreadable}, which the reader cannot read`);
    const values = decodeRecord(record, columns.length, skip);
    for (let i = values.length; i < columns.length; i++) values.push(defaults[i]!);
    if (rowidColumn >= 0) values[rowidColumn] = rowid;
    return { rowid, values };
  }

  /** Every row, in rowid order. */
  *scan(): Generator<Row> {
    this.file.beginQuery();
    this.file.source.retain();
    try {
      for (const [rowid, record] of this.file.rows(this.root)) yield this.complete(rowid, record);
    } finally {
      this.file.source.release();
    }
  }

  /**
   * The rows whose `columns` hold `key`, in the order of the index used (by rowid where none is). Columns marked
   * in `skip` (by position) may read as null: for callers that do not need them.
   */
  *find(columns: readonly string[], key: readonly Value[], skip?: readonly boolean[]): Generator<Row> {
    this.file.beginQuery();
    const index = this.indexes.find((i) => columns.every((c, k) => i.columns[k] === c));
    if (!index) {
      const at = columns.map((c) => this.decl.columns.indexOf(c));
      for (const row of this.scan()) if (at.every((p, k) => compareValues(row.values[p] ?? null, key[k]!) === 0)) yield row;
      return;
    }
    this.file.source.retain();
    try {
      for (const rowid of this.file.indexRowids(index.root, key, index.columns.length)) {
        const record = this.file.row(this.root, rowid);
        if (!record) throw corrupt(`an index on ${this.name} names row ${rowid}, which the table lacks`);
        yield this.complete(rowid, record, skip);
      }
    } finally {
      this.file.source.release();
    }
  }

  /** The largest rowid (0 for an empty table). */
  maxRowid(): Rowid {
    this.file.beginQuery();
    return this.file.maxRowid(this.root);
  }
}

function text(v: Value): string {
  return v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.length).toString('utf8') : v === null ? '' : String(v);
}

/** A table as the schema lists it, its CREATE statements parsed on first use. */
interface Listed {
  readonly root: number;
  readonly sql: string;
  readonly indexes: { name: string; root: number; sql: string }[];
}

/** An SQLite database file's tables. */
export class SqliteTables {
  private readonly listed = new Map<string, Listed>();
  private readonly tables = new Map<string, SqliteTable>();
  private readonly file: SqliteFile;
  /** Where the pages come from (closed with the catalog). */
  readonly source: PageSource;

  /**
   * Reads the schema of a database: its bytes (which the tables keep using: do not change them) or its pages
   * from a {@link PageSource}. The statements of a table are parsed when it is first asked for: a command opens
   * a catalog for a few lookups in two or three of its tables.
   */
  constructor(from: Uint8Array | PageSource) {
    const file = new SqliteFile(from instanceof Uint8Array ? memoryPages(from) : from);
    this.file = file;
    this.source = file.source;
    file.beginQuery();
    const indexes: { name: string; table: string; root: number; sql: string }[] = [];
    for (const [, record] of file.rows(1)) {
      const [type, name, table, root, sql] = decodeRecord(record, 5).map((v) => v ?? null);
      if (typeof root !== 'number' || root < 1) continue;
      if (text(type!) === 'table') this.listed.set(text(name!).toLowerCase(), { root, sql: text(sql!), indexes: [] });
      else if (text(type!) === 'index') indexes.push({ name: text(name!).toLowerCase(), table: text(table!).toLowerCase(), root, sql: text(sql!) });
    }
    for (const i of indexes) this.listed.get(i.table)?.indexes.push(i);
  }

  /** The table of this name (case-insensitive), if the file has it. */
  table(name: string): SqliteTable | undefined {
    const key = name.toLowerCase();
    const made = this.tables.get(key);
    if (made) return made;
    const t = this.listed.get(key);
    if (!t) return undefined;
    const decl = parseCreateTable(t.sql);
    const own: IndexDecl[] = [];
    for (const i of t.indexes) {
      const auto = /^sqlite_autoindex_.+_(\d+)$/.exec(i.name);
      const columns = searchableKey(auto ? decl.autoIndexes[Number(auto[1]) - 1] : parseCreateIndex(i.sql), decl);
      if (columns) own.push({ root: i.root, columns });
    }
    const table = new SqliteTable(this.file, key, t.root, decl, own);
    this.tables.set(key, table);
    return table;
  }
}
