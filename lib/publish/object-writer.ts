/**
 * Writes content-addressed objects into a repository's `data/` directory. An object is named by the hash of its
 * bytes as stored (a standard zlib stream, see ./deflate.ts, unless compression is off), is first written to
 * `data/txn/` and then renamed into place, so a reader never sees half an object; an object already present is
 * left alone.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHasher, hashBytes, objectPath, type ContentHash, type HashAlgorithm, type ObjectSuffix } from '../format/hash.js';
import type { Compression } from '../format/flags.js';
import { deflateStandard, deflateStandardStream } from './deflate.js';
import { ObjectSink } from './object-sink.js';

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
  /**
   * Objects in the repository (`data/xx/rest` as objectPath gives it): listed once by {@link init} and kept up
   * to date by this writer, so that telling a duplicate costs no stat (one per object was the largest single cost
   * of publishing many small files). Only one publish runs on a repository at a time, so nothing else adds any.
   */
  private readonly present = new Set<string>();
  /** Temporary names: unique within this process by the counter, across processes by pid and a random tag. */
  private readonly tempPrefix: string;
  private tempCount = 0;
  /** While set, {@link putStoredSync} hands its writes to this thread (see object-sink.ts). */
  private sink: ObjectSink | undefined;

  /**
   * @param externalContent file content (objects `''` and `P`) is hashed, not written: external data, which
   *   clients fetch by path from other servers
   */
  constructor(readonly repoDir: string, readonly algorithm: HashAlgorithm, private readonly externalContent = false) {
    this.txn = join(repoDir, 'data', 'txn');
    this.tempPrefix = join(this.txn, `tmp.${process.pid}.${randomBytes(6).toString('hex')}.`);
  }

  /** Creates `data/00` … `data/ff` and `data/txn`, as `cvmfs_server mkfs` does, and lists the objects present. */
  async init(): Promise<void> {
    await mkdir(this.txn, { recursive: true });
    for (let i = 0; i < 256; i++) {
      const sub = i.toString(16).padStart(2, '0');
      const dir = join(this.repoDir, 'data', sub);
      await mkdir(dir, { recursive: true });
      for (const name of readdirSync(dir)) this.present.add(`data/${sub}/${name}`);
    }
  }

  /** Path of an object in this repository. */
  pathOf(hash: ContentHash, suffix: ObjectSuffix): string {
    return join(this.repoDir, objectPath(hash, suffix));
  }

  /** True when the object is in the repository (listed by {@link init} or written since). */
  has(hash: ContentHash, suffix: ObjectSuffix): boolean {
    return this.present.has(objectPath(hash, suffix));
  }

  /** Whether an object is only hashed: a file's content (whole or a chunk) in a publish of external data. */
  private hashOnly(suffix: ObjectSuffix): boolean {
    return this.externalContent && (suffix === '' || suffix === 'P');
  }

  private tempPath(): string {
    return this.tempPrefix + String(this.tempCount++);
  }

  /** Stores bytes that are already in their stored form. */
  async putStored(stored: Uint8Array, suffix: ObjectSuffix, plainSize = stored.length): Promise<StoredObject> {
    const hash = hashBytes(stored, this.algorithm);
    const rel = objectPath(hash, suffix);
    if (this.hashOnly(suffix)) return { hash, plainSize };
    if (this.present.has(rel)) this.stats.skipped++;
    else {
      const tmp = this.tempPath();
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(stored);
      } finally {
        await fh.close();
      }
      await this.commit(tmp, rel, stored.length);
    }
    return { hash, plainSize };
  }

  /**
   * {@link putStored} without the thread pool, for small objects: each asynchronous file operation costs more
   * in promises, handles and garbage than a small write itself (see bench/README.md, group 13).
   */
  putStoredSync(stored: Uint8Array, suffix: ObjectSuffix, plainSize = stored.length): StoredObject {
    const hash = hashBytes(stored, this.algorithm);
    const rel = objectPath(hash, suffix);
    if (this.hashOnly(suffix)) return { hash, plainSize };
    if (this.present.has(rel)) this.stats.skipped++;
    else if (this.sink) {
      this.sink.add(this.tempPath(), join(this.repoDir, rel), stored);
      this.added(rel, stored.length);
    } else {
      const tmp = this.tempPath();
      writeFileSync(tmp, stored, { flag: 'wx', mode: 0o644 });
      try {
        renameSync(tmp, join(this.repoDir, rel));
      } catch (e) {
        try { unlinkSync(tmp); } catch { /* already gone */ }
        throw e;
      }
      this.added(rel, stored.length);
    }
    return { hash, plainSize };
  }

  /**
   * From now until {@link endBackground}, {@link putSync} and {@link putStoredSync} write in a worker thread
   * (object-sink.ts): they return once the object is queued, and an object counts as present from then on.
   */
  startBackground(): void {
    this.sink ??= new ObjectSink();
  }

  /** True when the background queue is full: await {@link backgroundReady} before storing more. */
  backgroundBacklogged(): boolean {
    return this.sink?.backlogged() ?? false;
  }

  /** Resolves when the background queue has room again; rejects when a background write failed. */
  async backgroundReady(): Promise<void> {
    await this.sink?.ready();
  }

  /**
   * Waits until every object queued in the background is in place and stops the thread; rejects when a write
   * failed. With `keep` false (after a failure elsewhere) the thread is stopped without waiting.
   */
  async endBackground(keep = true): Promise<void> {
    const sink = this.sink;
    this.sink = undefined;
    if (!sink) return;
    try {
      if (keep) await sink.drain();
    } finally {
      await sink.close();
    }
  }

  /** Stores a buffer, zlib-compressed unless `compression` is `'none'`. */
  async put(plain: Uint8Array, suffix: ObjectSuffix, compression: Compression = 'zlib'): Promise<StoredObject> {
    return this.putStored(compression === 'zlib' ? deflateStandard(plain) : plain, suffix, plain.length);
  }

  /** {@link put} without the thread pool (see {@link putStoredSync}). */
  putSync(plain: Uint8Array, suffix: ObjectSuffix, compression: Compression = 'zlib'): StoredObject {
    return this.putStoredSync(compression === 'zlib' ? deflateStandard(plain) : plain, suffix, plain.length);
  }

  /** Stores a stream without holding it in memory. */
  async putStream(source: AsyncIterable<Uint8Array>, suffix: ObjectSuffix, compression: Compression = 'zlib'): Promise<StoredObject> {
    if (this.hashOnly(suffix) && compression === 'none') {
      const hasher = createHasher(this.algorithm);
      let plainSize = 0;
      for await (const c of source) {
        hasher.update(c);
        plainSize += c.length;
      }
      return { hash: hasher.digest(), plainSize };
    }
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
    const rel = objectPath(hash, suffix);
    if (this.present.has(rel)) {
      this.stats.skipped++;
      await unlink(tmp);
    } else await this.commit(tmp, rel, storedSize);
    return { hash, plainSize };
  }

  private async commit(tmp: string, rel: string, size: number): Promise<void> {
    try {
      await rename(tmp, join(this.repoDir, rel));
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    this.added(rel, size);
  }

  private added(rel: string, size: number): void {
    this.present.add(rel);
    this.stats.written++;
    this.stats.bytes += size;
  }
}
