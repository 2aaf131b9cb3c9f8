#!/usr/bin/env node
/**
 * `ucvmfs`: command-line access to CernVM-FS repositories.
 * @module
 */
import { join, resolve } from 'node:path';
// node:fs/promises through `fsp`, loaded on first use: it loads streams and readline (1.5 ms of every start).
import { promises as fsp, readFileSync } from 'node:fs';
import { decodeName, encodeName } from '../format/byte-names.js';
import { constants as osConstants } from 'node:os';
import { parseArgs, splitTarget, type Args } from './args.js';
import { bytes, execStatsLine, longLine, Progress } from './format.js';
import { VERSION } from '../version.js';
import { defaultCacheBase } from '../cache/location.js';
import type { Repository, OpenOptions } from '../repository.js';
import type { CvmfsFileHandle } from '../fs/file-handle.js';
import type { OfflineProgress } from '../offline.js';
import type { Spec } from '../select.js';
import type { ExecResult } from '../connector/exec.js';
import { inMask, takeFront } from './front.js';
import { adoptDeferredCaCerts } from '../net/tls-trust.js';
import { plainStdio, writeContent, writeOut } from './stdout.js';
import { readProcFile } from '../proc-file.js';

// Commands load what they need when they run: `ucvmfs exec -- true` should not pay for the HTTP client.
const load = {
  repository: () => import('../repository.js'),
  tree: () => import('../tree.js'),
  serve: () => import('../serve.js'),
  hash: () => import('../format/hash.js'),
  manifest: () => import('../format/manifest.js'),
  exec: () => import('../connector/exec.js'),
  offline: () => import('../offline.js'),
  select: () => import('../select.js'),
  fsck: () => import('../cache/fsck.js'),
  publish: () => import('../publish/index.js'),
};

const USAGE = `ucvmfs ${VERSION}: read CernVM-FS repositories without FUSE or root

usage: ucvmfs [global options] <command> [options] <fqrn>[:path]

global options (also after the command; environment variables in brackets):
  -s, --server URL     Stratum-1 URL, repeatable, @fqrn@ substituted   [CVMFS_SERVER_URL, ';'-separated]
  -k, --key FILE       master public key file, repeatable              [CVMFS_PUBLIC_KEY, ':'-separated]
  -c, --cache DIR      cache base directory                            [CVMFS_CACHE_BASE]
  --tag NAME           show a named tag instead of HEAD                [CVMFS_REPOSITORY_TAG]
  --var NAME=VALUE     variable for variant symlinks $(NAME), repeatable (default: the environment)

commands:
  info <fqrn>                      revision, root hash, publish time, TTL, whitelist expiry, servers
  ls [-l] [-R] [-a] <fqrn>[:path]  list a directory (-a also shows hidden entries)
  stat [--json] <fqrn>:path        attributes of an entry (symlinks not followed)
  cat <fqrn>:path...               write file contents to stdout, raw
  readlink <fqrn>:path             symlink target (after variant expansion)
  xattr <fqrn>:path [NAME]         list extended attributes (with magic ones), or print one
  tree --json [--no-content] <fqrn>[:path]
                                   every entry as JSON (the fixtures' truth.json format)
  tags <fqrn>                      the history database's tags
  publish DIR --fqrn NAME --out DIR [--tag NAME] [--description TEXT] [--hash sha1|rmd160|shake128]
                                   [--compression zlib|none] [--external-data] [--keys DIR] [--ttl SECONDS]
                                   [--chunk-sizes MIN,AVG,MAX | --no-chunking] (bytes; default 4,8,16 MiB)
                                   [--rescan] [--changed PATH]...
                                   write a signed repository from a local directory; publishing
                                   again makes the next revision, and files whose size and mtime are
                                   unchanged keep their content without being read (--rescan: read all);
                                   --changed: only these paths changed, nested catalogs elsewhere are
                                   kept unscanned
  serve [--port N] REPODIR...      serve repository directories on 127.0.0.1 at /cvmfs/<fqrn>/
  config <fqrn>                     effective parameters and where each comes from (environment, files under
                                   UCVMFS_CONFIG_DIR or /etc/cvmfs, in the genuine client's order)
  stats [--json] <fqrn>            counters summed over every process that used the cache (downloads, hits,
                                   failovers, retries), the cache's objects and the last trusted revision
  fsck [--repair] [<fqrn>]         check every cached object against its digest (exit 1 on a bad one);
                                   --repair quarantines bad ones and removes dead temporary files
  preload [--spec FILE] <fqrn>      download and verify into the cache what the spec selects (default: all)
  export --to DIR [--spec FILE] <fqrn>
                                   write what the spec selects as a plain directory tree
  exec [--repo FQRN[,FQRN]...] [--profile FILE] [--stats] [--wait-all] -- CMD [ARG]...
                                   run CMD so that it sees /cvmfs/<fqrn> (repositories open on first
                                   access); exit status and signals are CMD's, and so are the ignored
                                   signals and mask it inherits; returns when CMD ends, while what CMD left
                                   running keeps /cvmfs (--wait-all: when all have ended) [UCVMFS_EXEC_WAIT=all];
                                   --profile replays FILE (what CMD needed last time) at start, or records
                                   it [UCVMFS_PROFILE]
`;

