/**
 * The connector: unmodified programs (bash, coreutils, python, make, the fixture's own ELF programs and
 * scripts, a C program making newer system calls) run under `ucvmfs exec` and see /cvmfs/<fqrn> as the
 * genuine client showed it (truth.json).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { chmodSync, chownSync, closeSync, copyFileSync, existsSync, openSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { parseManifest } from '../lib/format/manifest.js';
import { hashToString } from '../lib/format/hash.js';
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { elfInterpreter } from '../lib/connector/elf.js';
import { loadTracer } from '../lib/connector/exec.js';
import { dirname, join } from 'node:path';
import { publish } from '../lib/index.js';
import { fixtureNames, keyOf, readTruth, serve, tempDir, ucvmfs, BIN, FIXTURES, ROOT, type CliResult } from './helpers.js';
import { layeredWith } from './layers.js';
import { podmanRun } from './podman.js';
import type { RepositoryServer } from '../lib/serve.js';

const FQRN = 'fixture.test.example.org';
const M = `/cvmfs/${FQRN}`;
const PY = '/usr/bin/python3';
const SW = 'sw.test.example.org';
/** A repository of ours whose names are not UTF-8 (Linux names are bytes). */
const BY = 'bytes.test.example.org';
/** `f\xffg`: 0xff never occurs in UTF-8. */
const BAD = Buffer.from([0x66, 0xff, 0x67]);
/** Latin-1 `été`, a directory name. */
const LATIN1 = Buffer.from([0xe9, 0x74, 0xe9]);
const bytes = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
/** What stat shows for a mode: the stored one, write, setuid, setgid and sticky bits included (lib/connector/modes.ts). */
const shown = (mode: number) => mode;
let server: RepositoryServer;
let env: Record<string, string>;

/** A directory outside /cvmfs that symlinks of {@link SW} lead to. */
const OUTWARD = tempDir('ucvmfs-outward-');

/** A software repository of ours: a python package, a C header and library source, a Makefile project. */
async function publishSoftware(): Promise<{ dir: string; key: string }> {
  const src = tempDir('ucvmfs-sw-src-');
  const w = (p: string, data: string) => {
    mkdirSync(dirname(join(src, p)), { recursive: true });
    writeFileSync(join(src, p), data);
  };
  w('python/mypkg/__init__.py', 'from .core import answer\nVERSION = "1.2"\n');
  w('python/mypkg/core.py', 'def answer():\n    return 42\n');
  w('include/greet.h', '#define GREETING "hello from a header on cvmfs"\n');
  for (let i = 0; i < 8; i++) w(`project/src/part${i}.txt`, `part ${i}\n`.repeat(100 * (i + 1)));
  w('project/Makefile', 'OUT ?= /tmp\nall: $(patsubst src/%.txt,$(OUT)/%.cnt,$(wildcard src/*.txt))\n$(OUT)/%.cnt: src/%.txt\n\twc -l < $< > $@\n');
  w('setup.sh', 'export SW_READY=yes\n');
  // Mode bits a genuine mount shows but ignores (nosuid): setuid and setgid on a program, sticky on a directory.
  w('bin/suid-tool', '#!/bin/sh\necho suid\n');
  chmodSync(join(src, 'bin/suid-tool'), 0o6755);
  mkdirSync(join(src, 'scratch'));
  w('scratch/keep', 'x\n');
  chmodSync(join(src, 'scratch'), 0o1777);
  // A program whose loader (PT_INTERP) is under /cvmfs, as EESSI's are: this host's loader, copied in.
  const hostLoader = await elfInterpreter(async (o, n) => readFileSync('/bin/sh').subarray(o, o + n));
  mkdirSync(join(src, 'lib'), { recursive: true });
  copyFileSync(realpathSync(hostLoader!), join(src, 'lib/ld.so'));
  chmodSync(join(src, 'lib/ld.so'), 0o755);
  w('c/args.c', '#include <stdio.h>\nint main(int c, char **v) { printf("argv0=%s", v[0]); for (int i = 1; i < c; i++) printf(" %s", v[i]); printf("\\n"); return 7; }\n');
  mkdirSync(join(src, 'bin'), { recursive: true });
  execFileSync('gcc', ['-o', join(src, 'bin/own-loader'), join(src, 'c/args.c'), `-Wl,--dynamic-linker=/cvmfs/${SW}/lib/ld.so`]);
  w('bin/own-script', `#!/cvmfs/${SW}/bin/own-loader -x\necho not run by a shell\n`);
  // Nested #!: a script whose interpreter is a script whose interpreter is a program with its loader there.
  w('bin/wrapper-interp', `#!/cvmfs/${SW}/bin/own-loader -y\n`);
  w('bin/nested', `#!/cvmfs/${SW}/bin/wrapper-interp\n`);
  chmodSync(join(src, 'bin/wrapper-interp'), 0o755);
  chmodSync(join(src, 'bin/nested'), 0o755);
  // A program found through a symlink whose libraries are found by $ORIGIN of the file itself (bin/x ->
  // ../libexec/x/bin/x), and a link that climbs above the top and comes back in (../../<fqrn>/bin).
  w('c/greet2.c', 'const char *greet2(void) { return "greet2 via $ORIGIN"; }\n');
  w('c/origin.c', '#include <stdio.h>\nconst char *greet2(void);\nint main(void) { puts(greet2()); return 0; }\n');
  mkdirSync(join(src, 'libexec/tool/lib'), { recursive: true });
  mkdirSync(join(src, 'libexec/tool/bin'), { recursive: true });
  execFileSync('gcc', ['-shared', '-fPIC', '-o', join(src, 'libexec/tool/lib/libgreet2.so'), join(src, 'c/greet2.c')]);
  execFileSync('gcc', ['-o', join(src, 'libexec/tool/bin/origin'), join(src, 'c/origin.c'), `-L${join(src, 'libexec/tool/lib')}`, '-lgreet2',
    '-Wl,-rpath,$ORIGIN/../lib', `-Wl,--dynamic-linker=/cvmfs/${SW}/lib/ld.so`]);
  symlinkSync('../libexec/tool/bin/origin', join(src, 'bin/origin'));
  // A program that reads /proc/self/exe and re-executes itself through it (as the JVM and many launchers do).
  w('c/self.c', '#include <stdio.h>\n#include <unistd.h>\nint main(int c, char **v) { char b[4096]; ssize_t n = readlink("/proc/self/exe", b, sizeof b - 1); b[n > 0 ? n : 0] = 0; printf("exe=%s argv0=%s%s\\n", b, v[0], c > 1 ? " child" : ""); fflush(stdout); if (c == 1) { char *a[] = { v[0], "child", 0 }; execv("/proc/self/exe", a); perror("execv"); return 1; } return 0; }\n');
  execFileSync('gcc', ['-o', join(src, 'bin/selfexe'), join(src, 'c/self.c'), `-Wl,--dynamic-linker=/cvmfs/${SW}/lib/ld.so`]);
  // Symlinks that lead out of /cvmfs, into a directory of the test's: a mount lets programs write there through them.
  mkdirSync(join(src, 'links'), { recursive: true });
  symlinkSync(OUTWARD, join(src, 'links/outdir'));
  symlinkSync(join(OUTWARD, 'f.txt'), join(src, 'links/outfile'));
  symlinkSync(`../../${SW}/bin`, join(src, 'links/upback'));
  chmodSync(join(src, 'bin/own-script'), 0o755);
  const out = join(tempDir('ucvmfs-sw-'), 'repo');
  const r = await publish(src, { fqrn: SW, out });
  return { dir: out, key: r.publicKeyPath };
}

/** A repository with a file and a directory whose names are not UTF-8. */
async function publishBytes(): Promise<{ dir: string; key: string }> {
  const src = tempDir('ucvmfs-bytes-src-');
  writeFileSync(bytes(src, '/', BAD), 'content of f\\xffg\n');
  mkdirSync(bytes(src, '/', LATIN1));
  writeFileSync(bytes(src, '/', LATIN1, '/inner'), 'inner of \\xe9t\\xe9\n');
  writeFileSync(join(src, 'plain.txt'), 'plain\n');
  symlinkSync(BAD, join(src, 'link'));
  const out = join(tempDir('ucvmfs-bytes-'), 'repo');
  const r = await publish(src, { fqrn: BY, out, readSourceXattrs: false });
  return { dir: out, key: r.publicKeyPath };
}

before(async () => {
  const sw = await publishSoftware();
  const by = await publishBytes();
  server = await serve({ ...Object.fromEntries(fixtureNames().map((f) => [f, join(FIXTURES, f, 'srv')])), [SW]: sw.dir, [BY]: by.dir });
  env = {
    CVMFS_SERVER_URL: `${server.url}/@fqrn@`,
    CVMFS_PUBLIC_KEY: [...[FQRN, 'features.test.example.org'].map(keyOf), sw.key, by.key].join(':'),
    CVMFS_CACHE_BASE: tempDir('ucvmfs-exec-cache-'),
    SOME_VAR: 'alpha',
  };
});
after(() => server.close());

/** Environment of the layer under test (see {@link layered}). */
let layerEnv: Record<string, string> = {};

function exec(argv: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return ucvmfs(['exec', '--', ...argv], { ...env, ...layerEnv, ...extra });
}

/** Registers a test once per layer (test/layers.ts), the layer's environment in {@link layerEnv}. */
const layered = layeredWith((e) => { layerEnv = e; });

function sh(script: string): Promise<CliResult> {
  return exec(['/bin/bash', '-c', script]);
}

for (const cache of ['cold', 'warm']) test(`the programs the genuine client ran from its mount give the same output and status (${cache} cache)`, async () => {
  const fresh: Record<string, string> = cache === 'cold' ? { CVMFS_CACHE_BASE: tempDir('ucvmfs-cold-') } : {};
  const truth = readTruth(FQRN) as unknown as { exec_checks: { argv_rel: string[]; rc: number; stdout: string; stderr: string }[] };
  assert.ok(truth.exec_checks.length >= 8);
  for (const c of truth.exec_checks) {
    const argv = c.argv_rel.map((a, i) => (i === 0 ? M + a : a.replace('@M', M)));
    const r = await exec(argv, fresh);
    const expect = (s: string) => s.replaceAll('<MOUNT>', M);
    assert.equal(r.stdout.toString(), expect(c.stdout), `stdout of ${argv.join(' ')}`);
    assert.equal(r.stderr, expect(c.stderr), `stderr of ${argv.join(' ')}`);
    assert.equal(r.code, c.rc, `status of ${argv.join(' ')}`);
  }
});

