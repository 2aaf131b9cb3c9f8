/**
 * Errors shaped like Node's own system errors (`code`, `errno`, `syscall`, `path`), so that programs written
 * against `node:fs/promises` handle ours the same way.
 * @module
 */

/** The error codes this library raises. */
export type ErrorCode =
  | 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'ELOOP' | 'EROFS' | 'EACCES' | 'EIO' | 'EINVAL' | 'ENODATA'
  | 'EBADF' | 'ENAMETOOLONG' | 'ERANGE' | 'EPERM' | 'EEXIST' | 'EXDEV' | 'EBUSY';

const ERRNO: Record<ErrorCode, [number, string]> = {
  EPERM: [-1, 'operation not permitted'],
  ENOENT: [-2, 'no such file or directory'],
  EIO: [-5, 'i/o error'],
  EBADF: [-9, 'bad file descriptor'],
  EBUSY: [-16, 'resource busy or locked'],
  EACCES: [-13, 'permission denied'],
  EEXIST: [-17, 'file already exists'],
  EXDEV: [-18, 'cross-device link not permitted'],
  ENOTDIR: [-20, 'not a directory'],
  EISDIR: [-21, 'illegal operation on a directory'],
  EINVAL: [-22, 'invalid argument'],
  EROFS: [-30, 'read-only file system'],
  ERANGE: [-34, 'result too large'],
  ENAMETOOLONG: [-36, 'name too long'],
  ELOOP: [-40, 'too many symbolic links encountered'],
  ENODATA: [-61, 'no data available'],
};

/**
 * Why a repository could not be trusted or an object could not be served. Carried in {@link CvmfsError.reason}
 * so that callers (and tests) can tell one failed check from another.
 */
export type FailureReason =
  | 'whitelist-signature' | 'whitelist-expired' | 'whitelist-name' | 'whitelist-format'
  | 'certificate-not-whitelisted' | 'certificate-format'
  | 'manifest-signature' | 'manifest-name' | 'manifest-format' | 'manifest-rollback'
  | 'hash-mismatch' | 'decompression' | 'download' | 'not-found' | 'catalog-format' | 'config-repository'
  /** The object was fine but this machine could not keep it: a full disk, a read-only or vanished cache. */
  | 'cache-write'
  /** `auto` in CVMFS_HTTP_PROXY found no proxy, and no proxies were kept from an earlier discovery. */
  | 'proxy-discovery';

/** An error with Node's shape: `code`, `errno`, `syscall`, `path`, and for EIO a `cause` and a `reason`. */
export class CvmfsError extends Error {
  /** The POSIX-style code, e.g. `ENOENT`. */
  readonly code: ErrorCode;
  /** The negative errno, as Node reports it. */
  readonly errno: number;
  /** The fs call that failed, where there is one. */
  readonly syscall?: string;
  /** The path the call was made on, where there is one. */
  readonly path?: string;
  /** Which check failed, for verification and transfer errors. */
  readonly reason?: FailureReason;

  constructor(code: ErrorCode, message: string, opts: { syscall?: string; path?: string; reason?: FailureReason; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CvmfsError';
    this.code = code;
    this.errno = ERRNO[code][0];
    if (opts.syscall !== undefined) this.syscall = opts.syscall;
    if (opts.path !== undefined) this.path = opts.path;
    if (opts.reason !== undefined) this.reason = opts.reason;
  }
}

/** An fs-call error worded as Node words them: `ENOENT: no such file or directory, stat '/a/b'`. */
export function fsError(code: ErrorCode, syscall: string, path: string, detail?: string, cause?: unknown): CvmfsError {
  const text = `${code}: ${ERRNO[code][1]}, ${syscall} '${path}'${detail ? ` (${detail})` : ''}`;
  return new CvmfsError(code, text, { syscall, path, cause });
}

/** A trust or transfer failure: always EIO, with the failed check named. */
export function ioError(reason: FailureReason, message: string, cause?: unknown): CvmfsError {
  return new CvmfsError('EIO', message, { reason, cause });
}

/** True if `e` is one of our errors with the given code. */
export function hasCode(e: unknown, code: ErrorCode): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}
