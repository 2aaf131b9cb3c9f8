/**
 * Debian's nginx as a Stratum-1 on 127.0.0.1, in a directory of its own (tests and the bench): what a real site
 * serves, with the framing, keep-alive and sendfile of a real web server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { freePort } from './squid.js';
import { tempDir } from './helpers.js';

/** The nginx binary, if installed (.ci/run installs it). */
export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));

/** A running nginx. */
export interface Nginx {
  /** `http://127.0.0.1:<port>/cvmfs/@fqrn@` */
  url: string;
  proc: ChildProcess;
  stop(): void;
}

/**
 * Serves `repos` (fqrn → repository directory) at `/cvmfs/<fqrn>/`; `extra` goes into the `http` block (e.g.
 * `keepalive_timeout 0;`). Resolves once nginx accepts connections.
 */
export async function startNginx(repos: Record<string, string>, extra = ''): Promise<Nginx> {
  if (!NGINX) throw new Error('nginx is not installed');
  const dir = tempDir('ucvmfs-nginx-');
  const port = await freePort();
  const locations = Object.entries(repos).map(([fqrn, d]) => `    location /cvmfs/${fqrn}/ { alias ${d}/; }`).join('\n');
  writeFileSync(join(dir, 'nginx.conf'), `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  default_type application/octet-stream;
  sendfile on;
  ${extra}
  server {
    listen 127.0.0.1:${port};
${locations}
  }
}
`);
  const proc = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((r) => {
      const s: Socket = new Socket();
      s.once('error', () => r(false)).connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
    }).catch(() => false);
    if (up) return { url: `http://127.0.0.1:${port}/cvmfs/@fqrn@`, proc, stop: () => void proc.kill('SIGKILL') };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`nginx did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
}
