/**
 * Hostile or broken servers: every tampered file of a real repository copy is an error naming the failed check,
 * nothing unverified is served or cached, and failover recovers where a good server remains.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { openRepository, CvmfsError } from '../lib/index.js';
import { parseManifest } from '../lib/format/manifest.js';
import { hashBytes, objectPath, hashToString } from '../lib/format/hash.js';
import { copyFixture, keyOf, openFixture, readTruth, serve, tempDir, FIXTURES } from './helpers.js';

const FQRN = 'features.test.example.org';

function flip(file: string, at: number): void {
  const b = readFileSync(file);
  const i = at < 0 ? b.length + at : at;
  b[i] = b[i]! ^ 0x01;
  writeFileSync(file, b);
}

/** A corrupt zlib object fails either at inflate or at the hash check; both are EIO and nothing is kept. */
const CORRUPT = 'hash-mismatch|decompression';

async function rejectsWith(p: Promise<unknown>, code: string, reason?: string): Promise<CvmfsError> {
  try {
    await p;
  } catch (e) {
    const err = e as CvmfsError;
    assert.equal(err.code, code, `code of: ${err.message}`);
    if (reason) assert.ok(reason.split('|').includes(err.reason ?? ''), `reason ${err.reason} of: ${err.message}`);
    assert.match(err.message, /\S/);
    return err;
  }
  assert.fail(`expected ${code}${reason ? `/${reason}` : ''}`);
}

function manifestOf(srv: string) {
  return parseManifest(readFileSync(join(srv, '.cvmfspublished')));
}

/** A data object of a small regular file, and the file's path. */
function someFileObject(): { path: string; object: string } {
  const truth = readTruth(FQRN);
  const hash = (truth.entries['/hello.txt']!.magic as Record<string, string>)['user.hash']!;
  return { path: '/hello.txt', object: `data/${hash.slice(0, 2)}/${hash.slice(2)}` };
}

const cases: [string, (srv: string) => void, string][] = [
  ['a flipped byte in the manifest text', (s) => flip(join(s, '.cvmfspublished'), 3), 'manifest-signature'],
  ['a flipped byte in the manifest signature', (s) => flip(join(s, '.cvmfspublished'), -5), 'manifest-signature'],
  ['a flipped byte in the whitelist text', (s) => flip(join(s, '.cvmfswhitelist'), 20), 'whitelist-signature'],
  ['a flipped byte in the whitelist signature', (s) => flip(join(s, '.cvmfswhitelist'), -5), 'whitelist-signature'],
  ['a flipped byte in the certificate', (s) => flip(join(s, objectPath(manifestOf(s).certificate, 'X')), 40), CORRUPT],
  ['a flipped byte in the root catalog', (s) => flip(join(s, objectPath(manifestOf(s).rootCatalog, 'C')), 100), CORRUPT],
  ['a missing root catalog', (s) => rmSync(join(s, objectPath(manifestOf(s).rootCatalog, 'C'))), 'not-found'],
  ['a missing manifest', (s) => rmSync(join(s, '.cvmfspublished')), 'not-found'],
];

for (const [what, tamper, reason] of cases) {
  test(`open fails on ${what} (${reason})`, async () => {
    const srv = copyFixture(FQRN);
    tamper(srv);
    await rejectsWith(openFixture(FQRN, {}, srv), 'EIO', reason);
  });
}

test('a flipped byte in a data object: EIO hash-mismatch, and the object is not cached', async () => {
  const srv = copyFixture(FQRN);
  const { path, object } = someFileObject();
  flip(join(srv, object), 10);
  const { repo, server, cacheDir } = await openFixture(FQRN, {}, srv);
  try {
    await rejectsWith(repo.fs.readFile(path), 'EIO', CORRUPT);
    const name = object.slice('data/'.length);
    assert.ok(!existsSync(join(cacheDir, 'shared', name)), 'bad object not kept');
    assert.deepEqual(readdirSync(join(cacheDir, 'shared', 'txn')), [], 'no temporary file left');
  } finally {
    repo.close();
    await server.close();
  }
});

test('a missing data object: EIO not-found naming the object', async () => {
  const srv = copyFixture(FQRN);
  const { path, object } = someFileObject();
  rmSync(join(srv, object));
  const { repo, server } = await openFixture(FQRN, {}, srv);
  try {
    const e = await rejectsWith(repo.fs.readFile(path), 'EIO', 'not-found');
    assert.match(e.message, new RegExp(object.slice(5, 20)));
  } finally {
    repo.close();
    await server.close();
  }
});

test('an expired whitelist is refused', async () => {
  await rejectsWith(openFixture(FQRN, { now: () => new Date('2037-01-01T00:00:00Z') }), 'EIO', 'whitelist-expired');
});

test('a wrong master key is refused', async () => {
  await rejectsWith(openFixture(FQRN, { publicKeys: [keyOf('rmd160.test.example.org')] }), 'EIO', 'whitelist-signature');
});

test('a whitelist of another repository is refused', async () => {
  const server = await serve({ 'other.example.org': join(FIXTURES, FQRN, 'srv') });
  try {
    await rejectsWith(openRepository('other.example.org', { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir() }), 'EIO', 'whitelist-name');
  } finally {
    await server.close();
  }
});

