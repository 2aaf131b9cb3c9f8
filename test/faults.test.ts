/**
 * Faults between client and Stratum-1, injected by a small TCP proxy of ours in front of a real server: a
 * connection reset mid-body, a stall mid-body, a flipped byte, a 502. Each time the next server is used and
 * the data read is right, within the configured timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { faultProxy } from './fault-proxy.js';
import { join } from 'node:path';
import { openRepository } from '../lib/index.js';
import { FIXTURES, keyOf, readTruth, serve, tempDir } from './helpers.js';

const FQRN = 'fixture.test.example.org';
for (const fault of ['reset', 'stall', 'flip', '502'] as const) {
  test(`a ${fault} from the first server: the next one serves every byte right, in time`, async () => {
    const truth = readTruth(FQRN);
    const good = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
    const port = Number(new URL(good.url).port);
    const bad = await faultProxy(port, fault);
    try {
      const t0 = Date.now();
      const repo = await openRepository(FQRN, { serverUrls: [bad.url, `${good.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), timeoutMs: 800, maxRetries: 0 });
      try {
        for (const p of ['/small/random_64k.bin', '/big/text_20M.txt']) {
          assert.equal(createHash('sha1').update((await repo.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1, p);
        }
        // A flipped byte is first fetched again from the same server with no-cache headers (as the genuine client
        // does, in case a proxy holds a bad copy); this fault proxy spoils only the first response of a connection.
        if (fault === 'flip') assert.ok(repo.stats().retries >= 1, 'the spoiled object was fetched again');
        else assert.ok(repo.stats().failovers >= 1, 'the first server failed');
        assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
        // A flipped byte is caught by the inflater (a zlib error) or by the hash, whichever sees it first; either
        // way the object is fetched again from the next server and what is kept is right (checked above).
      } finally {
        repo.close();
      }
    } finally {
      bad.close();
      await good.close();
    }
  });
}

test('CVMFS_HOST_RESET_AFTER: after a failover, the first server is tried again once the reset time has passed', async () => {
  const good = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  const other = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  let down = true;
  const sockets = new Set<Socket>();
  const gate: Server = createServer((client) => {
    if (down) return void client.destroy();
    const up = connect(Number(new URL(good.url).port), '127.0.0.1');
    sockets.add(client).add(up);
    client.pipe(up).pipe(client);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => gate.listen(0, '127.0.0.1', () => r()));
  const first = `http://127.0.0.1:${(gate.address() as { port: number }).port}/cvmfs/@fqrn@`;
  const saved = process.env.CVMFS_HOST_RESET_AFTER;
  process.env.CVMFS_HOST_RESET_AFTER = '1';
  try {
    const repo = await openRepository(FQRN, { serverUrls: [first, `${other.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), timeoutMs: 1000, maxRetries: 0 });
    try {
      assert.equal((await repo.fs.getxattr('/', 'user.host')).toString(), `${other.url}/${FQRN}`, 'the first server is down: the second serves');
      down = false;
      await repo.fs.readFile('/small/hello.txt');
      assert.equal((await repo.fs.getxattr('/', 'user.host')).toString(), `${other.url}/${FQRN}`, 'before the reset time, it stays on the second');
      await new Promise((r) => setTimeout(r, 1100));
      await repo.fs.readFile('/small/random_64k.bin');
      assert.equal((await repo.fs.getxattr('/', 'user.host')).toString(), first.replace('@fqrn@', FQRN), 'after it, back to the first');
    } finally {
      repo.close();
    }
  } finally {
    if (saved === undefined) delete process.env.CVMFS_HOST_RESET_AFTER;
    else process.env.CVMFS_HOST_RESET_AFTER = saved;
    for (const s of sockets) s.destroy();
    gate.close();
    await good.close();
    await other.close();
  }
});
