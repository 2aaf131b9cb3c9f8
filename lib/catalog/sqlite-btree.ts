/**
 * Read-only access to the B-trees of an SQLite database file (https://www.sqlite.org/fileformat2.html): pages,
 * cells and overflow chains; a row by rowid, index entries by key prefix, whole tables in order. Every page
 * number, offset and length is checked against the file, and a tree whose pages loop or nest too deep is an
 * error: a malformed file fails the call, it never hangs it.
 * @module
 */
import type { PageSource } from './sqlite-pages.js';
import { compareIntKey, compareRowids, compareValues, corrupt, cursor, decodeRecord, intKey, lastInteger, readVarint, readVarint64, type IntKey, type Rowid, type Value } from './sqlite-record.js';

const MAGIC = 'SQLite format 3\0';
const INTERIOR_INDEX = 0x02;
const INTERIOR_TABLE = 0x05;
const LEAF_INDEX = 0x0a;
const LEAF_TABLE = 0x0d;
/** Deeper than any real B-tree (one of 2^63 rows in 512-byte pages is under 30 levels): a loop ends here. */
const MAX_DEPTH = 40;

interface Page {
  readonly no: number;
  readonly data: Uint8Array;
  readonly type: number;
  readonly cells: number;
  /** Where the cell pointer array starts. */
  readonly ptrs: number;
  /** Right-most child of an interior page. */
  readonly right: number;
}

function u16(b: Uint8Array, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}

function u32(b: Uint8Array, p: number): number {
  return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}

/** Compares an entry's leading values with `prefix`. */
function comparePrefix(entry: readonly Value[], prefix: readonly Value[]): number {
  for (let i = 0; i < prefix.length; i++) {
    const c = compareValues(entry[i] ?? null, prefix[i]!);
    if (c !== 0) return c;
  }
  return 0;
}

/** An SQLite database file, read without an SQL engine from its pages. */
export class SqliteFile {
  readonly pageSize: number;
  /** Bytes of a page that hold data (the page size less the reserved bytes at its end). */
  readonly usable: number;
  readonly pageCount: number;
  private overflowBudget = 0;

  constructor(readonly source: PageSource) {
    const bytes = source.head(100);
    if (bytes.length < 100 || Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('latin1') !== MAGIC) throw corrupt('no SQLite header');
    const raw = u16(bytes, 16);
    const size = raw === 1 ? 65536 : raw;
    if (size < 512 || size > 65536 || (size & (size - 1)) !== 0) throw corrupt(`page size ${raw}`);
    const encoding = u32(bytes, 56);
    // Names are read as the bytes stored; a UTF-16 database would need decoding that catalogs never need.
    if (encoding > 1) throw corrupt(`text encoding ${encoding} (only UTF-8 is read)`);
    this.pageSize = size;
    this.usable = size - bytes[20]!;
    if (this.usable < 480) throw corrupt('reserved bytes per page');
    this.pageCount = Math.floor(source.length / size);
  }

  private raw(no: number): Uint8Array {
    if (!Number.isInteger(no) || no < 1 || no > this.pageCount) throw corrupt(`page ${no} out of range`);
    return this.source.page(no, this.pageSize);
  }

  private page(no: number): Page {
    const data = this.raw(no);
    const h = no === 1 ? 100 : 0;
    const type = data[h]!;
    const interior = type === INTERIOR_TABLE || type === INTERIOR_INDEX;
    if (!interior && type !== LEAF_TABLE && type !== LEAF_INDEX) throw corrupt(`page ${no} is not a B-tree page`);
    const cells = u16(data, h + 3);
    const ptrs = h + (interior ? 12 : 8);
    if (ptrs + 2 * cells > this.usable) throw corrupt(`page ${no}: ${cells} cells do not fit`);
    return { no, data, type, cells, ptrs, right: interior ? u32(data, h + 8) : 0 };
  }

  private cell(pg: Page, i: number): number {
    return this.cellAt(pg.data, pg.no, pg.ptrs, pg.cells, i);
  }

  /** Where cell `i` of page `no` starts, checked: its cell pointer array starts at `ptrs` and holds `cells`. */
  private cellAt(data: Uint8Array, no: number, ptrs: number, cells: number, i: number): number {
    const o = u16(data, ptrs + 2 * i);
    if (o < ptrs + 2 * cells || o >= this.usable) throw corrupt(`page ${no}: cell pointer ${o}`);
    return o;
  }

