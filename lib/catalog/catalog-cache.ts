/**
 * Keeps at most N catalogs open (each holds its whole database in WASM memory) and gives every catalog mounted at a
 * place its own inode range. Evicted catalogs are closed only after the current microtasks have run, so that a
 * caller who has just been handed one can still use it synchronously.
 * @module
 */
import { hashToString, type ContentHash } from '../format/hash.js';
import type { ObjectStore } from '../store/object-store.js';
import { Catalog } from './catalog.js';

/** LRU of open catalogs. */
export class CatalogCache {
  private readonly open = new Map<string, Catalog>();
  private readonly pending = new Map<string, Promise<Catalog>>();
  private readonly inodeBases = new Map<string, number>();
  private nextInode = 256;
  /** Catalogs loaded since creation (downloads or cache reads). */
  loads = 0;

  constructor(private readonly store: ObjectStore, readonly maxOpen: number) {
    if (maxOpen < 1) throw new RangeError('maxOpenCatalogs must be at least 1');
  }

  /** Number of catalogs open now. */
  get size(): number {
    return this.open.size;
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
    const bytes = await this.store.getBytes(hash, 'C');
    const cat = await Catalog.open(bytes, hash, mountpoint);
    this.loads++;
    this.open.set(key, cat);
    while (this.open.size > this.maxOpen) {
      const [oldKey, old] = this.open.entries().next().value as [string, Catalog];
      this.open.delete(oldKey);
      setImmediate(() => { if (this.open.get(oldKey) !== old) old.close(); });
    }
    return cat;
  }

  /**
   * First inode of a catalog mounted under `treePrefix`; rows get base + rowid, hardlink groups
   * base + maxRowid + group. Stable for the life of the repository object, also across evictions.
   */
  inodeBase(cat: Catalog, treePrefix: string): number {
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
  }
}