for (const fqrn of fixtureNames()) layered(`python walks all of ${fqrn}: every entry, attribute, target and content as truth.json`, async () => {
  const script = `
import os, sys, json, hashlib, stat
root = sys.argv[1]
magic = json.load(open(sys.argv[2]))
out = {}
def visit(p):
    st = os.lstat(p)
    rel = p[len(root):] or '/'
    e = {'mode': st.st_mode, 'size': st.st_size, 'nlink': st.st_nlink, 'mtime': int(st.st_mtime), 'blocks': st.st_blocks}
    if not stat.S_ISLNK(st.st_mode) and not stat.S_ISFIFO(st.st_mode):
        e['xattrs'] = {n: os.getxattr(p, n).hex() for n in os.listxattr(p)}
    e['magic'] = {n: os.getxattr(p, n, follow_symlinks=False).decode() for n in magic.get(rel, [])}
    if stat.S_ISLNK(st.st_mode):
        e['target'] = os.readlink(p)
    elif stat.S_ISREG(st.st_mode):
        with open(p, 'rb') as f:
            e['sha1'] = hashlib.sha1(f.read()).hexdigest()
        e['mode_after_read'] = os.lstat(p).st_mode
        e['blocks_after_read'] = os.lstat(p).st_blocks
    elif stat.S_ISDIR(st.st_mode):
        names = sorted(os.listdir(p))
        e['entries'] = names
        for n in names:
            visit(p + '/' + n)
    out[rel] = e
visit(root)
if os.path.lexists(root + '/.cvmfs'):  # hidden: reachable by path, not listed
    visit(root + '/.cvmfs')
# mtimes to the nanosecond against truth.json's, in python (whose integers are exact), before and after reading
truth = json.load(open(sys.argv[3]))['entries']
out['mtime_ns_differ'] = [rel for rel, t in truth.items() if os.lstat(root + ('' if rel == '/' else rel)).st_mtime_ns != t['mtime_ns']]
out['mtime_ns_checked'] = len(truth)
# atime and ctime are the mtime, as the genuine client shows them, also after the reads above
out['times_differ'] = [rel for rel, t in truth.items() if (lambda s: (s.st_atime_ns, s.st_ctime_ns))(os.lstat(root + ('' if rel == '/' else rel))) != (t['mtime_ns'], t['mtime_ns'])]
json.dump(out, sys.stdout)
`;
  const truth0 = readTruth(fqrn);
  let magicCompared = 0;
  const skip = new Set(['user.host', 'user.version', 'user.pubkeys', 'user.repo_metainfo']);
  const wanted = join(tempDir('ucvmfs-magic-'), 'names.json');
  writeFileSync(wanted, JSON.stringify(Object.fromEntries(Object.entries(truth0.entries).map(([p, t]) => [p, Object.keys(t.magic ?? {}).filter((n) => !skip.has(n))]))));
  const r = await exec([PY, '-c', script, `/cvmfs/${fqrn}`, wanted, join(FIXTURES, fqrn, 'truth.json')], { CVMFS_PUBLIC_KEY: keyOf(fqrn), SOME_VAR: 'alpha' });
  assert.equal(r.code, 0, r.stderr);
  const times = JSON.parse(r.stdout.toString()) as { mtime_ns_differ: string[]; mtime_ns_checked: number; times_differ: string[] };
  assert.deepEqual(times.mtime_ns_differ, [], 'mtimes to the nanosecond, as the genuine client shows them');
  assert.deepEqual(times.times_differ, [], 'atime and ctime are the mtime, as the genuine client shows them');
  assert.equal(times.mtime_ns_checked, Object.keys(readTruth(fqrn).entries).length);
  const got = JSON.parse(r.stdout.toString()) as Record<string, { xattrs?: Record<string, string>; magic: Record<string, string>; mode: number; mode_after_read?: number; blocks: number; blocks_after_read?: number; size: number; nlink: number; mtime: number; target?: string; sha1?: string; entries?: string[] }>;
  const truth = readTruth(fqrn);
  delete got.mtime_ns_differ;
  delete got.mtime_ns_checked;
  delete got.times_differ;
  assert.deepEqual(Object.keys(got).sort(), Object.keys(truth.entries).sort());
  for (const [p, t] of Object.entries(truth.entries)) {
    const g = got[p]!;
    assert.equal(g.mode, shown(t.mode), `${p} mode`);
    assert.equal(g.mtime, t.mtime, `${p} mtime`);
    if (t.type !== 'dir') assert.equal(g.size, t.size, `${p} size`);
    // The genuine client's st_blocks (one more than the size in 512-byte units), also for a placeholder not yet
    // filled, which holds no block on disk (du of a cold tree); a directory's from the size shown.
    const blocks = 1 + Math.floor((t.type === 'dir' ? g.size : t.size) / 512);
    assert.equal(g.blocks, blocks, `${p} blocks`);
    if (t.type === 'file') assert.equal(g.blocks_after_read, blocks, `${p} blocks once the content is there`);
    // The shadow tree's directories are real, so the kernel counts their link as 2 + listed subdirectories.
    // The genuine client says the same except where a hidden subdirectory (/.cvmfs) or a snapshot's bind
    // mountpoint row counts differently (a known difference, see the README).
    const subdirs = t.type === 'dir' ? (t.entries ?? []).filter((n) => truth.entries[p === '/' ? `/${n}` : `${p}/${n}`]?.type === 'dir').length : 0;
    assert.ok(g.nlink === t.nlink || (t.type === 'dir' && g.nlink === 2 + subdirs), `${p} nlink ${g.nlink}, truth ${t.nlink}`);
    if (t.type === 'symlink') assert.equal(g.target, t.target, `${p} target`);
    if (t.type === 'file') assert.equal(g.sha1, t.sha1, `${p} content`);
    if (g.xattrs) assert.deepEqual(g.xattrs, Object.fromEntries(Object.entries(t.xattrs ?? {}).map(([n, v]) => [n, (v as { hex: string }).hex])), `${p} xattrs`);
    for (const [n, v] of Object.entries(g.magic)) {
      assert.equal(v, t.magic![n], `${p} magic ${n}`);
      magicCompared++;
    }
    if (t.type === 'file') assert.equal(g.mode_after_read, shown(t.mode), `${p} mode once the content is there`);
    if (t.type === 'dir') assert.deepEqual(g.entries, t.entries, `${p} listing`);
  }
  assert.ok(magicCompared > Object.keys(truth.entries).length / 2, `magic attributes compared: ${magicCompared}`);
  const groups = (truth as unknown as { hardlink_groups?: string[][] }).hardlink_groups ?? [];
  for (const g of groups) {
    const inodes = (await exec([PY, '-c', `import os,sys;print(len({os.lstat(p).st_ino for p in sys.argv[1:]}))`, ...g.map((p) => `/cvmfs/${fqrn}${p}`)], { CVMFS_PUBLIC_KEY: keyOf(fqrn) })).stdout.toString();
    assert.equal(inodes.trim(), '1', `hardlink group ${g.join(' ')} is one inode`);
  }
});

layered('GNU coreutils (statx) and find see the tree; symlinks into /cvmfs read back as /cvmfs paths', async () => {
  const truth = readTruth(FQRN);
  const r = await sh(`stat -c '%s %a %Y' ${M}/sw/bin/hello && find ${M} | wc -l && ls -l ${M}/sw/bin | wc -l && readlink ${M}/links/abs_dir && ls ${M}/links/abs_dir/ && cat ${M}/links/rel_file | sha1sum && realpath ${M}/links/chain_to_rel_file`);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.toString().split('\n');
  const hello = truth.entries['/sw/bin/hello']!;
  assert.equal(lines[0], `${hello.size} ${Number.parseInt(hello.perm!, 8).toString(8)} ${hello.mtime}`);
  assert.equal(Number(lines[1]), Object.keys(truth.entries).length);
  assert.equal(Number(lines[2]), truth.entries['/sw/bin']!.entries!.length + 1);
  assert.equal(lines[3], '/cvmfs/fixture.test.example.org/sw');
  assert.deepEqual(lines.slice(4, 7), truth.entries['/sw']!.entries);
  assert.equal(lines[7], `${truth.entries['/small/hello.txt']!.sha1}  -`);
  assert.equal(lines[8], `${M}/small/hello.txt`);
});

/**
 * Calls that would change a read-only mount, each with the error the kernel gives there (its order of checks:
 * lookups, EEXIST, EISDIR, EXDEV, then EROFS), as `name errno` lines (`ok` when it succeeds). Run on /cvmfs under
 * exec, and, where this process may mount, on a read-only tmpfs holding the same names.
 */
const READ_ONLY_CALLS = `
import errno, os, sys
R, T = sys.argv[1], sys.argv[2]
W, C = os.O_WRONLY, os.O_CREAT
def read(p, flags):
    fd = os.open(p, flags, 0o644)
    try:
        return 'ok %d' % len(os.read(fd, 1 << 20))
    finally:
        os.close(fd)
def openat2(p, flags, mode):
    import ctypes, struct
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    how = ctypes.create_string_buffer(struct.pack('QQQ', flags, mode, 0))
    fd = libc.syscall(437, -100, p.encode(), how, 24)
    if fd < 0: raise OSError(ctypes.get_errno(), 'openat2')
    os.close(fd)
    return 'ok %d' % (struct.unpack('QQQ', how.raw[:24])[0] & C)
def ro():
    if not os.statvfs(R).f_flag & os.ST_RDONLY: raise OSError(errno.EPERM, 'not read-only')
open(T + '/src', 'w').close()
def fifo():
    r = os.open(R + '/special/fifo', os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(R + '/special/fifo', os.O_WRONLY | os.O_NONBLOCK | os.O_TRUNC)
    os.write(w, b'hi')
    return 'ok ' + os.read(r, 8).decode()
def realpath(p):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.realpath.restype = ctypes.c_char_p
    if libc.realpath(p.encode(), None) is None:
        raise OSError(ctypes.get_errno(), 'realpath')
    return 'ok'
cases = [
    ('creat-existing', lambda: read(R + '/README.txt', os.O_RDONLY | C)),
    ('creat-link', lambda: read(R + '/links/rel_file', os.O_RDONLY | C)),
    ('creat-nofollow-link', lambda: read(R + '/links/rel_file', os.O_RDONLY | C | os.O_NOFOLLOW)),
    ('openat2-creat-existing', lambda: openat2(R + '/README.txt', os.O_RDONLY | C, 0o644)),
    ('openat2-creat-new', lambda: openat2(R + '/new-name', os.O_RDONLY | C, 0o644)),
    ('creat-excl-existing', lambda: os.open(R + '/README.txt', os.O_RDONLY | C | os.O_EXCL)),
    ('creat-excl-dir', lambda: os.open(R + '/big', W | C | os.O_EXCL)),
    ('creat-new', lambda: os.open(R + '/new-name', os.O_RDONLY | C)),
    ('creat-dir', lambda: os.open(R + '/big', os.O_RDONLY | C)),
    ('creat-dangling', lambda: os.open(R + '/links/dangling', os.O_RDONLY | C)),
    ('creat-below-missing', lambda: os.open(R + '/no-dir/x', W | C)),
    ('creat-below-file', lambda: os.open(R + '/README.txt/x', os.O_RDONLY | C)),
    ('write-missing', lambda: os.open(R + '/missing', W)),
    ('append-missing', lambda: os.open(R + '/missing', W | os.O_APPEND)),
    ('write-dangling', lambda: os.open(R + '/links/dangling', W)),
    ('write-dir', lambda: os.open(R + '/big', W)),
    ('rdwr-file', lambda: os.open(R + '/README.txt', os.O_RDWR)),
    ('trunc-file', lambda: os.open(R + '/README.txt', os.O_RDONLY | os.O_TRUNC)),
    ('trunc-dir', lambda: os.open(R + '/big', os.O_RDONLY | os.O_TRUNC)),
    ('tmpfile-dir', lambda: os.open(R + '/big', os.O_TMPFILE | W)),
    ('path-wronly', lambda: os.close(os.open(R + '/README.txt', os.O_PATH | W))),
    ('path-tmpfile', lambda: os.close(os.open(R + '/big', os.O_PATH | os.O_TMPFILE | os.O_RDWR))),
    ('utime-missing', lambda: os.utime(R + '/missing')),
    ('utime-file', lambda: os.utime(R + '/README.txt')),
    ('chmod-missing', lambda: os.chmod(R + '/missing', 0o644)),
    ('chown-file', lambda: os.chown(R + '/README.txt', 0, 0)),
    ('truncate-dir', lambda: os.truncate(R + '/big', 0)),
    ('truncate-missing', lambda: os.truncate(R + '/missing', 0)),
    ('setxattr-missing', lambda: os.setxattr(R + '/missing', 'user.x', b'1')),
    ('unlink-missing', lambda: os.unlink(R + '/missing')),
    ('unlink-below-missing', lambda: os.unlink(R + '/no-dir/x')),
    ('rmdir-dir', lambda: os.rmdir(R + '/big')),
    ('mkdir-existing', lambda: os.mkdir(R + '/big')),
    ('mkdir-new', lambda: os.mkdir(R + '/new-dir')),
    ('mkdir-below-missing', lambda: os.mkdir(R + '/no-dir/x')),
    ('mkdir-below-file', lambda: os.mkdir(R + '/README.txt/x')),
    ('symlink-existing', lambda: os.symlink('a', R + '/README.txt')),
    ('link-out', lambda: os.link(R + '/README.txt', T + '/link')),
    ('link-out-missing', lambda: os.link(R + '/missing', T + '/link')),
    ('link-out-existing', lambda: os.link(R + '/README.txt', T + '/src')),
    ('link-in', lambda: os.link(T + '/src', R + '/x')),
    ('link-in-existing', lambda: os.link(T + '/src', R + '/README.txt')),
    ('rename-out', lambda: os.rename(R + '/README.txt', T + '/moved')),
    ('rename-out-missing', lambda: os.rename(R + '/missing', T + '/moved')),
    ('rename-out-below-missing', lambda: os.rename(R + '/README.txt', T + '/no-dir/x')),
    ('rename-in', lambda: os.rename(T + '/src', R + '/x')),
    ('rename-within', lambda: os.rename(R + '/README.txt', R + '/x')),
    ('access-w-dangling', lambda: 'ok %s' % os.access(R + '/links/dangling', os.W_OK)),
    ('access-w-fifo', lambda: 'ok %s' % os.access(R + '/special/fifo', os.W_OK)),
    ('statvfs-read-only', ro),
    ('fifo-write', fifo),
    ('realpath-file-slash', lambda: realpath(T + '/src/')),
]
for name, call in cases:
    try:
        print(name, call() or 'ok')
    except OSError as e:
        print(name, errno.errorcode[e.errno])
`;

