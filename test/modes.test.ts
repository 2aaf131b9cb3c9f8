/**
 * Stored modes under `ucvmfs exec` (lib/connector/modes.ts): stat shows the repository's permission bits (write,
 * setuid, setgid and sticky too) as the genuine client does, copies out of /cvmfs keep them, and every write
 * still fails with EROFS, in both layers (the preload library and ptrace alone).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, statSync, mkdirSync, readdirSync, utimesSync, writeFileSync, appendFileSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { openRepository, publish, type Repository } from '../lib/index.js';
import { keyOf, readTruth, serve, tempDir, ucvmfs, FIXTURES, type CliResult } from './helpers.js';
import { layeredWith } from './layers.js';
import type { RepositoryServer } from '../lib/serve.js';
import { modeAttribute, shadowMode, storedMode } from '../lib/connector/modes.js';

const FX = 'fixture.test.example.org';
const MO = 'modes.test.example.org';
const PY = '/usr/bin/python3';
/** Files and directories of the repository we publish, with the modes we give them. */
const MODES: Record<string, number> = {
  'tree/plain_644.txt': 0o644, 'tree/exec_755.sh': 0o755, 'tree/ro_444.txt': 0o444, 'tree/shared_664.txt': 0o664,
  'tree/own_600.txt': 0o600, 'tree/suid_4755': 0o4755, 'tree/sgid_2755': 0o2755, 'tree/dir_750': 0o750,
  'tree/dir_750/inner_640.txt': 0o640, 'tree/sticky_1777': 0o1777, 'tree/group_775': 0o775, 'tree': 0o755,
};
let server: RepositoryServer;
let env: Record<string, string>;
let lib: Repository;
let fxLib: Repository;

before(async () => {
  const src = tempDir('ucvmfs-modes-src-');
  const dirs = Object.keys(MODES).filter((p) => !p.includes('.') && !/suid|sgid/.test(p));
  for (const d of dirs) mkdirSync(join(src, d), { recursive: true });
  for (const [p, m] of Object.entries(MODES)) {
    if (!dirs.includes(p)) writeFileSync(join(src, p), m & 0o111 ? `#!/bin/sh\necho ran ${p}\n` : `content of ${p}\n`);
  }
  // Children first: a directory without write bits is made last.
  for (const [p, m] of Object.entries(MODES).sort(([a], [b]) => b.length - a.length)) chmodSync(join(src, p), m);
  const out = join(tempDir('ucvmfs-modes-'), 'repo');
  const r = await publish(src, { fqrn: MO, out });
  for (const [p, m] of Object.entries(MODES).sort(([a], [b]) => b.length - a.length)) chmodSync(join(src, p), m | 0o700);
  server = await serve({ [FX]: join(FIXTURES, FX, 'srv'), [MO]: out });
  env = {
    CVMFS_SERVER_URL: `${server.url}/@fqrn@`,
    CVMFS_PUBLIC_KEY: [keyOf(FX), r.publicKeyPath].join(':'),
    CVMFS_CACHE_BASE: tempDir('ucvmfs-modes-cache-'),
    SOME_VAR: 'alpha',
  };
  const opts = { serverUrls: [`${server.url}/@fqrn@`], cacheDir: tempDir('ucvmfs-modes-lib-') };
  lib = await openRepository(MO, { ...opts, publicKeys: [r.publicKeyPath] });
  fxLib = await openRepository(FX, { ...opts, publicKeys: [keyOf(FX)] });
});
after(async () => {
  await lib.close();
  await fxLib.close();
  await server.close();
});

let layerEnv: Record<string, string> = {};

function exec(argv: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return ucvmfs(['exec', '--', ...argv], { ...env, ...layerEnv, ...extra });
}

/** Registers a test once per layer (test/layers.ts), the layer's environment in {@link layerEnv}. */
const layered = layeredWith((e) => { layerEnv = e; });