function fail(msg: string, code = 1): never {
  process.stderr.write(`ucvmfs: ${msg}\n`);
  process.exit(code);
}

function opt(a: Args, name: string): string | undefined {
  const v = a.options.get(name);
  return v?.[v.length - 1];
}

function openOptions(a: Args): OpenOptions {
  // Said at once: `process.emitWarning` prints on a later tick, and a command that has its answer from the cache
  // alone reaches its `process.exit` first (an offline open's warning was lost that way).
  const o: OpenOptions = { onWarning: (m) => void process.stderr.write(`ucvmfs: warning: ${m}\n`) };
  const servers = a.options.get('server');
  if (servers) o.serverUrls = servers;
  const keys = a.options.get('key');
  if (keys) o.publicKeys = keys;
  const cache = opt(a, 'cache');
  if (cache) o.cacheDir = cache;
  const tag = opt(a, 'tag');
  if (tag) o.tag = tag;
  const vars = a.options.get('var');
  if (vars) {
    const v: Record<string, string | undefined> = { ...process.env };
    for (const kv of vars) {
      const i = kv.indexOf('=');
      if (i < 1) fail(`--var takes NAME=VALUE, got '${kv}'`, 2);
      v[kv.slice(0, i)] = kv.slice(i + 1);
    }
    o.variables = v;
  }
  return o;
}

async function specOf(a: Args): Promise<Spec> {
  const f = opt(a, 'spec');
  return (await load.select()).parseSpec(f ? await fsp.readFile(f, 'utf8') : '');
}

/** `12/300 files, 3.4/10 MiB, 20 objects downloaded, 2.1 s, ETA 4 s` */
function offlineLine(p: OfflineProgress): string {
  const rate = p.elapsed > 0 ? p.bytes / p.elapsed : 0;
  const eta = rate > 0 && p.bytes < p.totalBytes ? `, ETA ${Math.ceil((p.totalBytes - p.bytes) / rate)} s` : '';
  return `${p.files}/${p.totalFiles} files, ${bytes(p.bytes)}/${bytes(p.totalBytes)}, ${p.downloaded} objects downloaded, ${p.elapsed.toFixed(1)} s${eta}`;
}

async function withRepo<T>(a: Args, fqrn: string, fn: (r: Repository) => Promise<T>): Promise<T> {
  const repo = await (await load.repository()).openRepository(fqrn, openOptions(a));
  try {
    return await fn(repo);
  } finally {
    // Pins are released before the process leaves (it leaves by process.exit, at once).
    await repo.close();
  }
}

