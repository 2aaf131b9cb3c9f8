/**
 * Stores the content of one regular file: as a single object, or, when it is larger than the minimum chunk size,
 * cut into content-defined chunks (`P` objects) the way the genuine publisher cuts it.
 * @module
 */
import { closeSync, createReadStream, openSync, readFileSync, readSync } from 'node:fs';
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

/**
 * Files up to this size (by lstat) are stored by {@link storeSmallFileSync}: for them the thread pool's round trips
 * cost more than the work, and one main thread doing everything in order beat 16 files in flight (group 13).
 */
export const SMALL_FILE_LIMIT = 256 * 1024;

/**
 * Reads a small file in three system calls (open, read, close): the size from lstat saves readFile's fstat, and
 * reading one byte more than expected tells a file that grew since (read again whole then).
 */
function readSmall(path: string | Buffer, statSize: number): Buffer {
  const fd = openSync(path, 'r');
  let n: number;
  const buf = Buffer.allocUnsafe(statSize + 1);
  try {
    n = readSync(fd, buf, 0, buf.length, 0);
  } finally {
    closeSync(fd);
  }
  return n <= statSize ? buf.subarray(0, n) : readFileSync(path);
}

/**
 * Stores a regular file no larger than {@link SMALL_FILE_LIMIT} (by lstat) synchronously: read, hash, compress,
 * write. Undefined when the file has grown past the limit since (store it with {@link storeFileContent} then).
 */
export function storeSmallFileSync(path: string | Buffer, statSize: number, writer: ObjectWriter, compression: Compression, chunking: ChunkSizes | false): FileContent | undefined {
  const bytes = readSmall(path, statSize);
  if (bytes.length > SMALL_FILE_LIMIT || (chunking && mightBeChunked(bytes.length, chunking))) return undefined;
  const o = writer.putSync(bytes, '', compression);
  return { size: bytes.length, hash: o.hash, chunks: [] };
}

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
