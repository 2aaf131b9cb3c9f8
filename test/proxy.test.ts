/**
 * Proxies as sites run them: a real squid (Debian's) started here on 127.0.0.1, reached through a proxy chain
 * whose first group is dead; the second read of an object is a squid hit, read from squid's own access log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openRepository } from '../lib/index.js';
import { FIXTURES, keyOf, readTruth, serve, tempDir } from './helpers.js';
import type { RepositoryServer } from '../lib/serve.js';
import { faultProxy } from './fault-proxy.js';
import { freePort, SQUID, startSquid, type Squid } from './squid.js';

const FQRN = 'fixture.test.example.org';
let squidUrl = '';
let squidDir = '';
let server: RepositoryServer;
let squid: Squid | undefined;

before(async () => {
  server = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  if (!SQUID) return;
  squid = await startSquid(tempDir('ucvmfs-squid-'));
  squidUrl = squid.url;
  squidDir = squid.dir;
});

after(async () => {
  squid?.stop();
  await server.close();
});

test('through a proxy chain with a dead first group to a real squid; the second read is a squid hit; user.proxy says which', { skip: SQUID ? false : 'squid not installed (.ci/run installs it)' }, async () => {
  const truth = readTruth(FQRN);
  const dead = `http://127.0.0.1:${await freePort()}`;
  const proxies = `${dead}|${dead};${squidUrl};DIRECT`;
  const open = (cacheDir: string) => openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir, proxies });
  const a = await open(tempDir());
  const p = '/small/random_64k.bin';
  try {
    assert.equal(createHash('sha1').update((await a.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1);
    assert.equal((await a.fs.getxattr('/', 'user.proxy')).toString(), squidUrl);
    assert.ok(a.stats().failovers >= 1, 'the dead proxies were tried first');
  } finally {
    a.close();
  }
  const b = await open(tempDir());
  try {
    assert.equal(createHash('sha1').update((await b.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1);
  } finally {
    b.close();
  }
  const hash = truth.entries[p]!.magic!['user.hash']!;
  await new Promise((r) => setTimeout(r, 300)); // squid writes its log line after the reply
  const lines = readFileSync(join(squidDir, 'access.log'), 'utf8').split('\n').filter((l) => l.includes(`${hash.slice(0, 2)}/${hash.slice(2)}`));
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0]!, /TCP_MISS\/200/);
  assert.match(lines[1]!, /TCP_(MEM_)?HIT\/200/);
});

test('faults between client and squid: a connection reset mid-body moves to the next proxy; data right', { skip: SQUID ? false : 'squid not installed (.ci/run installs it)' }, async () => {
  const truth = readTruth(FQRN);
  const squidPort = Number(new URL(squidUrl).port);
  const bad = await faultProxy(squidPort, 'reset');
  const badProxy = new URL(bad.url).origin;
  try {
    const repo = await openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), proxies: `${badProxy};${squidUrl}`, timeoutMs: 2000, maxRetries: 0 });
    try {
      for (const p of ['/small/random_64k.bin', '/big/text_20M.txt']) {
        assert.equal(createHash('sha1').update((await repo.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1, p);
      }
      assert.ok(repo.stats().proxyFailovers >= 1, 'the spoiling proxy was left');
      assert.equal(repo.stats().hostFailovers, 0, 'a proxy fault does not blame the server');
      assert.equal((await repo.fs.getxattr('/', 'user.proxy')).toString(), squidUrl);
    } finally {
      repo.close();
    }
  } finally {
    bad.close();
  }
});

test('a server squid cannot reach: squid\'s own error page moves to the next server, through squid again', { skip: SQUID ? false : 'squid not installed (.ci/run installs it)' }, async () => {
  const truth = readTruth(FQRN);
  const dead = `http://127.0.0.1:${await freePort()}/cvmfs/@fqrn@`;
  const repo = await openRepository(FQRN, { serverUrls: [dead, `${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), proxies: squidUrl, timeoutMs: 3000, maxRetries: 0 });
  try {
    const p = '/small/hello.txt';
    assert.equal(createHash('sha1').update((await repo.fs.readFile(p)) as Buffer).digest('hex'), truth.entries[p]!.sha1);
    assert.ok(repo.stats().hostFailovers >= 1, 'moved to the next server');
    assert.equal((await repo.fs.getxattr('/', 'user.proxy')).toString(), squidUrl, 'still through squid');
    await new Promise((r) => setTimeout(r, 300));
    const port = new URL(dead).port;
    assert.match(readFileSync(join(squidDir, 'access.log'), 'utf8'), new RegExp(`TCP_MISS/503 .*127\\.0\\.0\\.1:${port}/`), 'squid answered for the dead server');
  } finally {
    repo.close();
  }
});