test('the encoding: read-only on disk, no setuid or setgid there, every stored mode read back', () => {
  for (let m = 0; m <= 0o7777; m++) {
    for (const own of [false, true]) {
      const disk = shadowMode(m, own);
      assert.equal(disk & 0o6222, 0, `${m.toString(8)}: no write, setuid or setgid bit on disk`);
      assert.equal(disk & (own ? 0o077 : 0), 0);
      const attr = modeAttribute(m, own);
      const back = storedMode(0o100000 | disk, attr) & 0o7777;
      assert.equal(back, m, `${m.toString(8)} (own ${own}) comes back`);
      if (!own && [0o644, 0o755, 0o444, 0o555, 0o600, 0o700, 0o750, 0o640].includes(m)) assert.equal(attr, undefined, `${m.toString(8)} needs no attribute`);
    }
  }
});

test('the library reports the stored modes (the reference for the connector)', async () => {
  for (const [p, m] of Object.entries(MODES)) assert.equal((await lib.fs.lstat(`/${p}`)).mode & 0o7777, m, p);
  const truth = readTruth(FX);
  for (const p of ['/perms/dir_700', '/perms/exec_700', '/perms/private_600.txt', '/perms/readonly_444.txt', '/perms/exec_755.sh', '/small/hello.txt']) {
    assert.equal('0' + ((await fxLib.fs.lstat(p)).mode & 0o7777).toString(8), truth.entries[p]!.perm, p);
  }
});

/** Every path of our repository and a few of the fixture's, as /cvmfs paths, with the library's stored mode. */
async function expected(): Promise<Map<string, number>> {
  const want = new Map<string, number>();
  for (const p of Object.keys(MODES)) want.set(`/cvmfs/${MO}/${p}`, (await lib.fs.lstat(`/${p}`)).mode & 0o7777);
  for (const p of ['/perms', '/perms/dir_700', '/perms/exec_700', '/perms/private_600.txt', '/perms/readonly_444.txt', '/small/hello.txt']) {
    want.set(`/cvmfs/${FX}${p}`, (await fxLib.fs.lstat(p)).mode & 0o7777);
  }
  return want;
}

const STAT_ALL = `
import os, sys, stat, json
out = {}
for p in sys.argv[1:]:
    a = os.stat(p).st_mode & 0o7777; b = os.lstat(p).st_mode & 0o7777
    fd = os.open(p, os.O_RDONLY); c = os.fstat(fd).st_mode & 0o7777; os.close(fd)
    d = os.stat(os.path.basename(p), dir_fd=os.open(os.path.dirname(p), os.O_RDONLY)).st_mode & 0o7777
    out[p] = [a, b, c, d]
print(json.dumps(out))
`;

