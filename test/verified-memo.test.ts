/**
 * The cache's memo of a verified trust chain (lib/open/verified-memo.ts): the next open on the same cache takes a
 * cached whitelist and manifest on it only when they are the very bytes that passed, under the very same keys,
 * and still checks the expiry; anything else is checked in full, as without a memo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyOf, openFixture } from './helpers.js';
import { openRepository } from '../lib/index.js';

const FQRN = 'fixture.test.example.org';

/** The cached certificate (the only object that starts as a PEM certificate). */
function cachedCertificate(shared: string): string {
  for (const d of readdirSync(shared).filter((n) => /^[0-9a-f]{2}$/.test(n))) {
    for (const f of readdirSync(join(shared, d))) {
      const p = join(shared, d, f);
      if (statSync(p).size < 8192 && readFileSync(p, 'latin1').startsWith('-----BEGIN CERTIFICATE')) return p;
    }
  }
  throw new Error(`no certificate in ${shared}`);
}

/** Opens the cached repository with its server gone: only the cache can answer. */
function openOffline(cacheDir: string, opts: { publicKeys?: string[]; now?: () => Date } = {}) {
  return openRepository(FQRN, { serverUrls: ['http://127.0.0.1:9/cvmfs/@fqrn@'], publicKeys: [keyOf(FQRN)], cacheDir, onWarning: () => undefined, ...opts });
}

test('a verified chain leaves a memo; the next open takes the same bytes on it without the certificate, never under other keys or after the expiry', async () => {
  const { repo, server, cacheDir } = await openFixture(FQRN);
  const revision = repo.revision;
  const readme = await repo.fs.readFile('/README.txt', 'utf8');
  repo.close();
  await server.close();
  const shared = join(cacheDir, 'shared');
  const memo = join(shared, `verified.${FQRN}`);
  assert.ok(existsSync(memo), 'the open that fetched the chain wrote the memo');
  assert.ok(readFileSync(memo).includes(readFileSync(join(shared, `manifest.${FQRN}`))), 'it holds the manifest that passed');
  // The full check reads the certificate; the memo's does not, so with the certificate gone and no server only
  // the memo can open it.
  rmSync(cachedCertificate(shared));
  const again = await openOffline(cacheDir);
  assert.equal(again.revision, revision);
  assert.equal(await again.fs.readFile('/README.txt', 'utf8'), readme);
  again.close();
  // Another master key: the memo does not vouch, and the full check fails (no certificate, no server).
  await assert.rejects(openOffline(cacheDir, { publicKeys: [keyOf('rmd160.test.example.org')] }), (e: { code?: string }) => e.code === 'EIO');
  // Past the whitelist's expiry: refused although the memo vouches for the bytes.
  await assert.rejects(openOffline(cacheDir, { now: () => new Date('2037-01-01T00:00:00Z') }), (e: { code?: string }) => e.code === 'EIO');
  // And the memo still vouches for the right key afterwards (the failures above did not replace it).
  (await openOffline(cacheDir)).close();
});

test('a memo vouches only for its own bytes: a changed cached manifest is checked in full (and fails), a torn memo is ignored', async () => {
  const { repo, server, cacheDir } = await openFixture(FQRN);
  repo.close();
  const shared = join(cacheDir, 'shared');
  const manifestFile = join(shared, `manifest.${FQRN}`);
  const good = readFileSync(manifestFile);
  try {
    // The last signature byte flipped: same length, same text, the memo's bytes no longer equal it.
    const bad = Buffer.from(good);
    bad[bad.length - 1]! ^= 0xff;
    writeFileSync(manifestFile, bad);
    await server.close();
    await assert.rejects(openOffline(cacheDir), (e: { code?: string }) => e.code === 'EIO');
    // A torn memo (cut short) vouches for nothing: the good manifest is checked in full, which passes (the
    // certificate is in the cache), and the memo is written whole again.
    writeFileSync(manifestFile, good);
    const memo = join(shared, `verified.${FQRN}`);
    const whole = readFileSync(memo);
    writeFileSync(memo, whole.subarray(0, whole.length - 10));
    (await openOffline(cacheDir)).close();
    assert.ok(readFileSync(memo).equals(whole), 'rewritten after the full check');
  } finally {
    await server.close().catch(() => undefined);
  }
});

test('the cached whitelist and manifest are not synced: emptied or cut short (as a crash leaves unsynced files), the next open fetches the chain again', async () => {
  const { repo, server, cacheDir } = await openFixture(FQRN);
  const revision = repo.revision;
  const fetched = repo.stats().bytesDownloaded;
  repo.close();
  const shared = join(cacheDir, 'shared');
  const files = [`whitelist.${FQRN}`, `manifest.${FQRN}`].map((n) => join(shared, n));
  const good = files.map((f) => readFileSync(f));
  try {
    for (const damage of [(b: Buffer) => b.subarray(0, 0), (b: Buffer) => b.subarray(0, b.length >> 1)]) {
      files.forEach((f, i) => writeFileSync(f, damage(good[i]!)));
      const again = await openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir });
      assert.equal(again.revision, revision);
      assert.ok(again.stats().bytesDownloaded > 0 && again.stats().bytesDownloaded < fetched, 'the chain came from the server again, not the catalogs');
      again.close();
      files.forEach((f, i) => assert.ok(readFileSync(f).equals(good[i]!), `${f} written whole again`));
    }
    // Without a server, a damaged cached chain opens nothing: it is never taken as it is.
    files.forEach((f, i) => writeFileSync(f, good[i]!.subarray(0, 10)));
    await server.close();
    await assert.rejects(openOffline(cacheDir), (e: { code?: string }) => e.code === 'EIO');
  } finally {
    await server.close().catch(() => undefined);
  }
});

test('a refresh that brings the bytes checked before is taken on the memo (no certificate) and rewrites nothing: the files are marked fresh', async () => {
  const { repo, server, cacheDir } = await openFixture(FQRN);
  const revision = repo.revision;
  repo.close();
  const shared = join(cacheDir, 'shared');
  const files = [`whitelist.${FQRN}`, `manifest.${FQRN}`, `verified.${FQRN}`].map((n) => join(shared, n));
  try {
    const before = files.map((f) => statSync(f));
    // The TTL ran out an hour ago; the certificate is gone, so only the memo can pass the chain without it.
    const hourAgo = Date.now() / 1000 - 3600;
    utimesSync(files[1]!, hourAgo, hourAgo);
    rmSync(cachedCertificate(shared));
    const again = await openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf(FQRN)], cacheDir });
    assert.equal(again.revision, revision);
    const signed = files.slice(0, 2).reduce((n, f) => n + statSync(f).size, 0);
    assert.equal(again.stats().bytesDownloaded, signed, 'whitelist and manifest fetched again, nothing else');
    again.close();
    const after = files.map((f) => statSync(f));
    after.forEach((st, i) => assert.equal(st.ino, before[i]!.ino, `${files[i]} not rewritten`));
    assert.ok(after[1]!.mtimeMs > Date.now() - 60_000, 'the manifest is marked fresh (its TTL counts from now)');
    // Another master key: the memo does not vouch for the same bytes, and the full check refuses them.
    utimesSync(files[1]!, hourAgo, hourAgo);
    await assert.rejects(openRepository(FQRN, { serverUrls: [`${server.url}/@fqrn@`], publicKeys: [keyOf('rmd160.test.example.org')], cacheDir }), (e: { code?: string }) => e.code === 'EIO');
  } finally {
    await server.close();
  }
});
