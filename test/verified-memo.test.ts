/**
 * The cache's memo of a verified trust chain (lib/open/verified-memo.ts): the next open on the same cache takes a
 * cached whitelist and manifest on it only when they are the very bytes that passed, under the very same keys,
 * and still checks the expiry; anything else is checked in full, as without a memo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