layered('stat, lstat, statx, os.stat and stat -c %a show the stored modes (write, setuid, setgid, sticky bits), warm and cold', async () => {
  const want = await expected();
  const paths = [...want.keys()];
  const cache = tempDir('ucvmfs-modes-stat-');
  for (const round of ['cold', 'warm']) {
    const r = await exec(['/bin/sh', '-c', `stat -c '%a %n' "$@" && for p; do ls -ld "$p" | cut -c1-10; done && ${PY} -c '${STAT_ALL}' "$@"`, 'sh', ...paths], { CVMFS_CACHE_BASE: cache });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString().trim().split('\n');
    const coreutils = lines.slice(0, paths.length);
    assert.deepEqual(coreutils, paths.map((p) => `${want.get(p)!.toString(8)} ${p}`), `${round}: stat -c %a (statx)`);
    // ls -l letters: the same bits as the genuine mount shows them (s, S, t included).
    const ls = lines.slice(paths.length, 2 * paths.length);
    const letters = (m: number, dir: boolean) => (dir ? 'd' : '-') + [6, 3, 0].map((s, i) => {
      const r = m >> s & 4 ? 'r' : '-', w = m >> s & 2 ? 'w' : '-', x = m >> s & 1;
      const special = m & [0o4000, 0o2000, 0o1000][i]!;
      return r + w + (special ? (i === 2 ? (x ? 't' : 'T') : (x ? 's' : 'S')) : x ? 'x' : '-');
    }).join('');
    const dirs = new Set(paths.filter((p) => !/\.|suid|sgid|exec_700$/.test(p.split('/').pop()!)));
    assert.deepEqual(ls, paths.map((p) => letters(want.get(p)!, dirs.has(p))), `${round}: ls -ld`);
    const py = JSON.parse(lines[2 * paths.length]!) as Record<string, number[]>;
    for (const p of paths) {
      const [st, lst, fst, at] = py[p]!;
      assert.equal(st, want.get(p), `${round}: os.stat ${p}`);
      assert.equal(lst, want.get(p), `${round}: os.lstat ${p}`);
      assert.equal(at, want.get(p), `${round}: os.stat(dir_fd=) ${p}`);
      // fstat never stops in the tracer: only the preload library shows the stored mode there (see the README).
      if (!layerEnv.UCVMFS_NO_PRELOAD) assert.equal(fst, want.get(p), `${round}: os.fstat ${p}`);
      else assert.equal(fst! & 0o6222, 0, `${round}: os.fstat ${p} shows the on-disk mode (${fst!.toString(8)})`);
    }
  }
  // The stored-mode attribute is the connector's: no listing or read shows it.
  const x = await exec(['/bin/sh', '-c', `getfattr -d -m - "$@" 2>&1; ${PY} -c 'import os, sys; print([n for p in sys.argv[1:] for n in os.listxattr(p)])' "$@"`, 'sh', ...paths.filter((p) => p.includes(MO))], { CVMFS_CACHE_BASE: cache });
  assert.equal(x.code, 0, x.stderr);
  assert.doesNotMatch(x.stdout.toString(), /ucvmfs\.mode/);
  const g = await exec([PY, '-c', `import os\ntry:\n  os.getxattr("/cvmfs/${MO}/tree/suid_4755", "user.ucvmfs.mode"); print("visible")\nexcept OSError as e: print(e.errno == 61)`], { CVMFS_CACHE_BASE: cache });
  assert.equal(g.stdout.toString().trim(), 'True', g.stderr);
});

/**
 * What `cp -a` gives a copy: the stored mode; with ptrace alone a copied file gets the on-disk mode, since cp takes
 * a file's mode from fstat of its descriptor, which never stops in the tracer (a difference the README states).
 */
function cpMode(copy: string, stored: number): number {
  // (Its setuid, setgid and sticky bits come from the path's stat, which is right.)
  return layerEnv.UCVMFS_NO_PRELOAD && lstatSync(copy).isFile() ? (stored & 0o7000) | (shadowMode(stored) & 0o555) : stored;
}

