/**
 * What the next revision needs from the revision already in the output directory: its manifest, its catalogs
 * (to keep unchanged nested catalogs and to link `previous_revision`), its files' stored content (to keep that
 * of unchanged files) and its history database.
 * @module
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { Catalog } from '../catalog/catalog.js';
import { SqliteTables } from '../catalog/sqlite-tables.js';
import { hashBytes, objectPath, type ContentHash, type ObjectSuffix } from '../format/hash.js';
import { parseManifest, type Manifest } from '../format/manifest.js';
import { COUNTER_NAMES, type Counters } from './catalog-types.js';
import type { PreviousCatalog } from './catalog-writer.js';
import type { KeptCatalog } from './source.js';
import { PreviousContents } from './unchanged.js';

/** The revision currently published in a repository directory. */
export interface PreviousRevision {
  readonly manifest: Manifest;
  /** Nested catalogs (not the root) by path. */
  readonly catalogs: ReadonlyMap<string, PreviousCatalog>;
  /** The decompressed history database, if the manifest names one. */
  readonly history?: Uint8Array;
  /** Its regular files' stored content, to keep for files that did not change. */
  readonly contents: PreviousContents;
  /**
   * The nested catalogs taken as they are, unread below their top (readPreviousRevision's `keep`), by path: their
   * own nested catalogs and files are not among `catalogs` and `contents`.
   */
  readonly kept: ReadonlyMap<string, KeptPrevious>;
}

/** A nested catalog kept unread, with its top directory's row to check the source's against. */
export interface KeptPrevious extends KeptCatalog {
  readonly top: { readonly mode: number; readonly uid: number; readonly gid: number; readonly mtime: number; readonly mtimens: number | null; readonly xattr: Uint8Array | null };
}

/** What the writer needs of a catalog kept unread: its counters, its top row and how many entries it stands for. */
function keptOf(catalog: Catalog, path: string, hash: ContentHash, size: number): KeptPrevious {
  const stats = catalog.statistics();
  const counters = (prefix: string): Counters => Object.fromEntries(COUNTER_NAMES.map((n) => [n, stats.get(`${prefix}_${n}`) ?? 0])) as Counters;
  const self = counters('self');
  const subtree = counters('subtree');
  const top = catalog.lookup(path);
  if (!top) throw new Error(`publish: the previous revision's catalog of ${path} lacks its top directory`);
  const entries = (c: Counters) => c.regular + c.dir + c.symlink + c.special;
  return {
    written: { path, hash, size, revision: Number(catalog.properties.get('revision') ?? 0), self, subtree, reused: true, catalogs: 1 + self.nested + subtree.nested },
    hardlinks: top.linkcount,
    // Each catalog's top directory is counted twice, as its parent's mountpoint and as its own root.
    entries: entries(self) + entries(subtree) - 1 - self.nested - subtree.nested,
    top: { mode: top.mode, uid: top.uid, gid: top.gid, mtime: top.mtime, mtimens: top.mtimens, xattr: top.xattr ? top.xattr.slice() : null },
  };
}

/** Reads and decompresses an object of the repository, checking its hash. */
async function readObject(repoDir: string, hash: ContentHash, suffix: ObjectSuffix): Promise<Uint8Array> {
  const stored = await readFile(join(repoDir, objectPath(hash, suffix)));
  if (hashBytes(stored, hash.algorithm).hex !== hash.hex) throw new Error(`publish: object ${objectPath(hash, suffix)} in ${repoDir} is corrupt`);
  return inflateSync(stored);
}

/**
 * Returns undefined when `repoDir` has no manifest yet; throws if it holds another repository. Nested catalogs for
 * which `keep` says so are read for their counters and top row only (see PreviousRevision.kept).
 */
export async function readPreviousRevision(repoDir: string, fqrn: string, keep?: (path: string, manifest: Manifest) => boolean): Promise<PreviousRevision | undefined> {
  const manifestPath = join(repoDir, '.cvmfspublished');
  if (!existsSync(manifestPath)) return undefined;
  const manifest = parseManifest(await readFile(manifestPath));
  if (manifest.fqrn !== fqrn) throw new Error(`publish: ${repoDir} holds repository ${manifest.fqrn}, not ${fqrn}`);

  const catalogs = new Map<string, PreviousCatalog>();
  const kept = new Map<string, KeptPrevious>();
  const contents = new PreviousContents();
  // Walk the catalog tree once for hashes and revisions, read as the client reads catalogs (no SQL engine); the
  // databases are loaded again only when compared.
  const queue: { path: string; hash: ContentHash; size: number }[] = [{ path: '', hash: manifest.rootCatalog, size: 0 }];
  while (queue.length > 0) {
    const { path, hash, size } = queue.shift()!;
    const bytes = await readObject(repoDir, hash, 'C');
    const catalog = await Catalog.open(bytes, hash, path);
    if (path !== '' && keep?.(path, manifest)) {
      try {
        kept.set(path, keptOf(catalog, path, hash, size));
      } finally {
        catalog.close();
      }
      continue;
    }
    try {
      if (path !== '') catalogs.set(path, { hash, size, revision: Number(catalog.properties.get('revision') ?? 0), load: () => readObject(repoDir, hash, 'C') });
      for (const ref of catalog.nested.values()) queue.push({ path: ref.path, hash: ref.hash, size: ref.size });
    } finally {
      catalog.close();
    }
    contents.add(new SqliteTables(bytes));
  }
  const history = manifest.history ? await readObject(repoDir, manifest.history, 'H') : undefined;
  return { manifest, catalogs, contents, kept, ...(history ? { history } : {}) };
}