layered('as on a read-only mount: each change gets the kernel\'s error in its order (ENOENT, EEXIST, EISDIR, EXDEV before EROFS); O_CREAT of an existing file opens it (flock(1)); touch -c, mv out, relative scripts\' $0', async (t) => {
  const truth = readTruth(FQRN);
  const size = (p: string) => truth.entries[p]!.size;
  const want = [
    `creat-existing ok ${size('/README.txt')}`, `creat-link ok ${size('/small/hello.txt')}`, 'creat-nofollow-link ELOOP',
    // openat2: the program's struct open_how keeps its O_CREAT (the tracer hands the kernel a copy without it).
    'openat2-creat-existing ok 64', 'openat2-creat-new EROFS', 'creat-excl-existing EEXIST', 'creat-excl-dir EEXIST', 'creat-new EROFS', 'creat-dir EISDIR', 'creat-dangling EROFS',
    'creat-below-missing ENOENT', 'creat-below-file ENOTDIR', 'write-missing ENOENT', 'append-missing ENOENT', 'write-dangling ENOENT',
    'write-dir EISDIR', 'rdwr-file EROFS', 'trunc-file EROFS', 'trunc-dir EISDIR', 'tmpfile-dir EROFS', 'path-wronly ok', 'path-tmpfile ok',
    'utime-missing ENOENT', 'utime-file EROFS', 'chmod-missing ENOENT', 'chown-file EROFS', 'truncate-dir EISDIR', 'truncate-missing ENOENT',
    'setxattr-missing ENOENT', 'unlink-missing EROFS', 'unlink-below-missing ENOENT', 'rmdir-dir EROFS', 'mkdir-existing EEXIST',
    'mkdir-new EROFS', 'mkdir-below-missing ENOENT', 'mkdir-below-file ENOTDIR', 'symlink-existing EEXIST', 'link-out EXDEV',
    'link-out-missing ENOENT', 'link-out-existing EEXIST', 'link-in EROFS', 'link-in-existing EEXIST', 'rename-out EXDEV',
    'rename-out-missing EXDEV', 'rename-out-below-missing ENOENT', 'rename-in EXDEV', 'rename-within EROFS', 'access-w-dangling ok False', 'access-w-fifo ok True',
    'statvfs-read-only ok', 'fifo-write ok hi', 'realpath-file-slash ENOTDIR',
  ];
  // The same calls on a real read-only mount, where this process may make one: the table is the kernel's.
  const ref = tempDir('ucvmfs-ro-ref-');
  if (process.getuid?.() !== 0 || spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', ref]).status !== 0) {
    t.diagnostic('not compared with a read-only tmpfs: this process cannot mount one');
  } else {
    {
      try {
        mkdirSync(join(ref, 'big'));
        mkdirSync(join(ref, 'links'));
        mkdirSync(join(ref, 'small'));
        mkdirSync(join(ref, 'special'));
        assert.equal(spawnSync('mkfifo', [join(ref, 'special/fifo')]).status, 0);
        writeFileSync(join(ref, 'README.txt'), Buffer.alloc(size('/README.txt')));
        writeFileSync(join(ref, 'small/hello.txt'), Buffer.alloc(size('/small/hello.txt')));
        symlinkSync('../small/hello.txt', join(ref, 'links/rel_file'));
        symlinkSync('nowhere', join(ref, 'links/dangling'));
        assert.equal(spawnSync('mount', ['-o', 'remount,ro', ref]).status, 0);
        const t = tempDir('ucvmfs-ro-ref-out-');
        const n = spawnSync(PY, ['-c', READ_ONLY_CALLS, ref, t]);
        assert.deepEqual(n.stdout.toString().trim().split('\n'), want, `a read-only tmpfs: ${n.stderr}`);
      } finally {
        spawnSync('umount', [ref]);
      }
    }
  }
  const out = tempDir('ucvmfs-ro-out-');
  const r = await exec([PY, '-c', READ_ONLY_CALLS, M, out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.toString().trim().split('\n'), want);
  const s = await sh(`cd /tmp && flock ${M}/small/hello.txt echo locked && touch -c ${M}/missing && echo touch-c && mv ${M}/README.txt ${out}/moved; echo mv $? && cmp ${out}/moved ${M}/README.txt && echo copied && cd ${M}/sw/bin && ./hello.sh a && ../bin/hello.sh b`);
  assert.deepEqual(s.stdout.toString().trim().split('\n'), ['locked', 'touch-c', 'mv 1', 'copied',
    'hello from a shell script on cvmfs: ./hello.sh a', 'hello from a shell script on cvmfs: ../bin/hello.sh b'], s.stderr);
  assert.match(s.stderr, /cannot remove .*README\.txt.: Read-only file system/);
});

layered('reads through /proc\'s magic links (/proc/self/fd/N/x, /dev/fd/N/x, /proc/<pid>/cwd/x, /proc/self/root/cvmfs/x) get the content, not a placeholder\'s zeros, on an empty cache', async () => {
  const truth = readTruth(FQRN);
  const sha = (p: string) => truth.entries[p]!.sha1;
  const script = [
    `exec 7<${M}/small`, 'sha1sum < /proc/self/fd/7/hello.txt', 'sha1sum < /dev/fd/7/../README.txt',
    `cd ${M}/sw/bin`, 'sha1sum < /proc/self/cwd/hello.sh', 'sha1sum < /proc/$$/cwd/../lib/libgreet.so.1.0',
    `sha1sum < /proc/self/root${M}/added_in_v3.txt`, '/proc/self/fd/7/../sw/bin/hello magic',
  ].join('; ');
  const r = await exec(['/bin/bash', '-c', script], { CVMFS_CACHE_BASE: tempDir('ucvmfs-magic-links-') });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.toString().trim().split('\n'), [
    ...['/small/hello.txt', '/README.txt', '/sw/bin/hello.sh', '/sw/lib/libgreet.so.1.0', '/added_in_v3.txt'].map((p) => `${sha(p)}  -`),
    'Hello, magic! (from libgreet 1.0)',
  ]);
});

layered('symlinks of a repository that lead out of /cvmfs lead writes out too, as on a mount: appending, making and removing names there, test -w; the links themselves stay read-only', async () => {
  const L = `/cvmfs/${SW}/links`;
  writeFileSync(join(OUTWARD, 'f.txt'), 'start\n');
  rmSync(join(OUTWARD, 'new.txt'), { force: true });
  rmSync(join(OUTWARD, 'nd'), { recursive: true, force: true });
  const r = await exec(['/bin/bash', '-c', [
    `echo appended >> ${L}/outfile`, `echo new > ${L}/outdir/new.txt`, `mkdir ${L}/outdir/nd`, `touch ${L}/outdir/nd/x`,
    `test -w ${L}/outfile && echo writable`, `chmod 600 ${L}/outfile && echo chmod`, `rm ${L}/outdir/nd/x && echo removed`,
    `rm ${L}/outfile 2>&1`, `cat ${L}/outfile`,
  ].join('; ')], { CVMFS_CACHE_BASE: tempDir('ucvmfs-outward-cache-') });
  assert.deepEqual(r.stdout.toString().trim().split('\n'), ['writable', 'chmod', 'removed',
    `rm: cannot remove '${L}/outfile': Read-only file system`, 'start', 'appended'], r.stderr);
  assert.equal(readFileSync(join(OUTWARD, 'f.txt'), 'utf8'), 'start\nappended\n');
  assert.equal(readFileSync(join(OUTWARD, 'new.txt'), 'utf8'), 'new\n');
  assert.equal(lstatSync(join(OUTWARD, 'f.txt')).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(join(OUTWARD, 'nd')), []);
  chmodSync(join(OUTWARD, 'f.txt'), 0o644);
});

layered('du and ls -s show the genuine client\'s blocks, on an empty cache (placeholders hold none on disk) and once read', async () => {
  const truth = readTruth(FQRN);
  const files = truth.entries['/big']!.entries!;
  const r = await exec(['/bin/bash', '-c', `cd ${M}/big && du -B512 -a ${files.join(' ')} && cat ${files.join(' ')} >/dev/null && ls -s --block-size=512 ${files.join(' ')}`], { CVMFS_CACHE_BASE: tempDir('ucvmfs-blocks-') });
  assert.equal(r.code, 0, r.stderr);
  const want = files.map((f) => 1 + Math.floor(truth.entries[`/big/${f}`]!.size / 512));
  assert.ok(want.every((b) => b > 40000), `large files: ${want.join(' ')}`);
  const lines = r.stdout.toString().trim().split('\n');
  assert.deepEqual(lines.slice(0, files.length), files.map((f, i) => `${want[i]}\t${f}`), 'du, cold');
  assert.deepEqual(lines.slice(files.length), files.map((f, i) => `${want[i]} ${f}`), 'ls -s, warm');
});

layered('statx (coreutils stat) shows the genuine client\'s times: atime and ctime are the mtime, no birth time, before and after a read', async () => {
  const truth = readTruth(FQRN);
  const paths = ['/README.txt', '/small', '/big/text_20M.txt', '/', '/small/hello.txt'].filter((p) => truth.entries[p]);
  const args = paths.map((p) => M + (p === '/' ? '' : p)).join(' ');
  const r = await exec(['/bin/sh', '-c', `stat -c '%X %Y %Z %W' ${args} && cat ${args.split(' ').filter((p) => /\.txt$/.test(p)).join(' ')} >/dev/null && stat -c '%X %Y %Z %W' ${args}`], { CVMFS_CACHE_BASE: tempDir('ucvmfs-times-') });
  assert.equal(r.code, 0, r.stderr);
  const want = paths.map((p) => { const t = truth.entries[p]!.mtime; return `${t} ${t} ${t} 0`; });
  assert.deepEqual(r.stdout.toString().trim().split('\n'), [...want, ...want]);
});

test('in the preload layer a descriptor shows what the path shows (stored mode, the genuine times), before and after its content arrives; tar archives a cold tree without "file changed as we read it"', async () => {
  const cache = tempDir('ucvmfs-fstat-');
  const script = `
import os, sys, json
out = []
for p in sys.argv[1:]:
    a = os.lstat(p)
    fd = os.open(p, os.O_RDONLY)
    if os.path.isfile(p): os.read(fd, 1 << 20)
    b, c = os.fstat(fd), os.lstat(p)
    os.close(fd)
    views = [(x.st_mode, x.st_atime_ns, x.st_mtime_ns, x.st_ctime_ns) for x in (a, b, c)]
    # compared here: nanoseconds do not fit a JavaScript number
    out.append([p, a.st_mode, int(a.st_mtime), views[0] == views[1] == views[2], a.st_atime_ns == a.st_mtime_ns == a.st_ctime_ns])
print(json.dumps(out))`;
  const paths = ['/small/hello.txt', '/big/text_20M.txt', '/small', '/sw'].map((p) => M + p);
  const r = await exec([PY, '-c', script, ...paths], { CVMFS_CACHE_BASE: cache });
  assert.equal(r.code, 0, r.stderr);
  const truth = readTruth(FQRN);
  for (const [p, mode, mtime, same, genuine] of JSON.parse(r.stdout.toString()) as [string, number, number, boolean, boolean][]) {
    const t = truth.entries[p.slice(M.length)]!;
    assert.deepEqual([mode, mtime], [shown(t.mode), t.mtime], p);
    assert.ok(same, `${p}: lstat, then fstat after the read, then lstat again show the same mode and times`);
    assert.ok(genuine, `${p}: atime and ctime are the mtime`);
  }
  const tar = await exec(['/bin/sh', '-c', `tar cf ${join(tempDir('ucvmfs-tar-'), 'a.tar')} -C ${M} small sw big`], { CVMFS_CACHE_BASE: tempDir('ucvmfs-tar-cold-') });
  assert.equal(tar.code, 0, tar.stderr);
  assert.equal(tar.stderr, '');
});

layered('writes under /cvmfs fail with EROFS; mkdir -p of an existing directory succeeds', async () => {
  const r = await sh([
    `touch ${M}/new 2>&1`, `mkdir ${M}/newdir 2>&1`, `rm -f ${M}/README.txt 2>&1`, `mv ${M}/README.txt ${M}/x 2>&1`,
    `chmod 600 ${M}/README.txt 2>&1`, `ln -s a ${M}/l 2>&1`, `echo x >> ${M}/README.txt`, `truncate -s0 ${M}/README.txt 2>&1`,
    `mkdir -p ${M}/sw/bin && echo mkdir-p-ok`, `test -w ${M}/README.txt || echo not-writable`, `cat ${M}/README.txt | head -c 10 | wc -c`,
  ].join('; '));
  const out = r.stdout.toString() + r.stderr;
  assert.equal((out.match(/Read-only file system/g) ?? []).length, 8, out);
  assert.match(out, /mkdir-p-ok/);
  assert.match(out, /not-writable/);
  assert.match(r.stdout.toString(), /^10$/m);
});

layered('cwd inside /cvmfs: pwd, getcwd, /proc/self/cwd, /proc/self/exe and relative paths name /cvmfs', async () => {
  const r = await sh(`cd ${M}/sw/bin && pwd && /bin/pwd && readlink /proc/self/cwd && ${PY} -c 'import os; print(os.getcwd()); print(os.path.realpath("../lib/libgreet.so"))' && ./busybox readlink /proc/self/exe && cat ../../small/hello.txt | wc -c && ls ../lib | head -1`);
  assert.equal(r.code, 0, r.stderr);
  const truth = readTruth(FQRN);
  assert.deepEqual(r.stdout.toString().trim().split('\n'), [
    `${M}/sw/bin`, `${M}/sw/bin`, `${M}/sw/bin`, `${M}/sw/bin`, `${M}/sw/lib/libgreet.so.1.0`, `${M}/sw/bin/busybox`,
    String(truth.entries['/small/hello.txt']!.size), truth.entries['/sw/lib']!.entries![0]!,
  ]);
});

