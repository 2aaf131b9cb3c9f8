/**
 * The command's environment and arguments as the bytes the caller gave. Node decodes its environment as UTF-8,
 * so a value that is not (a Latin-1 path in `HOME`, binary data) would reach the command with U+FFFD in place of
 * its bytes; a shell passes any bytes on.
 * @module
 */
import { isUtf8 } from 'node:buffer';
import { readlinkSync } from 'node:fs';
import { readProcFile } from '../proc-file.js';
import { decodeName, encodeName } from '../format/byte-names.js';

/** This process's environment as it started. */
interface InitialEnvironment {
  /** By decoded name (the first of a name, as getenv takes it): the raw entry and its decoded value. */
  byName: Map<string, { raw: Buffer; value: string }>;
  /** Entries whose names are not UTF-8: Node does not show them, so nothing here changed them. */
  undecodable: Buffer[];
}

function initialEnvironment(): InitialEnvironment {
  const out: InitialEnvironment = { byName: new Map(), undecodable: [] };
  let block: Buffer;
  try {
    block = readProcFile('/proc/self/environ', 16384);
  } catch {
    return out; // no /proc: the decoded environment stands
  }
  for (let at = 0; at < block.length;) {
    let end = block.indexOf(0, at);
    if (end < 0) end = block.length;
    const raw = block.subarray(at, end);
    const eq = raw.indexOf(0x3d, 1); // a name may not be empty, so an entry's first '=' is never its name's
    if (eq > 0 && !isUtf8(raw.subarray(0, eq))) out.undecodable.push(raw);
    else if (eq > 0 && !out.byName.has(raw.toString('utf8', 0, eq))) out.byName.set(raw.toString('utf8', 0, eq), { raw, value: raw.toString('utf8', eq + 1) });
    at = end + 1;
  }
  return out;
}

/**
 * `NAME=value` entries of `env` as bytes (names and values in the library's string form, lib/format/byte-names.ts).
 * Where this process's environment at start holds the same name with a value that decodes to the same string, its
 * bytes are taken: what this process did not change reaches the command exactly as given. `undecodable`: the
 * entries whose names Node cannot show go too (when `env` is this process's own).
 */
export function environmentBytes(env: NodeJS.ProcessEnv, undecodable: boolean, initial = initialEnvironment()): Buffer[] {
  const out: Buffer[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const given = initial.byName.get(name);
    out.push(given && given.value === value ? given.raw : Buffer.concat([encodeName(name), Buffer.from('='), encodeName(value)]));
  }
  return undecodable ? [...out, ...initial.undecodable] : out;
}

/** Arguments in the library's string form (lib/format/byte-names.ts: bytes that are not UTF-8 kept) as bytes. */
export function argumentBytes(argv: readonly string[]): Buffer[] {
  return argv.map((a) => encodeName(a));
}

/**
 * This process's working directory in the library's string form: `process.cwd()` decodes it as UTF-8, and a
 * directory whose name is not would not be found again. '' when it was removed (a job started from a directory
 * deleted meanwhile): the command then starts in it as it is, as from a shell.
 */
export function workingDirectory(): string {
  let cwd: string;
  try {
    cwd = process.cwd();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
  if (!cwd.includes('\uFFFD')) return cwd;
  try {
    return decodeName(readlinkSync('/proc/self/cwd', { encoding: 'buffer' }));
  } catch {
    return cwd;
  }
}
