/**
 * Standard zlib's deflate (deflate.ts) in a thread of its own, for the large buffers of a publish that wait on
 * nothing else: catalogs. Deflating them in JavaScript took 2.0 s of a 9.7 s republish of 250,000 entries, and
 * the main thread meanwhile has the next catalog's rows to insert.
 * @module
 */
import { Worker } from 'node:worker_threads';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Buffers reserved at once ({@link DeflateThread.reserve}): what waits for the thread is bounded to these. */
const RESERVED = 3;

/** One worker thread that deflates buffers in the order they are sent. */
export class DeflateThread {
  private worker: Worker | undefined;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>();
  private reserved = 0;
  private readonly waiting: (() => void)[] = [];

  /**
   * Waits for room for one more buffer, and returns what gives it back. A caller reserves before it builds what it
   * will deflate, and releases once that is deflated (or not needed): the thread is slower than the building, and
   * without the bound every catalog of a large repository would wait in memory.
   */
  async reserve(): Promise<() => void> {
    while (this.reserved >= RESERVED) await new Promise<void>((r) => this.waiting.push(r));
    this.reserved++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.reserved--;
      this.waiting.shift()?.();
    };
  }

  /** `plain` deflated into standard zlib's bytes (`plain` is copied to the thread: the caller keeps it). */
  deflate(plain: Uint8Array): Promise<Uint8Array> {
    const worker = this.start();
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, plain });
    });
  }

  /** Stops the thread; what is still pending fails. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.fail(new Error('publish: the deflate thread was stopped'));
    if (w) await w.terminate();
  }

  /** Starts the thread now, so that its start-up (a tenth of a second or more) overlaps other work. */
  warm(): void {
    this.start();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // The compiled worker beside this module; from the CLI's one-file build (dist/lib/cli) too, hence the path
    // from the package's top.
    const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
    const w = new Worker(join(root, 'dist/lib/publish/deflate-worker.js'));
    // Awaited through its promises; the thread alone must not keep a process alive.
    w.unref();
    w.on('message', (m: { id: number; bytes?: Uint8Array; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (!p) return;
      if (m.bytes) p.resolve(m.bytes);
      else p.reject(new Error(`publish: deflate failed: ${m.error}`));
    });
    w.on('error', (e) => this.fail(e));
    w.on('exit', () => {
      if (this.worker === w) this.worker = undefined;
      this.fail(new Error('publish: the deflate thread ended'));
    });
    this.worker = w;
    return w;
  }

  private fail(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}
