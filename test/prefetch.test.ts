/**
 * Sibling prefetch (lib/fs/prefetch.ts): when a directory's first file is opened, its other small files are
 * fetched into the cache, within the bounds, verified like any object, and a later read of them downloads
 * nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SiblingPrefetcher, type PrefetchOptions } from '../lib/fs/prefetch.js';
import { openFixture, readTruth } from './helpers.js';
import { delayProxy } from '../bench/delay-proxy.js';

const FQRN = 'fixture.test.example.org';

async function settle(p: SiblingPrefetcher): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const before = p.stats.files + p.stats.failed;
    await new Promise((r) => setTimeout(r, 25));
    if (p.stats.files + p.stats.failed === before && (p as unknown as { active: number }).active === 0) return;
  }
}

test('the small siblings of an opened file are fetched once, within the bounds, and then read without a download', async () => {
  const truth = readTruth(FQRN);
  const { repo, server } = await openFixture(FQRN);
  try {
    const children = (await repo.fs.entries('/many')).filter((e) => e.type === 'file' && !e.chunked && e.hash && e.size > 0);
    assert.ok(children.length > 12, 'the fixture has a directory of small files');
    const opened = children[0]!;
    const p = new SiblingPrefetcher(repo, { maxFiles: 10, maxFileBytes: 1 << 20, maxBytes: 1 << 30, minLatencyMs: 0 });
    p.opened('/many', opened.name);
    p.opened('/many', opened.name); // once per directory
    await settle(p);
    assert.equal(p.stats.directories, 1);
    assert.equal(p.stats.files, 10, 'maxFiles bounds the directory');
    assert.equal(p.stats.failed, 0);
    const downloaded = repo.stats().objectsDownloaded;
    // The ten prefetched (the opened file itself skipped) read from the cache, right.
    const prefetched = children.filter((e) => e !== opened).slice(0, 10);
    for (const e of prefetched) {
      assert.equal(createHash('sha1').update((await repo.fs.readFile(e.path)) as Buffer).digest('hex'), truth.entries[e.path]!.sha1, e.path);
    }
    assert.equal(repo.stats().objectsDownloaded, downloaded, 'no download for a prefetched file');
    // The next one was not prefetched: reading it downloads.
    const next = children.filter((e) => e !== opened)[10]!;
    await repo.fs.readFile(next.path);
    assert.equal(repo.stats().objectsDownloaded, downloaded + 1);

    /** What a fresh prefetcher with these bounds fetched after a file of `dir` was opened. */
    const tried = async (opts: PrefetchOptions, dir: string, name: string) => {
      const t = new SiblingPrefetcher(repo, { minLatencyMs: 0, ...opts });
      t.opened(dir, name);
      await settle(t);
      return t.stats;
    };
    // The byte bounds: per directory, and over the prefetcher's life.
    assert.equal((await tried({ maxBytes: 1, maxFileBytes: 1 << 20 }, '/sw/bin', 'x')).files, 0);
    // Only siblings of the opened file's kind (compound extension), unless told otherwise.
    assert.equal((await tried({ maxFiles: 3 }, '/many', 'x.other')).files, 0, 'no .other files there');
    assert.equal((await tried({ maxFiles: 3, sameKind: false }, '/many', 'x.other')).files, 3);
    assert.equal((await tried({ maxTotalBytes: 0 }, '/nested', 'x')).directories, 0);
  } finally {
    repo.close();
    await server.close();
  }
});

test('close() cancels what is queued: nothing more is fetched', async () => {
  const { repo, server } = await openFixture(FQRN);
  try {
    const p = new SiblingPrefetcher(repo, { concurrency: 1, maxFiles: 1000, maxBytes: 1 << 30, minLatencyMs: 0 });
    p.opened('/many', 'f_none.txt');
    await new Promise((r) => setTimeout(r, 30));
    p.close();
    await settle(p);
    const n = (await repo.fs.entries('/many')).filter((e) => e.type === 'file').length;
    assert.ok(p.stats.files < n - 1, `stopped early: ${p.stats.files} of ${n}`);
  } finally {
    repo.close();
    await server.close();
  }
});

test('only while round trips cost something: not for a server on loopback; behind a relay adding 40 ms, the siblings come', async () => {
  const { repo, server } = await openFixture(FQRN);
  const relay = await delayProxy(server.port, 40);
  // A threshold well between the two, so that a busy machine (which only adds to what is measured) cannot
  // turn loopback into a far server.
  const minLatencyMs = 20;
  try {
    const first = (await repo.fs.entries('/many')).filter((e) => e.type === 'file')[0]!;
    assert.ok(repo.objects.fetcher.latencyMs < minLatencyMs, `loopback answers within ${minLatencyMs} ms (${repo.objects.fetcher.latencyMs} ms)`);
    const near = new SiblingPrefetcher(repo, { maxFiles: 4, minLatencyMs });
    near.opened('/many', first.name);
    await settle(near);
    assert.deepEqual(near.stats, { directories: 0, files: 0, bytes: 0, failed: 0 });
    const { repo: far, server: own } = await openFixture(FQRN, { serverUrls: [`${relay.origin}/cvmfs/@fqrn@`] });
    try {
      assert.ok(far.objects.fetcher.latencyMs >= 40, `the relay's delay is seen (${far.objects.fetcher.latencyMs} ms)`);
      const p = new SiblingPrefetcher(far, { maxFiles: 4, minLatencyMs });
      p.opened('/many', first.name);
      await settle(p);
      assert.equal(p.stats.files, 4);
      assert.equal(p.stats.failed, 0);
    } finally {
      far.close();
      await own.close();
    }
  } finally {
    await relay.close();
    repo.close();
    await server.close();
  }
});
