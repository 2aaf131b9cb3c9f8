/**
 * A least-recently-used map bounded by count and by approximate bytes, for the metadata caches in front of the
 * catalogs.
 * @module
 */

/** Map with a maximum size and a maximum weight in bytes; reading an entry makes it most recent. */
export class Lru<K, V> {
  private readonly map = new Map<K, { v: V; bytes: number }>();
  private total = 0;

  /**
   * @param max entries at most
   * @param maxBytes sum of `sizeOf` over the entries at most; a value heavier than this alone is not kept
   * @param sizeOf approximate bytes of a value (with its key)
   */
  constructor(readonly max: number, readonly maxBytes = Infinity, private readonly sizeOf: (v: V, k: K) => number = () => 0) {}

  get(k: K): V | undefined {
    const hit = this.map.get(k);
    if (hit === undefined) return undefined;
    this.map.delete(k);
    this.map.set(k, hit);
    this.moved();
    return hit.v;
  }

  set(k: K, v: V): void {
    this.delete(k);
    this.moved();
    const bytes = this.sizeOf(v, k);
    if (bytes > this.maxBytes) return;
    this.map.set(k, { v, bytes });
    this.total += bytes;
    while (this.map.size > this.max || this.total > this.maxBytes) this.delete(this.oldest());
  }

  /**
   * The least recently used key. A fresh `keys()` iterator would step over every slot deleted since V8 last
   * compacted the table (a moved or evicted entry leaves one), so a full cache evicting on every insert took
   * microseconds per call; one iterator kept across calls passes each slot once. Every key it yields is deleted
   * at once, and keys used again move behind it, so what it yields next is always the oldest.
   */
  private oldest(): K {
    this.movesSinceEviction = 0;
    let n = this.order?.next();
    if (!n || n.done) n = (this.order = this.map.keys()).next();
    return n.value as K;
  }

  private order: Iterator<K> | undefined;
  private movesSinceEviction = 0;

  /**
   * An iterator V8 has not moved keeps every table the map outgrew since (each about the map's size): one idle for
   * as many moves as the map holds is let go, and the next eviction starts a new one.
   */
  private moved(): void {
    if (this.order && ++this.movesSinceEviction > this.map.size + 1024) this.order = undefined;
  }

  private delete(k: K): void {
    const old = this.map.get(k);
    if (old === undefined) return;
    this.map.delete(k);
    this.total -= old.bytes;
  }

  get size(): number {
    return this.map.size;
  }

  /** Approximate bytes held (sum of `sizeOf`). */
  get bytes(): number {
    return this.total;
  }

  clear(): void {
    this.map.clear();
    this.order = undefined;
    this.total = 0;
  }
}