/** Copies a verified file to stdout through `buf`, reused once each write has completed; closes the file. */
async function copyToStdout(fh: CvmfsFileHandle, buf: Buffer): Promise<void> {
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      await writeContent(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}

/** Writes text; names that are not UTF-8 (escaped bytes, see format/byte-names.ts) go out as their bytes. */
function out(s: string): Promise<void> {
  return writeOut(encodeName(s));
}

/**
 * The arguments as bytes in the library's string form. Node decodes argv as UTF-8 and turns bytes that are not
 * into U+FFFD, which would name no entry; Linux keeps the raw arguments in /proc/self/cmdline, whose last ones
 * are ours.
 */
function rawArguments(): string[] {
  const given = process.argv.slice(2);
  if (!given.some((a) => a.includes('\uFFFD'))) return given;
  try {
    const raw = readProcFile('/proc/self/cmdline');
    const all = raw.subarray(0, raw.length - 1).toString('latin1').split('\0').map((a) => decodeName(Buffer.from(a, 'latin1')));
    const mine = all.slice(all.length - given.length);
    return mine.length === given.length ? mine : given;
  } catch {
    return given;
  }
}

function target(a: Args, i = 0): { fqrn: string; path: string } {
  const t = a.positional[i];
  if (!t) fail(`${a.command} needs <fqrn>[:path]\n\n${USAGE}`, 2);
  return splitTarget(t);
}

const commands: Record<string, (a: Args) => Promise<number | void>> = {
  async info(a) {
    const { hashToString } = await load.hash();
    const { fqrn } = target(a);
    await withRepo(a, fqrn, async (r) => {
      const m = r.manifest;
      const lines = [
        ['repository', fqrn],
        ['revision', String(r.revision) + (r.tag ? ` (tag ${r.tag}; HEAD is ${m.revision})` : '')],
        ['root catalog', hashToString(r.rootHash)],
        ['published', new Date(m.timestamp * 1000).toISOString()],
        ['TTL', `${m.ttl} s`],
        ['certificate', hashToString(m.certificate)],
        ['history', m.history ? hashToString(m.history) : '(none)'],
        ['whitelist expires', r.whitelist.expires.toISOString()],
        ['garbage collectable', m.garbageCollectable ? 'yes' : 'no'],
        ['server in use', (await r.fs.getxattr('/', 'user.host')).toString()],
        ['proxy in use', (await r.fs.getxattr('/', 'user.proxy')).toString()],
      ];
      await out(lines.map(([k, v]) => `${k!.padEnd(20)} ${v}`).join('\n') + '\n');
    });
  },

  async ls(a) {
    const { fqrn, path } = target(a);
    const long = a.options.has('long');
    const all = a.options.has('all');
    await withRepo(a, fqrn, async (r) => {
      const list = async (p: string, header: boolean): Promise<void> => {
        // A dangling link is listed as itself, as ls(1) lists it.
        const st = await r.fs.stat(p).catch((e: unknown) => r.fs.lstat(p).catch(() => Promise.reject(e)));
        const kids = st.isDirectory() ? (all ? await r.fs.entries(p) : (await r.fs.entries(p)).filter((e) => !(e.flags & 0x8000))) : [];
        if (!st.isDirectory()) {
          const e = await r.fs.entry(p, false);
          await out((long ? longLine(await r.fs.lstat(p), p, e.target) : p) + '\n');
          return;
        }
        let text = header ? `${p}:\n` : '';
        for (const e of kids) text += (long ? longLine(await r.fs.lstat(e.path), e.name, e.target) : e.name) + '\n';
        await out(text);
        if (a.options.has('recursive')) {
          for (const e of kids) if (e.type === 'dir') {
            await out('\n');
            await list(e.path, true);
          }
        }
      };
      // As ls(1): a name that is not there is a serious trouble (status 2), not a minor one.
      await list(path, a.options.has('recursive')).catch((e: Error & { code?: string }) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? fail(e.message, 2) : Promise.reject(e)));
    });
  },

  async stat(a) {
    const { hashToString } = await load.hash();
    const { fqrn, path } = target(a);
    await withRepo(a, fqrn, async (r) => {
      const e = await r.fs.entry(path, false, 'lstat');
      const st = await r.fs.lstat(path);
      const info = {
        path: e.path, type: e.type, mode: st.mode, perm: '0' + (st.mode & 0o7777).toString(8).padStart(3, '0'),
        size: st.size, nlink: st.nlink, uid: st.uid, gid: st.gid, ino: st.ino, mtime: st.mtime.toISOString(), mtime_ns: String(st.mtimeNs),
        ...(e.target !== undefined ? { target: e.target, raw_target: e.rawTarget } : {}),
        ...(e.hash ? { hash: hashToString(e.hash) } : {}),
        ...(e.type === 'file' ? { chunked: e.chunked, compression: e.compression } : {}),
      };
      if (a.options.has('json')) await out(JSON.stringify(info, null, 2) + '\n');
      else await out(Object.entries(info).map(([k, v]) => `${k.padEnd(12)} ${v}`).join('\n') + '\n');
    });
  },

  async cat(a) {
    if (a.positional.length === 0) target(a);
    const { openRepository } = await load.repository();
    // Each repository opened once, however many of its files are asked for.
    const repos = new Map<string, Promise<Repository>>();
    // One buffer for every read: fresh memory costs a page fault per page on first touch, and a buffer per piece
    // (of a 55 MB file, 220 of 256 KiB) cost more than the copies.
    const buf = Buffer.allocUnsafe(1 << 20);
    let failed = false;
    try {
      // As cat(1): a file that fails is said and skipped, the others are written, and the status says it.
      for (const t of a.positional) {
        const { fqrn, path } = splitTarget(t);
        let r = repos.get(fqrn);
        if (!r) repos.set(fqrn, (r = openRepository(fqrn, openOptions(a))));
        try {
          await copyToStdout(await (await r).fs.open(path), buf);
        } catch (e) {
          const err = e as Error & { code?: string; reason?: string };
          if (err.code === 'EPIPE') throw e;
          process.stderr.write(`ucvmfs: ${err.message}${err.reason ? ` [${err.reason}]` : ''}\n`);
          failed = true;
        }
      }
    } finally {
      await Promise.all([...repos.values()].map((r) => r.then((x) => x.close(), () => undefined)));
    }
    // Everything is written (stdout to a file, pipe or terminal is synchronous here) and the cache is consistent:
    // leave now. A natural exit would first wait for V8's background compiles of the catalog engine (~150 ms).
    process.exit(failed ? 1 : 0);
  },

  async readlink(a) {
    const { fqrn, path } = target(a);
    await withRepo(a, fqrn, async (r) => out((await r.fs.readlink(path)) + '\n'));
  },

  async xattr(a) {
    const { fqrn, path } = target(a);
    const name = a.positional[1];
    await withRepo(a, fqrn, async (r) => {
      if (name) {
        const v = await r.fs.getxattr(path, name, { noFollow: true });
        await out(v.toString('utf8') + (v.toString('utf8').endsWith('\n') ? '' : '\n'));
      } else {
        await out((await r.fs.listxattr(path, { noFollow: true, magic: true })).join('\n') + '\n');
      }
    });
  },

  async tree(a) {
    const { describeTree, treeToJson } = await load.tree();
    const { fqrn, path } = target(a);
    await withRepo(a, fqrn, async (r) => {
      const progress = new Progress('tree', a.options.has('quiet'));
      const tree = await describeTree(r, path, {
        content: !a.options.has('no-content'),
        onEntry: (p, n) => progress.update(`${n} entries, ${p}`),
      });
      progress.done(`${Object.keys(tree.entries).length} entries, ${bytes(r.stats().bytesDownloaded)} downloaded`);
      if (a.options.has('json')) await out(treeToJson(tree, 1) + '\n');
      else await out(Object.keys(tree.entries).join('\n') + '\n');
    });
  },

  async tags(a) {
    const { hashToString } = await load.hash();
    const { fqrn } = target(a);
    await withRepo(a, fqrn, async (r) => {
      const tags = await r.tags();
      if (a.options.has('json')) {
        await out(JSON.stringify(tags.map((t) => ({ ...t, hash: hashToString(t.hash) })), null, 2) + '\n');
        return;
      }
      const rows = tags.map((t) => [t.name, hashToString(t.hash), String(t.revision), new Date(t.timestamp * 1000).toISOString(), t.description]);
      const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), 4));
      await out(rows.map((r) => r.map((c, i) => (i < 4 ? c.padEnd(w[i]!) : c)).join('  ')).join('\n') + '\n');
    });
  },

  async publish(a) {
    const src = a.positional[0];
    const fqrn = opt(a, 'fqrn');
    const outDir = opt(a, 'out');
    if (!src || !fqrn || !outDir) fail(`publish needs DIR --fqrn NAME --out DIR\n\n${USAGE}`, 2);
    const { publish } = await load.publish();
    const tag = opt(a, 'tag');
    const description = opt(a, 'description');
    const hash = opt(a, 'hash');
    const compression = opt(a, 'compression');
    const keys = opt(a, 'keys');
    const ttl = opt(a, 'ttl');
    const sizes = opt(a, 'chunk-sizes')?.split(',').map(Number);
    if (sizes && (sizes.length !== 3 || !sizes.every(Number.isSafeInteger))) fail('--chunk-sizes takes MIN,AVG,MAX in bytes', 2);
    const chunking = a.options.has('no-chunking') ? false : sizes ? { min: sizes[0]!, avg: sizes[1]!, max: sizes[2]! } : undefined;
    const res = await publish(resolve(src), {
      fqrn,
      out: resolve(outDir),
      ...(tag ? { tag: { name: tag, ...(description ? { description } : {}) } } : {}),
      ...(hash ? { hashAlgorithm: hash as 'sha1' | 'rmd160' | 'shake128' } : {}),
      ...(compression ? { compression: compression as 'zlib' | 'none' } : {}),
      ...(keys ? { keysDir: resolve(keys) } : {}),
      ...(ttl ? { ttl: Number(ttl) } : {}),
      ...(chunking !== undefined ? { chunking } : {}),
      ...(a.options.has('rescan') ? { rescan: true } : {}),
      ...(a.options.has('external-data') ? { externalData: true } : {}),
      ...(a.options.has('changed') ? { changed: a.options.get('changed')! } : {}),
    });
    const kept = (res.unchangedFiles ? `; ${res.unchangedFiles} unchanged files kept without reading` : '') + (res.scannedEntries < res.entries ? `; ${res.scannedEntries} entries scanned` : '');
    await out(`published ${res.fqrn} revision ${res.revision}: root catalog ${res.rootHash}, ${res.entries} entries in ${res.catalogs} catalog(s)${kept}\npublic key: ${res.publicKeyPath}\n`);
  },

  async config(a) {
    const { fqrn } = target(a);
    const resolved = await (await load.repository()).resolveRepositoryConfig(fqrn, openOptions(a));
    resolved.close();
    const cfg = resolved.config;
    const rows = [...cfg.params].sort(([x], [y]) => x.localeCompare(y)).map(([k, v]) => `${k}=${v.value}    # from ${v.source}`);
    await out((cfg.files.length ? `# files read: ${cfg.files.join(', ')}\n` : '# no configuration files found\n') + rows.join('\n') + (rows.length ? '\n' : ''));
  },

  async stats(a) {
    const { fqrn } = target(a);
    const { readStats, statsLogPath } = await import('../cache/stats-log.js');
    const { DiskCache } = await import('../cache/disk-cache.js');
    const o = openOptions(a);
    const { cacheDirs, sharedCacheFromEnv } = await import('../cache/location.js');
    const dir = cacheDirs(o.cacheDir ?? defaultCacheBase(), fqrn, { shared: sharedCacheFromEnv(), alien: process.env.CVMFS_ALIEN_CACHE }).cache;
    const cache = new DiskCache(dir);
    const log = readStats(statsLogPath(dir, fqrn));
    const objects = await cache.scan();
    const state = await cache.readState(fqrn);
    const report = {
      fqrn, cache: dir,
      revision: state?.revision ?? null, rootHash: state?.rootHash ?? null,
      cachedObjects: objects.length, cachedBytes: objects.reduce((n, x) => n + x.size, 0),
      processes: log.sessions,
      first: log.first ? new Date(log.first * 1000).toISOString() : null,
      last: log.last ? new Date(log.last * 1000).toISOString() : null,
      ...log.counters,
    };
    if (a.options.has('json')) return void (await out(`${JSON.stringify(report, null, 2)}\n`));
    const c = log.counters;
    const lookups = (c.cacheHits ?? 0) + (c.cacheMisses ?? 0);
    await out([
      `${fqrn}: cache ${dir}`,
      `last trusted revision: ${state ? `${state.revision} (root catalog ${state.rootHash})` : 'none'}`,
      `cache holds: ${objects.length} objects, ${(report.cachedBytes / 1048576).toFixed(1)} MiB (all repositories sharing it)`,
      `recorded by ${log.sessions} process(es)${log.first ? ` from ${report.first} to ${report.last}` : ''}:`,
      `  objects downloaded  ${c.objectsDownloaded ?? 0} (${((c.bytesDownloaded ?? 0) / 1048576).toFixed(1)} MiB in ${c.httpRequests ?? 0} requests)`,
      `  cache hits          ${c.cacheHits ?? 0} of ${lookups}${lookups ? ` (${((100 * (c.cacheHits ?? 0)) / lookups).toFixed(1)}%)` : ''}`,
      `  failovers           ${c.failovers ?? 0} (to another server ${c.hostFailovers ?? 0}, to another proxy ${c.proxyFailovers ?? 0})`,
      `  retries             ${c.retries ?? 0}`,
      `  hash mismatches     ${c.hashMismatches ?? 0}`,
      `  catalogs loaded     ${c.catalogsLoaded ?? 0}`,
      '',
    ].join('\n'));
  },

  async fsck(a) {
    const { fsckCache } = await load.fsck();
    const { cacheDirs, sharedCacheFromEnv } = await import('../cache/location.js');
    const fqrn = a.positional[0];
    const dirs = cacheDirs(opt(a, 'cache') ?? defaultCacheBase(), fqrn ?? '', { shared: sharedCacheFromEnv() || !fqrn, alien: process.env.CVMFS_ALIEN_CACHE });
    let bad = 0;
    // This user's cache, and a cache shared with others (its raw objects, checked by name) when there is one.
    for (const dir of [dirs.cache, ...(dirs.mirror ? [dirs.mirror] : [])]) {
      const progress = new Progress('fsck', a.options.has('quiet'));
      const r = await fsckCache(dir, { repair: a.options.has('repair'), onProgress: (n) => progress.update(`${n} objects checked`) });
      progress.done(`${dir}: ${r.good} good, ${r.bad.length} bad${a.options.has('repair') && r.bad.length ? ' (quarantined)' : ''}, ${r.unverified} without a digest, ${r.staleTemps} stale temporary files${a.options.has('repair') && r.staleTemps ? ' (removed)' : ''}`);
      for (const b of r.bad) process.stderr.write(`bad object: ${join(dir, b)}\n`);
      bad += r.bad.length;
    }
    return bad > 0 ? 1 : 0;
  },

  async preload(a) {
    const { preload } = await load.offline();
    const { fqrn } = target(a);
    const spec = await specOf(a);
    await withRepo(a, fqrn, async (r) => {
      const progress = new Progress('preload', a.options.has('quiet'));
      const p = await preload(r, spec, { onProgress: (x) => progress.update(offlineLine(x)) });
      progress.done(offlineLine(p));
    });
  },

  async export(a) {
    const { exportTree } = await load.offline();
    const { fqrn } = target(a);
    const to = opt(a, 'to');
    if (!to) fail(`export needs --to DIR\n\n${USAGE}`, 2);
    const spec = await specOf(a);
    await withRepo(a, fqrn, async (r) => {
      const progress = new Progress('export', a.options.has('quiet'));
      const p = await exportTree(r, spec, resolve(to), { onProgress: (x) => progress.update(offlineLine(x)) });
      progress.done(offlineLine(p));
    });
  },

  async exec(a) {
    const { execCommand, loadTracer } = await load.exec();
    if (a.positional.length === 0) fail(`exec needs a command\n\n${USAGE}`, 2);
    plainStdio();
    const repos = (a.options.get('repo') ?? []).flatMap((r) => r.split(',')).filter(Boolean);
    const front = takeFront(process.env, (fd) => loadTracer().closeOnExec(fd));
    const ignored = (s: NodeJS.Signals) => inMask(front.signals?.ignored, osConstants.signals[s]);
    // Unless the caller asks to wait for every process the command started (as before), the front returns the
    // command's status as soon as the command ends; without a front (node main.js exec), this process can only
    // return when all are gone, since they use /cvmfs through it.
    const waitAll = a.options.has('wait-all') || process.env.UCVMFS_EXEC_WAIT === 'all';
    // The command owns the terminal's signals: Ctrl-C and friends reach it (same process group) and it decides;
    // signals sent to this process alone are passed on, except those the caller ignored (nohup: the command
    // ignores SIGHUP, and so does this process, which must outlive a hang-up to serve it).
    const swallow = ['SIGINT', 'SIGQUIT'] as const;
    const forward = (['SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const).filter((s) => !ignored(s));
    const noop = () => undefined;
    for (const s of [...swallow, ...(['SIGHUP'] as const).filter(ignored)]) process.on(s, noop);
    let running = 0;
    // Installed before the command starts: a signal that reaches this process before the command's pid does (the
    // front passes signals here until it knows the command) is kept and passed on once the command runs, rather
    // than ending this process and the command's /cvmfs with it.
    const early: NodeJS.Signals[] = [];
    for (const s of forward) {
      process.on(s, () => {
        if (!running) return void early.push(s);
        try {
          process.kill(running, s);
        } catch {
          // gone
        }
      });
    }
    // The front was killed (SIGKILL, which it cannot pass on): the command dies as it would have.
    if (front.present) process.on('SIGURG', () => { if (running) try { process.kill(running, 'SIGKILL'); } catch { /* gone */ } });
    const stats = (res: ExecResult) => { if (a.options.has('stats')) process.stderr.write(execStatsLine(res)); };
    const res = await execCommand(a.positional, {
      open: openOptions(a),
      repositories: repos,
      profile: opt(a, 'profile'),
      signals: front.signals,
      ...(front.openFilesLimit !== undefined ? { openFilesLimit: front.openFilesLimit } : {}),
      ...(front.fileSizeLimit !== undefined ? { fileSizeLimit: front.fileSizeLimit } : {}),
      ...(front.inheritedFds ? { inheritedFds: front.inheritedFds } : {}),
      ...(front.closedStdio ? { closedStdio: front.closedStdio } : {}),
      warn: (line) => process.stderr.write(`ucvmfs: ${line}\n`),
      onStart: (pid) => {
        running = pid;
        front.started(pid);
        for (const s of early.splice(0)) {
          try {
            process.kill(pid, s);
          } catch {
            // gone
          }
        }
      },
      onExit: (r) => {
        running = 0;
        if (waitAll || !front.present) return;
        stats(r);
        front.ended(r.code, r.signal);
        // What the command left running holds its own descriptors; ours must not hold the caller's pipes.
        loadTracer().detachStdio();
      },
    });
    if (front.present && !waitAll) process.exit(0); // the caller has its answer already
    stats(res);
    front.ended(res.code, res.signal);
    // Node's exit would set the terminal back as it found it at start, undoing the command's `stty`.
    loadTracer().detachStdio();
    for (const s of swallow) process.off(s, noop);
    // Nothing of ours needs to run on: leave now rather than wait for idle HTTP connections and timers.
    const leave = (code: number): never => process.exit(code);
    if (res.signal) {
      const name = Object.entries(osConstants.signals).find(([, n]) => n === res.signal)?.[0];
      process.removeAllListeners(name as NodeJS.Signals);
      // Die the same way, so that a shell sees the signal; if it is one we cannot die of, say so by the code.
      if (name && name !== 'SIGSTOP') process.kill(process.pid, name as NodeJS.Signals);
      leave(128 + res.signal);
    }
    leave(res.code ?? 1);
  },

  async serve(a) {
    const [{ parseManifest }, { serveRepositories }] = await Promise.all([load.manifest(), load.serve()]);
    if (a.positional.length === 0) fail(`serve needs at least one repository directory\n\n${USAGE}`, 2);
    const repos: Record<string, string> = {};
    for (const d of a.positional) {
      const dir = resolve(d);
      const m = parseManifest(await fsp.readFile(join(dir, '.cvmfspublished')));
      repos[m.fqrn] = dir;
    }
    const srv = await serveRepositories(repos, Number(opt(a, 'port') ?? 0));
    for (const fqrn of Object.keys(repos)) await out(`serving ${fqrn} at ${srv.url}/${fqrn}\n`);
    await new Promise<void>((res) => {
      process.once('SIGINT', res);
      process.once('SIGTERM', res);
    });
    await srv.close();
  },
};

async function main(): Promise<void> {
  adoptDeferredCaCerts();
  let a: Args;
  try {
    a = parseArgs(rawArguments());
  } catch (e) {
    fail(`${(e as Error).message}\n\n${USAGE}`, 2);
  }
  const text = !a.command || a.command === 'help' || a.options.has('help') ? USAGE : a.command === 'version' || a.options.has('version') ? `ucvmfs ${VERSION}\n` : undefined;
  const cmd = text !== undefined ? () => out(text) : commands[a.command!];
  if (!cmd) fail(`unknown command '${a.command}'\n\n${USAGE}`, 2);
  // A command that makes a few catalog queries runs SQLite's WASM on V8's baseline code: the optimizing compile
  // of the whole engine costs more CPU than those queries (a warm `stat`: about 0.3 s less on a busy machine).
  try {
    const rc = await cmd(a);
    // Its output is written and the cache consistent: leave now. A natural exit would first wait for V8's
    // background compiles of the catalog engine, and for idle connections and timers.
    process.exit(rc ?? 0);
  } catch (e) {
    const err = e as Error & { code?: string; reason?: string };
    if (err.code === 'EPIPE') process.exit(0); // the reader has gone, as `cat | head` leaves it
    fail(`${err.message}${err.reason ? ` [${err.reason}]` : ''}`);
  }
}

void main();