test('a revision older than one already trusted in the cache is refused (rollback)', async () => {
  const cacheDir = tempDir();
  const { repo, server } = await openFixture(FQRN, { cacheDir });
  repo.close();
  await server.close();
  const state = readFileSync(join(cacheDir, 'shared', `cvmfschecksum.${FQRN}`), 'utf8');
  assert.match(state, new RegExp(`^${hashToString(repo.rootHash)}T\\d+R${repo.revision}$`));
  writeFileSync(join(cacheDir, 'shared', `cvmfschecksum.${FQRN}`), state.replace(/R\d+$/, `R${repo.revision + 1}`));
  await rejectsWith(openFixture(FQRN, { cacheDir, reuseCachedManifest: false }), 'EIO', 'manifest-rollback');
});

/** A server that cuts every data object short (declares the full length, sends half, closes). */
async function truncatingServer(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url!, 'http://x').pathname).replace(/^\/cvmfs\/[^/]+\//, '');
    const file = join(root, rel);
    if (!existsSync(file)) return void res.writeHead(404).end();
    const body = readFileSync(file);
    res.writeHead(200, { 'content-length': body.length });
    if (rel.startsWith('data/') && body.length > 20) {
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => res.destroy(), 10);
    } else res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/cvmfs/@fqrn@`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

test('a truncated transfer is EIO, never short data; a second server completes it', async () => {
  const good = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  const bad = await truncatingServer(join(FIXTURES, FQRN, 'srv'));
  try {
    await rejectsWith(openRepository(FQRN, { serverUrls: [bad.url], publicKeys: [keyOf(FQRN)], cacheDir: tempDir(), maxRetries: 0 }), 'EIO');
    const repo = await openRepository(FQRN, { serverUrls: [bad.url, `${good.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir() });
    const truth = readTruth(FQRN);
    const data = await repo.fs.readFile('/data/chunked_3M.txt') as Buffer;
    assert.equal(data.length, truth.entries['/data/chunked_3M.txt']!.size);
    assert.equal((await import('node:crypto')).createHash('sha1').update(data).digest('hex'), truth.entries['/data/chunked_3M.txt']!.sha1);
    assert.ok(repo.stats().failovers >= 1, 'failed over');
    repo.close();
  } finally {
    await good.close();
    await bad.close();
  }
});

test('failover past a server with a corrupt object serves the right bytes', async () => {
  const srv = copyFixture(FQRN);
  const { path, object } = someFileObject();
  flip(join(srv, object), 10);
  const bad = await serve({ [FQRN]: srv });
  const good = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  try {
    const repo = await openRepository(FQRN, { serverUrls: [`${bad.url}/@fqrn@`, `${good.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir() });
    const truth = readTruth(FQRN);
    const data = await repo.fs.readFile(path) as Buffer;
    assert.equal((await import('node:crypto')).createHash('sha1').update(data).digest('hex'), truth.entries[path]!.sha1);
    assert.ok(repo.stats().failovers >= 1);
    repo.close();
  } finally {
    await bad.close();
    await good.close();
  }
});

test('a manifest that fails its checks on one Stratum-1 is fetched once more from the next, as the genuine client does', async () => {
  const truth = readTruth(FQRN);
  const bad = copyFixture(FQRN);
  flip(join(bad, '.cvmfspublished'), -5);
  const badServer = await serve({ [FQRN]: bad });
  const goodServer = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  try {
    const repo = await openRepository(FQRN, { serverUrls: [`${badServer.url}/@fqrn@`, `${goodServer.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir() });
    try {
      assert.equal(repo.revision, Number(truth.manifest_fields.S));
      assert.equal(repo.stats().hostFailovers, 1);
      assert.equal((await repo.fs.getxattr('/', 'user.host')).toString(), `${goodServer.url}/${FQRN}`);
    } finally {
      repo.close();
    }
    // Both bad: the error is the manifest's, not a download error.
    await rejectsWith(openRepository(FQRN, { serverUrls: [`${badServer.url}/@fqrn@`, `${badServer.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir: tempDir() }), 'EIO', 'manifest-signature');
  } finally {
    await badServer.close();
    await goodServer.close();
  }
});

for (const [path, claimed, real] of [['in memory', 1000, 200_000], ['streamed', 300_000, 4_000_000]] as const) {
  test(`a zlib bomb (an object that inflates past the size its catalog gives), ${path}: EIO decompression, nothing kept`, async () => {
    const srv = copyFixture(FQRN);
    // A real object on a real server, named by its own hash as any object is; the size is what a catalog claims.
    const bomb = deflateSync(Buffer.alloc(real, 0x61));
    const hash = hashBytes(bomb, 'sha1');
    mkdirSync(join(srv, 'data', hash.hex.slice(0, 2)), { recursive: true });
    writeFileSync(join(srv, objectPath(hash, '')), bomb);
    const { repo, server, cacheDir } = await openFixture(FQRN, {}, srv);
    try {
      await rejectsWith(repo.objects.get(hash, '', 'zlib', undefined, claimed), 'EIO', 'decompression');
      assert.ok(!existsSync(join(cacheDir, 'shared', objectPath(hash, '').slice('data/'.length))), 'bomb not kept');
      assert.deepEqual(readdirSync(join(cacheDir, 'shared', 'txn')), [], 'no temporary file left');
      // The same object with its true size is fine: the bound is the catalog's, not a guess.
      assert.ok(existsSync(await repo.objects.get(hash, '', 'zlib', undefined, real)));
    } finally {
      repo.close();
      await server.close();
    }
  });
}
