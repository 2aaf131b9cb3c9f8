/**
 * The debug log: silent unless NODE_DEBUG contains `ucvmfs` (Node's convention) or CVMFS_DEBUGLOG names a file.
 * @module
 */
import { appendFileSync } from 'node:fs';
import { debuglog } from 'node:util';

const nodeDebug = debuglog('ucvmfs');
const file = process.env.CVMFS_DEBUGLOG;

/** Whether anything is logged (to skip building messages otherwise). */
export const debugEnabled = nodeDebug.enabled || Boolean(file);

/** Logs one line (printf-style arguments as `util.format` takes them). */
export function debug(message: string): void {
  if (!debugEnabled) return;
  if (nodeDebug.enabled) nodeDebug('%s', message);
  if (file) {
    try {
      appendFileSync(file, `${new Date().toISOString()} ${process.pid} ${message}\n`);
    } catch {
      // A log that cannot be written must not break reads.
    }
  }
}
