/**
 * Memory of a cold walk over many nested catalogs (issue 16, item 3). Two steps, each a process of its own so that
 * max RSS is the walk's alone:
 *
 * ```sh
 * node dist/bench/mem-walk.js make DIR            # deterministic tree (59,550 entries, 14 nested catalogs), published to DIR/repo
 * node dist/lib/cli/main.js serve --port 8790 DIR/repo &
 * node dist/bench/mem-walk.js walk DIR http://127.0.0.1:8790/cvmfs/@fqrn@ [--catalog-bytes N] [--max-open N] [--cache-bytes N]
 * ```
 *
 * The walk is `find`-like: readdir of every directory with file types, lstat of every entry, from an empty cache.
 * It prints one JSON line: entries, seconds, max RSS (from getrusage) and the largest catalog bytes seen open.
 * @module
 */
import { mkdir, writeFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publish, openRepository, type OpenOptions, type Repository } from '../lib/index.js';

const FQRN = 'memwalk.bench.example.org';

/** Writes `dirs` directories of `files` small files under `base` (file contents distinct, a few bytes each). */
async function fill(base: string, dirs: number, files: number, tag: string): Promise<number> {
  for (let d = 0; d < dirs; d++) {
    const dir = join(base, `pkg-${tag}-${String(d).padStart(3, '0')}`);
    await mkdir(dir, { recursive: true });
    for (let f = 0; f < files; f++) await writeFile(join(dir, `module_${String(f).padStart(4, '0')}.py`), `# ${tag} ${d} ${f}\n`);
  }
  return dirs * (files + 1);
}

/**
 * The tree: 12 nested catalogs `sw/nNN` of 40 directories of 100 files; two of them hold a nested catalog of their
 * own (`sw/nNN/inner`, 10 x 100); the root catalog has `top/` (50 x 100) and a flat `big/` of 4,000 files.
 */
async function makeTree(src: string): Promise<number> {
  let n = 0;
  for (let c = 0; c < 12; c++) {
    const root = join(src, 'sw', `n${String(c).padStart(2, '0')}`);
    n += await fill(root, 40, 100, `n${c}`);
    await writeFile(join(root, '.cvmfscatalog'), '');
    if (c < 2) {
      n += await fill(join(root, 'inner'), 10, 100, `i${c}`);
      await writeFile(join(root, 'inner', '.cvmfscatalog'), '');
    }
  }
  n += await fill(join(src, 'top'), 50, 100, 'top');
  n += await fill(src, 1, 4000, 'big');
  return n;
}

async function make(dir: string): Promise<void> {
  const src = join(dir, 'src');
  await rm(dir, { recursive: true, force: true });
  const t0 = performance.now();
  const entries = await makeTree(src);
  const t1 = performance.now();
  await publish(src, { fqrn: FQRN, out: join(dir, 'repo'), timestamp: 1_800_000_000, readSourceXattrs: false });
  console.log(JSON.stringify({ entries, treeSeconds: (t1 - t0) / 1000, publishSeconds: (performance.now() - t1) / 1000 }));
}

/** find-like traversal; calls `probe` after every directory. */
async function walk(repo: Repository, dir: string, probe: () => void): Promise<number> {
  let n = 0;
  for (const d of await repo.fs.readdir(dir, { withFileTypes: true })) {
    const p = `${dir === '/' ? '' : dir}/${d.name}`;
    await repo.fs.lstat(p);
    n++;
    if (d.isDirectory()) n += await walk(repo, p, probe);
  }
  probe();
  return n;
}

async function walkCommand(dir: string, url: string, args: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const options: OpenOptions = { serverUrls: [url], publicKeys: [join(dir, 'repo.keys', `${FQRN}.pub`)], cacheDir: await mkdtemp(join(tmpdir(), 'ucvmfs-memwalk-')) };
  if (opt('--catalog-bytes') !== undefined) options.catalogMemoryBytes = opt('--catalog-bytes')!;
  if (opt('--max-open') !== undefined) options.maxOpenCatalogs = opt('--max-open')!;
  if (opt('--cache-bytes') !== undefined) options.entryCacheBytes = options.listingCacheBytes = opt('--cache-bytes')!;
  const t0 = performance.now();
  const repo = await openRepository(FQRN, options);
  let peakCatalogBytes = 0;
  const probe = () => { peakCatalogBytes = Math.max(peakCatalogBytes, repo.stats().catalogBytes); };
  const entries = await walk(repo, '/', probe);
  const seconds = (performance.now() - t0) / 1000;
  const s = repo.stats();
  await repo.close();
  await rm(options.cacheDir!, { recursive: true, force: true });
  console.log(JSON.stringify({ entries, seconds: +seconds.toFixed(2), maxRssMb: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
    peakCatalogMb: +(peakCatalogBytes / 2 ** 20).toFixed(1), catalogsLoaded: s.catalogsLoaded, catalogsOpen: s.catalogsOpen }));
}

const [cmd, dir, url, ...rest] = process.argv.slice(2);
if (cmd === 'make' && dir) await make(dir);
else if (cmd === 'walk' && dir && url) await walkCommand(dir, url, rest);
else {
  console.error('usage: mem-walk make DIR | mem-walk walk DIR URL [--catalog-bytes N] [--max-open N] [--cache-bytes N]');
  process.exitCode = 2;
}
