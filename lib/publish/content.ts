/**
 * Stores the content of one regular file: as a single object, or, when it is larger than the minimum chunk size,
 * cut into content-defined chunks (`P` objects) the way the genuine publisher cuts it.
 * @module
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ContentHash } from '../format/hash.js';
import type { Compression } from '../format/flags.js';
import { mightBeChunked, Xor32Chunker, type ChunkSizes } from './chunker.js';
import type { ObjectWriter } from './object-writer.js';

/** One chunk of a chunked file. */
export interface ChunkRef {
  readonly offset: number;
  readonly size: number;
  readonly hash: ContentHash;
}

/** Where a file's content went. */
export interface FileContent {
  /** Size in bytes, as read. */
  readonly size: number;
  /** Whole-file object; null for a chunked file (the genuine default writes no bulk object then). */
  readonly hash: ContentHash | null;
  /** Two or more chunks, or empty for a whole-file object. */
  readonly chunks: readonly ChunkRef[];
}

/** Files up to this size are read and compressed in one piece; larger ones are streamed. */
const IN_MEMORY_LIMIT = 16 * 1024 * 1024;
/** Read block size for streamed files. */
const READ_BLOCK = 1024 * 1024;

/** Stores the content of the regular file at `path` (`statSize` is its size from lstat). */
export async function storeFileContent(path: string | Buffer, statSize: number, writer: ObjectWriter, compression: Compression, chunking: ChunkSizes | false): Promise<FileContent> {
  if (chunking && mightBeChunked(statSize, chunking)) return storeChunked(path, writer, compression, chunking);
  if (statSize <= IN_MEMORY_LIMIT) {
    const bytes = await readFile(path);
    if (chunking && mightBeChunked(bytes.length, chunking)) return storeChunked(path, writer, compression, chunking);
    const o = await writer.put(bytes, '', compression);
    return { size: bytes.length, hash: o.hash, chunks: [] };
  }
  const o = await writer.putStream(createReadStream(path, { highWaterMark: READ_BLOCK }), '', compression);
  return { size: o.plainSize, hash: o.hash, chunks: [] };
}

async function storeChunked(path: string | Buffer, writer: ObjectWriter, compression: Compression, sizes: ChunkSizes): Promise<FileContent> {
  const chunker = new Xor32Chunker(sizes);
  const chunks: ChunkRef[] = [];
  // A finished piece is held back until the next cut shows it is not the file's only piece: a sole piece is
  // stored as an ordinary whole-file object (the genuine write task turns it into a bulk chunk).
  let pending: { offset: number; data: Buffer } | null = null;
  let current: Buffer[] = [];
  let currentStart = 0;
  let position = 0;

  const writeChunk = async (p: { offset: number; data: Buffer }): Promise<void> => {
    const o = await writer.put(p.data, 'P', compression);
    chunks.push({ offset: p.offset, size: p.data.length, hash: o.hash });
  };
  const finishPiece = async (end: number): Promise<void> => {
    const data = Buffer.concat(current);
    current = [];
    if (pending) await writeChunk(pending);
    pending = { offset: currentStart, data };
    currentStart = end;
  };

  for await (const raw of createReadStream(path, { highWaterMark: READ_BLOCK })) {
    const block = raw as Buffer;
    let from = 0;
    for (const cut of chunker.push(block)) {
      const local = cut - position;
      current.push(block.subarray(from, local));
      from = local;
      await finishPiece(cut);
    }
    if (from < block.length) current.push(block.subarray(from));
    position += block.length;
  }
  const rest = Buffer.concat(current);
  if (rest.length > 0) {
    if (pending) await writeChunk(pending);
    pending = { offset: currentStart, data: rest };
  }
  const last = pending as { offset: number; data: Buffer } | null;
  if (last && chunks.length === 0) {
    const o = await writer.put(last.data, '', compression);
    return { size: position, hash: o.hash, chunks: [] };
  }
  if (last) await writeChunk(last);
  if (chunks.length === 0) {
    const o = await writer.put(Buffer.alloc(0), '', compression);
    return { size: 0, hash: o.hash, chunks: [] };
  }
  return { size: position, hash: null, chunks };
}
