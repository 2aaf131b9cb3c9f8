/**
 * A small TCP proxy of ours that spoils responses in one chosen way, put in front of a real server or proxy.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export type Fault = 'reset' | 'stall' | 'flip' | '502';

/** A TCP proxy to `port` that spoils responses whose request path contains `/data/` in the way `fault` says. */
export async function faultProxy(port: number, fault: Fault): Promise<{ url: string; close: () => void }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    const upstream = connect(port, '127.0.0.1');
    sockets.add(upstream);
    let isData = false;
    let seen = 0;
    client.on('data', (d: Buffer) => {
      if (d.toString('latin1').startsWith('GET ') && d.toString('latin1').split(' ')[1]!.includes('/data/')) isData = true;
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!isData) return void client.write(d);
      if (fault === '502') {
        client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n');
        upstream.destroy();
        return;
      }
      seen += d.length;
      if (fault === 'reset' && seen > 300) return void client.destroy();
      if (fault === 'stall' && seen > 300) return; // nothing more, ever
      if (fault === 'flip' && seen > 300 && seen - d.length <= 300) {
        const b = Buffer.from(d);
        b[b.length - 1] ^= 0x01;
        return void client.write(b);
      }
      client.write(d);
    });
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('error', end).on('close', end);
    upstream.on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const p = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${p}/cvmfs/@fqrn@`, close: () => { for (const s of sockets) s.destroy(); server.close(); } };
}

