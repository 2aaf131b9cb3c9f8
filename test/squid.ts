/**
 * Debian's squid, started as a site proxy on 127.0.0.1 in a directory of its own (tests and bench group 9).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** The squid binary, if installed (.ci/run installs it). */
export const SQUID = ['/usr/sbin/squid', '/usr/bin/squid'].find((p) => existsSync(p));

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A running squid. */
export interface Squid {
  url: string;
  dir: string;
  /** squid's access log so far. */
  accessLog(): string;
  stop(): void;
}

/** Starts squid with a memory cache big enough for the fixtures' objects; resolves once it accepts connections. */
export async function startSquid(dir: string): Promise<Squid> {
  if (!SQUID) throw new Error('squid is not installed');
  chmodSync(dir, 0o777); // squid drops to its own user
  const port = await freePort();
  writeFileSync(join(dir, 'squid.conf'), [
    `http_port 127.0.0.1:${port}`, `pid_filename ${dir}/squid.pid`, `cache_log ${dir}/cache.log`,
    `access_log stdio:${dir}/access.log`, 'cache_mem 256 MB', 'maximum_object_size_in_memory 64 MB',
    'maximum_object_size 64 MB', 'acl localhost src 127.0.0.1/32', 'http_access allow localhost', 'http_access deny all',
    `coredump_dir ${dir}`, 'shutdown_lifetime 1 seconds', 'pinger_enable off',
  ].join('\n') + '\n');
  const child: ChildProcess = spawn(SQUID, ['-N', '-f', join(dir, 'squid.conf')], { stdio: 'ignore' });
  const squid: Squid = {
    url: `http://127.0.0.1:${port}`,
    dir,
    accessLog: () => readFileSync(join(dir, 'access.log'), 'utf8'),
    stop: () => void child.kill('SIGTERM'),
  };
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { stdio: 'ignore' });
      return squid;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill('SIGKILL');
  throw new Error(`squid did not start: ${readFileSync(join(dir, 'cache.log'), 'utf8').slice(-2000)}`);
}
