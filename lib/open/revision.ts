/**
 * Opening a repository, step 4: the revision to show: HEAD, a named tag, or the newest tag published at or
 * before a date (the history database's), like CVMFS_REPOSITORY_TAG and CVMFS_REPOSITORY_DATE.
 * @module
 */
import { CvmfsError } from '../errors.js';
import type { ContentHash } from '../format/hash.js';
import type { Manifest } from '../format/manifest.js';
import type { ObjectStore } from '../store/object-store.js';
import { readTags, type Tag } from '../history.js';

/** The root catalog and revision to show, and the tag that names them ('' for HEAD). */
export interface Pick {
  root: ContentHash;
  revision: number;
  tag: string;
}

/** Picks the revision of `manifest`'s repository that `tag` or else `date` names; HEAD when neither is set. */
export async function pickRevision(fqrn: string, manifest: Manifest, store: ObjectStore, tag: string, date: string | Date | undefined): Promise<Pick> {
  if (!tag && !date) return { root: manifest.rootCatalog, revision: manifest.revision, tag: '' };
  if (!manifest.history) throw new CvmfsError('ENOENT', `${fqrn} has no history database, so no tag '${tag || String(date)}'`);
  const tags = await readTags(await store.getBytes(manifest.history, 'H'));
  let t: Tag | undefined;
  if (tag) {
    t = tags.find((x) => x.name === tag);
    if (!t) throw new CvmfsError('ENOENT', `${fqrn} has no tag '${tag}'`);
  } else {
    const when = date instanceof Date ? date : new Date(String(date));
    if (Number.isNaN(when.getTime())) throw new CvmfsError('EINVAL', `CVMFS_REPOSITORY_DATE: not a date: '${String(date)}'`);
    t = tags.filter((x) => x.timestamp * 1000 <= when.getTime()).sort((x, y) => y.timestamp - x.timestamp || y.revision - x.revision)[0];
    if (!t) throw new CvmfsError('ENOENT', `${fqrn} has no revision published at or before ${when.toISOString()}`);
  }
  return { root: t.hash, revision: t.revision, tag: t.name };
}
