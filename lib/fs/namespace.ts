/**
 * The repository's name space: repository paths to entries, across nested catalogs (descending at their
 * mountpoints) and bind mountpoints (the `/.cvmfs/snapshots/<tag>` trees). No symlink is followed here; that is
 * the path walker's job. Resolved entries and listings are kept in bounded LRU maps, which is what makes warm
 * metadata calls cheap.
 * @module
 */
import { ioError } from '../errors.js';
import { hashFromBytes, type ContentHash } from '../format/hash.js';
import { Flag, compressionOf, hashAlgorithmOf } from '../format/flags.js';
import { expandVariantSymlink } from '../format/variant.js';
import type { Catalog, CatalogRow, ChunkRow } from '../catalog/catalog.js';
import type { CatalogCache } from '../catalog/catalog-cache.js';
import { Lru } from './lru.js';
import { entryBytes, listingBytes, LRU_SLOT_BYTES } from './entry-size.js';
import { S_IFMT, typeOfMode, type Entry, type EntryLocation } from './entry.js';

/** Options of a {@link Namespace}. */
export interface NamespaceOptions {
  /** Variables for variant symlinks `$(VAR)`. */
  variables: (name: string) => string | undefined;
  /** How many resolved entries to keep. */
  entryCacheSize: number;
  /** How many directory listings to keep. */
  listingCacheSize: number;
  /** Approximate bytes the resolved entries may take (see entry-size.ts); default unbounded. */
  entryCacheBytes?: number;
  /** Approximate bytes the listings may take; default unbounded. */
  listingCacheBytes?: number;
}

/** A place in a catalog tree, found by descending nested catalogs and bind mountpoints. */
interface Located {
  readonly cat: Catalog;
  readonly treeRoot: ContentHash;
  readonly treePrefix: string;
  readonly rel: string;
}

/**
 * A name taken from a catalog is only ever used as one path component: it must not be empty, `.` or `..`, nor
 * contain `/` or NUL, whatever a hostile catalog says.
 */
export function isSafeName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

/** Path → entry resolution over one revision's catalogs. */
export class Namespace {
  private readonly entries: Lru<string, Entry | null>;
  private readonly listings: Lru<string, readonly Entry[]>;

  constructor(readonly catalogs: CatalogCache, readonly root: ContentHash, private readonly opts: NamespaceOptions) {
    this.entries = new Lru(opts.entryCacheSize, opts.entryCacheBytes, (e, path) => LRU_SLOT_BYTES + (e ? entryBytes(e) : 16 + path.length));
    this.listings = new Lru(opts.listingCacheSize, opts.listingCacheBytes, listingBytes);
  }

  /** Approximate bytes held by the entry and listing caches (see entry-size.ts). */
  get cacheBytes(): { entries: number; listings: number } {
    return { entries: this.entries.bytes, listings: this.listings.bytes };
  }

  /** The entry at a repository path (`''` for the root, else `/a/b`), without following symlinks; null if none. */
  async lookup(path: string): Promise<Entry | null> {
    const cached = this.entries.get(path);
    if (cached !== undefined) return cached;
    const at = await this.locate(path);
    const row = at.cat.lookup(at.rel);
    let entry: Entry | null = null;
    if (row && (path === '' || at.rel === '' || row.name === path.slice(path.lastIndexOf('/') + 1))) {
      entry = this.toEntry(row, path, at.cat, at);
    }
    this.entries.set(path, entry);
    return entry;
  }

  /**
   * The entries of a directory, sorted by name, hidden ones included (flag {@link Flag.Hidden}: readdir leaves
   * them out, as the genuine client does, but they are reachable by path).
   */
  async list(dir: Entry): Promise<readonly Entry[]> {
    const cached = this.listings.get(dir.path);
    if (cached) return cached;
    const out: Entry[] = [];
    for (const e of await this.eachChild(dir)) out.push(e);
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.listings.set(dir.path, out);
    return out;
  }

  /**
   * The entries of a directory in slices of at most `size`, in the catalog's order, without keeping the listing:
   * for whoever must go through a large directory once (the connector making its shadow entries), so that what is
   * in memory at once is a slice, not the directory. Nor are the entries kept in the entry cache: a directory
   * larger than the cache would only push out what is used again.
   */
  async *slices(dir: Entry, size: number): AsyncGenerator<Entry[]> {
    const cached = this.listings.get(dir.path);
    const all = cached ?? (await this.eachChild(dir, false));
    let slice: Entry[] = [];
    for (const e of all) {
      slice.push(e);
      if (slice.length >= size) {
        yield slice;
        slice = [];
      }
    }
    if (slice.length > 0) yield slice;
  }

