/**
 * A Stratum-1 of ours, raw TCP on 127.0.0.1, that serves the real files of a repository directory in one chosen
 * way that servers, proxies and networks in the wild have: HTTP/1.0, closing after every answer, chunked
 * encoding, compression nobody asked for, redirects, captive portals, broken framing, silence, resets.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export type Behaviour =
  | 'http10' // HTTP/1.0, no Content-Length: the body ends when the connection does
  | 'http10-length' // HTTP/1.0 with Content-Length, then close
  | 'close' // HTTP/1.1 with Content-Length and Connection: close
  | 'close-delimited' // HTTP/1.1, no length, Connection: close
  | 'chunked' // HTTP/1.1 keep-alive, Transfer-Encoding: chunked in odd sizes
  | 'headers-bytewise' // keep-alive, the status line and headers a byte at a time
  | 'gzip' // keep-alive, Content-Encoding: gzip added (as a misconfigured proxy does)
  | 'longer' // keep-alive, more body bytes than Content-Length says
  | 'shorter' // Content-Length larger than the body, then close
  | 'chunked-truncated' // chunked, the connection closed before the last chunk
  | 'garbage' // a status line that is not HTTP
  | 'huge-headers' // 1 MB of headers
  | 'portal' // 200 with an HTML page for every request (a captive portal)
  | 'redirect' // 302 to `redirectTo` + the same path
  | 'reset-after-headers' // headers, then a TCP reset
  | 'data-reset-in-body' // manifest and the like right; an object's headers and 10 bytes, then at once a TCP reset
  | 'fin-mid-body' // half the body, then FIN, with Content-Length (the reader may be slow)
  | 'silent'; // accepts and never answers

export interface HostileServer {
  /** Server URL with `@fqrn@`, for serverUrls. */
  url: string;
  /** Requests received (request lines). */
  requests: string[];
  close(): Promise<void>;
}

const PORTAL = Buffer.from('<!DOCTYPE html><html><head><title>Welcome to HotelNet</title></head><body><form>Accept the terms to continue</form></body></html>\n');

/** Serves `srvDir` (what a Stratum-1 serves for one repository at `/cvmfs/<fqrn>/`) with the given behaviour. */
export async function hostileServer(srvDir: string, behaviour: Behaviour, opts: { redirectTo?: string } = {}): Promise<HostileServer> {
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.setNoDelay(true);
    let buf = '';
    let busy = Promise.resolve();
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const line = head.split('\r\n')[0]!;
        requests.push(line);
        busy = busy.then(() => answer(sock, line)).catch(() => { sock.destroy(); });
      }
    });
  });

  function body(line: string): Buffer | undefined {
    const path = decodeURIComponent((line.split(' ')[1] ?? '/').replace(/^https?:\/\/[^/]+/, '').split('?')[0]!);
    const rel = path.replace(/^\/cvmfs\/[^/]+\//, '');
    if (rel.includes('..')) return undefined;
    const file = join(srvDir, rel);
    try {
      if (!statSync(file).isFile()) return undefined;
      return readFileSync(file);
    } catch {
      return undefined;
    }
  }

  async function answer(sock: Socket, line: string): Promise<void> {
    if (sock.destroyed) return;
    if (behaviour === 'silent') return;
    if (behaviour === 'garbage') return void sock.end('HTXP/9.9 Fine Thanks\r\nwhat: ever\r\n\r\nhello');
    if (behaviour === 'huge-headers') {
      sock.write('HTTP/1.1 200 OK\r\n');
      for (let i = 0; i < 1024 && !sock.destroyed; i++) {
        if (!sock.write(`X-Filler-${i}: ${'x'.repeat(1000)}\r\n`)) await new Promise((r) => { sock.once('drain', r); sock.once('close', r); });
      }
      return void sock.end('Content-Length: 0\r\n\r\n');
    }
    if (behaviour === 'portal') {
      return void sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: ${PORTAL.length}\r\n\r\n${PORTAL.toString('latin1')}`);
    }
    const path = line.split(' ')[1] ?? '/';
    if (behaviour === 'redirect') {
      const rel = path.replace(/^https?:\/\/[^/]+/, '').replace(/^\/cvmfs\/[^/]+\//, '');
      return void sock.write(`HTTP/1.1 302 Found\r\nLocation: ${opts.redirectTo}/${rel}\r\nContent-Length: 0\r\n\r\n`);
    }
    const data = body(line);
    if (!data) return void sock.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    switch (behaviour) {
      case 'http10':
        return void sock.end(Buffer.concat([Buffer.from(`HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nCache-Control: max-age=61\r\nDate: ${new Date().toUTCString()}\r\nLast-Modified: Mon, 30 Nov 2026 12:00:00 GMT\r\n\r\n`), data]));
      case 'http10-length':
        return void sock.end(Buffer.concat([Buffer.from(`HTTP/1.0 200 OK\r\nContent-Length: ${data.length}\r\n\r\n`), data]));
      case 'close':
        return void sock.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\nConnection: close\r\n\r\n`), data]));
      case 'close-delimited':
        return void sock.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n'), data]));
      case 'chunked': {
        const parts: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')];
        for (let off = 0, n = 1; off < data.length; off += n, n = (n * 7 + 13) % 40_000 + 1) {
          const piece = data.subarray(off, off + n);
          parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
        }
        parts.push(Buffer.from('0\r\n\r\n'));
        return void sock.write(Buffer.concat(parts));
      }
      case 'headers-bytewise': {
        const head = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`;
        for (const ch of head) {
          if (sock.destroyed) return;
          sock.write(ch);
          await new Promise((r) => setTimeout(r, 1));
        }
        return void sock.write(data);
      }
      case 'gzip': {
        const z = gzipSync(data);
        return void sock.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${z.length}\r\n\r\n`), z]));
      }
      case 'longer':
        return void sock.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\n\r\n`), data, Buffer.from('TRAILING GARBAGE THAT IS NOT A RESPONSE\r\n\r\n')]));
      case 'shorter':
        return void sock.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length + 1000}\r\n\r\n`), data]));
      case 'chunked-truncated': {
        const half = data.subarray(0, Math.max(1, data.length >> 1));
        return void sock.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${half.length.toString(16)}\r\n`), half, Buffer.from('\r\n')]));
      }
      case 'data-reset-in-body':
        if (!path.includes('/data/')) return void sock.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\n\r\n`), data]));
        sock.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\n\r\n`), data.subarray(0, 10)]));
        await new Promise((r) => setImmediate(r));
        return void sock.resetAndDestroy();
      case 'reset-after-headers':
        sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\n\r\n`);
        await new Promise((r) => setTimeout(r, 5));
        return void sock.resetAndDestroy();
      case 'fin-mid-body':
        return void sock.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\n\r\n`), data.subarray(0, data.length >> 1)]));
    }
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/cvmfs/@fqrn@`,
    requests,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}
