/**
 * Exec planning: how to run a program under /cvmfs that the kernel cannot run from the shadow tree by itself
 * (a `#!` script, or an ELF whose loader lies under /cvmfs), as argv the tracer puts in place of the execve's.
 * @module
 */
import type { Entry } from '../fs/entry.js';
import type { Repository } from '../repository.js';
import { elfInterpreter } from './elf.js';
import { underVirtualRoot } from './virtual-root.js';
import { decodeName, nativePath } from '../format/byte-names.js';
import { promises as fsp, realpathSync } from 'node:fs';
import { posix } from 'node:path';

/** The kernel reads at most this much of a `#!` line (BINPRM_BUF_SIZE). */
const SHEBANG_MAX = 256;

/** In an exec plan (see {@link ExecPlanner.plan}), the original argv[0] of the execve. */
export const ARGV0 = '\x01';
/**
 * Stands for the program's path as the process named it to execve: what the kernel hands a `#!` script's
 * interpreter (`./run.sh` stays `./run.sh` in `$0`). The tracer puts the /cvmfs path there when the name was
 * relative to a directory descriptor (the kernel's `/dev/fd/N/...` would not open once that descriptor closes).
 */
export const AS_GIVEN = '\x02';

/** The format of plans as kept in the shadow tree: plans of another format are made anew, not run. */
export const PLAN_FORMAT = 'as-given-resolved';

/** Splits the first line of a script into interpreter and optional argument, as Linux does. */
export function parseShebang(head: Buffer): [string, string] | null {
  if (head.length < 2 || head[0] !== 0x23 || head[1] !== 0x21) return null;
  let end = head.indexOf(0x0a);
  if (end < 0) end = Math.min(head.length, SHEBANG_MAX);
  const line = head.subarray(2, end).toString('latin1').replace(/[ \t]+$/, '').replace(/^[ \t]+/, '');
  if (!line) return null;
  const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
  if (!m) return null;
  return [m[1]!, m[2] ?? ''];
}

/** The PT_INTERP of an open repository file, if it is an ELF with one. */
function interpreterOf(fh: { read(b: Buffer, o: number, l: number, p: number): Promise<{ bytesRead: number }> }): Promise<string | undefined> {
  return elfInterpreter(async (offset, length) => {
    const b = Buffer.alloc(length);
    return b.subarray(0, (await fh.read(b, 0, length, offset)).bytesRead);
  });
}

/** A program's first bytes (a `#!` line) and, for an ELF, its loader (PT_INTERP); the handle is closed after. */
async function headOf(fh: { read(b: Buffer, o: number, l: number, p: number): Promise<{ bytesRead: number }>; close(): Promise<void> }): Promise<{ head: Buffer; interp: string | undefined }> {
  try {
    let head = Buffer.alloc(SHEBANG_MAX);
    head = head.subarray(0, (await fh.read(head, 0, SHEBANG_MAX, 0)).bytesRead);
    return { head, interp: head.length >= 4 && head.readUInt32BE(0) === 0x7f454c46 ? await interpreterOf(fh) : undefined };
  } finally {
    await fh.close();
  }
}

/** What the planner needs of the shadow tree: making a path ready, and resolving one as the kernel will. */
export interface ExecPlanDeps {
  prepare(op: string, path: string): Promise<unknown>;
  walk(path: string, followLast: boolean): Promise<{ repo: Repository | null; parts: string[]; entry: Entry | null } | null>;
}

/** Plans execs of programs under /cvmfs (one per shadow tree: it remembers which loaders know `--argv0`). */
export class ExecPlanner {
  private readonly argv0Support = new Map<string, boolean>();

  constructor(private readonly deps: ExecPlanDeps) {}

  /**
   * How to run a program under /cvmfs that the kernel cannot run from the shadow tree by itself: a `#!` script
   * (the interpreter gets the script's path as the process named it, {@link AS_GIVEN}), or an ELF whose loader
   * (PT_INTERP) is under /cvmfs (the loader is run with the program as argument, `--argv0` keeping argv[0] when
   * the loader knows it, as glibc's does since 2.33). The answer is `[file to execute, argv before the
   * original argv[1...]]`, `ARGV0` standing for the original argv[0] and `AS_GIVEN` for the path as given; empty
   * when the kernel can do it alone.
   */
  async plan(repo: Repository, path: string, inRepo: string): Promise<string[]> {
    const { head, interp } = await headOf(await repo.fs.openProgram(inRepo));
    // The loader gets the program's own path, not a symlink's: glibc takes $ORIGIN from the path it is given,
    // where the kernel gives the file itself (`bin/x -> ../lib/x/bin/x` with `$ORIGIN/../lib` runpaths).
    return this.planOf(head, interp, interp === undefined ? path : `/cvmfs/${repo.fqrn}${inRepo === '/' ? '' : inRepo}`, true);
  }