  /** A cell's payload of `size` bytes starting at `p`: the local part, then its overflow chain if it has one. */
  private payload(data: Uint8Array, p: number, size: number, table: boolean): Uint8Array {
    const u = this.usable;
    const maxLocal = table ? u - 35 : Math.floor(((u - 12) * 64) / 255) - 23;
    if (size <= maxLocal) {
      if (p + size > u) throw corrupt('cell past the end of its page');
      return data.subarray(p, p + size);
    }
    if (size > this.pageCount * u) throw corrupt(`payload of ${size} bytes`);
    const minLocal = Math.floor(((u - 12) * 32) / 255) - 23;
    const k = minLocal + ((size - minLocal) % (u - 4));
    const local = k <= maxLocal ? k : minLocal;
    if (p + local + 4 > u) throw corrupt('cell past the end of its page');
    // A crafted file could give every cell a payload near the file's size through one shared chain: the bytes
    // copied per search or scan are bounded, so such a file fails in bounded time instead of taking hours.
    this.overflowBudget -= size;
    if (this.overflowBudget < 0) throw corrupt('overflow chains longer than the file allows');
    const out = new Uint8Array(size);
    out.set(data.subarray(p, p + local));
    let got = local;
    let next = u32(data, p + local);
    const chain = new Set<number>();
    while (got < size) {
      if (chain.has(next)) throw corrupt('overflow chain loops');
      chain.add(next);
      const ov = this.raw(next);
      const n = Math.min(size - got, u - 4);
      out.set(ov.subarray(4, 4 + n), got);
      got += n;
      next = u32(ov, 0);
    }
    return out;
  }

  /**
   * Starts the overflow budget of one query (a lookup, a listing, a scan, with the rows they read): many times
   * the file, more than any real query copies.
   */
  beginQuery(): void {
    this.overflowBudget = 64 * this.source.length;
  }

  /** Rowid and record of a table leaf cell. */
  private tableCell(pg: Page, i: number): [Rowid, Uint8Array] {
    const size = readVarint(pg.data, this.cell(pg, i));
    const rowid = readVarint64(pg.data, cursor.end);
    return [rowid, this.payload(pg.data, cursor.end, size, true)];
  }

  /** The record of an index cell (leaf or interior), undecoded. */
  private indexPayload(pg: Page, i: number): Uint8Array {
    const o = this.cell(pg, i) + (pg.type === INTERIOR_INDEX ? 4 : 0);
    const size = readVarint(pg.data, o);
    return this.payload(pg.data, cursor.end, size, false);
  }

  /** Compares index cell `i` with a search: integers without decoding the cell, anything else decoded. */
  private compareCell(pg: Page, i: number, search: IndexSearch): number {
    const b = this.indexPayload(pg, i);
    const c = search.ints ? compareIntKey(b, search.ints) : NaN;
    return Number.isNaN(c) ? comparePrefix(decodeRecord(b), search.prefix) : c;
  }

  private child(pg: Page, i: number): number {
    return i < pg.cells ? u32(pg.data, this.cell(pg, i)) : pg.right;
  }

