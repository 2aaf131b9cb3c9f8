/**
 * Content-defined chunk boundaries, computed exactly like the genuine publisher's xor32 detector
 * (ingestion/chunk_detector.cc), so that a file published here is cut where `cvmfs_server` would cut it.
 * @module
 */

/** Chunk sizes in bytes, as CVMFS_MIN/AVG/MAX_CHUNK_SIZE. */
export interface ChunkSizes {
  readonly min: number;
  readonly avg: number;
  readonly max: number;
}

/** The genuine defaults: 4 / 8 / 16 MiB. */
export const DEFAULT_CHUNK_SIZES: ChunkSizes = { min: 4 * 1024 * 1024, avg: 8 * 1024 * 1024, max: 16 * 1024 * 1024 };

/** The rolling checksum only depends on the last 32 bytes. */
const WINDOW = 32;
/** Centre of the accepted checksum interval; fixed by the format, changing it moves every cut mark. */
const MAGIC = 0x7fffffff;

/** Throws unless the sizes satisfy the genuine detector's assertions. */
export function checkChunkSizes(s: ChunkSizes): void {
  const ok = [s.min, s.avg, s.max].every((v) => Number.isSafeInteger(v) && v > 0);
  if (!ok || s.min < WINDOW || !(s.min < s.avg && s.avg < s.max)) {
    throw new RangeError(`chunk sizes must be integers with ${WINDOW} <= min < avg < max (got ${s.min}/${s.avg}/${s.max})`);
  }
}

/** The genuine rule: only a file larger than the minimum chunk size is run through the detector. */
export function mightBeChunked(size: number, s: ChunkSizes): boolean {
  return size > s.min;
}

/**
 * Streaming cut-mark detector. Feed the file's bytes in blocks of any size; the cut marks do not depend on how
 * the stream is split.
 */
export class Xor32Chunker {
  private readonly threshold: number;
  private lastCut = 0;
  /** Absolute offset of the first byte of the next block. */
  private offset = 0;
  /** Where the checksum computation resumes. */
  private xorPtr = 0;
  private xor = 0;

  constructor(private readonly sizes: ChunkSizes) {
    checkChunkSizes(sizes);
    // uint32 max / avg, as the genuine computes it, then used as int32.
    this.threshold = Math.floor(0xffffffff / sizes.avg) | 0;
  }

  /**
   * Consumes the next block and returns the absolute offsets of the cut marks found in it (a cut at offset c ends
   * the chunk before byte c). A cut at the very end of the file must be ignored by the caller.
   */
  push(block: Uint8Array): number[] {
    const cuts: number[] = [];
    const { min, max } = this.sizes;
    const end = this.offset + block.length;
    for (;;) {
      const start = Math.max(this.lastCut + min - WINDOW, this.xorPtr);
      if (start >= end) {
        this.xorPtr = start;
        break;
      }
      let i = start - this.offset;
      // Fill the window before the first position that may cut (no cut is looked for there).
      const precomputeEnd = Math.min(this.lastCut + min - this.offset, block.length);
      let x = this.xor;
      for (; i < precomputeEnd; i++) x = ((x << 1) ^ block[i]!) >>> 0;
      const maxEnd = this.lastCut + max - this.offset;
      const computeEnd = Math.min(maxEnd, block.length);
      let cut = -1;
      for (; i < computeEnd; i++) {
        x = ((x << 1) ^ block[i]!) >>> 0;
        // abs(int32(xor) - MAGIC) < threshold with the C code's 32-bit wrap-around (abs(INT_MIN) stays negative).
        const d = ((x | 0) - MAGIC) | 0;
        if (d === -0x80000000 || Math.abs(d) < this.threshold) {
          cut = i + this.offset;
          break;
        }
      }
      if (cut < 0 && i === maxEnd) cut = i + this.offset;
      if (cut < 0) {
        this.xor = x;
        this.xorPtr = i + this.offset;
        break;
      }
      this.lastCut = cut;
      this.xorPtr = cut;
      this.xor = 0;
      cuts.push(cut);
    }
    this.offset = end;
    return cuts;
  }
}
