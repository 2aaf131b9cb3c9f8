/**
 * Writes small objects from a worker thread. Creating a file is the largest single cost of publishing many small
 * files (60-90 µs a file on the bench VM's ext4, more than reading, hashing and compressing one), and the main
 * thread has all of that other work to do: handing the create, write and rename of each object to a thread of
 * its own lets the two overlap on two cores. Objects go in batches (one message per batch, not per object, since
 * a message costs about as much as a small write); the amount queued is bounded, see {@link ObjectSink.backlogged}.
 * @module
 */
import { Worker } from 'node:worker_threads';

/**
 * The worker: writes each object to its temporary name (O_EXCL) and renames it into place, exactly as
 * ObjectWriter does in the main thread; stops a batch at the first failure and reports it.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { writeFileSync, renameSync, unlinkSync } = require('node:fs');
parentPort.on('message', ({ tmps, dests, datas }) => {
  for (let i = 0; i < tmps.length; i++) {
    try {
      writeFileSync(tmps[i], datas[i], { flag: 'wx', mode: 0o644 });
      renameSync(tmps[i], dests[i]);
    } catch (e) {
      try { unlinkSync(tmps[i]); } catch {}
      parentPort.postMessage({ error: String(e && e.message || e) });
      return;
    }
  }
  parentPort.postMessage({ error: null });
});
`;

/** Objects per message, and bytes: a batch is sent when either is reached. */
const BATCH_OBJECTS = 128;
const BATCH_BYTES = 1024 * 1024;
/** Bytes sent but not yet written above which the producer should wait ({@link ObjectSink.backlogged}). */
const HIGH_WATER = 32 * 1024 * 1024;

/** A queue of objects (temporary path, final path, stored bytes) written in order by one worker thread. */
export class ObjectSink {
  private readonly worker: Worker;
  private tmps: string[] = [];
  private dests: string[] = [];
  private datas: Uint8Array[] = [];
  private batchBytes = 0;
  /** Byte counts of the batches sent and not yet reported done, oldest first. */
  private readonly sent: number[] = [];
  private sentBytes = 0;
  private failure: Error | undefined;
  private waiters: (() => void)[] = [];

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    // The publish awaits drain() before it relies on the objects; the thread alone must not keep a process alive.
    this.worker.unref();
    this.worker.on('message', (m: { error: string | null }) => {
      if (m.error !== null) this.failure ??= new Error(`publish: writing an object failed: ${m.error}`);
      this.sentBytes -= this.sent.shift() ?? 0;
      this.wake();
    });
    this.worker.on('error', (e) => { this.failure ??= e; this.sent.length = 0; this.sentBytes = 0; this.wake(); });
  }

  /** Queues one object; it is written to `tmp` and renamed to `dest`. */
  add(tmp: string, dest: string, data: Uint8Array): void {
    this.tmps.push(tmp);
    this.dests.push(dest);
    this.datas.push(data);
    this.batchBytes += data.length;
    if (this.tmps.length >= BATCH_OBJECTS || this.batchBytes >= BATCH_BYTES) this.send();
  }

  /** True when so much is queued that the producer should await {@link ready} before adding more. */
  backlogged(): boolean {
    return this.sentBytes + this.batchBytes > HIGH_WATER;
  }

  /** Resolves when the queue is below half its bound (rejects when a write failed). */
  async ready(): Promise<void> {
    this.send();
    while (!this.failure && this.sentBytes > HIGH_WATER / 2) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  /** Resolves when every object queued so far is in place (rejects when a write failed). */
  async drain(): Promise<void> {
    this.send();
    while (!this.failure && this.sent.length > 0) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  /** Stops the thread (what is still queued is dropped: call {@link drain} first to keep it). */
  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private send(): void {
    if (this.tmps.length === 0) return;
    this.worker.postMessage({ tmps: this.tmps, dests: this.dests, datas: this.datas });
    this.sent.push(this.batchBytes);
    this.sentBytes += this.batchBytes;
    this.tmps = [];
    this.dests = [];
    this.datas = [];
    this.batchBytes = 0;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}
