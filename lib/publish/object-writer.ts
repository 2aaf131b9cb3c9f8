/**
 * Writes content-addressed objects into a repository's `data/` directory. An object is named by the hash of its
 * bytes as stored (a standard zlib stream, see ./deflate.ts, unless compression is off), is first written to
 * `data/txn/` and then renamed into place, so a reader never sees half an object; an object already present is
 * left alone.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHasher, hashBytes, objectPath, type ContentHash, type HashAlgorithm, type ObjectSuffix } from '../format/hash.js';
import type { Compression } from '../format/flags.js';
import { deflateStandard, deflateStandardStream } from './deflate.js';

/** Counts of what a publish wrote. */
export interface WriteStats {
  /** Objects written by this run. */
  written: number;
  /** Objects that were already present (deduplicated). */
  skipped: number;
  /** Bytes of the objects written, as stored. */
  bytes: number;
}

/** The result of storing one object. */
export interface StoredObject {
  readonly hash: ContentHash;
  /** Bytes before compression. */
  readonly plainSize: number;
}

/** Object store of one repository directory being published. */
export class ObjectWriter {
  readonly stats: WriteStats = { written: 0, skipped: 0, bytes: 0 };
  private readonly txn: string;

  constructor(readonly repoDir: string, readonly algorithm: HashAlgorithm) {
    this.txn = join(repoDir, 'data', 'txn');
  }

  /** Creates `data/00` … `data/ff` and `data/txn`, as `cvmfs_server mkfs` does. */
  async init(): Promise<void> {
    await mkdir(this.txn, { recursive: true });
    for (let i = 0; i < 256; i++) await mkdir(join(this.repoDir, 'data', i.toString(16).padStart(2, '0')), { recursive: true });
  }

  /** Path of an object in this repository. */
  pathOf(hash: ContentHash, suffix: ObjectSuffix): string {
    return join(this.repoDir, objectPath(hash, suffix));
  }

  private tempPath(): string {
    return join(this.txn, `tmp.${process.pid}.${randomBytes(8).toString('hex')}`);
  }

  /** Stores bytes that are already in their stored form. */
  async putStored(stored: Uint8Array, suffix: ObjectSuffix, plainSize = stored.length): Promise<StoredObject> {
    const hash = hashBytes(stored, this.algorithm);
    const dest = this.pathOf(hash, suffix);
    if (existsSync(dest)) this.stats.skipped++;
    else {
      const tmp = this.tempPath();
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(stored);
      } finally {
        await fh.close();
      }
      await this.commit(tmp, dest, stored.length);
    }
    return { hash, plainSize };
  }

  /** Stores a buffer, zlib-compressed unless `compression` is `'none'`. */
  async put(plain: Uint8Array, suffix: ObjectSuffix, compression: Compression = 'zlib'): Promise<StoredObject> {
    return this.putStored(compression === 'zlib' ? deflateStandard(plain) : plain, suffix, plain.length);
  }

  /** Stores a stream without holding it in memory. */
  async putStream(source: AsyncIterable<Uint8Array>, suffix: ObjectSuffix, compression: Compression = 'zlib'): Promise<StoredObject> {
    const tmp = this.tempPath();
    const hasher = createHasher(this.algorithm);
    const fh = await open(tmp, 'wx', 0o644);
    let plainSize = 0;
    let storedSize = 0;
    const sink = async (chunks: AsyncIterable<Uint8Array>): Promise<void> => {
      for await (const c of chunks) {
        hasher.update(c);
        storedSize += c.length;
        await fh.write(c);
      }
    };
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const c of source) {
        plainSize += c.length;
        yield c;
      }
    }
    try {
      if (compression === 'zlib') await pipeline(counted(), deflateStandardStream, sink);
      else await sink(counted());
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    await fh.close();
    const hash = hasher.digest();
    const dest = this.pathOf(hash, suffix);
    if (existsSync(dest)) {
      this.stats.skipped++;
      await unlink(tmp);
    } else await this.commit(tmp, dest, storedSize);
    return { hash, plainSize };
  }

  private async commit(tmp: string, dest: string, size: number): Promise<void> {
    try {
      await rename(tmp, dest);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    this.stats.written++;
    this.stats.bytes += size;
  }
}
