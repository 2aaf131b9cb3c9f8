/**
 * Who may read or execute an entry. The genuine client's defaults make every entry the mounting user's
 * (`CVMFS_CLAIM_OWNERSHIP=yes`) and have the kernel check modes (`CVMFS_CHECK_PERMISSIONS=yes`), so on a mount
 * the owner's bits decide for a user, and root reads everything and executes what has any execute bit.
 * `access()` and `open()` of the fs view answer by the same rule.
 * @module
 */
import type { Entry } from './entry.js';

const R_OK = 4;
const X_OK = 1;

/** Whether this process may do `mode` (R_OK, X_OK; W_OK is the caller's: EROFS) to `e`. */
export function permits(e: Pick<Entry, 'mode' | 'type'>, mode: number, uid = process.getuid?.() ?? -1): boolean {
  if (uid === 0) return !(mode & X_OK) || e.type === 'dir' || (e.mode & 0o111) !== 0;
  if (mode & R_OK && !(e.mode & 0o400)) return false;
  if (mode & X_OK && !(e.mode & 0o100)) return false;
  return true;
}
