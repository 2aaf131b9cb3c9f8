/**
 * Configuration files that are more than assignments (`if [ ... ]; then ... fi`, `&&`, `$(...)`, `readonly`), as
 * the public cvmfs-config packages write them, are run by `/bin/sh` exactly as the genuine client does: the
 * file is fed to a shell whose environment holds what was set before, then the value of every parameter the
 * file assigns on some line is read back. The shell runs with the file's directory as working directory and
 * nothing else: the file is trusted configuration, as it is for the genuine client.
 * @module
 */
import type { SpawnSyncReturns } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CvmfsError } from '../errors.js';
import { debug } from '../debug.js';
import type { Assignment } from './shell.js';

/** Words and operators that only a shell can evaluate; a file using none of them is read without one. */
const SHELL_ONLY = /^\s*(if|then|elif|else|fi|case|esac|for|while|until|do|done|readonly|unset|test|\[|:|\.|source|set)(\s|;|$)|&&|\|\||\$\(|`/m;

/** Whether `text` needs a shell (it has control flow or commands, not only assignments). */
export function needsShell(text: string): boolean {
  return SHELL_ONLY.test(text.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n'));
}

/**
 * The parameters a file assigns somewhere, in the genuine client's sense: on a line (comment cut off) of the
 * form `[export|readonly] NAME=...`, even inside a branch, with the line where it is first assigned.
 */
function assignedNames(text: string): Map<string, number> {
  const names = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const s = raw.replace(/#.*/, '').trim().replace(/^(then|else|do)\s+/, '');
    const m = /^(?:(?:export|readonly)\s+)?([A-Za-z_][A-Za-z0-9_]*)=/.exec(s);
    if (m && !names.has(m[1]!)) names.set(m[1]!, i + 1);
  });
  return names;
}

/**
 * Runs `text` (the content of `file`) in `/bin/sh` with `vars` as its environment and returns the parameters
 * whose value it set or changed. A syntax error or a command that is not found (`NAME = value`) is an error
 * naming the file and line; other messages of the shell go to the debug log. A parameter that an earlier file
 * (in `setByFiles`) set to the same value is not claimed by this one: the line may sit in a branch not taken.
 */
export function evalWithShell(text: string, file: string, vars: Map<string, string>, setByFiles: ReadonlySet<string> = new Set()): Assignment[] {
  const names = assignedNames(text);
  const lines = text.split('\n').length;
  // Each value is read back NUL-terminated, prefixed with 1 when set and 0 when not (unset is not empty), on fd 3:
  // what the file's own commands print goes to stderr, and they read nothing (stdin is /dev/null).
  const readBack = [...names.keys()].map((n) => `if [ "\${${n}+x}" = x ]; then printf '1%s\\0' "$${n}" >&3; else printf '0\\0' >&3; fi`).join('; ');
  const dir = dirname(file);
  const tmpDir = mkdtempSync(join(tmpdir(), 'ucvmfs-sh-'));
  const copy = join(tmpDir, 'conf');
  writeFileSync(copy, text);
  let r: SpawnSyncReturns<string>;
  try {
    // Loaded here, when a file needs a shell: child_process (and what it pulls in) costs every start ~5 ms.
    const { spawnSync } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    r = spawnSync('/bin/sh', ['-c', `exec 3>&1 1>&2 </dev/null; . "$1"; ${readBack}`, 'sh', copy], {
      env: Object.fromEntries(vars),
      cwd: existsSync(dir) ? dir : '/',
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  if (r.error) throw new CvmfsError('EINVAL', `${file}: cannot run /bin/sh to read it: ${r.error.message}`, { cause: r.error });
  for (const msg of r.stderr.split('\n').filter(Boolean)) {
    // dash says `sh: <line>: <file>: <what>`, bash `<file>: line <line>: <what>`.
    const m = /^(?:[^:]*: (\d+): [^:]*\/conf: |[^:]*\/conf: line (\d+): )(.*)$/.exec(msg);
    const lineNo = m ? Number(m[1] ?? m[2]) : 0;
    const at = lineNo > 0 && lineNo <= lines ? `${file}:${lineNo}` : file;
    const what = m ? m[3]! : msg;
    if (/syntax error|not found|unexpected/i.test(msg)) throw new CvmfsError('EINVAL', `${at}: ${what}`);
    debug(`${at}: ${what}`);
  }
  const values = r.stdout.split('\0');
  if (values.length < names.size + 1) throw new CvmfsError('EINVAL', `${file}: the shell stopped before the end of the file (exit or error, status ${r.status})`);
  const out: Assignment[] = [];
  [...names].forEach(([name, line], i) => {
    const v = values[i]!;
    if (!v.startsWith('1')) return;
    const value = v.slice(1);
    if (vars.get(name) === value && setByFiles.has(name)) return;
    vars.set(name, value);
    out.push({ name, value, line });
  });
  return out;
}
