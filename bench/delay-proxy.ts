/**
 * A TCP relay that adds a fixed delay to every request, to measure cold starts as over a real network: what the
 * client sends reaches the server `delayMs` later (connection set-up included), answers come back at once. A
 * client that asks one object at a time pays the delay per object; one that asks many at once pays it once.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A running relay. */
export interface DelayProxy {
  /** `http://127.0.0.1:<port>`: put `/cvmfs/@fqrn@` after it. */
  origin: string;
  close(): Promise<void>;
}

/** Relays to 127.0.0.1:`port`, delaying the client's bytes by `delayMs`. */
export async function delayProxy(port: number, delayMs: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.pause();
    const pending: Buffer[] = [];
    let upstream: Socket | undefined;
    const end = () => {
      client.destroy();
      upstream?.destroy();
    };
    client.on('error', end).on('close', end);
    setTimeout(() => {
      if (client.destroyed) return;
      upstream = connect(port, '127.0.0.1', () => {
        for (const b of pending.splice(0)) upstream!.write(b);
        client.resume();
      });
      sockets.add(upstream);
      upstream.setNoDelay(true);
      upstream.on('error', end).on('close', end);
      upstream.pipe(client);
    }, delayMs);
    client.setNoDelay(true);
    client.on('data', (d: Buffer) => {
      setTimeout(() => {
        if (upstream?.writable) upstream.write(d);
        else pending.push(d);
      }, delayMs);
    });
    client.on('end', () => setTimeout(() => upstream?.end(), delayMs));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    origin: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/**
 * The same relay in a child process: a command that this process spawns may block this process's event loop (Node
 * waits for a child's exec, and a program on a FUSE mount cannot be exec'd before its file has come through the
 * relay).
 */
export async function delayProxyProcess(port: number, delayMs: number): Promise<DelayProxy> {
  const child = fork(fileURLToPath(import.meta.url), [String(port), String(delayMs)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const origin = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve(String(m)));
    child.once('exit', (code) => reject(new Error(`the delaying relay exited (${code})`)));
  });
  return { origin, close: async () => void child.kill() };
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const p = await delayProxy(Number(process.argv[2]), Number(process.argv[3]));
  process.send(p.origin);
  process.on('disconnect', () => process.exit(0));
}
