/**
 * Real Stratum-1s: two Debian nginx servers, started here on 127.0.0.1, serving the fixture exactly as a
 * Stratum-1 does. One is killed in the middle of a full-repository read: the read completes from the other.
 * A server that accepts and then never answers costs one timeout, not a hang.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, Socket, type Server } from 'node:net';
import { join } from 'node:path';
import { openRepository } from '../lib/index.js';
import { FIXTURES, keyOf, readTruth, tempDir } from './helpers.js';
import { NGINX, startNginx, type Nginx } from './nginx.js';

const FQRN = 'fixture.test.example.org';
let a: Nginx | undefined;
let b: Nginx | undefined;

before(async () => {
  if (!NGINX) return;
  a = await startNginx({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  b = await startNginx({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
});
after(() => {
  a?.proc.kill('SIGKILL');
  b?.proc.kill('SIGKILL');
});

test('one of two nginx Stratum-1s killed mid-read: every file still reads right, from the other', { skip: NGINX ? false : 'nginx not installed (.ci/run installs it)' }, async () => {
  const truth = readTruth(FQRN);
  const repo = await openRepository(FQRN, { serverUrls: [a!.url, b!.url], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), timeoutMs: 2000 });
  try {
    const files = Object.entries(truth.entries).filter(([, t]) => t.type === 'file');
    let done = 0;
    let next = 0;
    await Promise.all([0, 1, 2, 3].map(async () => {
      while (next < files.length) {
        const [p, t] = files[next++]!;
        assert.equal(createHash('sha1').update((await repo.fs.readFile(p)) as Buffer).digest('hex'), t.sha1, p);
        if (++done === 300) a!.proc.kill('SIGKILL');
      }
    }));
    assert.equal(done, files.length);
    assert.ok(repo.stats().failovers >= 1, 'the reads moved to the second server');
    assert.equal((await repo.fs.getxattr('/', 'user.host')).toString(), b!.url.replace('@fqrn@', FQRN));
  } finally {
    repo.close();
  }
});

test('a server that accepts and never answers costs one timeout, then the next server answers', async () => {
  const sockets: Socket[] = [];
  const stall: Server = createServer((s) => sockets.push(s)); // accepts, reads nothing, says nothing
  await new Promise<void>((r) => stall.listen(0, '127.0.0.1', () => r()));
  const { serve } = await import('./helpers.js');
  const good = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  try {
    const t0 = Date.now();
    const repo = await openRepository(FQRN, {
      serverUrls: [`http://127.0.0.1:${(stall.address() as { port: number }).port}/cvmfs/@fqrn@`, `${good.url}/@fqrn@`],
      publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), timeoutMs: 500, maxRetries: 0,
    });
    try {
      assert.equal((await repo.fs.readFile('/README.txt')).length, readTruth(FQRN).entries['/README.txt']!.size);
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
      assert.ok(repo.stats().failovers >= 1);
    } finally {
      repo.close();
    }
  } finally {
    for (const s of sockets) s.destroy();
    stall.close();
    await good.close();
  }
});

test('nginx closing after every answer (keepalive_timeout 0): every file reads right, 16 at a time, with read-ahead', { skip: NGINX ? false : 'nginx not installed (.ci/run installs it)' }, async () => {
  const c = await startNginx({ [FQRN]: join(FIXTURES, FQRN, 'srv') }, 'keepalive_timeout 0;');
  try {
    const truth = readTruth(FQRN);
    const files = Object.entries(truth.entries).filter(([, e]) => e.type === 'file');
    const repo = await openRepository(FQRN, { serverUrls: [c.url], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), timeoutMs: 2000, maxRetries: 0 });
    try {
      let next = 0;
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (next < files.length) {
          const [p, e] = files[next++]!;
          assert.equal(createHash('sha1').update((await repo.fs.readFile(p)) as Buffer).digest('hex'), e.sha1, p);
        }
      }));
      assert.equal(repo.stats().failovers, 0);
      assert.equal(repo.stats().retries, 0);
    } finally {
      repo.close();
    }
  } finally {
    c.proc.kill('SIGKILL');
  }
});