  /**
   * The record of the row with this rowid in the table B-tree rooted at `root`. Runs once per entry of every
   * listing (an index gives the rowids), so it reads the pages in place: no page object, no tuple.
   */
  row(root: number, rowid: Rowid): Uint8Array | undefined {
    let no = root;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const data = this.raw(no);
      const h = no === 1 ? 100 : 0;
      const type = data[h]!;
      const cells = u16(data, h + 3);
      const leaf = type === LEAF_TABLE;
      if (!leaf && type !== INTERIOR_TABLE) throw corrupt(type === LEAF_INDEX || type === INTERIOR_INDEX ? `page ${no}: an index page in a table` : `page ${no} is not a B-tree page`);
      const ptrs = h + (leaf ? 8 : 12);
      if (ptrs + 2 * cells > this.usable) throw corrupt(`page ${no}: ${cells} cells do not fit`);
      if (leaf) {
        let lo = 0;
        let hi = cells - 1;
        while (lo <= hi) {
          const mid = (lo + hi) >> 1;
          const size = readVarint(data, this.cellAt(data, no, ptrs, cells, mid));
          const c = compareRowids(readVarint64(data, cursor.end), rowid);
          if (c === 0) return this.payload(data, cursor.end, size, true);
          if (c < 0) lo = mid + 1;
          else hi = mid - 1;
        }
        return undefined;
      }
      // The first cell whose key is at least the rowid leads to it; past the last, the right-most child.
      let lo = 0;
      let hi = cells;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (compareRowids(readVarint64(data, this.cellAt(data, no, ptrs, cells, mid) + 4), rowid) < 0) lo = mid + 1;
        else hi = mid;
      }
      no = lo < cells ? u32(data, this.cellAt(data, no, ptrs, cells, lo)) : u32(data, h + 8);
    }
    throw corrupt(`a table B-tree deeper than ${MAX_DEPTH} levels`);
  }

  /** The largest rowid of a table (0 when empty). */
  maxRowid(root: number): Rowid {
    let no = root;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const pg = this.page(no);
      if (pg.type === LEAF_TABLE) return pg.cells === 0 ? 0 : this.tableCell(pg, pg.cells - 1)[0];
      if (pg.type !== INTERIOR_TABLE) throw corrupt(`page ${no}: an index page in a table`);
      no = pg.right;
    }
    throw corrupt(`a table B-tree deeper than ${MAX_DEPTH} levels`);
  }

  /** Every row of the table rooted at `root`, in rowid order, as [rowid, record]. */
  *rows(root: number): Generator<[Rowid, Uint8Array]> {
    yield* this.walkTable(root, new Set(), 0);
  }

  private *walkTable(no: number, seen: Set<number>, depth: number): Generator<[Rowid, Uint8Array]> {
    if (depth >= MAX_DEPTH || seen.has(no)) throw corrupt(`page ${no} reached twice in one table`);
    seen.add(no);
    const pg = this.page(no);
    if (pg.type === LEAF_TABLE) {
      for (let i = 0; i < pg.cells; i++) yield this.tableCell(pg, i);
      return;
    }
    if (pg.type !== INTERIOR_TABLE) throw corrupt(`page ${no}: an index page in a table`);
    for (let i = 0; i <= pg.cells; i++) yield* this.walkTable(this.child(pg, i), seen, depth + 1);
  }

  /**
   * The rowids of the entries of the index rooted at `root` whose leading values equal `prefix`, in index order;
   * every entry holds `columns` values and then its rowid, or the file is malformed.
   */
  *indexRowids(root: number, prefix: readonly Value[], columns: number): Generator<Rowid> {
    yield* this.walkIndex(root, { prefix, ints: intKey(prefix), columns }, new Set(), 0);
  }

  /** Yields the matching rowids under page `no`; returns true once an entry past the range was seen. */
  private *walkIndex(no: number, search: IndexSearch, seen: Set<number>, depth: number): Generator<Rowid, boolean> {
    if (depth >= MAX_DEPTH || seen.has(no)) throw corrupt(`page ${no} reached twice in one index`);
    seen.add(no);
    const pg = this.page(no);
    const interior = pg.type === INTERIOR_INDEX;
    if (!interior && pg.type !== LEAF_INDEX) throw corrupt(`page ${no}: a table page in an index`);
    // Cells before the first whose key reaches the prefix hold only smaller keys, and so do their children.
    let lo = 0;
    let hi = pg.cells;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.compareCell(pg, mid, search) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < pg.cells; i++) {
      if (interior && (yield* this.walkIndex(this.child(pg, i), search, seen, depth + 1))) return true;
      const c = this.compareCell(pg, i, search);
      if (c > 0) return true;
      // Only equal keys: a value this reader orders other than SQLite does (a BLOB among TEXT, both bytes here)
      // may sit inside the range without belonging to it.
      if (c < 0) continue;
      const rowid = lastInteger(this.indexPayload(pg, i), search.columns + 1);
      if (rowid === undefined) throw corrupt(`page ${no}: an index entry without its rowid`);
      yield rowid;
    }
    return interior ? yield* this.walkIndex(pg.right, search, seen, depth + 1) : false;
  }
}

/** One search of an index: the leading values asked for, as integers too where they all are. */
interface IndexSearch {
  readonly prefix: readonly Value[];
  readonly ints: IntKey | undefined;
  /** Values an entry holds before its rowid. */
  readonly columns: number;
}