layered('a command named without a slash is found on PATH as execvp finds it, and host directories without it cost no stop', async () => {
  const dir = tempDir('ucvmfs-path-');
  try {
    // Twelve host directories without the command, one where it is not executable (execvp goes on past EACCES),
    // a host link into /cvmfs (only the job can follow it), /cvmfs named directly, and a file without `#!`.
    const empty = Array.from({ length: 12 }, (_, i) => join(dir, `empty${i}`));
    for (const d of empty) mkdirSync(d);
    mkdirSync(join(dir, 'noexec'));
    writeFileSync(join(dir, 'noexec', 'hello'), '#!/bin/sh\necho wrong\n', { mode: 0o644 });
    symlinkSync(`${M}/sw/bin`, join(dir, 'link'));
    mkdirSync(join(dir, 'plain'));
    writeFileSync(join(dir, 'plain', 'greet-plain'), 'echo "plain:$0:$*"\n', { mode: 0o755 });
    // Waiting for every process: the tracer's account is printed as its last process ends, which may be after the
    // command's end, when a front that returned at once has let go of stderr.
    const run = (entries: string[], argv: string[]) => exec(argv, { PATH: [...entries, dirname(process.execPath), '/usr/bin', '/bin'].join(':'), UCVMFS_TRACER_DEBUG: '1', UCVMFS_EXEC_WAIT: 'all' });
    const execStops = (stderr: string) => Number(/\[tracer\] {3}syscall 59: (\d+) stops/.exec(stderr)?.[1] ?? 0);

    const linked = await run([...empty, join(dir, 'noexec'), join(dir, 'link')], ['hello']);
    assert.equal(linked.code, 0, linked.stderr);
    assert.match(linked.stdout.toString(), /^Hello, /);
    // The not-executable file and the link's: the twelve empty directories were passed over before the start.
    if (process.arch === 'x64') assert.equal(execStops(linked.stderr), 2, linked.stderr);

    const direct = await run([...empty, `${M}/sw/bin`], ['hello']);
    assert.equal(direct.code, 0, direct.stderr);
    assert.match(direct.stdout.toString(), /^Hello, /);

    const plain = await run([...empty, join(dir, 'plain')], ['greet-plain', 'a', 'b c']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout.toString(), `plain:${join(dir, 'plain', 'greet-plain')}:a b c\n`);

    const denied = await run([join(dir, 'noexec'), ...empty], ['hello']);
    assert.equal(denied.code, 126);
    assert.match(denied.stderr, /executing hello: Permission denied/);
    const missing = await run(empty, ['no-such-command-anywhere']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /executing no-such-command-anywhere: No such file or directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

layered('a command started as a fork (where a clone that shares memory is refused) gets the same status, limits, signals and /cvmfs', async () => {
  const r = await exec(['/bin/bash', '-c', `trap -p; ulimit -Sn; cat ${M}/small/hello.txt | wc -c; exit 3`], { UCVMFS_TEST_FAULT: 'clone', PATH: process.env.PATH ?? '' });
  const same = await exec(['/bin/bash', '-c', `trap -p; ulimit -Sn; cat ${M}/small/hello.txt | wc -c; exit 3`]);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout.toString(), same.stdout.toString());
  assert.equal(r.stdout.toString().trim().split('\n').pop(), String(readTruth(FQRN).entries['/small/hello.txt']!.size));
});

test('exit status, death by a signal, a missing command, repositories opened on first access, configured ones listed, LD_LIBRARY_PATH into /cvmfs', async () => {
  assert.equal((await sh('exit 7')).code, 7);
  const killed = await sh('kill -TERM $$');
  assert.equal(killed.signal, 'SIGTERM');
  const missing = await exec(['/nonexistent/cmd']);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /nonexistent\/cmd: No such file or directory/);
  const two = await sh(`ls /cvmfs/features.test.example.org/ | head -1; cat ${M}/small/hello.txt | wc -c; ls /cvmfs/not-a-repo.example.org 2>&1; ls /cvmfs`);
  const truthF = readTruth('features.test.example.org');
  const lines = two.stdout.toString().trim().split('\n');
  assert.equal(lines[0], truthF.entries['/']!.entries!.filter((n) => n !== '.cvmfs')[0]);
  assert.match(lines[2]!, /No such file or directory/);
  assert.deepEqual(lines.slice(3).sort(), ['features.test.example.org', FQRN]);
  const configured = await ucvmfs(['exec', '--repo', `${FQRN},${SW}`, '--', 'ls', '/cvmfs'], { ...env, CVMFS_REPOSITORIES: 'rmd160.test.example.org' });
  assert.deepEqual(configured.stdout.toString().trim().split('\n').sort(), [FQRN, 'rmd160.test.example.org', SW].sort(), 'configured repositories are listed before any access');
  const lib = await exec(['/bin/sh', '-c', `LD_LIBRARY_PATH=${M}/sw/lib ${M}/sw/bin/hello-norpath`]);
  assert.equal(lib.code, 0, lib.stderr);
  assert.match(lib.stdout.toString(), /^Hello, .*\(from libgreet 1\.0\)\n$/);
});

test('the command gets the caller\'s soft limit of open files back (Node raises its own to the hard limit)', () => {
  const hard = spawnSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
  const soft = hard === 'unlimited' ? '1000' : String(Math.min(1000, Number(hard) - 1));
  const r = spawnSync('/bin/bash', ['-c', `ulimit -Sn ${soft} && "$0" exec -- /bin/sh -c 'ulimit -Sn; ulimit -Hn'`, BIN], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `${soft}\n${hard}\n`);
});

test('a file size limit the caller set (a batch system\'s) binds the command, not the cache and shadow files: a file larger than it reads, cold', async () => {
  const truth = readTruth(FQRN);
  const big = '/big/random_32M.bin';
  // Not spawnSync: the server answering the job lives in this process.
  const r = await spawnText('/bin/bash', ['-c', `ulimit -S -f 2000 && "$0" exec -- /bin/sh -c 'sha1sum < ${M}${big}; ulimit -S -f; head -c 3000000 /dev/zero > "$1/f" 2>/dev/null; echo $?' sh "${tempDir('ucvmfs-fsize-')}"`, BIN],
    { env: { ...process.env, ...env, CVMFS_CACHE_BASE: tempDir('ucvmfs-fsize-cache-') }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // 2000 KiB (sh counts 512-byte blocks): the command writes no more (head is killed by SIGXFSZ or fails), yet reads 32 MiB.
  assert.match(r.stdout, new RegExp(`^${truth.entries[big]!.sha1}  -\n4000\n[1-9][0-9]*\n$`), r.stderr);
});

test('a job started from a directory removed meanwhile runs there, as from a shell', async () => {
  const dir = join(tempDir('ucvmfs-gone-'), 'd');
  const r = await spawnText('/bin/bash', ['-c', `mkdir "$1" && cd "$1" && rmdir "$1" && "$0" exec -- /bin/sh -c 'echo ran; readlink /proc/self/cwd'`, BIN, dir],
    { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `ran\n${dir} (deleted)\n`);
});

/** spawn's result as spawnSync gives it (stdout and stderr as text), while this process goes on serving. */
function spawnText(file: string, args: string[], opts: { env: NodeJS.ProcessEnv; encoding: 'utf8' }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(file, args, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('a command that dumps core leaves its own core file, not one of ucvmfs\'s front', (t) => {
  const pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
  if (pattern.includes('/') || pattern.startsWith('|')) return t.skip(`core files go elsewhere here (${pattern})`);
  const dir = tempDir('ucvmfs-core-');
  const r = spawnSync('/bin/bash', ['-c', `ulimit -c unlimited && cd "${dir}" && "$0" exec -- /bin/sh -c 'kill -SEGV $$'`, BIN], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(r.signal, 'SIGSEGV', r.stderr); // the front dies as the command did (bash execs it: no status)
  const cores = readdirSync(dir).filter((n) => n.startsWith(pattern.replace(/%.*/, '')));
  if (cores.length === 0) return t.skip('no core file was written here (a core limit above the test\'s)');
  for (const c of cores) assert.ok(!readFileSync(join(dir, c)).includes('ucvmfs_front'), `${c} is the front's core`);
});

test('arguments, environment and a working directory that are not UTF-8 reach the command as their bytes; exported bash functions and names a shell drops reach it too', () => {
  const dir = tempDir('ucvmfs-bytes-');
  const script = join(dir, 'run.sh');
  writeFileSync(script, [
    'D="$2/$(printf \'caf\\351\')"; mkdir "$D" && cd "$D" || exit 9',
    'A=$(printf \'a\\377b\')',
    // Lmod's `module` is such a function (BASH_FUNC_module%%); bin/ucvmfs.js runs under /bin/sh, dash here.
    'greet() { echo from an exported function; }; export -f greet',
    'env "$(printf \'c\\377d=x\')" "$1" exec -- /usr/bin/env | LC_ALL=C grep -a "^c.d="',
    'X="$A" exec env a.b=1 "$1" exec -- /bin/bash -c \'printf "%s|%s|" "$1" "$X"; pwd; greet; /usr/bin/env | grep -a "^a[.]b="\' sh "$A"',
  ].join('\n'));
  const r = spawnSync('/bin/bash', [script, BIN, dir], { env: { ...process.env, ...env } });
  assert.equal(r.status, 0, r.stderr.toString());
  const want = Buffer.concat([Buffer.from('c\xffd=x\na\xffb|a\xffb|', 'latin1'), Buffer.from(`${dir}/caf`), Buffer.from([0xe9, 0x0a]), Buffer.from('from an exported function\na.b=1\n')]);
  assert.deepEqual(r.stdout, want, r.stdout.toString('latin1'));
});

test('descriptors the caller left open reach the command (a lock on fd 7, bash\'s <(...)); its own close-on-exec ones do not', () => {
  const dir = tempDir('ucvmfs-fds-');
  const script = `exec 7>"${dir}/seven"; exec 8>"${dir}/eight"; exec 8>&-; exec 9<"${dir}/seven"; `
    + `"$0" exec -- /bin/sh -c 'echo on seven >&7; cat /dev/fd/3 2>/dev/null; ls /proc/$$/fd | sort -n | tr "\\n" " "; echo' 3< <(echo substituted) && cat "${dir}/seven"`;
  const r = spawnSync('/bin/bash', ['-c', script, BIN], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [sub, fds, seven] = r.stdout.split('\n');
  assert.equal(sub, 'substituted');
  assert.deepEqual(fds!.trim().split(' ').map(Number).filter((n) => n <= 9), [0, 1, 2, 3, 7, 9], fds);
  assert.equal(seven, 'on seven');
  // Standard descriptors the caller closed are closed for the command too (Node would have put /dev/null there).
  const closed = spawnSync('/bin/bash', ['-c', `"$0" exec -- /bin/sh -c 'for f in 0 1; do [ -e /proc/$$/fd/$f ] && echo "$f open" >&2 || echo "$f closed" >&2; done' <&- >&-`, BIN], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(closed.status, 0, closed.stderr);
  assert.deepEqual(closed.stderr.trim().split('\n').filter((l) => /^\d (open|closed)$/.test(l)), ['0 closed', '1 closed'], closed.stderr);
});

test('the command\'s stdout and stderr pipes stay blocking while ucvmfs opens a repository and downloads: a large write after that does not fail', async () => {
  // A cold cache: the first /cvmfs access opens the repository and downloads (Node's streams look at stdout and
  // stderr then, and used to build them, making the pipes the command shares non-blocking).
  const cold = { CVMFS_CACHE_BASE: tempDir('ucvmfs-stdio-') };
  const r = await exec(['/bin/sh', '-c', `cat ${M}/small/hello.txt >/dev/null && grep -h flags /proc/$$/fdinfo/1 /proc/$$/fdinfo/2 >&2 && head -c 30000000 /dev/zero && ls -R ${M} >/dev/null && head -c 10000000 /dev/zero`], cold);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.length, 40_000_000);
  const flags = [...r.stderr.matchAll(/flags:\s+(\d+)/g)].map((m) => parseInt(m[1]!, 8));
  assert.equal(flags.length, 2, r.stderr);
  for (const f of flags) assert.equal(f & 0o4000, 0, `O_NONBLOCK on the command's stdio: ${r.stderr}`);
});

test('chunked files on an empty cache: every chunk copied from its cache file into place (copyAt), content as truth.json', async () => {
  const cold = { CVMFS_CACHE_BASE: tempDir('ucvmfs-chunked-') };
  const r = await exec(['sha1sum', `${M}/big/random_32M.bin`, `${M}/big/text_20M.txt`], cold);
  assert.equal(r.code, 0, r.stderr);
  const truth = readTruth(FQRN);
  assert.deepEqual(r.stdout.toString().trim().split('\n').map((l) => l.split(' ')[0]), [truth.entries['/big/random_32M.bin']!.sha1, truth.entries['/big/text_20M.txt']!.sha1]);
});

test('the native copyAt puts a whole file at an offset of an open one, leaving the bytes around it', async () => {
  const dir = tempDir('ucvmfs-copyat-');
  writeFileSync(join(dir, 'src'), 'chunk');
  writeFileSync(join(dir, 'dst'), '0123456789');
  const fd = openSync(join(dir, 'dst'), 'r+');
  try {
    assert.equal(await loadTracer().copyAt!(join(dir, 'src'), fd, 3), 5);
  } finally {
    closeSync(fd);
  }
  assert.equal(readFileSync(join(dir, 'dst'), 'utf8'), '012chunk89');
});

test('many processes and threads at once: make -j8, background jobs, python threads; ptrace inside fails cleanly', async () => {
  const dir = tempDir('ucvmfs-make-');
  const truth = readTruth(FQRN);
  const files = truth.entries['/many']!.entries!.slice(0, 24);
  writeFileSync(join(dir, 'Makefile'), `all: ${files.map((f) => `${f}.sum`).join(' ')}\n\tcat *.sum | wc -l\n%.sum:\n\tsha1sum ${M}/many/$* > $@\n`);
  const make = await exec(['make', '-s', '-j8', '-C', dir]);
  assert.equal(make.code, 0, make.stderr);
  assert.match(make.stdout.toString(), /^24$/m);
  const sums = execFileSync('cat', files.map((f) => join(dir, `${f}.sum`))).toString().trim().split('\n');
  sums.forEach((line, i) => assert.equal(line.split(' ')[0], truth.entries[`/many/${files[i]}`]!.sha1));

  const bg = await sh(`for i in 1 2 3 4 5 6; do (sha1sum ${M}/big/* > /dev/null; echo done) & done; wait`);
  assert.equal(bg.stdout.toString().trim().split('\n').length, 6, bg.stderr);

  const threads = await exec([PY, '-c', `
import threading, hashlib
res = {}
def work(n):
    with open('${M}/many/' + n, 'rb') as f: res[n] = hashlib.sha1(f.read()).hexdigest()
ts = [threading.Thread(target=work, args=(n,)) for n in ${JSON.stringify(files)}]
[t.start() for t in ts]; [t.join() for t in ts]
print(len(res))
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print('traceme', libc.ptrace(0, 0, 0, 0), ctypes.get_errno())
`]);
  assert.equal(threads.code, 0, threads.stderr);
  assert.deepEqual(threads.stdout.toString().trim().split('\n'), ['24', 'traceme -1 1']);

  const nested = await exec([process.execPath, join(ROOT, 'dist/lib/cli/main.js'), 'exec', '--', '/bin/true']);
  assert.notEqual(nested.code, 0);
  assert.match(nested.stderr, /ptrace is not allowed here/);
});

layered('newer system calls: statx and newfstatat with AT_EMPTY_PATH, linkat of a descriptor (EXDEV), readlink of it into a zeroed buffer, openat2, faccessat2, clone3, close_range, execveat from a thread', async () => {
  const bin = join(tempDir('ucvmfs-cc-'), 'newcalls');
  execFileSync('gcc', ['-O1', '-pthread', '-o', bin, join(ROOT, 'test/native/newcalls.c')]);
  const local = ['/usr/bin/../lib/../bin', '/proc/self/../self/cwd/', '/no/such/file', '/etc/../etc/hostname/x'];
  const r = await exec([bin, `${M}/sw/bin/hello`, `${M}/links/abs_dir/bin/../lib/libgreet.so`, `${M}/links/chain_to_rel_file`, ...local]);
  const size = readTruth(FQRN).entries['/sw/bin/hello']!.size;
  const nativeOut = execFileSync(bin, ['/bin/true', ...local]).toString().split('\n');
  const native = nativeOut.filter((l) => l.startsWith('realpath ')).map((l) => l.replace(/^realpath \/proc\/\d+/, 'realpath /proc/PID'));
  const nulls = nativeOut.filter((l) => l.startsWith('null_'));
  assert.equal(nulls.length, 6);
  assert.equal(native.length, local.length);
  assert.deepEqual(r.stdout.toString().trim().split('\n').map((l) => l.replace(/^realpath \/proc\/\d+/, 'realpath /proc/PID').replace(/^realpath \/tmp\/.*/, 'realpath CWD')), [
    `statx 0 ${size}`, `statx_empty_path 0 ${size}`, `fstatat_empty_path 0 ${size}`, ...nulls, 'linkat_empty_path -1 Invalid cross-device link',
    `readlink_fd ${M}/sw/bin/hello`, 'openat2 ELF',
    'openat2_create Read-only file system', 'faccessat2_x 0', 'faccessat2_w -1 Read-only file system',
    `realpath ${M}/sw/lib/libgreet.so.1.0`, `realpath ${M}/small/hello.txt`, ...native.map((l) => l.replace(/^realpath \/tmp\/.*/, 'realpath CWD')),
    'thread_read 4 ELF', 'close_range 0', 'Hello, from-a-thread! (from libgreet 1.0)',
  ], r.stderr);
  assert.equal(r.code, 0);
});

test('job control and signals: SIGSTOP/SIGCONT reach the command, Ctrl-C (SIGINT to the process group) ends it, SIGTERM to ucvmfs is passed on', async () => {
  const stopCont = await sh(`sleep 0.5 & p=$!; kill -STOP $p; sleep 0.2; grep -q '^State:[[:space:]]*[tT]' /proc/$p/status && echo stopped; kill -CONT $p; wait $p; echo status=$?`);
  assert.deepEqual(stopCont.stdout.toString().trim().split('\n'), ['stopped', 'status=0'], stopCont.stderr);

  const { spawn } = await import('node:child_process');
  const run = (sendTo: 'group' | 'ucvmfs', sig: NodeJS.Signals) => new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) => {
    const p = spawn(process.execPath, [join(ROOT, 'dist/lib/cli/main.js'), 'exec', '--', '/bin/bash', '-c', `cat ${M}/small/hello.txt > /dev/null; echo ready; sleep 30`], { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) process.kill(sendTo === 'group' ? -p.pid! : p.pid!, sig);
    });
    p.on('close', (code, signal) => resolve({ code, signal, out }));
  });
  const t0 = Date.now();
  const int = await run('group', 'SIGINT');
  assert.equal(int.signal, 'SIGINT', 'the command died of SIGINT, and ucvmfs reports it the same way');
  const term = await run('ucvmfs', 'SIGTERM');
  assert.equal(term.signal, 'SIGTERM');
  assert.ok(Date.now() - t0 < 20_000, 'no wait for the 30 s sleep');
});

test('software from a repository of ours: python imports a package, gcc includes a header, make -j4 builds a tree into /tmp, stdin passes through', async () => {
  const S = `/cvmfs/${SW}`;
  const py = await exec([PY, '-c', `import sys; sys.path.insert(0, '${S}/python'); import mypkg; print(mypkg.answer(), mypkg.VERSION, mypkg.__file__)`]);
  assert.equal(py.stdout.toString(), `42 1.2 ${S}/python/mypkg/__init__.py\n`, py.stderr);
  const dir = tempDir('ucvmfs-gcc-');
  writeFileSync(join(dir, 'main.c'), '#include <stdio.h>\n#include "greet.h"\nint main(void) { puts(GREETING); return 0; }\n');
  const cc = await exec(['gcc', `-I${S}/include`, '-o', join(dir, 'main'), join(dir, 'main.c')]);
  assert.equal(cc.code, 0, cc.stderr);
  assert.equal(execFileSync(join(dir, 'main')).toString(), 'hello from a header on cvmfs\n');
  const out = tempDir('ucvmfs-make-out-');
  const mk = await exec(['make', '-s', '-j4', '-C', `${S}/project`, `OUT=${out}`]);
  assert.equal(mk.code, 0, mk.stderr);
  for (let i = 0; i < 8; i++) assert.equal(execFileSync('cat', [join(out, `part${i}.cnt`)]).toString().trim(), String(100 * (i + 1)));
  const setup = await sh(`source ${S}/setup.sh && echo $SW_READY`);
  assert.equal(setup.stdout.toString(), 'yes\n');
  const cat = await ucvmfs(['exec', '--', 'cat'], env, 'x from stdin\n');
  assert.equal(cat.stdout.toString(), 'x from stdin\n');
});

layered('errors where a real mount gives them: ENOENT, ENOTDIR, ELOOP-free dangling links, EACCES-free reads', async () => {
  const r = await sh([
    `stat ${M}/no/such 2>&1`, `stat ${M}/README.txt/x 2>&1`, `cat ${M}/links/dangling 2>&1`, `ls ${M}/README.txt/ 2>&1`,
    `cd ${M}/README.txt 2>&1`, `${M}/small/hello.txt 2>&1`,
  ].join('; '));
  const lines = (r.stdout.toString() + r.stderr).trim().split('\n');
  assert.match(lines[0]!, /No such file or directory/);
  assert.match(lines[1]!, /Not a directory/);
  assert.match(lines[2]!, /No such file or directory/);
  assert.match(lines[3]!, /Not a directory/);
  assert.match(lines[4]!, /Not a directory/);
  assert.match(lines[5]!, /Permission denied/);
});

test('four ucvmfs exec jobs at once share one cache and shadow tree; a job killed with SIGKILL leaves it usable; the next job lists nothing again', async () => {
  const cache = tempDir('ucvmfs-shared-');
  const truth = readTruth(FQRN);
  const files = Object.entries(truth.entries).filter(([, t]) => t.type === 'file').map(([p]) => p);
  const list = join(tempDir('ucvmfs-list-'), 'files');
  writeFileSync(list, files.map((p) => M + p).join('\0'));
  const job = () => ucvmfs(['exec', '--stats', '--', 'bash', '-c', `xargs -0 sha1sum < ${list}`], { ...env, CVMFS_CACHE_BASE: cache });
  // A job killed while it fills the tree.
  const { spawn } = await import('node:child_process');
  const victim = spawn(process.execPath, [join(ROOT, 'dist/lib/cli/main.js'), 'exec', '--', 'bash', '-c', `xargs -0 cat < ${list} > /dev/null`], { env: { ...process.env, ...env, CVMFS_CACHE_BASE: cache }, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 700));
  victim.kill('SIGKILL');
  await new Promise((r) => victim.on('close', r));
  const runs = await Promise.all([job(), job(), job(), job()]);
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    const sums = new Map(r.stdout.toString().trim().split('\n').map((l) => [l.slice(42).replace(M, ''), l.slice(0, 40)]));
    assert.equal(sums.size, files.length);
    for (const p of files) assert.equal(sums.get(p), truth.entries[p]!.sha1, p);
  }
  const again = await job();
  assert.equal(again.code, 0);
  assert.match(again.stderr, / 0 directories listed \(0 ahead of the program\), 0 names made on their own, 0 files \(0 B\) materialized/, again.stderr);
});

test('old shadow-tree revisions are pruned: not the newest, not linked from a live session, idle for the grace time; retired generations at once', async () => {
  const { pruneShadow } = await import('../lib/connector/shadow-bounds.js');
  const { mkdirSync, symlinkSync, utimesSync, existsSync: exists, writeFileSync: write } = await import('node:fs');
  const base = tempDir('ucvmfs-prune-');
  const sessions = join(base, 'sessions');
  const rev = (name: string, idleSeconds: number) => {
    const d = join(base, 'shadow', 'rev', name);
    mkdirSync(join(d, 'sub'), { recursive: true });
    mkdirSync(`${d}.hidden/.cvmfs`, { recursive: true });
    write(join(d, 'sub', 'file'), 'x');
    mkdirSync(`${d}.state`, { recursive: true });
    const t = Date.now() / 1000 - idleSeconds;
    utimesSync(`${d}.state`, t, t);
    return d;
  };
  const old = rev('sw.example.org@aaaa', 7200);
  const newest = rev('sw.example.org@bbbb', 7200);
  const inSession = rev('sw.example.org@cccc', 7200);
  const recent = rev('sw.example.org@dddd', 60);
  // Generations of one revision: the newest stays; older ones go at once unless a live session links them.
  const retired = rev('sw.example.org@eeee', 60);
  const retiredInUse = rev('sw.example.org@eeee~1', 60);
  const current = rev('sw.example.org@eeee~2', 60);
  // What a pruner that died left.
  const trash = join(base, 'shadow', 'trash', 'sw.example.org@ffff.0123');
  mkdirSync(join(trash, 'sub'), { recursive: true });
  chmodSync(join(trash, 'sub'), 0o555);
  // A takeover guard whose waiter was killed, and one of a live waiter (this process).
  const { holderId } = await import('../lib/cache/claim.js');
  const deadPid = spawnSync('/bin/true').pid;
  mkdirSync(join(base, 'shadow', 'locks'), { recursive: true });
  const deadGuard = join(base, 'shadow', 'locks', 'sw.example.org.lock.takeover');
  const liveGuard = join(base, 'shadow', 'locks', 'other.example.org.lock.takeover');
  write(deadGuard, `${hostname()} ${deadPid} 1`);
  write(liveGuard, holderId());
  mkdirSync(join(base, 'shadow', 'root'), { recursive: true });
  symlinkSync(newest, join(base, 'shadow', 'root', 'sw.example.org'));
  mkdirSync(join(sessions, `${process.pid}-x`), { recursive: true });
  symlinkSync(inSession, join(sessions, `${process.pid}-x`, 'sw.example.org'));
  symlinkSync(retiredInUse, join(sessions, `${process.pid}-x`, 'other.example.org'));
  const removed = await pruneShadow(join(base, 'shadow'), sessions);
  assert.deepEqual(removed.sort(), ['sw.example.org@aaaa', 'sw.example.org@eeee']);
  for (const d of [old, retired]) assert.equal(exists(d) || exists(`${d}.state`) || exists(`${d}.hidden`), false, d);
  for (const d of [newest, inSession, recent, retiredInUse, current]) assert.ok(exists(join(d, 'sub', 'file')) && exists(`${d}.hidden/.cvmfs`) && exists(`${d}.state`), d);
  assert.deepEqual(readdirSync(join(base, 'shadow', 'trash')), []);
  assert.equal(exists(deadGuard), false, 'the dead waiter\'s guard is removed');
  assert.ok(exists(liveGuard), 'a live waiter\'s guard is kept');
});

test('sessions of dead jobs are removed at the next start, also when their pid now belongs to another process; live ones and other hosts\' are kept', async () => {
  const { startTime } = await import('../lib/cache/claim.js');
  const shadow = tempDir('ucvmfs-sessions-');
  const sessions = join(shadow, 'sessions');
  mkdirSync(sessions, { recursive: true });
  const deadPid = spawnSync('/bin/true').pid;
  // pid 1 lives for the whole test: a session naming it with another start time is a dead job's, its pid reused.
  const reused = `${hostname()}.1@${Number(startTime(1)) + 1}-aaaaaa`;
  const live = `${hostname()}.1@${startTime(1)}-bbbbbb`;
  const deadOld = `${hostname()}.${deadPid}-cccccc`;
  const otherHost = `elsewhere.example.org.${deadPid}@1-dddddd`;
  for (const n of [reused, live, deadOld, otherHost]) mkdirSync(join(sessions, n));
  const r = await exec(['/bin/sh', '-c', 'ls /cvmfs >/dev/null'], { UCVMFS_SHADOW_DIR: shadow });
  assert.equal(r.code, 0, r.stderr);
  // The job's own session may still be there: through the front, ucvmfs returns before it cleans up.
  const left = readdirSync(sessions);
  assert.deepEqual([reused, live, deadOld, otherHost].filter((n) => left.includes(n)), [live, otherHost]);
});

layered('a program whose loader (PT_INTERP) is under /cvmfs runs, argv[0] kept; a script whose interpreter is one too', async () => {
  const S = `/cvmfs/${SW}`;
  const direct = await exec([`${S}/bin/own-loader`, 'a', 'b c']);
  assert.equal(direct.stdout.toString(), `argv0=${S}/bin/own-loader a b c\n`, direct.stderr);
  assert.equal(direct.code, 7);
  const renamed = await sh(`exec -a my-name ${S}/bin/own-loader x`);
  assert.equal(renamed.stdout.toString(), 'argv0=my-name x\n', renamed.stderr);
  const script = await exec([`${S}/bin/own-script`, 'arg']);
  assert.equal(script.stdout.toString(), `argv0=${S}/bin/own-loader -x ${S}/bin/own-script arg\n`, script.stderr);
  assert.equal(script.code, 7);
  // The same from outside /cvmfs: a user's program built against a loader under /cvmfs (as EESSI's compatibility
  // layer has it), and a script whose interpreter is there, which the kernel alone would look for on the host.
  const out = tempDir('ucvmfs-outside-exec-');
  const outside = await sh([
    `cp ${S}/bin/own-loader ${out}/prog && ${out}/prog a; echo "rc=$?"`,
    `printf '#!/%s -x\\necho never\\n' /${S}/bin/own-loader > ${out}/script && chmod +x ${out}/script && ${out}/script b; echo "rc=$?"`,
    `cd ${out} && ./script c; echo "rc=$?"`,
    `printf '#!/bin/sh\\necho plain $0\\n' > ${out}/plain && chmod +x ${out}/plain && ./plain`,
    `${S}/bin/nested arg; echo "rc=$?"`, `${S}/bin/origin`, `${S}/links/upback/origin`,
    `${S}/bin/selfexe`, `cp ${S}/bin/selfexe ${out}/selfexe && cd ${out} && ./selfexe`,
  ].join('; '));
  assert.equal(outside.stdout.toString(), [`argv0=${out}/prog a`, 'rc=7', `argv0=//${S}/bin/own-loader -x ${out}/script b`, 'rc=7',
    `argv0=//${S}/bin/own-loader -x ./script c`, 'rc=7', 'plain ./plain',
    `argv0=${S}/bin/own-loader -y ${S}/bin/wrapper-interp ${S}/bin/nested arg`, 'rc=7', 'greet2 via $ORIGIN', 'greet2 via $ORIGIN',
    `exe=${S}/bin/selfexe argv0=${S}/bin/selfexe`, `exe=${S}/bin/selfexe argv0=${S}/bin/selfexe child`,
    `exe=${out}/selfexe argv0=./selfexe`, `exe=${out}/selfexe argv0=./selfexe child`, ''].join('\n'), outside.stderr);
});

layered('ordinary file commands outside /cvmfs behave as without ucvmfs: cp, mv, install and ln -f onto existing names, ln -sfn, O_PATH|O_DIRECTORY of a file is ENOTDIR', async () => {
  // coreutils asks whether a destination is a directory with open(O_PATH|O_DIRECTORY); O_TMPFILE's test once
  // matched O_DIRECTORY alone and the flag was taken out, so every cp onto an existing file failed.
  const script = `cd "$1" && echo 1 > a && echo 2 > b && cp a b && cat b && echo 3 > c && mv c b && cat b && install -m644 a b && ln -f b hl && ln -s a sl && cp b sl && cat a && ln -sf b sl2 && ln -sf a sl2 && readlink sl2 && mkdir v1 v2 && ln -sfn v1 cur && ln -sfn v2 cur && readlink cur && ls -i1 hl b | awk '{print $1}' | uniq | wc -l && python3 -c "
import os
for f in ('a', 'v1'):
    try:
        os.close(os.open(f, os.O_PATH | os.O_DIRECTORY)); print(f, 'opened')
    except OSError as e:
        print(f, e.errno)"`;
  const plain = spawnSync('/bin/bash', ['-c', script, 'sh', tempDir('ucvmfs-plain-')], { encoding: 'utf8' });
  assert.equal(plain.status, 0, plain.stderr);
  const r = await exec(['/bin/bash', '-c', script, 'sh', tempDir('ucvmfs-outside-')]);
  assert.equal(r.stdout.toString(), plain.stdout, r.stderr);
  assert.equal(r.code, 0);
  assert.ok(plain.stdout.endsWith('a 20\nv1 opened\n'), plain.stdout);
});

/** A TCP port that counts connections and answers none: a job that asks no server leaves it at 0. */
async function countingServer(): Promise<{ url: string; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const srv = createServer((sock) => {
    n++;
    sock.destroy();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/@fqrn@`, count: () => n, close: () => new Promise((r) => srv.close(() => r())) };
}

layered('a name under /cvmfs that cannot be a repository is ENOENT at once, no server asked, no message; a repository that fails to open is reported once', async () => {
  const probe = await countingServer();
  try {
    const e = { CVMFS_SERVER_URL: probe.url, CVMFS_CACHE_BASE: tempDir('ucvmfs-names-') };
    const r = await exec(['/bin/bash', '-c', `ls /cvmfs/lib 2>&1; stat /cvmfs/lib/python3.11/os.py 2>&1; ${PY} -c 'import os; print(os.path.exists("/cvmfs/lib"))'; cat /cvmfs/local/x 2>&1; echo end`], e);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString().trim().split('\n');
    assert.match(lines[0]!, /cannot access '\/cvmfs\/lib': No such file or directory/);
    assert.match(lines[1]!, /No such file or directory/);
    assert.equal(lines[2], 'False');
    assert.match(lines[3]!, /No such file or directory/);
    assert.equal(lines[4], 'end');
    assert.equal(r.stderr, '', 'no message from ucvmfs');
    assert.equal(probe.count(), 0, 'no request to any server');
    const bad = await exec(['/bin/bash', '-c', 'ls /cvmfs/no-such.example.org; stat /cvmfs/no-such.example.org/a; cat /cvmfs/no-such.example.org/b; true'], e);
    assert.equal((bad.stderr.match(/ucvmfs: cannot open \/cvmfs\/no-such\.example\.org/g) ?? []).length, 1, bad.stderr);
    assert.equal((bad.stderr.match(/No such file or directory/g) ?? []).length, 3, bad.stderr);
  } finally {
    await probe.close();
  }
});

/** Runs `ucvmfs exec` under a given umask (through sh, so that the umask is the process's from the start). */
function execUmask(umask: string, argv: string[], extra: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('/bin/sh', ['-c', `umask ${umask} && exec "$0" "$@"`, process.execPath, join(ROOT, 'dist/lib/cli/main.js'), 'exec', '--', ...argv], { env: { ...process.env, ...env, ...layerEnv, ...extra }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('close', (code) => resolve({ code, stderr: err }));
  });
}

function walkTree(dir: string, visit: (p: string, mode: number, isDir: boolean) => void): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) continue;
    visit(p, st.mode, st.isDirectory());
    if (st.isDirectory()) walkTree(p, visit);
  }
}

layered('private and nosuid: the cache is made 0700 and the shadow area 0711 (others may traverse, never list or write) whatever the umask, refused when another user owns them or others may write them; stat shows the stored setuid, setgid and sticky bits, none reaches a shadow file', async () => {
  const cache = tempDir('ucvmfs-private-');
  const S = `/cvmfs/${SW}`;
  const r = await execUmask('000', ['/bin/sh', '-c', `cat ${M}/small/hello.txt ${S}/scratch/keep >/dev/null && ls -R ${S} >/dev/null && stat -c '%a %n' ${S}/bin/suid-tool ${S}/scratch ${M}/small/hello.txt >&2`], { CVMFS_CACHE_BASE: cache });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stderr.trim().split('\n'), [`6755 ${S}/bin/suid-tool`, `1777 ${S}/scratch`, `644 ${M}/small/hello.txt`]);
  for (const d of ['shadow', 'shadow/rev', 'shadow/root', 'shadow/sessions']) assert.equal(lstatSync(join(cache, d)).mode & 0o777, 0o711, d);
  assert.equal(lstatSync(join(cache, 'shared')).mode & 0o777, 0o700, 'the objects stay private');
  let shadowFiles = 0;
  walkTree(cache, (p, mode, isDir) => {
    if (isDir || p.includes('/shadow/rev/')) assert.equal(mode & 0o022, 0, `${p} (${(mode & 0o7777).toString(8)}) is not writable by group or others`);
    if (p.includes('/shadow/rev/') && !p.includes('.state')) {
      // S_ISVTX marks an entry whose stored mode has more bits (lib/connector/modes.ts); it grants nothing.
      assert.equal(mode & 0o6222, 0, `${p} (${(mode & 0o7777).toString(8)}): no write, setuid or setgid bit`);
      if (!isDir) shadowFiles++;
    } else if (isDir) {
      const traversable = p.includes('/shadow') && !p.endsWith('/fill');
      assert.equal(mode & 0o077, traversable ? 0o011 : 0, `${p} (${(mode & 0o7777).toString(8)}) is ${traversable ? '0711' : '0700'}`);
    }
  });
  assert.ok(shadowFiles > 10, `shadow files checked: ${shadowFiles}`);
  // Writable by its group, then owned by another user: refused, saying which directory and why.
  const rev = join(cache, 'shadow', 'rev');
  chmodSync(rev, 0o770);
  const open = await execUmask('022', ['cat', `${M}/small/hello.txt`], { CVMFS_CACHE_BASE: cache });
  assert.notEqual(open.code, 0);
  assert.match(open.stderr, new RegExp(`${rev}.*writable by its group`));
  chmodSync(rev, 0o700);
  chownSync(join(cache, 'shadow'), 4242, 4242);
  const other = await execUmask('022', ['cat', `${M}/small/hello.txt`], { CVMFS_CACHE_BASE: cache });
  assert.notEqual(other.code, 0);
  assert.match(other.stderr, /shadow is owned by uid 4242, not by this user/);
});

layered('writes by any route never change the shadow tree: /proc/self/fd and /proc/<pid>/fd, truncate, ftruncate, chmod, fchmod, chown, utimes, setxattr, unlink and rename by a shadow path', async () => {
  const cache = tempDir('ucvmfs-tamper-');
  const F = `${M}/small/hello.txt`;
  const py = (code: string) => `${PY} -c '${code}' 2>&1 | tail -1`;
  const REAL = `p=$(${PY} -c 'import mmap, re; f = open("${F}", "rb"); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); print(re.search(r"/\\S*/shadow/rev/\\S*hello.txt", open("/proc/self/maps").read()).group(0))'); echo "$p" | grep -q /shadow/rev/`;
  const steps = [
    'echo TAMPERED >/proc/self/fd/3', 'echo TAMPERED >>/proc/$$/fd/3', 'truncate -s0 /proc/self/fd/3', 'chmod 777 /proc/self/fd/3',
    'chown 1:1 /proc/self/fd/3', 'touch -d 2001-01-01 /proc/self/fd/3', 'setfattr -n user.x -v 1 /proc/self/fd/3',
    py('import os; os.open("/proc/%d/fd/3" % os.getpid(), os.O_WRONLY)'), py('import os; os.truncate(3, 0)'),
    py('import os; os.chmod(3, 0o777)'), py('import os; os.utime(3, (1, 1))'), py('import os; os.setxattr(3, "user.x", b"1")'),
    // The real path, as /proc/self/maps reveals it, and the directory through its fd.
    `${REAL} && echo x > "$p"`,
    // The same through /cvmfs/.. (the tracer hands the kernel that path rewritten: it judges what the kernel gets).
    `${REAL} && echo x > "/cvmfs/..$p"`, `${REAL} && rm -f "/cvmfs/..$p"`,
    'rm -f /proc/self/fd/4/hello.txt', 'mv /proc/self/fd/4/one_byte /proc/self/fd/4/two', 'ln -s x /proc/self/fd/4/new',
    // /dev/fd and /dev/std* are links to /proc/self/fd: the tracer once followed them to its own descriptors.
    'echo TAMPERED >/dev/fd/3', 'sh -c "echo TAMPERED >>/dev/stdin" <&3', 'chmod 777 /dev/stdin <&3', 'touch -d 2001-01-01 /dev/fd/3',
    'chmod 700 /dev/fd/4',
  ];
  const script = `exec 3<${F} 4<${M}/small; ${steps.map((c) => `(${c}) 2>&1 | grep -c 'Read-only file system\\|Errno 30'`).join('; ')}; cat ${F}; stat -c %a ${F}`;
  const r = await exec(['/bin/bash', '-c', script], { CVMFS_CACHE_BASE: cache });
  const lines = r.stdout.toString().trim().split('\n');
  const truth = readTruth(FQRN);
  steps.forEach((c, i) => assert.equal(lines[i], '1', `${c}: EROFS\n${r.stdout.toString()}${r.stderr}`));
  const next = await exec(['/bin/bash', '-c', `sha1sum < ${F}; stat -c %a ${F}; ls ${M}/small | wc -l; stat -c %a ${M}/small; stat -c %Y ${F}`], { CVMFS_CACHE_BASE: cache });
  assert.deepEqual(next.stdout.toString().trim().split('\n'), [`${truth.entries['/small/hello.txt']!.sha1}  -`, '644', String(truth.entries['/small']!.entries!.length),
    (truth.entries['/small']!.mode & 0o777).toString(8), String(truth.entries['/small/hello.txt']!.mtime)], 'the next job reads what the repository holds');
});

layered('paths spelt otherwise name /cvmfs too: //cvmfs, /./cvmfs, ./cvmfs from /; a shadow path read from /proc/self/maps gives the content, not a placeholder\'s zeros', async () => {
  const truth = readTruth(FQRN);
  const hello = truth.entries['/small/hello.txt']!.sha1;
  const spelt = await exec(['/bin/bash', '-c', `sha1sum < //cvmfs/${FQRN}/small/hello.txt; sha1sum < /./cvmfs/${FQRN}/small/hello.txt; cd / && sha1sum < ./cvmfs/${FQRN}/small/hello.txt && sha1sum < .//cvmfs/${FQRN}//small/hello.txt && ls ./cvmfs/${FQRN}/small | wc -l && cd //cvmfs/${FQRN}/small && /bin/pwd; stat //cvmfs/${FQRN}/small/hello.txt/ 2>&1 | grep -c 'Not a directory'; exec 3<hello.txt; readlink /dev/fd/3 /dev/stdin <&3`],
    { CVMFS_CACHE_BASE: tempDir('ucvmfs-spelt-') });
  assert.deepEqual(spelt.stdout.toString().trim().split('\n'), [...Array(4).fill(`${hello}  -`), String(truth.entries['/small']!.entries!.length), `/cvmfs/${FQRN}/small`, '1',
    `/cvmfs/${FQRN}/small/hello.txt`, '/proc/self/fd/0'], spelt.stderr);
  // A library that finds its data beside itself through /proc/self/maps (a real path of the shadow tree), on an
  // empty cache: the sibling it opens there was never filled.
  const code = `import hashlib, mmap, os, re
f = open("${M}/small/hello.txt", "rb"); m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
p = re.search(r"(/\\S*/shadow/rev/\\S*)/hello.txt", open("/proc/self/maps").read()).group(1)
print(hashlib.sha1(open(p + "/lorem_100k.txt", "rb").read()).hexdigest())
print(sorted(os.listdir(p)) == sorted(os.listdir("${M}/small")), os.stat(p + "/one_byte").st_size)`;
  const maps = await exec([PY, '-c', code], { CVMFS_CACHE_BASE: tempDir('ucvmfs-maps-') });
  assert.equal(maps.stdout.toString(), `${truth.entries['/small/lorem_100k.txt']!.sha1}\nTrue 1\n`, maps.stderr);
});

layered('variant symlinks expand with each job\'s variables, also when jobs with other values share the cache and shadow tree', async () => {
  const truth = readTruth(FQRN);
  const shared = { CVMFS_CACHE_BASE: tempDir('ucvmfs-variant-') };
  const job = async (vars: Record<string, string>, extra: string[] = []) => {
    const r = await ucvmfs([...extra, 'exec', '--', '/bin/sh', '-c', `readlink ${M}/links/variant_rel; sha1sum < ${M}/links/variant_rel`], { ...env, ...layerEnv, SOME_VAR: '', ...shared, ...vars });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.toString();
  };
  const want = (target: string) => `${target}\n${truth.entries[`/links/${target}`]!.sha1}  -\n`;
  assert.equal(await job({ SOME_VAR: 'alpha' }), want('alpha.txt'));
  assert.equal(await job({}), want('fallback.txt'), 'unset: the default, not the first job\'s expansion');
  assert.equal(await job({ SOME_VAR: 'alpha' }), want('alpha.txt'));
  const beta = await ucvmfs(['--var', 'SOME_VAR=beta', 'exec', '--', '/bin/sh', '-c', `readlink ${M}/links/variant_rel; cat ${M}/links/variant_rel`], { ...env, ...layerEnv, ...shared });
  assert.equal(beta.stdout.toString(), 'beta.txt\n', 'beta.txt is not in the repository: the link dangles');
  assert.match(beta.stderr, /No such file/);
});

layered('io_uring_setup is refused with ENOSYS (programs fall back to plain calls)', async () => {
  const r = await exec([PY, '-c', 'import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); p = ctypes.create_string_buffer(120); print(libc.syscall(425, 4, p), os.strerror(ctypes.get_errno()))']);
  assert.equal(r.stdout.toString(), '-1 Function not implemented\n', r.stderr);
});

layered('fail closed: a directory behind a nested catalog that cannot be fetched is EIO, not an empty directory', async () => {
  const own = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  const e = { CVMFS_SERVER_URL: `${own.url}/@fqrn@`, CVMFS_CACHE_BASE: tempDir('ucvmfs-offline-') };
  const first = await exec(['ls', `${M}/nested`], e);
  assert.equal(first.code, 0, first.stderr);
  await own.close();
  const r = await exec(['/bin/bash', '-c', `ls ${M}/nested/level2; echo rc=$?; cat ${M}/nested/level2/n2.txt; echo rc=$?`], e);
  assert.match(r.stderr, /ls: cannot (access|open directory) '.*nested\/level2'.*: Input\/output error/);
  assert.match(r.stderr, /cat: .*n2\.txt: Input\/output error/);
  assert.deepEqual(r.stdout.toString().trim().split('\n'), ['rc=2', 'rc=1']);
});

layered('fail closed: an error inside the tracer, or in the JavaScript that answers it, fails the call with EIO (test hook UCVMFS_TEST_FAULT)', async () => {
  for (const fault of ['tracer', 'js']) {
    const r = await exec(['/bin/bash', '-c', `cat ${M}/small/hello.txt; echo rc=$?; echo still running`], { UCVMFS_TEST_FAULT: fault, CVMFS_CACHE_BASE: tempDir('ucvmfs-fault-') });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'rc=1\nstill running\n', `${fault}: ${r.stderr}`);
    assert.match(r.stderr, /hello\.txt: Input\/output error/, fault);
    assert.match(r.stderr, /injected fault/, fault);
  }
});

layered('sibling prefetch: the first file opened in a directory brings its small siblings, so the next job downloads nothing for them; UCVMFS_PREFETCH=off turns it off', async () => {
  const truth = readTruth(FQRN);
  const many = Object.keys(truth.entries).filter((p) => p.startsWith('/many/') && truth.entries[p]!.type === 'file').sort();
  const [first, second] = [many[0]!, many[40]!];
  const stats = (stderr: string) => {
    const m = /(\d+) objects \([^)]*\) downloaded, prefetch made (\d+) files \([^)]*\) ready in (\d+) directories/.exec(stderr);
    assert.ok(m, stderr);
    return { downloaded: Number(m[1]), prefetched: Number(m[2]), dirs: Number(m[3]) };
  };
  const cache = tempDir('ucvmfs-prefetch-');
  // The job reads one file and goes on working for a while: the prefetch runs meanwhile (it is cancelled when the job ends).
  // `always`: by default it waits for round trips worth hiding (test/prefetch.test.ts), which loopback may not show.
  const a = await ucvmfs(['exec', '--stats', '--', 'sh', '-c', `cat ${M}${first}; sleep 2`], { ...env, ...layerEnv, CVMFS_CACHE_BASE: cache, UCVMFS_PREFETCH: 'always' });
  assert.equal(a.code, 0, a.stderr);
  assert.equal(createHash('sha1').update(a.stdout).digest('hex'), truth.entries[first]!.sha1);
  const sa = stats(a.stderr);
  assert.equal(sa.dirs, 1);
  assert.equal(sa.prefetched, 64, 'at most 64 files per directory');
  // Another job, same cache: its file was among the siblings, so nothing is downloaded (the catalogs are cached too).
  const b = await ucvmfs(['exec', '--stats', '--', 'cat', `${M}${second}`], { ...env, ...layerEnv, CVMFS_CACHE_BASE: cache });
  assert.equal(b.code, 0, b.stderr);
  assert.equal(createHash('sha1').update(b.stdout).digest('hex'), truth.entries[second]!.sha1);
  assert.equal(stats(b.stderr).downloaded, 0, b.stderr);
  const off = await ucvmfs(['exec', '--stats', '--', 'cat', `${M}${first}`], { ...env, ...layerEnv, CVMFS_CACHE_BASE: tempDir('ucvmfs-prefetch-'), UCVMFS_PREFETCH: 'off' });
  assert.equal(off.code, 0, off.stderr);
  assert.equal(stats(off.stderr).prefetched, 0);
});

layered('file names as bytes: ls, cat, find and python see a name that is not UTF-8 byte for byte; the markers hash the same bytes as the native side', async () => {
  const B = `/cvmfs/${BY}`;
  const cache = tempDir('ucvmfs-bytes-cache-');
  const script = [
    `ls ${B}`, `cat "${B}/$(printf 'f\\377g')"`, `ls "${B}/$(printf '\\351t\\351')"`, `cat "${B}/$(printf '\\351t\\351')/inner"`,
    `cat ${B}/link`, `find ${B} | sort`,
    `${PY} -c "import os; d = b'${B}'; print(sorted(os.listdir(d))); print(open(d + b'/\\\\xe9t\\\\xe9/inner', 'rb').read()); print(os.readlink(d + b'/link')); print([n for n in os.listdir('${B}') if 'g' in n])"`,
  ].join('; ');
  const want = Buffer.concat([
    bytes(BAD, '\nlink\nplain.txt\n', LATIN1, '\n'), Buffer.from('content of f\\xffg\n'), Buffer.from('inner\n'),
    Buffer.from('inner of \\xe9t\\xe9\n'), Buffer.from('content of f\\xffg\n'),
    bytes(B, '\n', B, '/', BAD, '\n', B, '/link\n', B, '/plain.txt\n', B, '/', LATIN1, '\n', B, '/', LATIN1, '/inner\n'),
    Buffer.from("[b'f\\xffg', b'link', b'plain.txt', b'\\xe9t\\xe9']\nb'inner of \\\\xe9t\\\\xe9\\n'\nb'f\\xffg'\n['f\\udcffg']\n"),
  ]);
  // Twice: the first run fills the shadow tree, the second finds it complete through the markers.
  for (const run of ['cold', 'warm']) {
    const r = await exec(['/bin/bash', '-c', script], { CVMFS_CACHE_BASE: cache, LC_ALL: 'C' });
    assert.equal(r.code, 0, `${run}: ${r.stderr}`);
    assert.equal(r.stdout.toString('hex'), want.toString('hex'), `${run}: ${JSON.stringify(r.stdout.toString('latin1'))}`);
  }
  // The markers are named by the MD5 of the path's bytes, as the tracer and the preload library compute it.
  const revs = join(cache, 'shadow', 'rev');
  const state = readdirSync(revs).find((n) => n.startsWith(`${BY}@`) && n.endsWith('.state'))!;
  const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
  assert.ok(existsSync(join(revs, state, `f-${md5(bytes('/', BAD))}`)), 'content marker of /f\\xffg');
  assert.ok(existsSync(join(revs, state, `l-${md5(bytes('/', LATIN1))}`)), 'listing marker of /\\xe9t\\xe9');
});

layered('`..` and getcwd as on a mount: `..` of a repository is /cvmfs, of /cvmfs is /; getcwd after any cd shows /cvmfs paths; internal names never listed; nothing below the shadow tree reached by `..`', async () => {
  const F2 = 'features.test.example.org';
  const py = (code: string) => `${PY} -c ${JSON.stringify(code)}`;
  const script = [
    `cd ${M} && ls ..`, 'echo --', `cd ${M}/sw && ls ../../..`, 'echo --', 'cd /cvmfs && ls ..', 'echo --',
    `cd ${M}/sw/bin && cd -P .. && pwd -P && /bin/pwd && ${py('import os; print(os.getcwd())')}`,
    `cd -P ../.. && pwd -P && /bin/pwd && ${py('import os; print(os.getcwd())')}`,
    `cd ${M} && cd -P ../${F2} && pwd -P && /bin/pwd && ls | head -1`,
    `cd ${M} && ${py("import os; os.chdir('..'); print(os.getcwd()); print(sorted(os.listdir('.'))); os.chdir('../cvmfs/" + FQRN + "/small'); print(os.getcwd()); os.chdir('..'); print(os.getcwd())")}`,
    `cd ${M}/small && cat ../../${FQRN}/small/hello.txt | sha1sum`,
    `cd ${M}/small && (echo x > ../new; echo x > ../../new; touch ../../${F2}/new; mkdir ../../x) 2>&1 | grep -c 'Read-only file system'`,
    `cd ${M} && ls -a .. ../.. | grep -c '[@]\\|[.]state\\|[.]hidden'`,
    `cd /cvmfs/${F2}/.cvmfs/snapshots && ls ../.. | head -1 && cd .. && pwd -P`,
  ].join('; ');
  const r = await exec(['/bin/bash', '-c', script], { LC_ALL: 'C' });
  const truth = readTruth(FQRN);
  const root = readdirSync('/').filter((n) => !n.startsWith('.')).sort();
  const out = r.stdout.toString().split('\n');
  let i = 0;
  const block = () => {
    const b: string[] = [];
    while (out[i] !== '--') b.push(out[i++]!);
    i++;
    return b;
  };
  assert.deepEqual(block(), [FQRN], '`ls ..` at a repository top lists /cvmfs');
  assert.deepEqual(block().sort(), root, '`ls ../../..` from /cvmfs/<fqrn>/sw lists /');
  assert.deepEqual(block().sort(), root, '`ls ..` in /cvmfs lists /');
  assert.deepEqual(out.slice(i, i + 6), [`${M}/sw`, `${M}/sw`, `${M}/sw`, '/cvmfs', '/cvmfs', '/cvmfs'], 'getcwd after cd -P ..');
  i += 6;
  const first2 = readTruth(F2).entries['/']!.entries!.filter((n) => n !== '.cvmfs')[0]!;
  assert.deepEqual(out.slice(i, i + 3), [`/cvmfs/${F2}`, `/cvmfs/${F2}`, first2], 'cd ../<other repository>');
  i += 3;
  assert.equal(out[i++], '/cvmfs', 'python chdir("..") then getcwd');
  assert.deepEqual(JSON.parse(out[i++]!.replaceAll("'", '"')), [F2, FQRN], 'python lists /cvmfs through `.`');
  assert.deepEqual(out.slice(i, i + 2), [`${M}/small`, M], 'python chdir through `..` and back');
  i += 2;
  assert.equal(out[i++], `${truth.entries['/small/hello.txt']!.sha1}  -`, 'a relative path through `..` and the repository name reads the file');
  assert.equal(out[i++], '4', 'writes through `..` are EROFS');
  assert.equal(out[i++], '0', 'no internal name in a listing');
  assert.deepEqual(out.slice(i, i + 2), [first2, `/cvmfs/${F2}/.cvmfs`], '`..` below the hidden /.cvmfs (kept beside the tree) climbs as in the repository');
});

layered('symlinks from outside into /cvmfs: listing, reading, cd, find, python import and exec through a link in a real directory', async () => {
  const t = tempDir('ucvmfs-links-');
  symlinkSync(`${M}/sw`, join(t, 'sw'));
  symlinkSync(`${M}/small/hello.txt`, join(t, 'hello'));
  symlinkSync(`../../cvmfs/${FQRN}/small`, join(t, 'up'));
  symlinkSync(`/cvmfs/${SW}/python`, join(t, 'py'));
  symlinkSync(join(t, 'sw'), join(t, 'chain'));
  const truth = readTruth(FQRN);
  const under = Object.keys(truth.entries).filter((p) => p === '/sw' || p.startsWith('/sw/')).length;
  const sha = `${truth.entries['/small/hello.txt']!.sha1}  -`;
  const script = [
    `ls ${t}/sw/bin`, 'echo --', `cat ${t}/hello | sha1sum`, `cat ${t}/up/hello.txt | sha1sum`, `cd ${t} && cat hello | sha1sum`,
    `stat -L -c %s ${t}/hello`, `cd ${t}/sw && pwd -P`, `find ${t}/sw/ | wc -l`, `ls ${t}/chain/bin | wc -l`,
    `${PY} -c "import sys; sys.path.insert(0, '${t}/py'); import mypkg; print(mypkg.answer(), mypkg.__file__)"`,
    `${t}/sw/bin/busybox echo static through a link`, `${t}/sw/bin/hello`, `cd ${t}/sw/bin && ./hello world`,
    `cat ${t}/sw/nope 2>&1 | grep -c 'No such file'`, `(echo x > ${t}/sw/new) 2>&1 | grep -c 'Read-only file system'`,
    `touch ${t}/f && (mv ${t}/f ${t}/sw/f; ln ${t}/f ${t}/sw/g; ln -s x ${t}/sw/h) 2>&1 | grep -c 'Read-only file system'`,
  ].join('; ');
  const r = await exec(['/bin/bash', '-c', script], { LC_ALL: 'C' });
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.toString().split('\n');
  const sep = out.indexOf('--');
  assert.deepEqual(out.slice(0, sep), truth.entries['/sw/bin']!.entries, `ls through a link: ${r.stderr}`);
  assert.deepEqual(out.slice(sep + 1, -1), [
    sha, sha, sha, String(truth.entries['/small/hello.txt']!.size), `${M}/sw`, String(under), String(truth.entries['/sw/bin']!.entries!.length),
    `42 ${t}/py/mypkg/__init__.py`, 'static through a link', 'Hello, cvmfs! (from libgreet 1.0)', 'Hello, world! (from libgreet 1.0)', '1', '1', '3',
  ], r.stderr);
});

/** Runs a command (not the CLI) with the test's environment; output collected as with {@link ucvmfs}. */
function run(argv: string[], e: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...e }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('close', (code, signal) => resolve({ code: code ?? -1, signal, stdout: Buffer.concat(out), stderr: err }));
  });
}

