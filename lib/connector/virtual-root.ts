/**
 * The prefix programs see (`/cvmfs`), shared by the modules of the shadow tree.
 * @module
 */

/** The prefix programs see. */
export const VIRTUAL_ROOT = '/cvmfs';

/** Whether a path is `/cvmfs` or below it. */
export function underVirtualRoot(p: string): boolean {
  return p === VIRTUAL_ROOT || p.startsWith(VIRTUAL_ROOT + '/');
}
