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

/** A nested catalog kept unread, with its top directory's row (its parent's mountpoint row) to check the source's against. */
export interface KeptPrevious extends KeptCatalog {
  readonly top: { readonly mode: number; readonly uid: number; readonly gid: number; readonly mtime: number; readonly mtimens: number | null; readonly xattr: Uint8Array | null };
  /** Its parent catalog's path, whose kept children all must still be in the source (checkKept in index.ts). */
  readonly parent: string;
}

const countersFrom = (stats: Map<string, number>, prefix: string): Counters => Object.fromEntries(COUNTER_NAMES.map((n) => [n, stats.get(`${prefix}_${n}`) ?? 0])) as Counters;
const zero = (): Counters => countersFrom(new Map(), 'none');
const entriesOf = (c: Counters) => c.regular + c.dir + c.symlink + c.special;

/** A catalog read, with what its kept children's counters are worked out from. */
interface ReadCatalog {
  self: Counters;
  subtree: Counters;
  /** Its kept children, as their parent's rows and nested table give them. */
  kept: { path: string; hash: ContentHash; size: number; top: KeptPrevious['top']; hardlinks: number }[];
  /** Its other children, which are read too. */
  others: string[];
}

/**
 * The kept children of one catalog, never read themselves: what the writer sums of their counters is their
 * parent's subtree less its other children's (the first kept child carries it all, the others none), and their
 * tops are the parent's mountpoint rows.
 */
function keptChildren(parent: ReadCatalog, parentPath: string, read: ReadonlyMap<string, ReadCatalog>): KeptPrevious[] {
  const sum = { ...parent.subtree };
  for (const o of parent.others) {
    const c = read.get(o);
    if (c) for (const n of COUNTER_NAMES) sum[n] -= c.self[n] + c.subtree[n];
  }
  return parent.kept.map((k, i) => {
    const self = i === 0 ? sum : zero();
    // Each catalog's top directory is counted twice, as its parent's mountpoint and as its own root.
    const catalogs = i === 0 ? parent.kept.length + sum.nested : 0;
    const entries = i === 0 ? entriesOf(sum) - parent.kept.length - sum.nested : 0;
    // Its revision is not known unread, and nothing reads a kept child's: 0.
    return { written: { path: k.path, hash: k.hash, size: k.size, revision: 0, self, subtree: zero(), reused: true, catalogs }, hardlinks: k.hardlinks, entries, top: k.top, parent: parentPath };
  });
}

/** Reads and decompresses an object of the repository, checking its hash. */
async function readObject(repoDir: string, hash: ContentHash, suffix: ObjectSuffix): Promise<Uint8Array> {
  const stored = await readFile(join(repoDir, objectPath(hash, suffix)));
  if (hashBytes(stored, hash.algorithm).hex !== hash.hex) throw new Error(`publish: object ${objectPath(hash, suffix)} in ${repoDir} is corrupt`);
  return inflateSync(stored);
}

/**
 * Returns undefined when `repoDir` has no manifest yet; throws if it holds another repository. Nested catalogs for
 * which `keep` says so are not read (see PreviousRevision.kept).
 */
export async function readPreviousRevision(repoDir: string, fqrn: string, keep?: (path: string, manifest: Manifest) => boolean): Promise<PreviousRevision | undefined> {
  const manifestPath = join(repoDir, '.cvmfspublished');
  if (!existsSync(manifestPath)) return undefined;
  const manifest = parseManifest(await readFile(manifestPath));
  if (manifest.fqrn !== fqrn) throw new Error(`publish: ${repoDir} holds repository ${manifest.fqrn}, not ${fqrn}`);

  const catalogs = new Map<string, PreviousCatalog>();
  const contents = new PreviousContents();
  const read = new Map<string, ReadCatalog>();
  // Walk the catalog tree once for hashes and revisions, read as the client reads catalogs (no SQL engine); the
  // databases are loaded again only when compared. Kept catalogs are not read at all.
  const queue: { path: string; hash: ContentHash; size: number }[] = [{ path: '', hash: manifest.rootCatalog, size: 0 }];
  while (queue.length > 0) {
    const { path, hash, size } = queue.shift()!;
    const bytes = await readObject(repoDir, hash, 'C');
    const catalog = await Catalog.open(bytes, hash, path);
    try {
      if (path !== '') catalogs.set(path, { hash, size, revision: Number(catalog.properties.get('revision') ?? 0), load: () => readObject(repoDir, hash, 'C') });
      const stats = catalog.statistics();
      const here: ReadCatalog = { self: countersFrom(stats, 'self'), subtree: countersFrom(stats, 'subtree'), kept: [], others: [] };
      for (const ref of catalog.nested.values()) {
        const top = keep?.(ref.path, manifest) ? catalog.lookup(ref.path) : undefined;
        if (top) {
          here.kept.push({ path: ref.path, hash: ref.hash, size: ref.size, hardlinks: top.linkcount, top: { mode: top.mode, uid: top.uid, gid: top.gid, mtime: top.mtime, mtimens: top.mtimens, xattr: top.xattr ? top.xattr.slice() : null } });
        } else {
          here.others.push(ref.path);
          queue.push({ path: ref.path, hash: ref.hash, size: ref.size });
        }
      }
      read.set(path, here);
    } finally {
      catalog.close();
    }
    contents.add(new SqliteTables(bytes));
  }
  const kept = new Map<string, KeptPrevious>();
  for (const [path, c] of read) for (const k of keptChildren(c, path, read)) kept.set(k.written.path, k);
  const history = manifest.history ? await readObject(repoDir, manifest.history, 'H') : undefined;
  return { manifest, catalogs, contents, kept, ...(history ? { history } : {}) };
}
