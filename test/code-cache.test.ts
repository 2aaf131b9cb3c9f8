/**
 * The installed command's code cache (lib/cli/code-cache.ts): written after a command that had none, used by the
 * next, and never used unless only this user could have written it.
 */
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyOf, readTruth, serve, tempDir, ucvmfs, FIXTURES } from './helpers.js';

const fqrn = 'fixture.test.example.org';

test('code cache: written 0600 in a 0700 directory, used next time, rejected or untrusted files compiled anew, off when asked', async () => {
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  const base = tempDir();
  const dir = join(base, 'code');
  const env = { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(fqrn), CVMFS_CACHE_BASE: join(base, 'cache'), UCVMFS_CODE_CACHE: dir, NODE_DEBUG: 'ucvmfs' };
  const run = async (extra: Record<string, string> = {}) => {
    const r = await ucvmfs(['cat', `${fqrn}:/README.txt`], { ...env, ...extra });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(createHash('sha1').update(r.stdout).digest('hex'), readTruth(fqrn).entries['/README.txt']!.sha1);
    return /code cache (\w+)/.exec(r.stderr)?.[1];
  };
  const files = () => readdirSync(dir).filter((n) => n.endsWith('.v8'));
  try {
    assert.equal(await run(), 'absent');
    assert.equal(lstatSync(dir).mode & 0o777, 0o700);
    assert.equal(files().length, 1);
    const file = join(dir, files()[0]!);
    assert.equal(lstatSync(file).mode & 0o777, 0o600);
    assert.ok(lstatSync(file).size > 10_000, 'compiled functions, not an empty cache');
    assert.equal(await run(), 'used');
    assert.equal(await run(), 'used');

    // Bytes V8 cannot take: compiled from the source, right output, a good cache written in their place.
    writeFileSync(file, Buffer.alloc(5000, 0x5a));
    assert.equal(await run(), 'rejected');
    assert.notEqual(readFileSync(file)[0], 0x5a);
    assert.equal(await run(), 'used');

    // A file another user could have changed is not run, and is replaced by one of ours.
    chmodSync(file, 0o666);
    assert.equal(await run(), 'absent');
    assert.equal(lstatSync(file).mode & 0o777, 0o600);
    if (process.getuid?.() === 0) {
      chownSync(file, 65534, 65534);
      assert.equal(await run(), 'absent');
      assert.equal(lstatSync(file).uid, 0);
    }
    assert.equal(await run(), 'used');

    // Nor in a directory others can write: neither read nor written there.
    chmodSync(dir, 0o777);
    const before = lstatSync(file).mtimeMs;
    assert.equal(await run(), 'absent');
    assert.equal(lstatSync(file).mtimeMs, before);
    chmodSync(dir, 0o700);

    // Turned off: nothing read or written.
    const offDir = join(base, 'none');
    assert.equal(await run({ UCVMFS_CODE_CACHE: 'off', XDG_CACHE_HOME: offDir, HOME: offDir }), 'off');
    assert.equal(existsSync(offDir), false);

    // The default place: $XDG_CACHE_HOME/ucvmfs.
    const xdg = join(base, 'xdg');
    assert.equal(await run({ UCVMFS_CODE_CACHE: '', XDG_CACHE_HOME: xdg }), 'absent');
    assert.equal(readdirSync(join(xdg, 'ucvmfs')).filter((n) => n.endsWith('.v8')).length, 1);
  } finally {
    await server.close();
  }
});
