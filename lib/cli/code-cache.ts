/**
 * Runs the CLI's one-file build with V8's code cache: the functions compiled by an earlier command are loaded
 * instead of compiled again (about 10-15 ms of a warm command here; Node 20 has no compile cache of its own).
 *
 * Compiled code is run as is, so a cache file is used only if the user alone could have written it: a regular
 * file with one link, owned by this user, in a directory owned by this user that is opened without following a
 * link; neither writable by group or others. Anything else (absent, untrusted, rejected by V8) compiles the
 * source as before, and a fresh cache is written when the command ends. The cache never decides what a command
 * does: V8 checks its own version, its flags and the source's length, and the file's name carries the build's
 * content hash (written into the starter by scripts/bundle-cli.mjs), Node's version and its V8 flags.
 *
 * One file per command word (`stat`, `ls`, `exec`, ...): the functions a command compiled are those it needs,
 * and a cache made by `version` would spare `stat` little. At most {@link KEEP} files, the least recently used
 * removed: a few MB.
 * @module
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { Script } from 'node:vm';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Cache files kept per directory (commands, builds, Node versions): about 300 KB each. */
const KEEP = 16;

/** How long a command that used the cache must have run (ms since the process started) to write it again. */
const REWRITE_AFTER_MS = 1000;

/**
 * The directory for compiled code: `UCVMFS_CODE_CACHE` (an absolute path; `off` turns the cache off), else
 * `$XDG_CACHE_HOME/ucvmfs`, else `~/.cache/ucvmfs`; null when off or no home is known.
 */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const set = env.UCVMFS_CODE_CACHE;
  if (set !== undefined && set !== '') return set.startsWith('/') ? set : null;
  if (env.XDG_CACHE_HOME?.startsWith('/')) return join(env.XDG_CACHE_HOME, 'ucvmfs');
  return env.HOME?.startsWith('/') ? join(env.HOME, '.cache', 'ucvmfs') : null;
}

/** FNV-1a of a string, in base 36: tells runs with other V8 flags apart without loading node:crypto. */
function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(36);
}

/**
 * The cache file's name for one build, one command word and this Node with its flags: another build, Node or
 * set of V8 flags gets its own file (V8 would reject the others' anyway, and they would overwrite each other).
 */
export function codeCacheName(buildId: string, command: string, env: NodeJS.ProcessEnv = process.env): string {
  const word = /^[a-z]{1,16}$/.test(command) ? command : 'other';
  const flags = shortHash(`${process.execArgv.join(' ')}\0${env.NODE_OPTIONS ?? ''}`);
  return `code-${buildId}-${word}-${process.version}-${process.arch}-${flags}.v8`;
}

/** Whether a file or directory is this user's alone to change. */
function ownedAlone(st: { uid: number; mode: number }): boolean {
  return st.uid === process.geteuid?.() && (st.mode & 0o022) === 0;
}

/** The directory opened without following a link, if it is this user's alone; else -1. */
function openOwnDir(dir: string): number {
  let fd = -1;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    if (ownedAlone(fstatSync(fd))) return fd;
  } catch {
    // absent, or a link: untrusted
  }
  if (fd >= 0) closeSync(fd);
  return -1;
}

/**
 * The cached code and when it was last marked used, or undefined when there is none this user alone could have
 * written.
 */
export function readCodeCache(dir: string, name: string): { data: Buffer; mtimeMs: number } | undefined {
  const dfd = openOwnDir(dir);
  if (dfd < 0) return undefined;
  let fd = -1;
  try {
    // Through the directory already judged: its path may have been swapped since.
    fd = openSync(`/proc/self/fd/${dfd}/${name}`, constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1 || !ownedAlone(st)) return undefined;
    const data = Buffer.allocUnsafe(st.size);
    for (let got = 0; got < data.length;) {
      const n = readSync(fd, data, got, data.length - got, got);
      if (n === 0) return undefined; // cut short while we read: a writer renames whole files, so not ours
      got += n;
    }
    return { data, mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
    closeSync(dfd);
  }
}

/**
 * Makes the cache directory (0700) if missing and says whether it may be written: it and its parent must be
 * this user's. Making the parent too (`~/.cache`) only under a home of this user's, so that root running with
 * another user's HOME (`sudo -E`) leaves that home alone.
 */
function writableOwnDir(dir: string): boolean {
  const uid = process.geteuid?.();
  const parent = dirname(dir);
  try {
    try {
      if (lstatSync(parent).uid !== uid) return false;
    } catch {
      if (lstatSync(dirname(parent)).uid !== uid) return false;
      mkdirSync(parent, { mode: 0o700 });
    }
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return false;
    }
    const st = lstatSync(dir);
    return st.isDirectory() && ownedAlone(st);
  } catch {
    return false;
  }
}

