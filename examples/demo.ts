/**
 * `npm start`: publishes examples/demo-tree as demo.example.org (once, into the temp directory), serves it on
 * 127.0.0.1 with our small HTTP server, and shows it through the CLI, the connector (`ucvmfs exec`) and the library
 * API. No network needed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, spawnSync } from 'node:child_process';
import { openRepository, publish } from '../lib/index.js';
import { parseWhitelist } from '../lib/format/whitelist.js';

const FQRN = 'demo.example.org';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(tmpdir(), 'ucvmfs-demo');
const repoDir = join(work, 'repo');
const keysDir = join(work, 'keys');
const cli = join(root, 'dist', 'lib', 'cli', 'main.js');

// Publish once; again when the demo's whitelist (30 days) is about to expire.
const manifest = join(repoDir, '.cvmfspublished');
const fresh = existsSync(manifest) && parseWhitelist(readFileSync(join(repoDir, '.cvmfswhitelist'))).expires.getTime() > Date.now() + 86_400_000;
if (!fresh) {
  const r = await publish(join(root, 'examples', 'demo-tree'), { fqrn: FQRN, out: repoDir, keysDir, tag: { name: `v${Date.now()}`, description: 'demo release' } });
  console.log(`published ${FQRN} revision ${r.revision} into ${repoDir}`);
}

// The server runs in a child process (`ucvmfs serve`), so that the CLI calls below can run synchronously.
const serve = spawn(process.execPath, [cli, 'serve', repoDir], { stdio: ['ignore', 'pipe', 'inherit'] });
const line = await new Promise<string>((res) => serve.stdout!.once('data', (d: Buffer) => res(d.toString())));
const url = /at (\S+)/.exec(line)![1]!;
const env = { ...process.env, CVMFS_SERVER_URL: url.replace(FQRN, '@fqrn@'), CVMFS_PUBLIC_KEY: join(keysDir, `${FQRN}.pub`), CVMFS_CACHE_BASE: join(work, 'cache') };
console.log(`serving at ${url}\n`);

function run(...args: string[]): void {
  console.log(`$ ucvmfs ${args.map((a) => (/[\s;$'"]/.test(a) ? `'${a.replaceAll("'", `'\\''`)}'` : a)).join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { env, encoding: 'utf8' });
  process.stdout.write(r.stdout + r.stderr + '\n');
  if (r.status !== 0) process.exitCode = 1;
}

try {
  run('info', FQRN);
  run('ls', '-l', `${FQRN}:/`);
  run('ls', '-l', `${FQRN}:/bin`);
  run('cat', `${FQRN}:/share/data/table.csv`);
  run('stat', `${FQRN}:/bin/greet`);
  run('tags', FQRN);
  console.log('and unmodified programs that see /cvmfs (the connector: ptrace + seccomp, no FUSE, no root):');
  run('exec', '--', `/cvmfs/${FQRN}/bin/greet`, 'world');
  run('exec', '--', 'bash', '-c', [
    `source /cvmfs/${FQRN}/setup.sh`,
    'cd $DEMO_ROOT/share/data && pwd && wc -l table.csv',
    `python3 -c 'import greet; print(greet.greet("HPC user"))'`,
    `touch /cvmfs/${FQRN}/x || echo "(writes are refused: read-only, as on a real mount)"`,
  ].join('; '));
  console.log('and from a Node program, with the library:');
  const repo = await openRepository(FQRN, { serverUrls: [url], publicKeys: [join(keysDir, `${FQRN}.pub`)], cacheDir: join(work, 'cache') });
  const text = await repo.fs.readFile('/lib/python/greet/__init__.py', 'utf8');
  console.log(`  readFile('/lib/python/greet/__init__.py') -> ${String(text).split('\n')[0]}`);
  console.log('  stats:', repo.stats());
  repo.close();
} finally {
  serve.kill('SIGTERM');
}
