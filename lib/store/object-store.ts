/**
 * The one way objects enter this process: download, hash the bytes as stored while they stream, inflate into a
 * temporary file, and only when the digest matches rename the file into the cache. Nothing unverified is ever
 * returned or kept; a mismatch makes the fetcher try the next server. Concurrent requests for one object share
 * one download.
 * @module
 */
import { createWriteStream } from 'node:fs';
import { readWhole } from '../fs/fd-file.js';
import { pipeInto } from '../pipe-into.js';
import type { Readable, TransformCallback } from 'node:stream';
import { lazyCrypto, lazyStream, lazyStreamPromises, lazyZlib } from '../lazy.js';
import { ioError, CvmfsError } from '../errors.js';
import { createHasher, hashBytes, hashToString, objectPath, type ContentHash, type ObjectSuffix } from '../format/hash.js';
import type { Compression } from '../format/flags.js';
import type { Fetcher } from '../net/fetcher.js';
import type { DiskCache } from '../cache/disk-cache.js';
import { debug } from '../debug.js';
import { encodeName } from '../format/byte-names.js';
import { BufferedSink, bufferedSinkAvailable } from './buffered-sink.js';
import type { SharedMirror } from '../cache/shared-mirror.js';

/** Counters of an object store. */
export interface ObjectStoreStats {
  /** Objects served from the cache. */
  hits: number;
  /** Objects downloaded and verified. */
  misses: number;
  /** Downloads rejected because the digest did not match (objects of a shared cache included). */
  hashMismatches: number;
  /** Objects taken, verified, from a cache shared with other users. */
  sharedHits: number;
  /** Objects of a shared cache that failed verification (removed, then fetched again). */
  quarantined: number;
}


/**
 * Where an external file's piece is (a repository published with external data, CVMFS_EXTERNAL_URL): not on the
 * Stratum-1 under its hash, but at its path on the external servers, a chunk as a byte range of it. Its bytes are
 * verified by the catalog's hash all the same.
 */
export interface ExternalPiece {
  /** The file's path in the repository, `/`-first. */
  readonly path: string;
  /** A chunk's offset in the file; undefined for a whole file (no Range asked). */
  readonly offset?: number;
}

/** The servers of external data, made when the first external file is read (none configured: an EIO then). */
export type ExternalFetcher = () => Fetcher;

/** Objects up to this size (as the catalog gives it) are verified in memory in one go; larger ones stream. */
const SMALL_OBJECT = 256 * 1024;

/** Fetches, verifies, decompresses and caches content-addressed objects. */
export class ObjectStore {
  private readonly inflight = new Map<string, { promise: Promise<string>; controller: AbortController; waiting: number }>();
  readonly stats: ObjectStoreStats = { hits: 0, misses: 0, hashMismatches: 0, sharedHits: 0, quarantined: 0 };

  /**
   * @param mirror a cache directory other users can write, used as a verified source between this user's cache
   *   and the network (see shared-mirror.ts)
   */
  constructor(readonly fetcher: Fetcher, readonly cache: DiskCache, readonly mirror?: SharedMirror, private readonly external?: ExternalFetcher) {}