  /** The entries of a directory one by one, as its catalog gives them (each kept in the entry cache if `keep`). */
  private async eachChild(dir: Entry, keep = true): Promise<Iterable<Entry>> {
    let cat: Catalog;
    let loc: Omit<Located, 'cat'>;
    if (dir.bind) {
      cat = await this.catalogs.get(dir.bind, '');
      loc = { treeRoot: dir.bind, treePrefix: dir.loc.treePrefix + dir.loc.rel, rel: '' };
    } else {
      cat = await this.catalogs.get(dir.loc.catalog, dir.loc.catalogMount);
      loc = { treeRoot: dir.loc.treeRoot, treePrefix: dir.loc.treePrefix, rel: dir.loc.rel };
    }
    const base = dir.path === '/' ? '' : dir.path;
    const rows = cat.eachChild(loc.rel);
    const entries = this.entries;
    const toEntry = (row: CatalogRow) => this.toEntry(row, `${base}/${row.name}`, cat, { treeRoot: loc.treeRoot, treePrefix: loc.treePrefix, rel: `${loc.rel}/${row.name}` });
    return (function* () {
      for (const row of rows) {
        if (!isSafeName(row.name)) continue;
        const e = toEntry(row);
        // A nested mountpoint's own attributes come from the nested catalog's root row, looked up on demand.
        if (keep && !(row.flags & Flag.NestedMountpoint)) entries.set(e.path, e);
        yield e;
      }
    })();
  }

  /** The chunk list of a chunked file. */
  async chunks(e: Entry): Promise<ChunkRow[]> {
    const cat = await this.catalogs.get(e.loc.catalog, e.loc.catalogMount);
    return cat.chunks(e.loc.rel);
  }

  /** The catalog that holds an entry (for counters and magic attributes). */
  async catalogOf(e: Entry): Promise<Catalog> {
    return this.catalogs.get(e.loc.catalog, e.loc.catalogMount);
  }

  /** Finds the catalog responsible for a path, descending nested catalogs and entering bind mountpoints. */
  private async locate(path: string): Promise<Located> {
    let treeRoot = this.root;
    let treePrefix = '';
    let rel = path;
    let cat = await this.catalogs.get(treeRoot, '');
    for (;;) {
      let moved = false;
      let i = cat.mountpoint.length;
      while (!moved && i < rel.length) {
        const next = rel.indexOf('/', i + 1);
        const end = next < 0 ? rel.length : next;
        const prefix = rel.slice(0, end);
        i = end;
        const nested = cat.nested.get(prefix);
        if (nested) {
          cat = await this.catalogs.get(nested.hash, prefix);
          moved = true;
          break;
        }
        const bind = cat.bindMountpoints.get(prefix);
        if (bind && prefix !== rel) {
          treeRoot = bind.hash;
          treePrefix += prefix;
          rel = rel.slice(prefix.length);
          cat = await this.catalogs.get(treeRoot, '');
          moved = true;
        }
      }
      if (!moved) return { cat, treeRoot, treePrefix, rel };
    }
  }

  private toEntry(row: CatalogRow, path: string, cat: Catalog, at: Omit<Located, 'cat'>): Entry {
    const flags = row.flags;
    const isDir = (flags & Flag.Directory) !== 0;
    const isLink = (flags & Flag.Link) !== 0;
    let mode = row.mode;
    if (isDir && (mode & S_IFMT) === 0) mode |= 0o040000;
    const type = isDir ? 'dir' : isLink ? 'symlink' : flags & Flag.FileSpecial ? typeOfMode(mode) : 'file';
    const base = this.catalogs.inodeBase(cat, at.treePrefix);
    const ino = row.hardlinkGroup > 0 && !isDir ? base + cat.maxRowid + 1 + row.hardlinkGroup : base + row.rowid;
    const algorithm = hashAlgorithmOf(flags);
    const loc: EntryLocation = { treeRoot: at.treeRoot, treePrefix: at.treePrefix, catalog: cat.hash, catalogMount: cat.mountpoint, rel: at.rel };
    const special = type !== 'file' && type !== 'dir' && type !== 'symlink';
    let size = row.size;
    let rawTarget: string | undefined;
    let target: string | undefined;
    if (type === 'symlink') {
      rawTarget = row.symlink;
      target = expandVariantSymlink(rawTarget, this.opts.variables);
      size = Buffer.byteLength(target);
    }
    const bindRef = flags & Flag.BindMountpoint ? cat.bindMountpoints.get(at.rel) : undefined;
    if (flags & Flag.BindMountpoint && !bindRef) throw ioError('catalog-format', `bind mountpoint ${path} has no bind_mountpoints row`);
    const e: { -readonly [K in keyof Entry]: Entry[K] } = {
      path: path === '' ? '/' : path,
      name: path === '' ? '' : row.name,
      type,
      mode,
      size: special ? 0 : size,
      mtime: row.mtime,
      mtimeNs: BigInt(row.mtime) * 1_000_000_000n + BigInt(row.mtimens ?? 0),
      uid: row.uid,
      gid: row.gid,
      nlink: Math.max(1, row.linkcount),
      ino,
      rdev: type === 'chardev' || type === 'blockdev' ? row.size : 0,
      flags,
      compression: compressionOf(flags),
      chunked: (flags & Flag.FileChunk) !== 0,
      xattrBlob: row.xattr,
      loc,
    };
    // Optional fields set after, not spread in: a spread builds each entry through V8's slow object-clone path.
    if (row.hash && type === 'file') e.hash = hashFromBytes(row.hash, algorithm);
    if (rawTarget !== undefined) {
      e.rawTarget = rawTarget;
      e.target = target!;
    }
    if (bindRef) e.bind = bindRef.hash;
    return e;
  }
}
