/**
 * The genuine client's "magic" extended attributes (magic_xattr.cc) that make sense without a kernel mount:
 * content hash and chunk list of a file, catalog counters of a directory, and repository facts (revision,
 * root hash, server in use, keys, ...).
 * @module
 */
import { hashToString, hashFromBytes } from '../format/hash.js';
import { Flag, hashAlgorithmOf } from '../format/flags.js';
import type { Entry } from './entry.js';
import type { Namespace } from './namespace.js';

/** Facts about the repository that some magic attributes report. */
export interface MagicContext {
  readonly fqrn: string;
  revision(): number;
  rootHash(): string;
  host(): string;
  /** The proxy in use, `DIRECT` for none. */
  proxy(): string;
  hostList(): string[];
  pubkeys(): string;
  tag(): string;
  whitelistExpiry(): Date;
  openCatalogs(): number;
  downloads(): number;
  timeoutSeconds(): number;
  /** File opens since the repository was opened. */
  opens(): number;
  timeoutDirectSeconds(): number;
  /** The external data server in use ('' when none is configured). */
  externalHost(): string;
  version: string;
}

/** Which magic attributes listxattr shows: none, only on the root, or everywhere (CVMFS_MAGIC_XATTRS_VISIBILITY). */
export type MagicVisibility = 'never' | 'rootonly' | 'always';

const GLOBAL = ['user.fqrn', 'user.revision', 'user.root_hash', 'user.host', 'user.host_list', 'user.pubkeys', 'user.tag',
  'user.expires', 'user.nclg', 'user.ndownload', 'user.nopen', 'user.timeout', 'user.timeout_direct', 'user.proxy', 'user.version', 'user.repo_counters'] as const;
const FILE = ['user.hash', 'user.chunks', 'user.chunk_list', 'user.compression', 'user.direct_io', 'user.external_file'] as const;

/** Names of the magic attributes an entry has. */
export function magicNames(e: Entry): string[] {
  const names: string[] = [...GLOBAL];
  if (e.type === 'file') names.push(...FILE.filter((n) => n !== 'user.hash' || e.hash));
  if (e.type === 'file' && e.flags & Flag.FileExternal) names.push('user.external_url');
  if (e.type === 'dir') names.push('user.catalog_counters');
  if (e.type === 'symlink') names.push('user.rawlink');
  return names;
}

async function counters(ns: Namespace, e: Entry, withHeader: boolean): Promise<string> {
  // A bind mountpoint (snapshot directory) is the root of the tree mounted there, as in the genuine client.
  const cat = e.bind ? await ns.catalogs.get(e.bind, '') : e.path === '/' || !withHeader ? await ns.catalogs.get(e.loc.treeRoot, '') : await ns.catalogOf(e);
  const mount = e.bind ? e.loc.treePrefix + e.loc.rel : e.loc.treePrefix + cat.mountpoint;
  const stats = cat.statistics();
  const names = [...stats.keys()].filter((k) => k.startsWith('self_')).map((k) => k.slice(5)).sort();
  let out = withHeader ? `catalog_hash: ${hashToString(cat.hash)}\ncatalog_mountpoint: ${mount}\n` : '';
  for (const n of names) out += `${n},${(stats.get(`self_${n}`) ?? 0) + (stats.get(`subtree_${n}`) ?? 0)}\n`;
  return out;
}

/** The value of a magic attribute, or undefined if the entry has no such attribute. */
export async function magicValue(name: string, e: Entry, ns: Namespace, ctx: MagicContext): Promise<string | undefined> {
  if (!magicNames(e).includes(name)) return undefined;
  switch (name) {
    case 'user.fqrn': return ctx.fqrn;
    case 'user.revision': return String(ctx.revision());
    case 'user.root_hash': return ctx.rootHash();
    case 'user.host': return ctx.host();
    case 'user.host_list': return ctx.hostList().join(';');
    case 'user.pubkeys': return ctx.pubkeys();
    case 'user.tag': return ctx.tag();
    case 'user.expires': return String(Math.floor((ctx.whitelistExpiry().getTime() - Date.now()) / 60000));
    case 'user.nclg': return String(ctx.openCatalogs());
    case 'user.ndownload': return String(ctx.downloads());
    case 'user.nopen': return String(ctx.opens());
    case 'user.timeout': return String(ctx.timeoutSeconds());
    case 'user.timeout_direct': return String(ctx.timeoutDirectSeconds());
    case 'user.proxy': return ctx.proxy();
    case 'user.version': return ctx.version;
    case 'user.repo_counters': return counters(ns, e, false);
    case 'user.catalog_counters': return counters(ns, e, true);
    case 'user.rawlink': return e.rawTarget ?? '';
    case 'user.hash': return e.hash ? hashToString(e.hash) : undefined;
    case 'user.compression': return e.compression;
    case 'user.direct_io': return e.flags & 0x10000 ? '1' : '0';
    case 'user.external_file': return e.flags & Flag.FileExternal ? '1' : '0';
    case 'user.external_url': return ctx.externalHost() + e.path;
    case 'user.chunks':
    case 'user.chunk_list': {
      let rows: { hash: string; offset: number; size: number }[];
      if (e.chunked) {
        const alg = hashAlgorithmOf(e.flags);
        rows = (await ns.chunks(e)).map((c) => ({ hash: hashToString(hashFromBytes(c.hash, alg)), offset: c.offset, size: c.size }));
      } else rows = e.hash ? [{ hash: hashToString(e.hash), offset: 0, size: e.size }] : [];
      if (name === 'user.chunks') return String(rows.length);
      return 'hash,offset,size\n' + rows.map((r) => `${r.hash},${r.offset},${r.size}\n`).join('');
    }
  }
  return undefined;
}