  /**
   * The plan for a program outside /cvmfs (`real`, a path the tracer gave, e.g. `/proc/<pid>/cwd/prog`) whose
   * `#!` interpreter or loader (PT_INTERP) lies under /cvmfs, where the kernel would look for it on the host: a
   * user's program built against a compatibility layer there (EESSI's loader), a script run by a python there.
   * Empty when neither is under /cvmfs, or the file cannot be read.
   */
  async planOutside(real: string): Promise<string[]> {
    let fh;
    try {
      fh = await fsp.open(nativePath(real), 'r');
    } catch {
      return [];
    }
    const { head, interp } = await headOf(fh);
    const named = interp ?? parseShebang(head)?.[0];
    if (!named || !underVirtualRoot(posix.normalize(named))) return [];
    // An ELF's loader gets the file's own absolute path: $ORIGIN, and /proc/self/exe as the tracer shows it.
    let program = AS_GIVEN;
    if (interp !== undefined) {
      try {
        program = decodeName(Buffer.from(realpathSync(nativePath(real), { encoding: 'buffer' })));
      } catch {
        // as given, then
      }
    }
    return this.planOf(head, interp === undefined ? undefined : posix.normalize(interp), program, false);
  }

  /**
   * The plan from a program's first bytes: its loader with the program (`program`) as argument, or its `#!`
   * interpreter with the path as given. `always`: a script gets its interpreter's plan even when that is not
   * under /cvmfs (a script under /cvmfs must never be run by the kernel from its shadow path).
   */
  private async planOf(head: Buffer, interp: string | undefined, program: string, always: boolean): Promise<string[]> {
    if (interp !== undefined) {
      const loader = await this.loaderPlan(interp, ARGV0);
      return loader ? [...loader, program] : [];
    }
    const sb = parseShebang(head);
    if (!sb) return [];
    if (!always && !underVirtualRoot(posix.normalize(sb[0]))) return [];
    // argv as the kernel makes it (the interpreter as the line writes it); executed, the /cvmfs form of it.
    let tail = [sb[0], ...(sb[1] ? [sb[1]] : []), AS_GIVEN];
    for (let cur = sb[0], depth = 0; ; depth++) {
      const inRoot = posix.normalize(cur);
      const found = underVirtualRoot(inRoot) ? await this.headUnderRoot(inRoot) : undefined;
      const inner = found && found.interp === undefined && depth < 4 ? parseShebang(found.head) : null;
      if (!inner) {
        // The interpreter may itself need a loader under /cvmfs (a python of EESSI's): then that runs first.
        const loader = await this.loaderPlan(found?.interp, cur);
        return loader ? [...loader, ...tail] : [underVirtualRoot(inRoot) ? inRoot : cur, ...tail];
      }
      // The interpreter is a script itself: the kernel runs that one's interpreter with it (up to 4 deep), which
      // it would look for on the host when it lies under /cvmfs.
      tail = [inner[0], ...(inner[1] ? [inner[1]] : []), ...tail];
      cur = inner[0];
    }
  }

  /** The first bytes and loader (PT_INTERP) of a program under /cvmfs, made ready in the shadow tree. */
  private async headUnderRoot(program: string): Promise<{ head: Buffer; interp: string | undefined } | undefined> {
    await this.deps.prepare('o', program);
    const place = await this.deps.walk(program, true);
    if (!place?.repo || place.entry?.type !== 'file') return undefined;
    return headOf(await place.repo.fs.openProgram('/' + place.parts.join('/')));
  }

  /** `[loader, loader, --argv0, argv0]` when `interp` is under /cvmfs (made ready in the shadow tree), else undefined. */
  private async loaderPlan(interp: string | undefined, argv0: string): Promise<string[] | undefined> {
    if (!interp || !underVirtualRoot(interp)) return undefined;
    await this.deps.prepare('o', interp);
    return [interp, interp, ...((await this.knowsArgv0(interp)) ? ['--argv0', argv0] : [])];
  }

  /** Whether a loader under /cvmfs takes `--argv0` (its usage text names the option). */
  private async knowsArgv0(loader: string): Promise<boolean> {
    let known = this.argv0Support.get(loader);
    if (known === undefined) {
      const place = await this.deps.walk(loader, true);
      const bytes = place?.repo && place.entry?.type === 'file' && place.entry.size < 16 << 20 ? await place.repo.fs.readFile('/' + place.parts.join('/')) as Buffer : undefined;
      known = bytes ? bytes.includes('--argv0') : false;
      this.argv0Support.set(loader, known);
    }
    return known;
  }
}
