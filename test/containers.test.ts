/**
 * Containers started inside `ucvmfs exec` whose bind sources or root file system are under /cvmfs: bubblewrap
 * (`--ro-bind /cvmfs/<fqrn>/<dir> /opt/x`, `--ro-bind /cvmfs/<fqrn> /`) and podman (`-v`, `--rootfs`). Inside the
 * container the paths no longer start with /cvmfs, so what it reads must be complete before the mount is made.
 * Every test runs with the preload library and with ptrace only, on a cold cache and then a warm one.
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publish } from '../lib/index.js';
import { shadowMode } from '../lib/connector/modes.js';
import type { RepositoryServer } from '../lib/serve.js';
import { copyFixture, keyOf, noise, openFixture, readTruth, serve, tempDir, ucvmfs, FIXTURES, type CliResult } from './helpers.js';
import { layeredWith } from './layers.js';
import { podmanRun } from './podman.js';

const FQRN = 'fixture.test.example.org';
const PY = '/usr/bin/python3';
const M = `/cvmfs/${FQRN}`;
const IMG = 'image.test.example.org';
const I = `/cvmfs/${IMG}`;
const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest('hex');

let server: RepositoryServer;
let env: Record<string, string>;
/** The image's files and what they hold. */
const image = { blob: noise(9 << 20, 7), motd: 'hello from an image on cvmfs\n', top: [] as string[] };

/**
 * A small root file system: the fixture's static busybox with applet links, the directories and files a
 * container runtime mounts over (they must exist: the tree is read-only), a 9 MiB file (chunked), a script.
 */
