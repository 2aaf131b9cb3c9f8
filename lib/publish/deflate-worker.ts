/**
 * The worker thread of {@link DeflateThread} (deflate-thread.ts): compresses each buffer it is sent into standard
 * zlib's bytes and sends the result back, transferred.
 * @module
 */
import { parentPort } from 'node:worker_threads';
import { deflateStandard } from './deflate.js';

parentPort?.on('message', ({ id, plain }: { id: number; plain: Uint8Array }) => {
  try {
    const out = deflateStandard(plain);
    // A copy the size of the output, so that the transfer hands over no more than it.
    const bytes = new Uint8Array(out);
    parentPort!.postMessage({ id, bytes }, [bytes.buffer]);
  } catch (e) {
    parentPort!.postMessage({ id, error: String((e as Error)?.message ?? e) });
  }
});
