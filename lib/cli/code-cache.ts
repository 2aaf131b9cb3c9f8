/**
 * Runs the CLI's one-file build with V8's code cache: the functions compiled by an earlier command are loaded
 * instead of compiled again (about 15 ms of a warm command that takes 130 here; Node 20 has no compile cache of
 * its own). The cache is a few hundred KB per build in the user's cache directory.
 *
 * Compiled code is run as is, so a cache file is used only if the user alone could have written it: a regular
 * file owned by this user in a directory owned by this user, neither writable by group or others. Anything else
 * (absent, untrusted, rejected by V8 because Node, its flags or the build changed) compiles the source as
 * before, and a fresh cache is written when the command ends. The cache never decides what a command does.
 * @module
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Script } from 'node:vm';
import { isAscii } from 'node:buffer';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Cache files kept per directory: other builds (another install, another Node) keep theirs up to this. */
const KEEP = 4;

/**
 * The directory for compiled code: `UCVMFS_CODE_CACHE` (`off` turns the cache off), else
 * `$XDG_CACHE_HOME/ucvmfs`, else `~/.cache/ucvmfs`; null when off or no home is known.
 */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const set = env.UCVMFS_CODE_CACHE;
  if (set !== undefined && set !== '') return set === 'off' || set === '0' ? null : set;
  if (env.XDG_CACHE_HOME?.startsWith('/')) return join(env.XDG_CACHE_HOME, 'ucvmfs');
  return env.HOME?.startsWith('/') ? join(env.HOME, '.cache', 'ucvmfs') : null;
}

/** The cache file's name for one build as run by this Node: a changed build or Node gets a new file. */
export function codeCacheName(source: string): string {
  const st = statSync(source);
  return `code-${process.version}-${process.arch}-${st.ino}-${st.size}-${Math.floor(st.mtimeMs)}.v8`;
}

/** Whether a file or directory is this user's alone to change. */
function ownedAlone(st: { uid: number; mode: number }): boolean {
  return st.uid === process.geteuid?.() && (st.mode & 0o022) === 0;
}

/** The cached code, or undefined when there is none this user alone could have written. */
export function readCodeCache(dir: string, name: string): Buffer | undefined {
  let fd = -1;
  try {
    if (!lstatSync(dir).isDirectory() || !ownedAlone(lstatSync(dir))) return undefined;
    fd = openSync(join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (!st.isFile() || !ownedAlone(st)) return undefined;
    const data = Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < data.length) {
      const n = readSync(fd, data, got, data.length - got, got);
      if (n === 0) return undefined; // cut short while we read: a writer renames whole files, so not ours
      got += n;
    }
    return data;
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** Writes a cache file whole (a reader sees the old one or the new one) and keeps the newest {@link KEEP}. */
export function writeCodeCache(dir: string, name: string, data: Buffer): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!ownedAlone(lstatSync(dir))) return;
    const temp = join(dir, `.${name}.${process.pid}`);
    writeFileSync(temp, data, { mode: 0o600, flag: 'wx' });
    renameSync(temp, join(dir, name));
    const old = readdirSync(dir)
      .filter((n) => n.startsWith('code-') && n.endsWith('.v8') && n !== name)
      .map((n) => ({ n, t: lstatSync(join(dir, n)).mtimeMs }))
      .sort((a, b) => b.t - a.t);
    for (const { n } of old.slice(KEEP - 1)) rmSync(join(dir, n), { force: true });
  } catch {
    // A cache that cannot be written costs the next command its compile time, nothing else.
  }
}

/** What happened to the code cache, for `NODE_DEBUG=ucvmfs`. */
export type CodeCacheUse = 'off' | 'absent' | 'used' | 'rejected';

/**
 * Loads and runs a CommonJS file as Node's loader would (`require`, `module`, `__filename`, `__dirname`
 * relative to it), from the code cache when one can be trusted; writes the cache at exit when it was absent or
 * rejected.
 */
export function runWithCodeCache(file: string, env: NodeJS.ProcessEnv = process.env): CodeCacheUse {
  // The build is ASCII (esbuild escapes the rest): decoded as Latin-1 it makes the same string at half the cost.
  const bytes = readFileSync(file);
  const source = bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8').replace(/^#!.*/, '');
  const dir = codeCacheDir(env);
  const name = dir ? codeCacheName(file) : '';
  const cachedData = dir ? readCodeCache(dir, name) : undefined;
  // The same wrapper as Node's CommonJS loader, so the code sees the same names.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
  const use: CodeCacheUse = !dir ? 'off' : !cachedData ? 'absent' : script.cachedDataRejected ? 'rejected' : 'used';
  if (dir && use !== 'used') process.once('exit', () => writeCodeCache(dir, name, script.createCachedData()));
  if (env.NODE_DEBUG?.split(',').includes('ucvmfs')) process.stderr.write(`UCVMFS ${process.pid}: code cache ${use}${dir ? ` (${join(dir, name)})` : ''}\n`);
  const require = createRequire(file);
  const module = { exports: {}, filename: file, id: '.', loaded: false, require };
  process.argv[1] = file;
  (script.runInThisContext() as (...a: unknown[]) => void)(module.exports, require, module, file, dirname(file));
  return use;
}
