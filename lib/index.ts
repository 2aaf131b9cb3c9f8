/**
 * ucvmfs: a read-only CernVM-FS client in TypeScript.
 *
 * ```ts
 * import { openRepository } from 'ucvmfs';
 * const repo = await openRepository('sw.example.org', { serverUrls: ['http://s1.example.org/cvmfs/@fqrn@'], publicKeys: ['sw.example.org.pub'] });
 * const text = await repo.fs.readFile('/README.txt', 'utf8');
 * ```
 * @module
 */
export { openRepository, resolveRepositoryConfig, Repository, defaultCacheBase, type OpenOptions, type RepositoryStats } from './repository.js';
export type { ResolvedConfig } from './config/config-repository.js';
export { CvmfsFs, type PathLike, type ReaddirOptions, type StatOptions, type OpendirOptions, type AbortOptions } from './fs/fs.js';
export { CvmfsFileHandle, type ReadStreamOptions, type ReadResult } from './fs/file-handle.js';
export { CvmfsStats, CvmfsBigIntStats, CvmfsDirent } from './fs/stats.js';
export { CvmfsDir } from './fs/dir.js';
export type { Entry, EntryType } from './fs/entry.js';
export type { MagicVisibility } from './fs/magic-xattrs.js';
export { CvmfsError, type ErrorCode, type FailureReason } from './errors.js';
export type { Tag } from './history.js';
export type { Manifest } from './format/manifest.js';
export type { Whitelist } from './format/whitelist.js';
export { type ContentHash, type HashAlgorithm, hashToString, parseHash } from './format/hash.js';
export { VERSION } from './version.js';
export { publish, type PublishOptions, type PublishResult } from './publish/index.js';
export { describeTree, treeToJson, type Tree, type TreeEntry } from './tree.js';
export { serveRepositories, type RepositoryServer } from './serve.js';
export { parseSpec, selectEntries, type Spec } from './select.js';
export { preload, exportTree, type OfflineProgress, type OfflineOptions } from './offline.js';
export { execCommand, type ExecOptions, type ExecResult } from './connector/exec.js';
export { readProfile, type AccessProfile, type ProfileObject, type ProfileOp, type ReplayOptions, type ReplayStats } from './connector/profile.js';
export { fsckCache, type FsckReport } from './cache/fsck.js';
export { loadConfig, type Config } from './config/load.js';