layered('containers: ucvmfs exec inside bubblewrap; bubblewrap inside ucvmfs exec sees /cvmfs when the cache is bound into it, and is told why not when it is hidden', async () => {
  const cache = tempDir('ucvmfs-bwrap-cache-');
  const e = { ...env, ...layerEnv, CVMFS_CACHE_BASE: cache, CVMFS_PUBLIC_KEY: keyOf(FQRN) };
  const truth = readTruth(FQRN);
  const script = `ls ${M} | head -1; cat ${M}/small/hello.txt | sha1sum; cd ${M} && ls .. && pwd -P`;
  const want = [truth.entries['/']!.entries![0], `${truth.entries['/small/hello.txt']!.sha1}  -`, FQRN, M].join('\n') + '\n';
  // /tmp private; the checkout (the CLI, its addon) and the fixtures (keys) bound back in, wherever they are.
  const box = ['bwrap', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--ro-bind', ROOT, ROOT, '--ro-bind', FIXTURES, FIXTURES];
  // ucvmfs in an unprivileged container (its cache bound in, /tmp private).
  const inside = await run([...box, '--bind', cache, cache, '--', process.execPath, join(ROOT, 'dist/lib/cli/main.js'), 'exec', '--', '/bin/bash', '-c', script], e);
  assert.equal(inside.code, 0, inside.stderr);
  assert.equal(inside.stdout.toString(), want, inside.stderr);
  // A container started inside the job: the tracer follows it; the kernel there needs the shadow tree at its path.
  const nested = await run([process.execPath, join(ROOT, 'dist/lib/cli/main.js'), 'exec', '--', ...box, '--bind', cache, cache, '--', '/bin/bash', '-c', script], e);
  assert.equal(nested.code, 0, nested.stderr);
  assert.equal(nested.stdout.toString(), want, nested.stderr);
  const hidden = await run([process.execPath, join(ROOT, 'dist/lib/cli/main.js'), 'exec', '--', ...box, '--', '/bin/bash', '-c', `cat ${M}/small/hello.txt; echo rc=$?; ls ${M}/sw; echo rc=$?`], e);
  assert.equal(hidden.stdout.toString(), 'rc=1\nrc=2\n', hidden.stderr);
  assert.equal(hidden.stderr.split('is not available').length - 1, 1, `told once per namespace: ${hidden.stderr}`);
  assert.match(hidden.stderr, new RegExp(`/cvmfs is not available to process \\d+: it runs in another mount namespace .* cache directory ${cache}`));
  assert.match(hidden.stderr, /hello\.txt: No such file or directory/);
});


layered('containers: ucvmfs exec inside podman (default seccomp profile); podman inside ucvmfs exec sees /cvmfs when the cache is bound into it, and is told why not when it is hidden', async (t) => {
  const box = podmanRun();
  if (typeof box === 'string') return t.skip(box);
  const cache = tempDir('ucvmfs-podman-cache-');
  const e = { ...env, ...layerEnv, CVMFS_CACHE_BASE: cache, CVMFS_PUBLIC_KEY: keyOf(FQRN) };
  const truth = readTruth(FQRN);
  const script = `ls ${M} | head -1; cat ${M}/small/hello.txt | sha1sum; cd ${M} && ls .. && pwd -P`;
  const want = [truth.entries['/']!.entries![0], `${truth.entries['/small/hello.txt']!.sha1}  -`, FQRN, M].join('\n') + '\n';
  // The checkout (the CLI, its addon, node_modules wherever it links to), node and the fixtures read-only; the cache.
  const ro = [...new Set([ROOT, realpathSync(join(ROOT, 'node_modules')), process.execPath, FIXTURES])].flatMap((p) => ['-v', `${p}:${p}:ro`]);
  const bound = [...box, ...ro, '-v', `${cache}:${cache}`];
  // ucvmfs in the container; the container's own seccomp filter is there before ucvmfs adds its own.
  const vars = Object.entries(e).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
  const inside = await run([...bound, ...vars, '--rootfs', '/:O', '/bin/sh', '-c', 'grep ^Seccomp: /proc/self/status; exec "$@"', 'sh',
    process.execPath, join(ROOT, 'dist/lib/cli/main.js'), 'exec', '--', '/bin/bash', '-c', script], e);
  assert.equal(inside.code, 0, inside.stderr);
  assert.equal(inside.stdout.toString(), 'Seccomp:\t2\n' + want, inside.stderr);
  // podman started inside the job: podman, conmon, the runtime and the container are traced like bwrap.
  const nested = await run([process.execPath, join(ROOT, 'dist/lib/cli/main.js'), 'exec', '--', ...bound, '--rootfs', '/:O', '/bin/bash', '-c', script], e);
  assert.equal(nested.code, 0, nested.stderr);
  assert.equal(nested.stdout.toString(), want, nested.stderr);
  const hidden = await run([process.execPath, join(ROOT, 'dist/lib/cli/main.js'), 'exec', '--', ...box, '--rootfs', '/:O', '/bin/bash', '-c', `cat ${M}/small/hello.txt; echo rc=$?; ls ${M}/sw; echo rc=$?`], e);
  assert.equal(hidden.stdout.toString(), 'rc=1\nrc=2\n', hidden.stderr);
  assert.equal(hidden.stderr.split('is not available').length - 1, 1, `told once per namespace: ${hidden.stderr}`);
  assert.match(hidden.stderr, new RegExp(`/cvmfs is not available to process \\d+: it runs in another mount namespace .* cache directory ${cache}`));
});

layered('a warm job needs no catalog: programs run from /cvmfs (exec plans kept), names that are not there and links out of /cvmfs are answered from the shadow tree', async () => {
  const cache = tempDir('ucvmfs-warm-');
  const script = [
    `${M}/sw/bin/hello.sh`, `${M}/sw/bin/busybox true && echo static`, `${M}/sw/bin/hello`,
    `test -e ${M}/sw/bin/nothere || echo absent`, `test -e ${M}/sw/nothere/deeper || echo absent2`,
    `cat ${M}/links/rel_file`, `ls ${M}/links | wc -l`,
  ].join('; ');
  const runs: CliResult[] = [];
  for (let i = 0; i < 2; i++) runs.push(await ucvmfs(['exec', '--stats', '--', 'bash', '-c', script], { ...env, ...layerEnv, CVMFS_CACHE_BASE: cache }));
  const [cold, warm] = runs as [CliResult, CliResult];
  assert.equal(cold.code, 0, cold.stderr);
  assert.equal(warm.code, 0, warm.stderr);
  assert.equal(warm.stdout.toString(), cold.stdout.toString());
  assert.match(cold.stdout.toString(), /static\n[\s\S]*absent\nabsent2\n/);
  const catalogs = (r: CliResult) => Number(/(\d+) catalogs loaded/.exec(r.stderr)?.[1] ?? NaN);
  assert.ok(catalogs(cold) >= 1, cold.stderr);
  assert.equal(catalogs(warm), 0, `the warm job opened no catalog: ${warm.stderr}`);
});

layered('fail closed: catalogs evicted from the cache between jobs are fetched again; with the server gone too, what the shadow tree holds still reads and the rest is EIO', async () => {
  const truth = readTruth(FQRN);
  const own = await serve({ [FQRN]: join(FIXTURES, FQRN, 'srv') });
  const cache = tempDir('ucvmfs-evicted-');
  const e = { CVMFS_SERVER_URL: `${own.url}/@fqrn@`, CVMFS_CACHE_BASE: cache };
  const sum = (r: CliResult) => createHash('sha1').update(r.stdout).digest('hex');
  const first = await exec(['cat', `${M}/nested/level2/n2.txt`], e);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(sum(first), truth.entries['/nested/level2/n2.txt']!.sha1);
  // Evict every object but the certificate (catalogs included), as a quota clean-up would: the certificate is
  // used at every open, so it is the most recently used; the shadow tree stays.
  const evict = () => {
    const shared = join(cache, 'shared');
    const cert = hashToString(parseManifest(readFileSync(join(shared, `manifest.${FQRN}`))).certificate);
    for (const d of readdirSync(shared)) {
      if (!/^[0-9a-f]{2}$/.test(d)) continue;
      for (const f of readdirSync(join(shared, d))) if (d + f !== cert) rmSync(join(shared, d, f));
    }
  };
  evict();
  const second = await exec(['cat', `${M}/nested/level2/plain_sub/sub.txt`], e);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(sum(second), truth.entries['/nested/level2/plain_sub/sub.txt']!.sha1, 'fetched again');
  evict();
  await own.close();
  const third = await exec(['/bin/bash', '-c', `cat ${M}/nested/level2/n2.txt | sha1sum; cat ${M}/nested/plain_sibling/sib.txt; echo rc=$?`], e);
  assert.equal(third.stdout.toString().split('\n')[0]!.slice(0, 40), truth.entries['/nested/level2/n2.txt']!.sha1, 'what the shadow tree holds reads');
  assert.match(third.stdout.toString(), /rc=1\n$/);
  assert.match(third.stderr, /sib\.txt: Input\/output error/);
});
