/**
 * Keeps the open catalogs (each holds a descriptor of its file and a page cache, see {@link Catalog.memoryBytes}) within a
 * count and a byte budget, least recently used first out, and gives every catalog mounted at a place its own inode
 * range. Evicted catalogs are closed only after the current microtasks have run, so that a caller who has just been
 * handed one can still use it synchronously (every user of a catalog does: an await in between gets it again).
 * @module
 */
import { hashToString, type ContentHash } from '../format/hash.js';
import { ioError } from '../errors.js';
import type { ObjectStore } from '../store/object-store.js';
import { Catalog } from './catalog.js';
import { FILE_PAGE_CACHE_BYTES } from './sqlite-pages.js';

/** Default of {@link CatalogCache}'s byte budget: 64 MiB (see README, Memory). */
export const DEFAULT_CATALOG_MEMORY_BYTES = 64 * 2 ** 20;

/** LRU of open catalogs, bounded by count and by bytes. */
export class CatalogCache {
  private readonly open = new Map<string, Catalog>();
  private readonly pending = new Map<string, Promise<Catalog>>();
  private readonly inodeBases = new Map<string, number>();
  private nextInode = 256;
  private openBytes = 0;
  /** Catalogs loaded since creation (downloads or cache reads). */
  loads = 0;
  /** Catalogs closed to stay within the bounds. */
  evictions = 0;

  /**
   * @param maxOpen catalogs open at most
   * @param maxBytes bytes the open catalogs may take; one catalog larger than this is still opened, alone
   */
  constructor(private readonly store: ObjectStore, readonly maxOpen: number, readonly maxBytes = DEFAULT_CATALOG_MEMORY_BYTES) {
    if (!(maxOpen >= 1)) throw new RangeError('maxOpenCatalogs must be at least 1');
    if (!(maxBytes >= 1)) throw new RangeError('catalogMemoryBytes must be at least 1');
  }

  /** Number of catalogs open now. */
  get size(): number {
    return this.open.size;
  }

  /** Memory the open catalogs take now, in bytes (sum of {@link Catalog.memoryBytes}). */
  get bytes(): number {
    return this.openBytes;
  }

  /** The catalog with this hash, mounted at `mountpoint` in its tree. */
  async get(hash: ContentHash, mountpoint: string): Promise<Catalog> {
    const key = `${hashToString(hash)}@${mountpoint}`;
    const hit = this.open.get(key);
    if (hit) {
      this.open.delete(key);
      this.open.set(key, hit);
      return hit;
    }
    let p = this.pending.get(key);
    if (!p) {
      p = this.load(key, hash, mountpoint).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async load(key: string, hash: ContentHash, mountpoint: string): Promise<Catalog> {
    // Make room for the new one, and let the evicted ones close first (their closing waits for the next turn of
    // the loop), so that what the old ones hold is let go of before the new one is kept.
    if (this.evict(FILE_PAGE_CACHE_BYTES, 1) > 0) await new Promise((resolve) => setImmediate(resolve));
    const open = async () => Catalog.openFile(await this.store.pinnedPath(hash, 'C'), hash, mountpoint);
    let cat: Catalog;
    try {
      cat = await open();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      // Evicted by another process between its download and its open: once more, then an I/O error (never a
      // missing catalog read as missing entries).
      cat = await open().catch((again: unknown) => {
        throw ioError('cache-write', `catalog ${hashToString(hash)} cannot be kept in the cache: ${(again as Error).message}`, again);
      });
    }
    this.loads++;
    // Concurrent loads may have landed meanwhile.
    this.evict(cat.memoryBytes, 1);
    this.open.set(key, cat);
    this.openBytes += cat.memoryBytes;
    return cat;
  }

  /**
   * Closes least recently used catalogs until `incoming` more bytes and `count` more catalogs fit; returns how
   * many it closed.
   */
  private evict(incoming: number, count: number): number {
    let evicted = 0;
    while (this.open.size > 0 && (this.open.size + count > this.maxOpen || this.openBytes + incoming > this.maxBytes)) {
      const [oldKey, old] = this.open.entries().next().value as [string, Catalog];
      this.open.delete(oldKey);
      this.openBytes -= old.memoryBytes;
      this.evictions++;
      evicted++;
      // Not at once: whoever was handed `old` in this turn may still use it (see the module comment).
      setImmediate(() => { if (this.open.get(oldKey) !== old) old.close(); });
    }
    return evicted;
  }

  /**
   * First inode of a catalog mounted under `treePrefix`; rows get base + rowid, hardlink groups
   * base + maxRowid + group. Stable for the life of the repository object, also across evictions.
   */
  inodeBase(cat: Catalog, treePrefix: string): number {
    // Asked once per entry of a listing, all of one catalog and prefix.
    if (cat === this.lastBase?.cat && treePrefix === this.lastBase.treePrefix) return this.lastBase.base;
    const base = this.findInodeBase(cat, treePrefix);
    this.lastBase = { cat, treePrefix, base };
    return base;
  }

  private lastBase: { cat: Catalog; treePrefix: string; base: number } | undefined;

  private findInodeBase(cat: Catalog, treePrefix: string): number {
    const key = `${hashToString(cat.hash)}@${treePrefix}${cat.mountpoint}`;
    let base = this.inodeBases.get(key);
    if (base === undefined) {
      base = this.nextInode;
      this.nextInode += 2 * (cat.maxRowid + 1) + 1;
      this.inodeBases.set(key, base);
    }
    return base;
  }

  /** Closes every open catalog. */
  closeAll(): void {
    for (const c of this.open.values()) c.close();
    this.open.clear();
    this.openBytes = 0;
  }
}
