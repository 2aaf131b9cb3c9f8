/**
 * The few asynchronous file calls a cold command makes (publishing a downloaded object into the cache, writing a
 * small file atomically) as promises over node:fs's callback calls: node:fs/promises loads streams and readline
 * on first use, about 1.3 ms of a cold command here, for the same thread-pool calls.
 * @module
 */
import { appendFile, close, fsync, mkdir, open, rename, stat, writeFile, type Stats } from 'node:fs';

type Callback<T> = (e: NodeJS.ErrnoException | null, value?: T) => void;

function call<T>(f: (cb: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => f((e, value) => (e ? reject(e) : resolve(value as T))));
}

/** rename(2). */
export const renameAsync = (from: string, to: string): Promise<void> => call((cb) => rename(from, to, cb));
/** stat(2). */
export const statAsync = (path: string): Promise<Stats> => call((cb) => stat(path, cb));
/** mkdir with its parents. */
export const mkdirAllAsync = (path: string, mode: number): Promise<void> => call((cb) => mkdir(path, { recursive: true, mode }, (e) => cb(e)));
/** Appends text (one write with O_APPEND). */
export const appendAsync = (path: string, text: string): Promise<void> => call((cb) => appendFile(path, text, cb));

/** Writes `data` as a new file at `path` (truncating one there), synced first when `durable`. */
export async function writeFileAsync(path: string, data: Uint8Array | string, durable: boolean): Promise<void> {
  const fd = await call<number>((cb) => open(path, 'w', cb));
  try {
    await call<void>((cb) => writeFile(fd, data, cb));
    if (durable) await call<void>((cb) => fsync(fd, cb));
  } finally {
    await call<void>((cb) => close(fd, cb));
  }
}