layered('cp -a and shutil.copytree out of /cvmfs keep the stored modes, and the copies can be edited', async () => {
  const want = await expected();
  const dest = tempDir('ucvmfs-modes-copy-');
  // Cold, with an empty cache: cp refuses a file whose inode changed between its stat and its open, so a file's
  // content must go into the inode its placeholder had.
  const cold = { CVMFS_CACHE_BASE: tempDir('ucvmfs-modes-cold-') };
  const r = await exec(['/bin/sh', '-c', `cp -a /cvmfs/${MO}/tree ${dest}/cp && ${PY} -c 'import shutil; shutil.copytree("/cvmfs/${MO}/tree", "${dest}/py")' && cp -a /cvmfs/${FX}/perms ${dest}/perms`], cold);
  assert.equal(r.code, 0, r.stderr);
  for (const p of Object.keys(MODES).filter((k) => statSync(join(dest, 'cp', k.slice('tree'.length))).isFile())) {
    assert.deepEqual(readFileSync(join(dest, 'cp', p.slice('tree'.length))), await lib.fs.readFile(`/${p}`), p);
  }
  for (const [p, m] of want) {
    const rel = p.startsWith(`/cvmfs/${MO}/tree`) ? p.slice(`/cvmfs/${MO}/tree`.length) : undefined;
    if (rel !== undefined) {
      assert.equal(lstatSync(join(dest, 'py', rel)).mode & 0o7777, m, `py${rel}`);
      assert.equal(lstatSync(join(dest, 'cp', rel)).mode & 0o7777, cpMode(join(dest, 'cp', rel), m), `cp${rel}`);
    } else if (p.startsWith(`/cvmfs/${FX}/perms`)) {
      const copy = join(dest, p.slice(`/cvmfs/${FX}/`.length));
      assert.equal(lstatSync(copy).mode & 0o7777, cpMode(copy, m), p);
    }
  }
  // Editable where the repository had write bits: the copy is a normal file of the user's.
  appendFileSync(join(dest, 'py', 'plain_644.txt'), 'edited\n');
  assert.equal(readFileSync(join(dest, 'py', 'plain_644.txt'), 'utf8'), 'content of tree/plain_644.txt\nedited\n');
  assert.equal(readFileSync(join(dest, 'cp', 'plain_644.txt'), 'utf8'), 'content of tree/plain_644.txt\n');
  writeFileSync(join(dest, 'py', 'dir_750', 'new.txt'), 'new\n');
  assert.deepEqual(readdirSync(join(dest, 'py', 'dir_750')).sort(), ['inner_640.txt', 'new.txt']);
  // No connector attribute travels with the copies (cp -a copies attributes through descriptors).
  const attrs = spawnSync('getfattr', ['-R', '-d', '-m', '-', dest], { encoding: 'utf8' });
  if (!layerEnv.UCVMFS_NO_PRELOAD) assert.doesNotMatch(attrs.stdout, /ucvmfs\.mode/);
});

const WRITES = `
import os, sys, errno
res = []
def t(name, f):
    try:
        f(); res.append(name + ":ok")
    except OSError as e:
        res.append(name + ":" + errno.errorcode[e.errno])
for p in sys.argv[1:]:
    b = os.path.basename(p)
    t(b + " O_WRONLY", lambda: os.open(p, os.O_WRONLY))
    t(b + " O_RDWR", lambda: os.open(p, os.O_RDWR))
    t(b + " O_APPEND", lambda: os.open(p, os.O_WRONLY | os.O_APPEND))
    t(b + " O_TRUNC", lambda: os.open(p, os.O_RDONLY | os.O_TRUNC))
    fd = os.open(p, os.O_RDONLY)
    t(b + " /proc/self/fd", lambda: os.open("/proc/self/fd/%d" % fd, os.O_RDWR))
    t(b + " ftruncate", lambda: os.truncate(fd, 0))
    t(b + " fchmod", lambda: os.chmod(fd, 0o777))
    os.close(fd)
    t(b + " chmod", lambda: os.chmod(p, 0o777))
    t(b + " truncate", lambda: os.truncate(p, 0))
    t(b + " utime", lambda: os.utime(p, (1, 1)))
    t(b + " rename into", lambda: os.rename(TMP, p))
print("\\n".join(res))
`;

