/**
 * Where the shared fixtures are: `UCVMFS_FIXTURES`, else `shared/fixtures` beside the checkout (as CI lays it
 * out), else this workplace's `/work/shared/fixtures` (for a checkout cloned elsewhere, e.g. into /tmp).
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function fixturesDir(): string {
  if (process.env.UCVMFS_FIXTURES) return process.env.UCVMFS_FIXTURES;
  const candidates = [resolve(root, '..', 'shared', 'fixtures'), '/work/shared/fixtures'];
  return candidates.find((c) => existsSync(c)) ?? candidates[0]!;
}
