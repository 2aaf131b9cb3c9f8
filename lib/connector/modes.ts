/**
 * How a shadow file or directory carries the mode the repository stores while its on-disk mode stays read-only
 * and without setuid/setgid (the kernel enforces both: no job changes what the next reads, and no repository
 * program gains privileges). `stat` of a /cvmfs path shows the stored mode again: the tracer answers the stat of a
 * marked entry itself at the call's entry (its own stat of the shadow entry, the stored mode put in, the call
 * skipped: no second ptrace stop), the preload library after its call (addon/modes.h reads the same encoding).
 *
 * The encoding, chosen so that the common case costs the readers nothing beyond the stat they make anyway:
 * - on disk: the stored read and execute bits (`mode & 0o555`), plus S_ISVTX when the stored mode has any bit the
 *   disk lacks (a write, setuid, setgid or sticky bit). S_ISVTX has no effect on a regular file, and on a
 *   directory only restricts deleting others' entries in a writable directory (shadow directories are not);
 * - the stored mode is then `disk | 0o200` (owner write: 0644, 0755, 0600 ...) unless the extended attribute
 *   `user.ucvmfs.mode` (4 octal digits) says otherwise (0664, 0775, 4755, 1777 ...). Entries without S_ISVTX need
 *   no lookup at all; those with it, one getxattr. The attribute is hidden from listings and reads of /cvmfs paths.
 * @module
 */

/** The extended attribute holding a stored mode that `disk | 0o200` does not give. */
export const MODE_XATTR = 'user.ucvmfs.mode';

const S_ISVTX = 0o1000;

/**
 * The on-disk mode of a shadow entry whose repository mode is `mode` (permission bits only). `own`: for the
 * user alone (the top of a repository that requires membership): no group or other bits at all.
 */
export function shadowMode(mode: number, own = false): number {
  const disk = mode & (own ? 0o500 : 0o555);
  return (mode & 0o7777) === disk ? disk : disk | S_ISVTX;
}

/**
 * The on-disk mode of a shadow entry while it is made or repaired: its final `disk` mode with the owner's write
 * bit (setting an attribute and sizing by path need it). Its sticky bit stays, so a stat racing the make reads
 * the stored mode still (the owner's write bit is what a reader adds anyway), never a bare 0600 or 0700.
 */
export function whileMade(disk: number, dir = false): number {
  return (disk & 0o7777) | (dir ? 0o700 : 0o600);
}

/** The value of {@link MODE_XATTR} an entry needs (its stored mode), or undefined when the bits say it all. */
export function modeAttribute(mode: number, own = false): Buffer | undefined {
  const stored = mode & 0o7777;
  const disk = shadowMode(mode, own) & 0o555;
  if (stored === disk || stored === (disk | 0o200)) return undefined;
  return Buffer.from(stored.toString(8).padStart(4, '0'));
}

/** The stored mode a shadow entry stands for, from its on-disk mode and its {@link MODE_XATTR} (if any). */
export function storedMode(disk: number, attribute?: Buffer | string): number {
  const type = disk & ~0o7777;
  if (!(disk & S_ISVTX)) return disk;
  const parsed = attribute !== undefined ? /^[0-7]{4}$/.exec(attribute.toString()) : null;
  return type | (parsed ? parseInt(parsed[0], 8) : (disk & 0o555) | 0o200);
}