  /**
   * Local path of the verified, decompressed object, downloading it first if needed.
   * @param suffix object-name suffix (C catalog, P chunk, X certificate, H history, '' file)
   * @param external where an external file's piece is fetched from instead (see {@link ExternalPiece})
   */
  async get(h: ContentHash, suffix: ObjectSuffix, compression: Compression, signal?: AbortSignal, sizeHint?: number, external?: ExternalPiece): Promise<string> {
    signal?.throwIfAborted();
    const key = hashToString(h);
    // A cached object needs no download to join or abort (a warm command's catalogs): answered at once. One
    // found missing here is not looked for again before its download starts.
    const looked = !external && this.cache.initialized && !this.inflight.has(key);
    if (looked && this.cache.present(h)) {
      this.stats.hits++;
      this.cache.touch(h);
      return this.cache.pathOf(h);
    }
    // One download per object however many callers want it; it is aborted only when every caller that wanted
    // it has aborted (a caller without a signal never does), so one caller's abort never fails another's read.
    let d = this.inflight.get(key);
    // A download every caller abandoned is not joined: it is being cancelled.
    if (!d || d.controller.signal.aborted) {
      const controller = new AbortController();
      const entry = { controller, waiting: 0, promise: undefined as unknown as Promise<string> };
      entry.promise = this.load(h, suffix, compression, controller.signal, sizeHint, external, looked).finally(() => {
        if (this.inflight.get(key) === entry) this.inflight.delete(key);
      });
      this.inflight.set(key, entry);
      d = entry;
    }
    const download = d;
    download.waiting++;
    if (!signal) return download.promise;
    return new Promise<string>((resolve, reject) => {
      const onAbort = () => {
        reject(signal.reason as Error);
        if (--download.waiting === 0) download.controller.abort(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      download.promise.then(
        (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
        (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e as Error); },
      );
    });
  }

  /**
   * The cached file of an object, downloaded first if needed, and kept while this process runs (a catalog is read
   * from it in place).
   */
  async pinnedPath(h: ContentHash, suffix: ObjectSuffix, compression: Compression = 'zlib'): Promise<string> {
    this.cache.pin(h);
    return this.get(h, suffix, compression);
  }

  /** The verified, decompressed object in memory (for certificates and history databases). */
  async getBytes(h: ContentHash, suffix: ObjectSuffix, compression: Compression = 'zlib'): Promise<Buffer> {
    // Catalogs, certificates and histories stay while this process runs (see {@link DiskCache.enforceQuota}).
    this.cache.pin(h);
    try {
      return await readWhole(await this.get(h, suffix, compression));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return readWhole(await this.get(h, suffix, compression)); // evicted by another process meanwhile
    }
  }

  private async load(h: ContentHash, suffix: ObjectSuffix, compression: Compression, signal?: AbortSignal, sizeHint?: number, external?: ExternalPiece, looked = false): Promise<string> {
    await this.cache.init();
    if (!looked && (await this.cache.has(h))) {
      this.stats.hits++;
      this.cache.touch(h);
      return this.cache.pathOf(h);
    }
    const rel = objectPath(h, suffix);
    // Several processes on one cache (jobs started together on a node): each object is downloaded by one of
    // them while the others wait for it to appear, small ones too (a lock file costs far less than a request).
    const lock = await this.cache.lockDownload(h, signal);
    try {
      if (lock === 'done') {
        this.stats.hits++;
        return this.cache.pathOf(h);
      }
      if (this.mirror) {
        const found = await this.fromMirror(this.mirror, rel, h, compression, sizeHint);
        if (found) return found;
      }
      const mirror = this.mirror;
      const consume = mirror
        ? (body: Readable, url: string) => this.verifyAndShare(mirror, rel, body, url, h, compression, sizeHint)
        : (body: Readable, url: string) => this.verifyInto(body, url, h, compression, sizeHint);
      const path = external ? await this.fetchExternal(external, consume, signal, sizeHint) : await this.fetcher.fetch(rel, consume, signal);
      this.stats.misses++;
      debug(`cached ${rel}`);
      return path;
    } finally {
      if (lock !== 'done') await lock.release();
    }
  }

  /** The external data server in use ('' when none is configured). */
  externalHost(): string {
    return this.external?.().host ?? '';
  }

  /** An external piece from the external servers: the file's path (its bytes percent-encoded), a chunk as a range. */
  private async fetchExternal(x: ExternalPiece, consume: (body: Readable, url: string) => Promise<string>, signal: AbortSignal | undefined, size: number | undefined): Promise<string> {
    if (!this.external) throw ioError('download', `${x.path} is external data, and no external server is configured (CVMFS_EXTERNAL_URL)`);
    const fetcher = this.external();
    const rel = externalUrlPath(x.path);
    const range = x.offset === undefined || size === undefined ? undefined : [x.offset, x.offset + size - 1] as const;
    return fetcher.fetch(rel, consume, signal, range);
  }

  /**
   * The object from the shared cache, verified exactly as a download is; a bad one is removed (and the caller
   * goes to the network).
   */
  private async fromMirror(mirror: SharedMirror, rel: string, h: ContentHash, compression: Compression, sizeHint?: number): Promise<string | undefined> {
    const body = await mirror.open(rel);
    if (!body) return undefined;
    try {
      const path = await this.verifyInto(body, `${mirror.dir}/${rel}`, h, compression, sizeHint);
      this.stats.sharedHits++;
      debug(`verified from the shared cache: ${rel}`);
      return path;
    } catch (e) {
      // Only bytes that fail their checks are the shared copy's fault; a read or a write that failed here is not.
      if (!(e instanceof CvmfsError) || e.reason === 'cache-write') throw e;
      if (e.reason !== 'hash-mismatch' && e.reason !== 'decompression') {
        debug(`shared cache: ${rel} could not be read (${e.message}); fetching it`);
        return undefined;
      }
      this.stats.quarantined++;
      debug(`shared cache: ${rel} failed verification (${e.message}); fetching it again`);
      await mirror.quarantine(rel);
      return undefined;
    } finally {
      body.destroy();
    }
  }

  /** A download that also leaves its raw bytes in the shared cache, once they are verified. */
  private async verifyAndShare(mirror: SharedMirror, rel: string, body: Readable, url: string, h: ContentHash, compression: Compression, sizeHint?: number): Promise<string> {
    const w = await mirror.writer(rel).catch(() => undefined); // a shared cache we cannot write still serves
    if (!w) return this.verifyInto(body, url, h, compression, sizeHint);
    const tee = new (lazyStream().Transform)({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        w.write(chunk);
        cb(null, chunk);
      },
    });
    let path: string;
    try {
      body.on('error', (e) => tee.destroy(e)); // pipe() does not pass errors on
      path = await this.verifyInto(pipeInto(body, tee), url, h, compression, sizeHint);
    } catch (e) {
      await w.discard();
      throw e;
    }
    await w.commit().catch((e: unknown) => debug(`shared cache: cannot add ${rel}: ${(e as Error).message}`));
    return path;
  }

  /**
   * A verified object this machine could not keep (a full disk, a cache made read-only or removed under us): EIO
   * that names the cache and the cause, and that the fetcher does not blame on the server.
   */
  private cacheWriteError(url: string, e: unknown): CvmfsError {
    return ioError('cache-write', `cannot keep ${url} in the cache ${this.cache.dir}: ${(e as Error).message}`, e);
  }

  /** The one verdict on downloaded bytes: their hash is the object's name, or the download is bad data. */
  private checkHash(url: string, want: ContentHash, got: ContentHash): void {
    if (got.hex === want.hex) return;
    this.stats.hashMismatches++;
    debug(`hash mismatch: ${url}`);
    throw ioError('hash-mismatch', `hash mismatch for ${url}: expected ${hashToString(want)}, got ${hashToString(got)}`);
  }

  private async verifyInto(body: Readable, url: string, h: ContentHash, compression: Compression, sizeHint?: number): Promise<string> {
    if (sizeHint !== undefined && sizeHint > 0 && sizeHint <= SMALL_OBJECT) return this.verifySmall(body, url, h, compression, sizeHint);
    if (compression !== 'zlib' || bufferedSinkAvailable()) return this.verifyBuffered(body, url, h, compression, sizeHint);
    return this.verifyStreamed(body, url, h, compression, sizeHint);
  }

  /**
   * A large object: hashed as it arrives, inflated into reused buffers and written to a temporary file (see
   * buffered-sink.ts), renamed into the cache only once the hash matches.
   */
  private async verifyBuffered(body: Readable, url: string, h: ContentHash, compression: Compression, sizeHint?: number): Promise<string> {
    const tmp = this.cache.tempPath();
    const hasher = createHasher(h.algorithm);
    const writeError = (e: unknown) => this.cacheWriteError(url, e);
    // The body may fail while the sink opens (a tee of a shared cache passes errors on by destroying itself): it
    // keeps the error for the loop below, never an unhandled 'error' event.
    body.on('error', () => undefined);
    const sink = await BufferedSink.open(tmp, { compression, url, writeError, ...(sizeHint !== undefined ? { limit: sizeHint } : {}) });
    let committed = false;
    try {
      try {
        try {
          for await (const piece of body as AsyncIterable<Buffer>) {
            hasher.update(piece);
            await sink.push(piece);
          }
        } catch (e) {
          if (e instanceof CvmfsError) throw e;
          throw ioError('download', `transfer failed for ${url}: ${(e as Error).message}`, e);
        }
        await sink.end();
      } finally {
        await sink.close();
      }
      this.checkHash(url, h, hasher.digest());
      const path = await this.cache.commit(tmp, h, sink.keptDigest()).catch((e: unknown) => { throw this.cacheWriteError(url, e); });
      committed = true;
      return path;
    } finally {
      if (!committed) await this.cache.discard(tmp);
    }
  }

  /** {@link verifyBuffered} with Node's stream pipeline, where this Node's zlib engine cannot be driven directly. */
  private async verifyStreamed(body: Readable, url: string, h: ContentHash, compression: Compression, sizeHint?: number): Promise<string> {
    const tmp = this.cache.tempPath();
    // zlib hands out one thread-pool round trip (and one write) per output buffer: big objects want big
    // buffers (measured: 16 KiB → 256 KiB took a 32 MB chunked read from ~250 to ~400 MB/s), small ones not.
    const chunkSize = Math.min(256 * 1024, Math.max(16 * 1024, 2 ** Math.ceil(Math.log2(sizeHint ?? 64 * 1024))));
    let committed = false;
    const hasher = createHasher(h.algorithm);
    const { Transform } = lazyStream();
    const hashing = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        hasher.update(chunk);
        cb(null, chunk);
      },
    });
    // A digest of what is kept (the decompressed bytes), so that fsck can check the object later.
    const kept = lazyCrypto().createHash('sha1');
    let keptBytes = 0;
    const keeping = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        // The catalog gives the size: a body that inflates past it (a zlib bomb) stops here, not on a full disk.
        keptBytes += chunk.length;
        if (sizeHint !== undefined && keptBytes > sizeHint) {
          cb(ioError('decompression', `${url} ${compression === 'zlib' ? 'decompresses to' : 'holds'} more than the ${sizeHint} bytes the catalog gives`));
          return;
        }
        kept.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      let writeError: unknown;
      try {
        const out = createWriteStream(tmp, { highWaterMark: chunkSize });
        out.once('error', (e) => (writeError = e));
        const { pipeline } = lazyStreamPromises();
        if (compression === 'zlib') await pipeline(body, hashing, lazyZlib().createInflate({ chunkSize }), keeping, out);
        else await pipeline(body, hashing, keeping, out);
      } catch (e) {
        if (e instanceof CvmfsError) throw e;
        if (e === writeError) throw this.cacheWriteError(url, e);
        const isZlib = typeof (e as { code?: unknown }).code === 'string' && String((e as { code: string }).code).startsWith('Z_');
        throw ioError(isZlib ? 'decompression' : 'download', `${isZlib ? 'cannot decompress' : 'transfer failed for'} ${url}: ${(e as Error).message}`, e);
      }
      this.checkHash(url, h, hasher.digest());
      const path = await this.cache.commit(tmp, h, kept.digest('hex')).catch((e: unknown) => { throw this.cacheWriteError(url, e); });
      committed = true;
      return path;
    } finally {
      if (!committed) await this.cache.discard(tmp);
    }
  }

  /**
   * A small object (most files of a software tree) is taken whole into memory (bounded by what its size allows),
   * hashed, inflated and written in one go: one write instead of a stream of stages, each a thread-pool round
   * trip (bench 5d). Same checks as the streamed path: the hash of the stored bytes, and no more than the catalog's
   * size once inflated.
   */
  private async verifySmall(body: Readable, url: string, h: ContentHash, compression: Compression, size: number): Promise<string> {
    // zlib's worst case for incompressible data is a few bytes per 16 KiB block over the original.
    const limit = size + 64 + (size >> 8);
    const parts: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of body) {
        n += (c as Buffer).length;
        if (n > limit) throw ioError('hash-mismatch', `${url} is longer (over ${limit} bytes) than an object of ${size} bytes can be`);
        parts.push(c as Buffer);
      }
    } catch (e) {
      if (e instanceof CvmfsError) throw e;
      throw ioError('download', `transfer failed for ${url}: ${(e as Error).message}`, e);
    }
    const raw = parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
    this.checkHash(url, h, hashBytes(raw, h.algorithm));
    let data: Buffer;
    if (compression === 'zlib') {
      try {
        data = lazyZlib().inflateSync(raw, { maxOutputLength: size });
      } catch (e) {
        const tooBig = (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
        throw ioError('decompression', tooBig ? `${url} decompresses to more than the ${size} bytes the catalog gives` : `cannot decompress ${url}: ${(e as Error).message}`, e);
      }
    } else {
      if (raw.length > size) throw ioError('decompression', `${url} holds more than the ${size} bytes the catalog gives`);
      data = raw;
    }
    try {
      return await this.cache.commitBytes(h, data, lazyCrypto().createHash('sha1').update(data).digest('hex'));
    } catch (e) {
      throw this.cacheWriteError(url, e);
    }
  }
}

/**
 * A repository path as a URL path below an external server (without the leading `/`): every byte but the
 * unreserved ones and `/` percent-encoded, so that any name (spaces, `#`, `?`, bytes that are not UTF-8) names
 * that file and nothing else.
 */
export function externalUrlPath(path: string): string {
  let out = '';
  for (const b of encodeName(path.replace(/^\/+/, ''))) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~/]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