layered('writes by every route still fail with EROFS on files whose stored mode has write bits (access W_OK too; a rename into /cvmfs EXDEV)', async () => {
  const tmp = join(tempDir('ucvmfs-modes-w-'), 'src.txt');
  writeFileSync(tmp, 'x');
  const files = ['plain_644.txt', 'shared_664.txt', 'suid_4755', 'exec_755.sh'].map((f) => `/cvmfs/${MO}/tree/${f}`);
  const r = await exec([PY, '-c', WRITES.replace('TMP', JSON.stringify(tmp)), ...files]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.toString().trim().split('\n');
  assert.equal(lines.length, files.length * 11);
  // A rename into /cvmfs from elsewhere crosses mounts: EXDEV, as a read-only mount answers before EROFS.
  for (const l of lines) assert.match(l, l.includes(' rename into') ? /:EXDEV$/ : /:EROFS$/, l);
  const a = await exec(['/bin/sh', '-c', `${PY} -c 'import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); print(libc.access(sys.argv[1].encode(), 2), ctypes.get_errno())' /cvmfs/${MO}/tree/plain_644.txt`]);
  assert.equal(a.stdout.toString().trim(), '-1 30', `access(W_OK): EROFS as on a read-only mount ${a.stderr}`);
  // Nothing changed: the next job reads what the repository holds.
  const next = await exec(['cat', ...files]);
  assert.equal(next.stdout.toString(), 'content of tree/plain_644.txt\ncontent of tree/shared_664.txt\n#!/bin/sh\necho ran tree/suid_4755\n#!/bin/sh\necho ran tree/exec_755.sh\n');
});

/**
 * The raw stat calls (stat, lstat, newfstatat, statx), made by a program with `syscall()` so that they reach the
 * tracer in both layers: the tracer answers a marked entry itself at the call's entry (no second stop), so its
 * answer must be the kernel's in every byte but the mode, the blocks and the times (the genuine client's: atime and
 * ctime are the mtime, no birth time), and the kernel's errors where it gives them. Compared
 * with the same entry's fstat/statx through a descriptor (never stopped: the on-disk values).
 */
const RAW_STATS = `
import ctypes, os, sys, json, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
x86 = platform.machine() == "x86_64"
NR = dict(newfstatat=262, statx=332, fstat=5, stat=4, lstat=6) if x86 else dict(newfstatat=79, statx=291, fstat=80)
ST_SIZE, ST_MODE = (144, 24) if x86 else (128, 16)
STX_SIZE, STX_MODE = 256, 0x1c
AT_FDCWD, NOFOLLOW, EMPTY = -100, 0x100, 0x1000
def call(name, *a):
    r = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(x) if isinstance(x, int) else x for x in a])
    return r if r >= 0 else -ctypes.get_errno()
def mode(b, off, n):
    return int.from_bytes(b[off:off + n], "little")
ST_SZ, ST_BLOCKS, STX_SZ, STX_BLOCKS = 48, 64, 40, 48
# Times: struct stat's atime, mtime, ctime (16 bytes each, both layouts); statx's mask, atime, btime, ctime, mtime.
ST_TIMES, STX_MASK, STX_TIMES = (72, 88, 104), 0, (64, 80, 96, 112)
def st_times(b):  # atime and ctime are the mtime, as the genuine client shows them
    a, m, c = (b[o:o + 16] for o in ST_TIMES)
    return int(a == m and c == m)
def stx_times(b):  # ... and no birth time (STATX_BTIME 0x800 off, the field zero); the mtime is given even unasked
    mask = mode(b, STX_MASK, 4)
    a, bt, c, m = (b[o:o + 16] for o in STX_TIMES)
    return int(not (mask & 0x800) and bt == bytes(16) and (not (mask & 0x20) or a == m) and (not (mask & 0x80) or c == m))
def rest(b, fields):
    keep = bytearray(b)
    for off, n in fields: keep[off:off + n] = bytes(n)
    return keep
def diff(a, b, fields):
    x, y = rest(a, fields), rest(b, fields)
    return next((i for i in range(len(x)) if x[i] != y[i]), -1)
ro = libc.mmap(None, 4096, 1, 0x22, -1, 0)  # PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS
out = {}
for p in sys.argv[1:]:
    link = os.path.islink(p)
    fd = os.open(p, os.O_RDONLY | (os.O_PATH | os.O_NOFOLLOW if link else 0))
    ref = ctypes.create_string_buffer(ST_SIZE)
    assert call("newfstatat", fd, b"", ref, EMPTY) == 0
    d = os.open(os.path.dirname(p), os.O_RDONLY)
    res = {}
    cases = [("newfstatat", AT_FDCWD, p.encode(), NOFOLLOW), ("newfstatat at", d, os.path.basename(p).encode(), NOFOLLOW)]
    if not link: cases += [("newfstatat follow", AT_FDCWD, p.encode(), 0)]
    if x86: cases += [("lstat",) + ((p.encode(),))] + ([] if link else [("stat", p.encode())])
    for c in cases:
        b = ctypes.create_string_buffer(ST_SIZE)
        r = call(c[0].split()[0], *c[1:3], b, *c[3:]) if c[0].startswith("newfstatat") else call(c[0], c[1], b)
        res[c[0]] = [r, mode(b.raw, ST_MODE, 4), diff(b.raw, ref.raw, [(ST_MODE, 4), (ST_BLOCKS, 8), (ST_TIMES[0], 16), (ST_TIMES[2], 16)]), mode(b.raw, ST_BLOCKS, 8), mode(b.raw, ST_SZ, 8), st_times(b.raw)]
    # statx: a mask without STATX_MODE (only STATX_SIZE) still gets the stored mode, as the kernel fills it anyway.
    for name, flags, mask in [("statx size", NOFOLLOW, 0x200), ("statx basic", 0 if not link else NOFOLLOW, 0x7ff), ("statx at", NOFOLLOW, 0x200)]:
        b = ctypes.create_string_buffer(STX_SIZE)
        r = call("statx", d, os.path.basename(p).encode(), flags, mask, b) if name == "statx at" else call("statx", AT_FDCWD, p.encode(), flags, mask, b)
        # (What the kernel fills depends on the mask: the descriptor's answer is asked with the same one.)
        refx = ctypes.create_string_buffer(STX_SIZE)
        assert call("statx", fd, b"", EMPTY, mask, refx) == 0
        res[name] = [r, mode(b.raw, STX_MODE, 2), diff(b.raw, refx.raw, [(STX_MODE, 2), (STX_BLOCKS, 8), (STX_MASK, 4)] + [(o, 16) for o in STX_TIMES]), mode(b.raw, STX_BLOCKS, 8), mode(b.raw, STX_SZ, 8), stx_times(b.raw)]
    # Buffers the kernel cannot write: EFAULT, and the read-only page stays untouched.
    res["efault"] = [call("newfstatat", AT_FDCWD, p.encode(), 1, 0), call("newfstatat", AT_FDCWD, p.encode(), ctypes.c_void_p(ro), NOFOLLOW),
                     call("statx", AT_FDCWD, p.encode(), 0, 0x7ff, ctypes.c_void_p(ro))] + ([call("stat", p.encode(), ctypes.c_void_p(ro))] if x86 else [])
    res["untouched"] = ctypes.string_at(ro, 4096) == bytes(4096)
    res["disk"] = mode(ref.raw, ST_MODE, 4)
    out[p] = res
    os.close(fd); os.close(d)
print(json.dumps(out))
`;

layered('raw stat, lstat, newfstatat and statx calls get the kernel\'s answer with the stored mode, and EFAULT for a bad buffer', async () => {
  const want = await expected();
  const links: Record<string, string> = { [`/cvmfs/${FX}/links/abs_file`]: `/cvmfs/${FX}/small/hello.txt` };
  const paths = [...want.keys(), ...Object.keys(links)];
  const cache = tempDir('ucvmfs-modes-raw-');
  // Cold, warm, and in a container's own mount namespace (bwrap), where the tracer looks the path up as the process does.
  const box = ['bwrap', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--'];
  for (const round of ['cold', 'warm', 'bwrap']) {
    const r = await exec([...(round === 'bwrap' ? box : []), PY, '-c', RAW_STATS, ...paths], { CVMFS_CACHE_BASE: cache });
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout.toString()) as Record<string, Record<string, [number, number, number] | number[] | boolean | number>>;
    for (const p of paths) {
      const res = got[p]!;
      const link = p in links;
      const disk = res.disk as number;
      for (const [call, v] of Object.entries(res)) {
        if (['efault', 'untouched', 'disk'].includes(call)) continue;
        const [ret, mode, differs, blocks, size, times] = v as [number, number, number, number, number, number];
        assert.equal(ret, 0, `${round}: ${call} ${p}`);
        // A symlink keeps its own mode (lrwxrwxrwx); everything else matches the descriptor's answer.
        const stored = link ? 0o777 : want.get(p)!;
        assert.equal(mode & 0o7777, stored, `${round}: ${call} ${p}: mode ${mode.toString(8)}`);
        assert.equal(mode & 0o170000, disk & 0o170000, `${round}: ${call} ${p}: type`);
        assert.equal(differs, -1, `${round}: ${call} ${p}: every other field as the kernel gives it (first difference at byte ${differs}, mode, blocks and times excluded)`);
        assert.equal(times, 1, `${round}: ${call} ${p}: atime and ctime are the mtime, no birth time`);
        // Blocks as the genuine client counts them (addon/modes.h), whatever the disk holds.
        assert.equal(blocks, 1 + Math.floor(size / 512), `${round}: ${call} ${p}: blocks ${blocks} for ${size} bytes`);
      }
      for (const e of res.efault as number[]) assert.equal(e, -14, `${round}: EFAULT for ${p} (${(res.efault as number[]).join(' ')})`);
      assert.equal(res.untouched, true, `${round}: a read-only buffer stays untouched (${p})`);
    }
  }
  // Through the host's root seen in a container (`/mnt` here, `/oldroot` while bwrap sets up its binds), the stored
  // modes too: the tracer looks such a path up as the container's process does.
  const host = Object.keys(MODES).map((p) => `/mnt/cvmfs/${MO}/${p}`);
  const h = await exec(['bwrap', '--ro-bind', '/', '/', '--ro-bind', '/', '/mnt', '--proc', '/proc', '--dev', '/dev', '--', '/bin/sh', '-c',
    `stat -c %a "$@" && ${PY} -c 'import os, sys; [print(oct(os.stat(p).st_mode & 0o7777)[2:], oct(os.lstat(p).st_mode & 0o7777)[2:]) for p in sys.argv[1:]]' "$@"`, 'sh', ...host], { CVMFS_CACHE_BASE: cache });
  assert.equal(h.code, 0, h.stderr);
  const modes = Object.keys(MODES).map((p) => want.get(`/cvmfs/${MO}/${p}`)!.toString(8));
  assert.deepEqual(h.stdout.toString().trim().split('\n'), [...modes, ...modes.map((m) => `${m} ${m}`)], 'stat -c %a, os.stat and os.lstat through /mnt/cvmfs');
  // Following a symlink gives its target's answer, stored mode included.
  const f = await exec([PY, '-c', `import os, sys; print(oct(os.stat(sys.argv[1]).st_mode & 0o7777), os.stat(sys.argv[1]).st_ino == os.stat(sys.argv[2]).st_ino)`, ...Object.entries(links)[0]!], { CVMFS_CACHE_BASE: cache });
  assert.equal(f.stdout.toString().trim(), `${oct((await fxLib.fs.lstat('/small/hello.txt')).mode & 0o7777)} True`, f.stderr);
});

function oct(m: number): string {
  return '0o' + m.toString(8);
}

/**
 * Watches the on-disk modes of `paths` from a worker thread while `run` makes and repairs them, seeing only what
 * `run` does between its `reset` steps (a sequence count, odd while it resets). Returns every st_mode seen by path.
 */
async function watchModes(paths: string[], run: (reset: (change: () => void) => void) => void): Promise<Map<string, Set<number>>> {
  const seq = new Int32Array(new SharedArrayBuffer(8));
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(`
    const { lstatSync } = require('node:fs');
    const { workerData, parentPort } = require('node:worker_threads');
    const seq = workerData.seq, seen = {};
    while (Atomics.load(seq, 1) === 0) {
      for (const p of workerData.paths) {
        const s1 = Atomics.load(seq, 0);
        if (s1 % 2) continue;
        const st = lstatSync(p, { throwIfNoEntry: false });
        if (st && Atomics.load(seq, 0) === s1) (seen[p] ??= {})[st.mode] = true;
      }
    }
    parentPort.postMessage(seen);
  `, { eval: true, workerData: { seq, paths } });
  const seen = new Promise<Record<string, Record<string, boolean>>>((r) => worker.once('message', r));
  await new Promise((r) => worker.once('online', r));
  try {
    run((change) => {
      Atomics.add(seq, 0, 1);
      change();
      Atomics.add(seq, 0, 1);
    });
  } finally {
    Atomics.store(seq, 1, 1);
  }
  const out = new Map<string, Set<number>>();
  for (const [p, modes] of Object.entries(await seen)) out.set(p, new Set(Object.keys(modes).map(Number)));
  await worker.terminate();
  return out;
}

test('an entry another job made, or is repairing, shows a stat its stored mode all along: never the 0600 or 0700 of a repair', async () => {
  const { EntryMaker } = await import('../lib/connector/entry-maker.js');
  const { loadAddon } = await import('../lib/connector/native.js');
  const { setxattr } = loadAddon() as { setxattr: (p: string | Buffer, n: string, v: Buffer) => number };
  const base = tempDir('ucvmfs-modes-make-');
  const dir = join(base, 'tree');
  mkdirSync(dir);
  const maker = new EntryMaker(base, () => base, setxattr);
  const entries = (await lib.fs.entries('/tree')).filter((e) => e.type === 'file' || e.type === 'dir');
  assert.ok(entries.some((e) => e.type === 'dir' && modeAttribute(e.mode)) && entries.some((e) => e.type === 'file' && modeAttribute(e.mode)), 'modes that need the attribute too');
  const at = (e: { name: string }) => join(dir, e.name);
  for (const e of entries) maker.make(at(e), e, MO, ['tree'], new Map());
  const stored = (p: string, mode: number) => storedMode(mode, modeAttribute((entries.find((e) => at(e) === p)!).mode)) & 0o7777;
  const rounds = 300;
  const seen = await watchModes(entries.map(at), (reset) => {
    for (let i = 0; i < rounds; i++) {
      for (const e of entries) {
        // What another job leaves while it finishes, or a job that died leaves: the mtime not set yet, or a file
        // not sized yet. A file whose final mode has no sticky bit (0444: unmarked, read as it is) cannot be sized
        // without a write bit a stat would see: not resized here.
        const resize = i % 2 === 1 && e.type === 'file' && (shadowMode(e.mode) & 0o1000) !== 0;
        reset(() => {
          if (!resize) utimesSync(at(e), 1, 1);
          else {
            chmodSync(at(e), 0o600);
            writeFileSync(at(e), 'x'.repeat(e.size + 1));
            chmodSync(at(e), shadowMode(e.mode));
          }
        });
        maker.make(at(e), e, MO, ['tree'], new Map());
      }
    }
  });
  for (const e of entries) {
    const st = lstatSync(at(e), { bigint: true });
    assert.equal(Number(st.mode) & 0o7777, shadowMode(e.mode), `${e.name} made right`);
    assert.equal(st.mtimeNs, e.mtimeNs, e.name);
    if (e.type === 'file') assert.equal(Number(st.size), e.size, e.name);
    const modes = [...seen.get(at(e)) ?? []].filter((m) => (m & 0o170000) === (e.type === 'dir' ? 0o040000 : 0o100000));
    assert.ok(modes.length > 0, `${e.name} was watched`);
    for (const m of modes) assert.equal(stored(at(e), m), e.mode & 0o7777, `${e.name}: a stat saw ${(m & 0o7777).toString(8)}`);
  }
  // Every kind was there: marked and unmarked, files and directories, resized and not.
  assert.ok(entries.some((e) => e.type === 'file' && !(shadowMode(e.mode) & 0o1000)) && entries.some((e) => e.type === 'dir' && shadowMode(e.mode) & 0o1000));
  for (const e of entries) chmodSync(at(e), 0o700);
  chmodSync(dir, 0o700);
});
