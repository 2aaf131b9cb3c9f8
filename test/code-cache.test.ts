/**
 * The installed command's code cache (lib/cli/code-cache.ts): written after a command that had none, used by the
 * next, one file per command word, bounded, and never used unless only this user could have written it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyOf, readTruth, serve, tempDir, ucvmfs, BIN, FIXTURES } from './helpers.js';

const fqrn = 'fixture.test.example.org';

test('code cache: written 0600 in a 0700 directory, used next time, per command; rejected or untrusted files compiled anew; off when asked', async () => {
  const server = await serve({ [fqrn]: join(FIXTURES, fqrn, 'srv') });
  const base = tempDir();
  const dir = join(base, 'code');
  const env = { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: keyOf(fqrn), CVMFS_CACHE_BASE: join(base, 'cache'), UCVMFS_CODE_CACHE: dir, NODE_DEBUG: 'ucvmfs' };
  const sha1 = readTruth(fqrn).entries['/README.txt']!.sha1;
  const run = async (extra: Record<string, string> = {}, command = 'cat') => {
    const r = await ucvmfs(command === 'cat' ? ['cat', `${fqrn}:/README.txt`] : [command, `${fqrn}:/README.txt`], { ...env, ...extra });
    assert.equal(r.code, 0, r.stderr);
    if (command === 'cat') assert.equal(createHash('sha1').update(r.stdout).digest('hex'), sha1);
    else assert.match(r.stdout.toString(), /size +39\n/);
    return /code cache (\w+)/.exec(r.stderr)?.[1];
  };
  const files = () => readdirSync(dir).filter((n) => n.endsWith('.v8'));
  try {
    assert.equal(await run(), 'absent');
    assert.equal(lstatSync(dir).mode & 0o777, 0o700);
    assert.equal(files().length, 1);
    const file = join(dir, files()[0]!);
    assert.match(file, /code-[0-9a-f]{16}-cat-v\d+\.\d+\.\d+-/);
    assert.equal(lstatSync(file).mode & 0o777, 0o600);
    assert.ok(lstatSync(file).size > 10_000, 'compiled functions, not an empty cache');
    assert.equal(await run(), 'used');
    const served = lstatSync(file);
    assert.equal(await run(), 'used');
    // A cache that served is left as it is: not made and written again at every command's exit.
    assert.equal(lstatSync(file).ino, served.ino);
    assert.equal(lstatSync(file).mtimeMs, served.mtimeMs);
    // A long command (a job under exec) writes the cache it used again: it compiled what a short one never ran.
    const job = async () => {
      const r = await ucvmfs(['exec', '--', 'sh', '-c', 'sleep 1.2'], env);
      assert.equal(r.code, 0, r.stderr);
      return /code cache (\w+)/.exec(r.stderr)?.[1];
    };
    const execFile = () => join(dir, files().find((n) => n.includes('-exec-')) ?? 'none');
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 50 && !done(); i++) await new Promise((r) => setTimeout(r, 100));
    };
    assert.equal(await job(), 'absent');
    await until(() => existsSync(execFile()));
    const first = lstatSync(execFile()).ino;
    assert.equal(await job(), 'used');
    // The write comes after the caller has its answer.
    await until(() => lstatSync(execFile()).ino !== first);
    assert.notEqual(lstatSync(execFile()).ino, first);
    rmSync(execFile());
    // Another command word has its own file.
    assert.equal(await run({}, 'stat'), 'absent');
    assert.equal(await run({}, 'stat'), 'used');
    assert.equal(files().length, 2);

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
    // Nor one with a second name (a hard link from elsewhere).
    linkSync(file, join(base, 'other-name'));
    assert.equal(await run(), 'absent');
    assert.equal(lstatSync(file).nlink, 1);
    assert.equal(await run(), 'used');

    // Nor in a directory others can write: neither read nor written there.
    chmodSync(dir, 0o777);
    const before = lstatSync(file).mtimeMs;
    assert.equal(await run(), 'absent');
    assert.equal(lstatSync(file).mtimeMs, before);
    chmodSync(dir, 0o700);
    // Nor through a symbolic link to the directory.
    symlinkSync(dir, join(base, 'link'));
    assert.equal(await run({ UCVMFS_CODE_CACHE: join(base, 'link') }), 'absent');

    // At most 16 files, the least recently used removed; temporaries of killed writers removed after a minute.
    const old = Date.now() / 1000 - 3600;
    for (let i = 0; i < 20; i++) {
      writeFileSync(join(dir, `code-0000-old${i}.v8`), 'x', { mode: 0o600 });
      utimesSync(join(dir, `code-0000-old${i}.v8`), old + i, old + i);
    }
    writeFileSync(join(dir, '.code-dead.v8.99999'), 'x');
    utimesSync(join(dir, '.code-dead.v8.99999'), old, old);
    renameSync(file, join(base, 'moved')); // the next run writes
    assert.equal(await run(), 'absent');
    assert.equal(files().length, 16);
    assert.ok(existsSync(file) && existsSync(join(dir, files().find((n) => n.includes('-stat-'))!)), 'the used ones are kept');
    assert.equal(existsSync(join(dir, '.code-dead.v8.99999')), false);
    assert.equal(existsSync(join(dir, 'code-0000-old0.v8')), false);

    // Turned off, or a relative path: nothing read or written.
    const offDir = join(base, 'none');
    assert.equal(await run({ UCVMFS_CODE_CACHE: 'off', XDG_CACHE_HOME: offDir, HOME: offDir }), 'off');
    assert.equal(await run({ UCVMFS_CODE_CACHE: 'relative/dir', XDG_CACHE_HOME: offDir, HOME: offDir }), 'off');
    assert.equal(existsSync(offDir), false);

    // The default place: $XDG_CACHE_HOME/ucvmfs (made with its parent when the parent's parent is ours).
    const xdg = join(base, 'xdg');
    assert.equal(await run({ UCVMFS_CODE_CACHE: '', XDG_CACHE_HOME: xdg }), 'absent');
    assert.equal(readdirSync(join(xdg, 'ucvmfs')).filter((n) => n.endsWith('.v8')).length, 1);
    // Not under a home of another user's (root with a kept HOME): nothing made there.
    if (process.getuid?.() === 0) {
      const home = join(base, 'home');
      mkdirSync(home);
      chownSync(home, 65534, 65534);
      assert.equal(await run({ UCVMFS_CODE_CACHE: '', XDG_CACHE_HOME: '', HOME: home }), 'absent');
      assert.deepEqual(readdirSync(home), []);
    }
  } finally {
    await server.close();
  }
});

test('help and version leave quietly when the reader has gone (EPIPE), as before', () => {
  for (const word of ['help', 'version']) {
    const r = spawnSync('/bin/bash', ['-c', `"$0" ${word} | (exec 0<&-; sleep 0.5); echo "status \${PIPESTATUS[0]}" >&2`, BIN], { encoding: 'utf8' });
    assert.match(r.stderr, /^status 0\n$/, r.stderr);
  }
});
