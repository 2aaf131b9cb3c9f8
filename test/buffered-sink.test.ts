/**
 * The buffered sink (lib/store/buffered-sink.ts) on the fixture's real chunk objects: what it keeps is the
 * inflated chunk, its digest is that chunk's SHA-1, the chunks together are the file of truth.json, and bad
 * zlib data, too many bytes and trailing bytes behave as Node's zlib stream made them behave.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { FIXTURES, readTruth, tempDir } from './helpers.js';
import { BufferedSink, bufferedSinkAvailable } from '../lib/store/buffered-sink.js';
import { CvmfsError } from '../lib/errors.js';

const FQRN = 'fixture.test.example.org';
const truth = readTruth(FQRN);

/** The raw (stored) objects of a chunked file, in order, with their sizes from the chunk list. */
function chunksOf(path: string): { raw: Buffer; size: number }[] {
  const list = truth.entries[path]!.magic!['user.chunk_list']!.trim().split('\n').slice(1);
  return list.map((line) => {
    const [hash, , size] = line.split(',');
    return { raw: readFileSync(join(FIXTURES, FQRN, 'srv', 'data', hash!.slice(0, 2), `${hash!.slice(2)}P`)), size: Number(size) };
  });
}

/** Feeds `raw` to a new sink in pieces of `piece` bytes; the file it wrote and the kept digest. */
async function through(raw: Buffer, piece: number, opts: { compression?: 'zlib' | 'none'; limit?: number } = {}): Promise<{ kept: Buffer; digest: string }> {
  const file = join(tempDir('ucvmfs-sink-'), 'object');
  const sink = await BufferedSink.open(file, { compression: opts.compression ?? 'zlib', url: 'test', writeError: (e) => e as Error, ...(opts.limit !== undefined ? { limit: opts.limit } : {}) });
  try {
    for (let at = 0; at < raw.length; at += piece) await sink.push(raw.subarray(at, at + piece));
    await sink.end();
  } finally {
    await sink.close();
  }
  return { kept: readFileSync(file), digest: sink.keptDigest() };
}

test('Node has the zlib engine the sink drives', () => {
  assert.equal(bufferedSinkAvailable(), true);
});

for (const path of ['/big/random_32M.bin', '/big/text_20M.txt']) {
  test(`${path}: every chunk kept as it inflates, with its SHA-1; together the file of truth.json`, async () => {
    const whole = createHash('sha1');
    for (const [i, c] of chunksOf(path).entries()) {
      const { kept, digest } = await through(c.raw, i % 2 ? 65_536 : 16_384 + 7);
      assert.equal(kept.length, c.size);
      assert.equal(digest, createHash('sha1').update(inflateSync(c.raw)).digest('hex'));
      whole.update(kept);
    }
    assert.equal(whole.digest('hex'), truth.entries[path]!.sha1);
  });
}

test('a chunk cut short: decompression error (unexpected end of file)', async () => {
  const c = chunksOf('/big/text_20M.txt')[0]!;
  await assert.rejects(through(c.raw.subarray(0, c.raw.length - 10), 65_536), (e: unknown) => {
    assert.ok(e instanceof CvmfsError);
    assert.equal(e.reason, 'decompression');
    assert.equal((e.cause as { code?: string }).code, 'Z_BUF_ERROR');
    return true;
  });
});

test('bad zlib data: decompression error with zlib\'s code', async () => {
  const c = chunksOf('/big/random_32M.bin')[0]!;
  const bad = Buffer.from(c.raw);
  bad[0] = 0x00; // not a zlib header
  await assert.rejects(through(bad, 65_536), (e: unknown) => e instanceof CvmfsError && e.reason === 'decompression' && (e.cause as { code?: string }).code === 'Z_DATA_ERROR');
});

test('more bytes than the limit (a zlib bomb): decompression error before they are all written', async () => {
  const c = chunksOf('/big/text_20M.txt')[0]!; // 16 MiB of text from 643 kB
  await assert.rejects(through(c.raw, 65_536, { limit: 1_000_000 }), /decompresses to more than the 1000000 bytes/);
});

test('bytes after the end of the zlib stream are not kept (as with Node\'s zlib stream)', async () => {
  const c = chunksOf('/big/text_20M.txt')[1]!;
  const { kept } = await through(Buffer.concat([c.raw, Buffer.from('trailing bytes')]), 100_000);
  assert.equal(kept.length, c.size);
});

test('compression none: copied as it comes, limit checked', async () => {
  const data = inflateSync(chunksOf('/big/random_32M.bin')[1]!.raw);
  const { kept, digest } = await through(data, 300_001, { compression: 'none' });
  assert.ok(kept.equals(data));
  assert.equal(digest, createHash('sha1').update(data).digest('hex'));
  await assert.rejects(through(data, 300_001, { compression: 'none', limit: data.length - 1 }), /more than/);
});
