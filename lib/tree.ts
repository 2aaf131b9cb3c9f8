/**
 * A whole-tree description in the format of the fixtures' truth.json (`ucvmfs tree --json`): every entry with
 * type, mode, perm, size, nlink, mtime, mtime_ns, uid, gid, target, sha1 of the content, directory entries and
 * xattrs, so that a user can pipe it into jq or diff two revisions.
 * @module
 */
import { Flag } from './format/flags.js';
import { hashToString } from './format/hash.js';
import type { Entry } from './fs/entry.js';
import type { Repository } from './repository.js';
import { lazyCrypto } from './lazy.js';

/** One entry as truth.json describes it. */
export interface TreeEntry {
  type: string;
  mode: number;
  perm: string;
  size: number;
  nlink: number;
  mtime: number;
  mtime_ns: bigint;
  uid: number;
  gid: number;
  target?: string;
  sha1?: string;
  entries?: string[];
  xattrs: Record<string, { hex: string; text: string | null }>;
  hidden_from_readdir?: true;
}

/** The whole description. */
export interface Tree {
  fqrn: string;
  revision: number;
  root_hash: string;
  entries: Record<string, TreeEntry>;
}

/** Options of {@link describeTree}. */
export interface TreeOptions {
  /** Read every file and record the SHA-1 of its content (default true). */
  content?: boolean;
  /** Files read at once (default 8). */
  concurrency?: number;
  /** Called after each entry, for progress. */
  onEntry?: (path: string, done: number) => void;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(b: Buffer): string | null {
  try {
    return utf8.decode(b);
  } catch {
    return null;
  }
}

/** Walks `subtree` (default the root) and describes every entry; hidden children of `subtree` too (marked). */
export async function describeTree(repo: Repository, subtree = '/', opts: TreeOptions = {}): Promise<Tree> {
  const out: Record<string, TreeEntry> = {};
  const files: [string, TreeEntry][] = [];
  let done = 0;
  const visit = async (e: Entry, hidden: boolean, top: boolean): Promise<void> => {
    const t: TreeEntry = {
      type: e.type,
      mode: e.mode,
      perm: '0' + (e.mode & 0o7777).toString(8).padStart(3, '0'),
      size: e.size,
      nlink: e.nlink,
      mtime: e.mtime,
      mtime_ns: e.mtimeNs,
      uid: e.uid,
      gid: e.gid,
      xattrs: {},
    };
    if (e.type === 'symlink') t.target = e.target!;
    if (hidden) t.hidden_from_readdir = true;
    for (const [k, v] of await repo.fs.xattrs(e.path, { noFollow: true })) t.xattrs[k] = { hex: v.toString('hex'), text: text(v) };
    out[e.path] = t;
    opts.onEntry?.(e.path, ++done);
    if (e.type === 'file' && opts.content !== false) files.push([e.path, t]);
    if (e.type === 'dir') {
      const children = await repo.fs.entries(e.path);
      t.entries = children.filter((c) => !(c.flags & Flag.Hidden)).map((c) => c.name).sort();
      // Hidden entries (the /.cvmfs snapshot directory) are described only below the walk's own root, as the
      // genuine client's truth files do; every snapshot has its own hidden /.cvmfs, which would nest without end.
      for (const c of children) {
        const isHidden = (c.flags & Flag.Hidden) !== 0;
        if (!isHidden || top) await visit(await repo.fs.entry(c.path, false), isHidden, false);
      }
    }
  };
  await visit(await repo.fs.entry(subtree, true), false, true);
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const [path, t] = files[next++]!;
      const h = lazyCrypto().createHash('sha1');
      for await (const c of repo.fs.createReadStream(path)) h.update(c as Buffer);
      t.sha1 = h.digest('hex');
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, worker));
  return { fqrn: repo.fqrn, revision: repo.revision, root_hash: hashToString(repo.rootHash), entries: out };
}

/** JSON text of a tree, with nanosecond times written as exact integers. */
export function treeToJson(tree: Tree, indent = 0): string {
  return JSON.stringify(tree, (_k, v: unknown) => (typeof v === 'bigint' ? `\u0000${v}` : v), indent || undefined)
    .replace(/"\\u0000(\d+)"/g, '$1');
}