async function publishImage(): Promise<{ dir: string; key: string }> {
  const src = tempDir('ucvmfs-image-src-');
  const { repo, server: s } = await openFixture(FQRN);
  const busybox = (await repo.fs.readFile('/sw/bin/busybox')) as Buffer;
  repo.close();
  await s.close();
  const w = (p: string, data: string | Buffer, mode = 0o644) => {
    mkdirSync(join(src, p, '..'), { recursive: true });
    writeFileSync(join(src, p), data);
    chmodSync(join(src, p), mode);
  };
  w('bin/busybox', busybox, 0o755);
  for (const a of ['sh', 'cat', 'ls', 'sha1sum', 'readlink', 'id', 'echo']) symlinkSync('busybox', join(src, 'bin', a));
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'root', 'run']) mkdirSync(join(src, d));
  w('etc/motd', image.motd);
  w('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  w('etc/group', 'root:x:0:\n');
  for (const f of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname', 'run/.containerenv']) w(f, '');
  symlinkSync('/proc/mounts', join(src, 'etc/mtab'));
  w('data/blob', image.blob);
  w('run.sh', '#!/bin/sh\necho "uid=$(id -u) exe=$(readlink /proc/self/exe)"\ncat /etc/motd\nsha1sum /data/blob\nls /\n', 0o755);
  image.top = ['bin', 'data', 'dev', 'etc', 'proc', 'root', 'run', 'run.sh', 'sys', 'tmp'];
  const out = join(tempDir('ucvmfs-image-'), 'repo');
  const r = await publish(src, { fqrn: IMG, out });
  return { dir: out, key: r.publicKeyPath };
}

before(async () => {
  const img = await publishImage();
  server = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv'), [IMG]: img.dir });
  env = { CVMFS_SERVER_URL: `${server.url}/@fqrn@`, CVMFS_PUBLIC_KEY: [keyOf(FQRN), img.key].join(':') };
});
after(() => server.close());

/** Environment of the layer under test (see {@link layered}). */
let layerEnv: Record<string, string> = {};

/** Registers a test once per layer (test/layers.ts), the layer's environment in {@link layerEnv}. */
const layered = layeredWith((e) => { layerEnv = e; });

/** `ucvmfs exec --stats -- argv` with a cache of its own (cold the first time it is used). */
function exec(cache: string, argv: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return ucvmfs(['exec', '--stats', '--', ...argv], { ...env, ...layerEnv, CVMFS_CACHE_BASE: cache, ...extra });
}

/** Objects the job downloaded (its --stats line). */
const downloaded = (r: CliResult) => Number(/(\d+) objects \(/.exec(r.stderr)?.[1] ?? NaN);

/** bubblewrap with the host's tree read-only, private /tmp and /opt. */
const BOX = ['bwrap', '--ro-bind', '/', '/', '--tmpfs', '/opt', '--proc', '/proc', '--dev', '/dev'];

layered('bwrap: a /cvmfs directory bound into a container (--ro-bind /cvmfs/<fqrn>/<dir> /opt/x) reads as the repository: listing across nested catalogs, bytes, a program run; cold and warm cache', async () => {
  const truth = readTruth(FQRN);
  const under = Object.keys(truth.entries).filter((k) => k.startsWith('/nested/')).sort();
  const files = under.filter((k) => truth.entries[k]!.type === 'file');
  const want = [
    ['.', ...under.map((k) => `.${k.slice('/nested'.length)}`)].sort().join('\n'),
    ...files.map((k) => `${truth.entries[k]!.sha1}  .${k.slice('/nested'.length)}`),
    `${truth.entries['/sw/bin/busybox']!.sha1}  /opt/b/busybox`,
    'ran from /cvmfs', '',
  ].join('\n');
  const script = 'cd /opt/n && find . | LC_ALL=C sort && find . -type f | LC_ALL=C sort | xargs sha1sum && sha1sum /opt/b/busybox && /opt/b/busybox echo ran from /cvmfs';
  const cache = tempDir('ucvmfs-bind-');
  for (const round of ['cold', 'warm']) {
    const r = await exec(cache, [...BOX, '--ro-bind', `${M}/nested`, '/opt/n', '--ro-bind', `${M}/sw/bin`, '/opt/b', '--', '/bin/sh', '-c', script]);
    assert.equal(r.code, 0, `${round}: ${r.stderr}`);
    assert.equal(r.stdout.toString(), want, `${round}: ${r.stderr}`);
    if (round === 'cold') assert.ok(downloaded(r) >= files.length, r.stderr);
    else assert.equal(downloaded(r), 0, `warm: nothing downloaded: ${r.stderr}`);
    if (round === 'warm') assert.match(r.stderr, / 0 catalogs loaded/, 'a complete subtree is known by its marker');
  }
});

layered('bwrap: a root file system on /cvmfs (--ro-bind /cvmfs/<fqrn> / --proc /proc --dev /dev): its program runs as the container\'s root and reads the published bytes; cold and warm cache', async () => {
  const want = `uid=0 exe=/bin/busybox\n${image.motd}${sha1(image.blob)}  /data/blob\n${image.top.join('\n')}\n`;
  const cache = tempDir('ucvmfs-rootfs-');
  for (const round of ['cold', 'warm']) {
    const r = await exec(cache, ['bwrap', '--ro-bind', I, '/', '--proc', '/proc', '--dev', '/dev', '--', '/run.sh']);
    assert.equal(r.code, 0, `${round}: ${r.stderr}`);
    assert.equal(r.stdout.toString(), want, `${round}: ${r.stderr}`);
    if (round === 'warm') assert.equal(downloaded(r), 0, `warm: nothing downloaded: ${r.stderr}`);
    if (round === 'warm') assert.match(r.stderr, / 0 catalogs loaded/, 'a complete subtree is known by its marker');
  }
});

layered('bwrap: fail closed: a bind source holding a file whose object is corrupt on the server fails the mount with EIO, the container never starts (no zeros read); the good server then serves it', async () => {
  const truth = readTruth(FQRN);
  const srv = copyFixture(FQRN);
  const hash = (truth.entries['/sw/bin/hello.sh']!.magic as Record<string, string>)['user.hash']!;
  const object = join(srv, 'data', hash.slice(0, 2), hash.slice(2));
  const bytes = readFileSync(object);
  bytes[10] ^= 0xff;
  writeFileSync(object, bytes);
  const bad = await serve({ [FQRN]: srv });
  const cache = tempDir('ucvmfs-bind-bad-');
  const script = 'echo started; cat /opt/b/hello.sh | sha1sum';
  try {
    const r = await exec(cache, [...BOX, '--ro-bind', `${M}/sw/bin`, '/opt/b', '--', '/bin/sh', '-c', script], { CVMFS_SERVER_URL: `${bad.url}/@fqrn@` });
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout.toString(), '', r.stderr);
    assert.match(r.stderr, new RegExp(`${M}/sw/bin: .*(hash|decompress|zlib)`, 'i'));
    assert.match(r.stderr, /bwrap: Can't bind mount .*Input\/output error/);
  } finally {
    await bad.close();
  }
  const good = await exec(cache, [...BOX, '--ro-bind', `${M}/sw/bin`, '/opt/b', '--', '/bin/sh', '-c', script]);
  assert.equal(good.code, 0, good.stderr);
  assert.equal(good.stdout.toString(), `started\n${truth.entries['/sw/bin/hello.sh']!.sha1}  -\n`);
});

layered('bwrap: a bind source larger than UCVMFS_BIND_MAX_ENTRIES / UCVMFS_BIND_MAX_BYTES fails with a clear error before any of its content is fetched', async () => {
  const cache = tempDir('ucvmfs-bind-big-');
  for (const [bound, figure] of [[{ UCVMFS_BIND_MAX_ENTRIES: '5' }, 'more than 5 entries'], [{ UCVMFS_BIND_MAX_BYTES: '1000000' }, '1000000 bytes']] as const) {
    const r = await exec(cache, [...BOX, '--ro-bind', `${M}/sw`, '/opt/x', '--', '/bin/echo', 'started'], bound);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout.toString(), '');
    assert.match(r.stderr, new RegExp(`${M}/sw: cannot be a container's bind source: .*${figure}.*UCVMFS_BIND_MAX_ENTRIES`));
    assert.match(r.stderr, /0 files \(0 B\) materialized/, 'nothing filled');
  }
});

layered('bwrap: a writable bind of a /cvmfs directory (--bind, the container\'s root writing) changes nothing in the shadow tree: open for writing, truncate, chmod, rm, mv, mkdir, fchmod by fd fail', async () => {
  const truth = readTruth(FQRN);
  const cache = tempDir('ucvmfs-bind-rw-');
  // Each attempt prints its status; python for the fd-based call (its os.fchmod, on a read-only descriptor).
  const attempts = [
    'echo x > /opt/b/hello.sh', 'echo x >> /opt/b/hello.sh', 'truncate -s 0 /opt/b/hello.sh', 'chmod 777 /opt/b/hello.sh',
    'rm -f /opt/b/hello.sh', 'mv /opt/b/hello.sh /opt/b/moved', 'mkdir /opt/b/new', 'touch /opt/b/new-file', 'ln -s x /opt/b/new-link',
    `${PY} -c 'import os; fd = os.open("/opt/b/hello.sh", os.O_RDONLY); os.fchmod(fd, 0o777)'`,
  ];
  const script = attempts.map((a) => `${a} 2>/dev/null; echo $?`).join('; ') + '; sha1sum /opt/b/hello.sh; ls /opt/b | wc -l; stat -c %a /opt/b/hello.sh';
  const r = await exec(cache, [...BOX, '--bind', `${M}/sw/bin`, '/opt/b', '--', '/bin/sh', '-c', script]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.toString().trim().split('\n');
  assert.deepEqual(lines.slice(0, attempts.length).map((l) => l !== '0'), attempts.map(() => true), `every attempt failed: ${lines.join(' ')}`);
  assert.deepEqual(lines.slice(attempts.length), [`${truth.entries['/sw/bin/hello.sh']!.sha1}  /opt/b/hello.sh`, String(truth.entries['/sw/bin']!.entries!.length),
    // Inside the container the mode is the shadow entry's on disk (not translated there; see the README), unchanged.
    shadowMode(truth.entries['/sw/bin/hello.sh']!.mode).toString(8)]);
  // And the next job reads the repository's bytes through /cvmfs itself.
  const after = await exec(cache, ['/bin/sh', '-c', `sha1sum < ${M}/sw/bin/hello.sh`]);
  assert.equal(after.stdout.toString(), `${truth.entries['/sw/bin/hello.sh']!.sha1}  -\n`, after.stderr);
});


layered('podman: -v /cvmfs/<fqrn>/<dir>:/opt/x and --rootfs /cvmfs/<fqrn> read as the repository; cold and warm cache', async (t) => {
  const box = podmanRun();
  if (typeof box === 'string') return t.skip(box);
  const truth = readTruth(FQRN);
  const cache = tempDir('ucvmfs-podman-bind-');
  const bin = truth.entries['/sw/bin']!.entries!;
  for (const round of ['cold', 'warm']) {
    const v = await exec(cache, [...box, '-v', `${M}/sw/bin:/opt/x`, '--rootfs', '/:O', '/bin/sh', '-c', 'sha1sum /opt/x/busybox; LC_ALL=C ls -A /opt/x']);
    assert.equal(v.code, 0, `${round}: ${v.stderr}`);
    assert.equal(v.stdout.toString(), `${truth.entries['/sw/bin/busybox']!.sha1}  /opt/x/busybox\n${bin.join('\n')}\n`, v.stderr);
    const root = await exec(cache, [...box, '--rootfs', I, '/run.sh']);
    assert.equal(root.code, 0, `${round}: ${root.stderr}`);
    assert.equal(root.stdout.toString(), `uid=0 exe=/bin/busybox\n${image.motd}${sha1(image.blob)}  /data/blob\n${image.top.join('\n')}\n`, root.stderr);
    if (round === 'warm') assert.equal(downloaded(v) + downloaded(root), 0, `warm: nothing downloaded: ${v.stderr}${root.stderr}`);
  }
});
