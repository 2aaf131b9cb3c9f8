/**
 * Bench group 15: single commands as a user or a workflow tool runs them, through the installed command
 * (bin/ucvmfs.js: the CLI's one-file build, `exec` through the front), against `node -e 0` started in the same
 * environment in the same rounds (interleaved, so that a busy moment hits both). Warm `stat`, `cat` and `ls`, a
 * cold `stat` (a new empty cache each run), and `exec -- true`; served by nginx on loopback. Where the
 * environment sets NODE_EXTRA_CA_CERTS (Node then parses every certificate of the store at start, and so does
 * `node -e 0`), one more pair without it for both, so that the ratio does not hang on this machine's setting.
 * Max resident memory of each command from GNU time, one extra run apart from the timed ones (Node on the
 * one-file build's starter: through the bin, `exec`'s front returns before Node ends). The commands keep their
 * compiled code in a code cache of the bench's (lib/cli/code-cache.ts), filled by the first runs, as a user's
 * home would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NGINX, startNginx } from '../test/nginx.js';
import { startServer } from './server.js';

/** What group 15 needs from the bench. */
export interface StartupContext {
  work: string;
  runs: number;
  fixture: { fqrn: string; srv: string; key: string; smallPath: string };
  runCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }>;
  add(row: { id: string; name: string; unit: 's'; ucvmfsSamples: number[]; baselineSamples: number[]; baselineName: string; note?: string; maxSlowdown?: number }): void;
  log(msg: string): void;
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'ucvmfs.js');
const BUNDLE = join(ROOT, 'dist', 'lib', 'cli', 'ucvmfs.cjs');
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

interface Command {
  id: string;
  name: string;
  argv: string[];
  /** A new empty cache for every run. */
  cold?: boolean;
  /** Issue 17's bound on the ratio to `node -e 0`. */
  maxSlowdown: number;
}

/** Runs group 15; see the module comment. */
export async function startupGroup(ctx: StartupContext): Promise<void> {
  const { fqrn, srv, key, smallPath } = ctx.fixture;
  const nginx = NGINX ? await startNginx({ [fqrn]: srv }) : undefined;
  const fallback = nginx ? undefined : await startServer({ [fqrn]: srv });
  const serverUrl = nginx ? nginx.url : `${fallback!.url}/@fqrn@`;
  const warmCache = await mkdtemp(join(ctx.work, 'startup-warm-'));
  // The compiled code of the commands (lib/cli/code-cache.ts), as a user's home keeps it; the first runs fill it.
  const codeCache = await mkdtemp(join(ctx.work, 'startup-code-'));
  const base: NodeJS.ProcessEnv = { ...process.env, CVMFS_SERVER_URL: serverUrl, CVMFS_PUBLIC_KEY: key, UCVMFS_CODE_CACHE: codeCache };
  for (const k of ['NODE_DEBUG', 'UCVMFS_TRACER_DEBUG', 'CVMFS_HTTP_PROXY']) delete base[k];
  const commands: Command[] = [
    { id: '15a', name: `ucvmfs stat ${fqrn}:${smallPath}, warm cache`, argv: ['stat', `${fqrn}:${smallPath}`], maxSlowdown: 1.5 },
    { id: '15b', name: `ucvmfs cat ${fqrn}:${smallPath}, warm cache`, argv: ['cat', `${fqrn}:${smallPath}`], maxSlowdown: 1.5 },
    { id: '15c', name: `ucvmfs ls ${fqrn}:/, warm cache`, argv: ['ls', `${fqrn}:/`], maxSlowdown: 1.5 },
    { id: '15d', name: `ucvmfs stat ${fqrn}:${smallPath}, EMPTY cache (loopback)`, argv: ['stat', `${fqrn}:${smallPath}`], cold: true, maxSlowdown: 2.5 },
    { id: '15e', name: 'ucvmfs exec -- true', argv: ['exec', '--', 'true'], maxSlowdown: 1.3 },
  ];
  try {
    const one = async (c: Command, env: NodeJS.ProcessEnv): Promise<number> => {
      const cache = c.cold ? await mkdtemp(join(ctx.work, 'startup-cold-')) : warmCache;
      try {
        const r = await ctx.runCommand([BIN, ...c.argv], { ...env, CVMFS_CACHE_BASE: cache, UCVMFS_SHADOW_DIR: join(cache, 'shadow') });
        if (r.code !== 0) throw new Error(`group 15: ucvmfs ${c.argv.join(' ')} failed (exit ${r.code}): ${r.stderr.slice(-400)}`);
        return r.ms / 1000;
      } finally {
        if (c.cold) await rm(cache, { recursive: true, force: true });
      }
    };
    const node = async (env: NodeJS.ProcessEnv): Promise<number> => (await ctx.runCommand([process.execPath, '-e', '0'], env)).ms / 1000;
    for (const c of commands) await one(c, base); // fills the warm cache and the page cache
    const rss = new Map<string, string>();
    if (TIME) {
      for (const c of commands) {
        const cache = c.cold ? await mkdtemp(join(ctx.work, 'startup-cold-')) : warmCache;
        // Node run on the one-file build directly: through the bin, `exec`'s front would return before Node ends.
        const r = await ctx.runCommand([TIME, '-f', '%M', process.execPath, BUNDLE, ...c.argv], { ...base, CVMFS_CACHE_BASE: cache, UCVMFS_SHADOW_DIR: join(cache, 'shadow') });
        rss.set(c.id, `max RSS ${(Number(r.stderr.trim().split('\n').pop()) / 1024).toFixed(0)} MB`);
        if (c.cold) await rm(cache, { recursive: true, force: true });
      }
    }

    const pass = async (env: NodeJS.ProcessEnv, chosen: Command[]): Promise<{ node: number[]; by: Map<string, number[]> }> => {
      const by = new Map(chosen.map((c) => [c.id, [] as number[]]));
      const nodeSamples: number[] = [];
      for (let i = 0; i < ctx.runs; i++) {
        nodeSamples.push(await node(env));
        for (const c of chosen) by.get(c.id)!.push(await one(c, env));
      }
      return { node: nodeSamples, by };
    };
    const main = await pass(base, commands);
    for (const c of commands) {
      ctx.add({ id: c.id, name: `${c.name}, whole command`, unit: 's', ucvmfsSamples: main.by.get(c.id)!, baselineSamples: main.node, baselineName: 'node -e 0, same environment', maxSlowdown: c.maxSlowdown, note: rss.get(c.id) });
    }
    if (base.NODE_EXTRA_CA_CERTS) {
      const without = { ...base };
      delete without.NODE_EXTRA_CA_CERTS;
      const chosen = commands.filter((c) => c.id === '15a' || c.id === '15e');
      const r = await pass(without, chosen);
      for (const c of chosen) {
        ctx.add({ id: `${c.id}n`, name: `${c.name}, whole command, NODE_EXTRA_CA_CERTS unset`, unit: 's', ucvmfsSamples: r.by.get(c.id)!, baselineSamples: r.node, baselineName: 'node -e 0, NODE_EXTRA_CA_CERTS unset' });
      }
    }
  } finally {
    await rm(warmCache, { recursive: true, force: true });
    await rm(codeCache, { recursive: true, force: true });
    if (nginx) await nginx.stop();
    if (fallback) await fallback.close();
  }
}