/**
 * Writes a cache file whole (a reader sees the old one or the new one) and keeps the {@link KEEP} newest; `data`
 * is made only when the directory may be written.
 */
export function writeCodeCache(dir: string, name: string, data: () => Buffer): void {
  if (!writableOwnDir(dir)) return;
  const temp = join(dir, `.${name}.${process.pid}`);
  try {
    writeFileSync(temp, data(), { mode: 0o600, flag: 'wx' });
    renameSync(temp, join(dir, name));
  } catch {
    rmSync(temp, { force: true }); // a full disk or quota: nothing left behind
    return;
  }
  try {
    const now = Date.now();
    const files = readdirSync(dir).map((n) => ({ n, t: lstatSync(join(dir, n)).mtimeMs }));
    // Temporaries of writers killed before their rename.
    for (const { n, t } of files) if (n.startsWith('.code-') && now - t > 60_000) rmSync(join(dir, n), { force: true });
    const kept = files.filter(({ n }) => n.startsWith('code-') && n.endsWith('.v8') && n !== name).sort((a, b) => b.t - a.t);
    for (const { n } of kept.slice(KEEP - 1)) rmSync(join(dir, n), { force: true });
  } catch {
    // A cache that cannot be pruned costs some disk until the next write.
  }
}

/** What happened to the code cache, for `NODE_DEBUG=ucvmfs`. */
export type CodeCacheUse = 'off' | 'absent' | 'used' | 'rejected';

/** The command word of the CLI's arguments: the first that is not an option (options with values come first). */
function commandWord(args: readonly string[]): string {
  return args.find((a) => /^[a-z]+$/.test(a)) ?? '';
}

/**
 * Loads and runs a CommonJS file as Node's loader would (`require`, `module`, `__filename`, `__dirname`
 * relative to it), from the code cache when one can be trusted; writes the cache at exit when it was absent or
 * rejected, or when the command ran long.
 */
export function runWithCodeCache(file: string, source: string, buildId: string, env: NodeJS.ProcessEnv = process.env): CodeCacheUse {
  const dir = codeCacheDir(env);
  const name = dir ? codeCacheName(buildId, commandWord(process.argv.slice(2)), env) : '';
  const cached = dir ? readCodeCache(dir, name) : undefined;
  const cachedData = cached?.data;
  // The same wrapper as Node's CommonJS loader, so the code sees the same names.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
  const use: CodeCacheUse = !dir ? 'off' : !cachedData ? 'absent' : script.cachedDataRejected ? 'rejected' : 'used';
  // Marked used for the pruning, at most once an hour: on a home on NFS each mark is a round trip.
  if (use === 'used' && Date.now() - cached!.mtimeMs > 3_600_000) {
    try {
      utimesSync(join(dir!, name), new Date(), new Date());
    } catch {
      // read-only: it still serves
    }
  }
  // Written when absent or rejected, and again after a long command (a real job under `exec`), which compiled
  // what the short one that made the cache never ran (a cache made by `exec -- true` serves a `find` poorly); a
  // short command that used it does not pay the 5 ms of making and writing it.
  // process.uptime, not performance.now: the `performance` global loads perf_hooks on first use (about 1 ms of
  // every warm command's exit).
  if (dir) process.once('exit', () => {
    if (use !== 'used' || process.uptime() * 1000 > REWRITE_AFTER_MS) writeCodeCache(dir, name, () => script.createCachedData());
  });
  if (env.NODE_DEBUG?.split(',').includes('ucvmfs')) process.stderr.write(`UCVMFS ${process.pid}: code cache ${use}${dir ? ` (${join(dir, name)})` : ''}\n`);
  const require = createRequire(file);
  const module = { exports: {}, filename: file, id: '.', loaded: false, require };
  process.argv[1] = file;
  (script.runInThisContext() as (...a: unknown[]) => void)(module.exports, require, module, file, dirname(file));
  return use;
}
