/**
 * Deflate that writes the bytes standard zlib writes at the genuine publisher's settings.
 *
 * An object's name is the hash of its compressed bytes, so two publishers agree on names only if they agree on
 * every deflate byte. The genuine publisher calls standard zlib with `deflateInit(Z_DEFAULT_COMPRESSION)`
 * (level 6, 32 KiB window, memLevel 8, default strategy) and Z_NO_FLUSH until Z_FINISH. node:zlib is
 * Chromium's fork of zlib, whose match finder picks other matches: same content, other bytes, other names (and
 * the genuine `cvmfs_fsck`, which recompresses cached objects, calls such objects corrupt). pako with
 * `legacyHash` is a port of standard zlib's deflate and gives its bytes exactly; the fixtures prove it (every
 * zlib object the genuine publisher wrote is reproduced, test/zlib-identity.test.ts). Reading stays on
 * node:zlib, which is faster and whose inflate is as exact as any.
 * @module
 */
import { Deflate, ZStream, zlibDeflate, zlibDeflateInit2, zlibDeflateReset, zlibDeflateResetKeep } from 'pako';

/** Standard zlib's settings as the genuine publisher uses them; `legacyHash` selects standard zlib's hash chain. */
const SETTINGS = { level: 6, windowBits: 15, memLevel: 8, strategy: 0, legacyHash: true } as const;

/** Output piece size when streaming. */
const STREAM_CHUNK = 256 * 1024;

/**
 * One deflate state for every in-memory object, reset between objects: a fresh state costs about 260 KiB of
 * zeroed arrays, which for a publish of many small files took more time (and garbage collection) than the
 * compression itself. zlib documents deflateReset as equivalent to a new deflateInit, so the bytes are the same
 * (test/zlib-identity.test.ts reproduces the genuine objects through it).
 */
let shared: ZStream | undefined;

/** The fields of pako's deflate state that its lm_init sets (pako has no types for the state). */
interface LmState {
  head: Uint16Array;
  [field: string]: unknown;
}

/** What lm_init sets, as the first full reset left it: the same for every reset at one level. */
let lmFields: [string, unknown][] = [];
const LM_FIELDS = ['window_size', 'max_lazy_match', 'good_match', 'nice_match', 'max_chain_length', 'strstart', 'block_start',
  'lookahead', 'insert', 'match_length', 'prev_length', 'match_available', 'ins_h'];

function sharedStream(): ZStream {
  if (!shared) {
    const strm = new ZStream();
    if (zlibDeflateInit2(strm, SETTINGS.level, 8, SETTINGS.windowBits, SETTINGS.memLevel, SETTINGS.strategy, SETTINGS.legacyHash) !== 0) throw new Error(`deflate init failed: ${strm.msg}`);
    if (zlibDeflateReset(strm) !== 0) throw new Error(`deflate reset failed: ${strm.msg}`);
    const s = (strm as unknown as { state: LmState }).state;
    lmFields = LM_FIELDS.map((f) => [f, s[f]]);
    shared = strm;
  }
  return shared;
}

/**
 * deflateReset, done as pako's deflateResetKeep plus its lm_init with the hash heads cleared by a native fill:
 * lm_init's element-by-element loop over the 32,768 heads cost more than compressing a small file. The fields
 * it sets are those one genuine reset left (they depend only on the level); test/zlib-identity.test.ts checks
 * the bytes.
 */
function resetShared(strm: ZStream): void {
  if (zlibDeflateResetKeep(strm) !== 0) throw new Error(`deflate reset failed: ${strm.msg}`);
  const s = (strm as unknown as { state: LmState }).state;
  s.head.fill(0);
  for (const [f, v] of lmFields) s[f] = v;
}

const EMPTY = new Uint8Array(0);
/** Z_FINISH and Z_STREAM_END of zlib. */
const Z_FINISH = 4;
const Z_STREAM_END = 1;

/** Compresses `plain` into one zlib stream, byte-identical to standard zlib's `compress2(level 6)`. */
export function deflateStandard(plain: Uint8Array): Buffer {
  const strm = sharedStream();
  resetShared(strm);
  // zlib's compressBound: one Z_FINISH call with this much room always ends the stream.
  const bound = plain.length + (plain.length >>> 12) + (plain.length >>> 14) + (plain.length >>> 25) + 13;
  strm.input = plain;
  strm.next_in = 0;
  strm.avail_in = plain.length;
  strm.output = new Uint8Array(bound);
  strm.next_out = 0;
  strm.avail_out = bound;
  const status = zlibDeflate(strm, Z_FINISH);
  const out = strm.output;
  const n = strm.next_out;
  // Not kept alive by the shared state until the next object.
  strm.input = EMPTY;
  strm.output = EMPTY;
  if (status !== Z_STREAM_END) throw new Error(`deflate failed (${status}): ${strm.msg}`);
  return Buffer.from(out.buffer, out.byteOffset, n);
}

/**
 * Compresses a stream of buffers into one zlib stream with the same bytes as {@link deflateStandard} of their
 * concatenation (standard zlib's output does not depend on how the input is split when nothing is flushed).
 * Usable as a `stream.pipeline` stage.
 */
export async function* deflateStandardStream(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const d = new Deflate({ ...SETTINGS, chunkSize: STREAM_CHUNK });
  let ready: Buffer[] = [];
  d.onData = (chunk: Uint8Array) => {
    ready.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  };
  const check = (): void => {
    if (d.err) throw new Error(`deflate failed: ${d.msg || d.err}`);
  };
  for await (const piece of source) {
    d.push(piece, false);
    check();
    if (ready.length > 0) {
      const out = ready;
      ready = [];
      yield* out;
    }
  }
  d.push(new Uint8Array(0), true);
  check();
  yield* ready;
}
