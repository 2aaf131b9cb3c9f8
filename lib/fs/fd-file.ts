/**
 * A read-only file descriptor of a verified cache file, with promise-returning reads. `FileHandle` would serve,
 * but node:fs/promises loads streams and readline on first use (1.5 ms of a warm `cat` of 50 ms). Opening, the
 * size and small reads are synchronous: the cache is local, each is one system call on pages the kernel mostly
 * holds, and the four trips through the thread pool cost a warm `cat` of a small file 3-4 ms. Larger reads go
 * through the thread pool, so that a slow disk never holds the event loop for long, nor reads of many files in
 * parallel wait for each other.
 * @module
 */
import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs';

/** Reads up to this many bytes synchronously: a small file's whole content, at most a few pages. */
const SYNC_READ_BYTES = 16 * 1024;

/** An open file for reading at positions; closed by {@link FdFile.close} (once). */
export class FdFile {
  private closed = false;

  private constructor(readonly fd: number) {}

  /** Opens `path` read-only (rejects as `open` does, e.g. ENOENT). */
  static open(path: string): Promise<FdFile> {
    try {
      return Promise.resolve(new FdFile(openSync(path, 'r')));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** The file's size in bytes. */
  size(): Promise<number> {
    try {
      return Promise.resolve(fstatSync(this.fd).size);
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** Reads up to `length` bytes at `position` into `buf[offset…]`: the count read (0 at end of file). */
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    if (length > SYNC_READ_BYTES) return new Promise((resolve, reject) => read(this.fd, buf, offset, length, position, (e, n) => (e ? reject(e) : resolve(n))));
    try {
      return Promise.resolve(readSync(this.fd, buf, offset, length, position));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** Closes the descriptor; later calls do nothing. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    try {
      closeSync(this.fd);
    } catch {
      // nothing to do about a failed close of a file only read
    }
    return Promise.resolve();
  }
}

/**
 * A whole file's bytes (a certificate, a history database) through {@link FdFile}: a small one without a trip
 * through the thread pool; rejects as `open` does. Stops at the end of file if the file shrank meanwhile.
 */
export async function readWhole(path: string): Promise<Buffer> {
  const f = await FdFile.open(path);
  try {
    const out = Buffer.allocUnsafe(await f.size());
    let got = 0;
    while (got < out.length) {
      const n = await f.read(out, got, out.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === out.length ? out : out.subarray(0, got);
  } finally {
    await f.close();
  }
}
