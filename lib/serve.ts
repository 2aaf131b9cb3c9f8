/**
 * A minimal static HTTP server for repository directories (what a Stratum-1's web server does for
 * `/cvmfs/<fqrn>/`), bound to 127.0.0.1. Used by the demo, `ucvmfs serve` and the tests.
 * @module
 */
import { createServer, type Server } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';

/** A running server. */
export interface RepositoryServer {
  /** Base URL, e.g. `http://127.0.0.1:8080/cvmfs`; append `/<fqrn>`. */
  readonly url: string;
  readonly port: number;
  /** Requests served so far, by path. */
  readonly requests: string[];
  close(): Promise<void>;
}

/**
 * Serves `repos` (fqrn → repository directory) at `/cvmfs/<fqrn>/…` on 127.0.0.1. Paths never leave their
 * directory; only GET and HEAD are answered.
 */
export async function serveRepositories(repos: Readonly<Record<string, string>>, port = 0): Promise<RepositoryServer> {
  const requests: string[] = [];
  const server: Server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      requests.push(url.pathname);
      const m = /^\/cvmfs\/([^/]+)\/(.*)$/.exec(decodeURIComponent(url.pathname));
      const root = m ? repos[m[1]!] : undefined;
      if (!m || !root || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404).end();
        return;
      }
      const file = normalize(join(root, m[2]!));
      if (file !== root && !file.startsWith(root.endsWith(sep) ? root : root + sep)) {
        res.writeHead(403).end();
        return;
      }
      const st = await stat(file).catch(() => undefined);
      if (!st || !st.isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': st.size, 'content-type': 'application/octet-stream', 'cache-control': 'max-age=61' });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
    } catch {
      res.writeHead(500).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}/cvmfs`,
    port: actual,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
