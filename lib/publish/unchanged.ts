/**
 * Republishing cheaply: a regular file whose size and mtime (to the nanosecond) are those the previous revision
 * recorded for its path is taken as unchanged, as rsync's quick check takes it, and keeps its stored content
 * (whole-file object or chunk list) without being read, hashed or compressed again. Only content stored with
 * this publish's hash algorithm and compression, in the form this publish would give it (whole or chunked), and
 * whose objects are still in the repository, is reused. `PublishOptions.rescan` reads everything instead.
 * @module
 */
import type { SqliteTables } from '../catalog/sqlite-tables.js';
import { Flag, compressionOf, hashAlgorithmOf, type Compression } from '../format/flags.js';
import { type ContentHash, type HashAlgorithm } from '../format/hash.js';
import type { ChunkSizes } from './chunker.js';
import type { ChunkRef, FileContent } from './content.js';
import type { ObjectWriter } from './object-writer.js';
import { entryKey, type SourceEntry } from './source.js';

interface Recorded {
  size: number;
  mtime: number;
  mtimeNs: number | null;
  flags: number;
  hex: string | null;
  chunks?: { offset: number; size: number; hex: string }[];
  /** A chunk row without a hash: the chunk list cannot be kept. */
  badChunk?: boolean;
}

/** Whether chunks sorted by offset cover `[0, size)` exactly, one after the other. */
function coversFile(chunks: readonly { offset: number; size: number }[], size: number): boolean {
  let at = 0;
  for (const c of chunks) {
    if (c.offset !== at || !(c.size > 0)) return false;
    at += c.size;
  }
  return at === size;
}

/** A BLOB as lower-case hex. */
const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

/** The positions of `names` among a table's columns. */
function columnsOf(columns: readonly string[], names: readonly string[]): Record<string, number | undefined> {
  return Object.fromEntries(names.map((n) => [n, columns.indexOf(n) >= 0 ? columns.indexOf(n) : undefined]));
}

const keyOf = (e: SourceEntry): string => {
  const [a, b] = entryKey(e);
  return `${a}:${b}`;
};

/** The regular files of a previous revision's catalogs, by path. */
export class PreviousContents {
  private readonly files = new Map<string, Recorded>();

  /** Adds the regular files (and their chunks) of one catalog database, read without an SQL engine. */
  add(db: SqliteTables): void {
    const catalog = db.table('catalog');
    if (!catalog) return;
    const col = columnsOf(catalog.columns, ['md5path_1', 'md5path_2', 'size', 'mtime', 'mtimens', 'flags', 'hash']);
    const notContent = Flag.Link | Flag.FileSpecial | Flag.FileExternal;
    for (const { values: v } of catalog.scan()) {
      const flags = Number(v[col.flags!]);
      if ((flags & Flag.File) === 0 || (flags & notContent) !== 0) continue;
      const ns = v[col.mtimens!];
      const hash = v[col.hash!];
      this.files.set(`${v[col.md5path_1!]}:${v[col.md5path_2!]}`, {
        size: Number(v[col.size!]), mtime: Number(v[col.mtime!]), mtimeNs: ns === null || ns === undefined ? null : Number(ns), flags,
        hex: hash instanceof Uint8Array && hash.length > 0 ? hexOf(hash) : null,
      });
    }
    const chunks = db.table('chunks');
    if (!chunks) return;
    const c = columnsOf(chunks.columns, ['md5path_1', 'md5path_2', 'offset', 'size', 'hash']);
    const touched = new Set<Recorded>();
    for (const { values: v } of chunks.scan()) {
      const f = this.files.get(`${v[c.md5path_1!]}:${v[c.md5path_2!]}`);
      const hash = v[c.hash!];
      if (!f) continue;
      if (!(hash instanceof Uint8Array) || hash.length === 0) {
        f.badChunk = true;
        continue;
      }
      (f.chunks ??= []).push({ offset: Number(v[c.offset!]), size: Number(v[c.size!]), hex: hexOf(hash) });
      touched.add(f);
    }
    // In the order of their offsets, whatever order the table holds them in.
    for (const f of touched) f.chunks!.sort((a, b) => a.offset - b.offset);
  }

  /** Files recorded. */
  get size(): number {
    return this.files.size;
  }

  /**
   * True when `e`'s catalog row certainly differs from the previous revision's: no file was recorded at its path,
   * or one of another size or mtime (seconds; both are catalog columns whatever the settings).
   */
  differs(e: SourceEntry): boolean {
    const r = this.files.get(keyOf(e));
    return !r || r.size !== e.size || r.mtime !== e.mtime;
  }

  /**
   * The stored content of `e` from the previous revision when it counts as unchanged and can be kept as it is
   * under the settings of this publish; undefined when the file must be read.
   */
  reuse(e: SourceEntry, objects: ObjectWriter, s: { algorithm: HashAlgorithm; compression: Compression; chunking: ChunkSizes | false }): FileContent | undefined {
    const r = this.files.get(keyOf(e));
    if (!r || r.size !== e.size || r.mtime !== e.mtime || (r.mtimeNs ?? 0) !== e.mtimeNs) return undefined;
    if (hashAlgorithmOf(r.flags) !== s.algorithm || compressionOf(r.flags) !== s.compression) return undefined;
    const hash = (hex: string): ContentHash => ({ algorithm: s.algorithm, hex });
    const present = (h: ContentHash, suffix: '' | 'P') => objects.has(h, suffix);
    const chunked = (r.flags & Flag.FileChunk) !== 0;
    // Kept in the form it has when that form is still allowed: chunks while chunking is on; one object while
    // chunking is off or the file is no larger than the largest chunk (a larger one would now be cut).
    if (!chunked) {
      if (s.chunking !== false && e.size > s.chunking.max) return undefined;
      return r.hex && present(hash(r.hex), '') ? { size: r.size, hash: hash(r.hex), chunks: [] } : undefined;
    }
    if (s.chunking === false) return undefined;
    const chunks: ChunkRef[] = (r.chunks ?? []).map((c) => ({ offset: c.offset, size: c.size, hash: hash(c.hex) }));
    if (r.badChunk || chunks.length < 2 || !coversFile(chunks, r.size) || !chunks.every((c) => present(c.hash, 'P'))) return undefined;
    return { size: r.size, hash: r.hex ? hash(r.hex) : null, chunks };
  }
}
