/**
 * The benchmark's HTTP server: lib/serve.ts in a child process (a Stratum-1 is another process too, and this
 * keeps the server's CPU time out of the client's event loop). Started with fork(); argv[2] is the JSON map
 * fqrn → directory. Messages: 'take' → replies with the request paths seen since the last 'take'; 'close'.
 * Also usable in-process through {@link startServer} with `inProcess`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serveRepositories } from '../lib/serve.js';

/** A running server, wherever it runs. */
export interface BenchServer {
  /** `http://127.0.0.1:<port>/cvmfs` */
  readonly url: string;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Request paths (`/cvmfs/<fqrn>/…`) seen since the previous call. */
  take(): Promise<string[]>;
  close(): Promise<void>;
  /** Process id of the server (the bench's own pid when in-process). */
  readonly pid: number;
}

type Reply = { type: 'ready'; url: string } | { type: 'requests'; requests: string[] };

/** Starts the server in a child process (default) or in this process. */
export async function startServer(repos: Record<string, string>, inProcess = false): Promise<BenchServer> {
  if (inProcess) {
    const s = await serveRepositories(repos);
    return {
      url: s.url,
      origin: new URL(s.url).origin,
      pid: process.pid,
      take: async () => s.requests.splice(0),
      close: () => s.close(),
    };
  }
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [JSON.stringify(repos)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (type: Reply['type']): Promise<Reply> => new Promise((resolve, reject) => {
    const onMsg = (m: Reply) => {
      if (m.type !== type) return;
      child.off('message', onMsg);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null) => reject(new Error(`bench server exited (${code}) before answering`));
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
  const ready = (await next('ready')) as Extract<Reply, { type: 'ready' }>;
  return {
    url: ready.url,
    origin: new URL(ready.url).origin,
    pid: child.pid!,
    take: async () => {
      const p = next('requests');
      child.send('take');
      return ((await p) as Extract<Reply, { type: 'requests' }>).requests;
    },
    close: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.send('close');
    }),
  };
}

// Child side.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const repos = JSON.parse(process.argv[2] ?? '{}') as Record<string, string>;
  const s = await serveRepositories(repos);
  process.on('message', (m: unknown) => {
    if (m === 'take') process.send!({ type: 'requests', requests: s.requests.splice(0) } satisfies Reply);
    else if (m === 'close') void s.close().then(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', url: s.url } satisfies Reply);
}
