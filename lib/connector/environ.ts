/**
 * The command's environment and arguments as the bytes the caller gave. Node decodes its environment as UTF-8,
 * so a value that is not (a Latin-1 path in `HOME`, binary data) would reach the command with U+FFFD in place of
 * its bytes; a shell passes any bytes on.
 * @module
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { decodeName, encodeName } from '../format/byte-names.js';

/** This process's environment as it started, by its decoded name: the raw entry and its decoded value. */
function initialEnvironment(): Map<string, { raw: Buffer; value: string }> {
  const out = new Map<string, { raw: Buffer; value: string }>();
  let block: Buffer;
  try {
    block = readFileSync('/proc/self/environ');
  } catch {
    return out; // no /proc: the decoded environment stands
  }
  for (let at = 0; at < block.length;) {
    let end = block.indexOf(0, at);
    if (end < 0) end = block.length;
    const raw = block.subarray(at, end);
    const eq = raw.indexOf(0x3d, 1); // a name may not be empty, so an entry's first '=' is never its name's
    if (eq > 0) out.set(raw.toString('utf8', 0, eq), { raw, value: raw.toString('utf8', eq + 1) });
    at = end + 1;
  }
  return out;
}

/**
 * `NAME=value` entries of `env` as bytes. Where `initial` (this process's environment at start) holds the same
 * name with a value that decodes to the same string, its bytes are taken: what this process did not change
 * reaches the command exactly as given.
 */
export function environmentBytes(env: NodeJS.ProcessEnv, initial = initialEnvironment()): Buffer[] {
  const out: Buffer[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const given = initial.get(name);
    out.push(given && given.value === value ? given.raw : Buffer.from(`${name}=${value}`, 'utf8'));
  }
  return out;
}

/** Arguments in the library's string form (lib/format/byte-names.ts: bytes that are not UTF-8 kept) as bytes. */
export function argumentBytes(argv: readonly string[]): Buffer[] {
  return argv.map((a) => encodeName(a));
}

/**
 * This process's working directory in the library's string form: `process.cwd()` decodes it as UTF-8, and a
 * directory whose name is not would not be found again.
 */
export function workingDirectory(): string {
  const cwd = process.cwd();
  if (!cwd.includes('\uFFFD')) return cwd;
  try {
    return decodeName(readlinkSync('/proc/self/cwd', { encoding: 'buffer' }));
  } catch {
    return cwd;
  }
}
