/**
 * Real programs from Debian packages, installed under /cvmfs as sites install software there, each run from a
 * cold cache in both layers, and compared with the same program run from the source tree: a JVM (a runtime made
 * by jlink, its class-data archive mapped), a static Go program (no libc, so only ptrace sees its calls), Python
 * with numpy (extension modules mapped, their libraries loaded), a venv's interpreter, and git on a repository
 * stored in /cvmfs. A program missing here skips its test; `.ci/run` installs them all.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ROOT, noise, servePublished, tempDir, ucvmfs, type PublishedRepository } from './helpers.js';
import { layeredWith } from './layers.js';

const FQRN = 'programs.test.example.org';
const M = `/cvmfs/${FQRN}`;
const PY = '/usr/bin/python3';

/** For the JDK's tools: no /tmp/hsperfdata_<user> left behind. */
const QUIET_JVM = { ...process.env, JAVA_TOOL_OPTIONS: '-XX:-UsePerfData' };

function has(cmd: string, args: string[] = ['--version']): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore', env: QUIET_JVM }).status === 0;
}
const HAVE = {
  java: has('jlink') && has('javac') && has('jar', ['--version']),
  go: has('go', ['version']),
  numpy: has(PY, ['-c', 'import numpy']),
  git: has('git'),
};

/** Whether jlink makes a class-data archive (JDK 17 and later), which the JVM test then requires (-Xshare:on). */
const CDS = HAVE.java && (spawnSync('jlink', ['--list-plugins'], { encoding: 'utf8', env: QUIET_JVM }).stdout ?? '').includes('--generate-cds-archive');

let repo: PublishedRepository;
let src = '';
let layerEnv: Record<string, string> = {};
const layered = (need: keyof typeof HAVE) => layeredWith((e) => { layerEnv = e; }, { timeout: 180_000, skip: HAVE[need] ? false : `${need} is not installed` });
/** git isolated from the user's and the system's configuration. */
const GIT_ENV = { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.org', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.org' };

function runIn(cwd: string, cmd: string, args: string[], env: Record<string, string> = {}): void {
  execFileSync(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Files of several sizes, a nested directory and a link: what the programs walk and hash. */
function makeData(dir: string): void {
  mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true });
  for (let i = 1; i <= 30; i++) writeFileSync(join(dir, `f${i}.bin`), noise(i * 997, i));
  writeFileSync(join(dir, 'sub', 'deeper', 'x.txt'), 'deep\n');
  symlinkSync('../f1.bin', join(dir, 'sub', 'link'));
}

/** A git repository of four commits: three in a pack (gc), the last as loose objects. */
function makeGit(dir: string): void {
  mkdirSync(dir, { recursive: true });
  runIn(dir, 'git', ['init', '-q', '-b', 'main', '.'], GIT_ENV);
  for (let i = 1; i <= 4; i++) {
    writeFileSync(join(dir, 'a.txt'), Array.from({ length: i }, (_, k) => `line ${k + 1}\n`).join(''));
    mkdirSync(join(dir, `d${i}`));
    writeFileSync(join(dir, `d${i}`, 'f'), `${i}\n`);
    runIn(dir, 'git', ['add', '-A'], GIT_ENV);
    runIn(dir, 'git', ['commit', '-q', '-m', `commit ${i}`], GIT_ENV);
    if (i === 3) runIn(dir, 'git', ['gc', '-q'], GIT_ENV);
  }
}

before(async () => {
  src = tempDir('ucvmfs-programs-src-');
  const build = tempDir('ucvmfs-programs-build-');
  makeData(join(src, 'data'));
  if (HAVE.java) {
    const quiet = { JAVA_TOOL_OPTIONS: QUIET_JVM.JAVA_TOOL_OPTIONS };
    runIn(build, 'javac', ['-d', build, join(ROOT, 'test/native/Hello.java')], quiet);
    mkdirSync(join(src, 'app'));
    runIn(build, 'jar', ['cfe', join(src, 'app', 'hello.jar'), 'Hello', 'Hello.class'], quiet);
    // The class-data archive is mapped by the JVM, and only used if the runtime's files look as when it was made
    // (jlink makes one from JDK 17 on).
    runIn(build, 'jlink', ['--add-modules', 'java.base', '--output', join(src, 'jre'), '--strip-debug', '--no-man-pages', '--no-header-files', ...(CDS ? ['--generate-cds-archive'] : [])], quiet);
  }
  if (HAVE.go) {
    const go = join(build, 'gowalk');
    cpSync(join(ROOT, 'test/native/gowalk'), go, { recursive: true });
    runIn(go, 'go', ['build', '-o', join(src, 'bin', 'gowalk'), '.'], { CGO_ENABLED: '0', GOCACHE: join(build, 'gocache'), GOPATH: join(build, 'gopath'), GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' });
  }
  if (HAVE.numpy) {
    const pkg = execFileSync(PY, ['-c', 'import numpy, os; print(os.path.dirname(numpy.__file__))']).toString().trim();
    cpSync(pkg, join(src, 'py', 'numpy'), { recursive: true, filter: (p) => basename(p) !== 'tests' && basename(p) !== '__pycache__' });
    runIn(src, PY, ['-m', 'venv', '--without-pip', join(src, 'venv')]);
  }
  if (HAVE.git) makeGit(join(src, 'git', 'proj'));
  repo = await servePublished(src, FQRN);
});
after(async () => {
  await repo?.server.close();
});

/** The program's output run natively from the source tree, its paths then named as under /cvmfs. */
function native(argv: string[], env: Record<string, string> = {}): string {
  const r = spawnSync('/bin/sh', ['-c', argv.join(' ')], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split(src).join(M);
}

/** The same under `ucvmfs exec` from a cold cache: status 0 and the output. */
async function underExec(argv: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await ucvmfs(['exec', '--', '/bin/sh', '-c', argv.join(' ')], { ...repo.env(), ...layerEnv, ...env });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString();
}

/** Runs the command line with `{R}` standing for the repository's root, natively and under exec; the outputs. */
async function both(line: string, env: Record<string, string> = {}): Promise<[string, string]> {
  const want = native([line.replaceAll('{R}', src)], env);
  return [await underExec([line.replaceAll('{R}', M)], env), want];
}

layered('java')('a JVM from /cvmfs: a jlinked runtime with its class-data archive mapped (-Xshare:on), java.home under /cvmfs, a walk and hash of a directory, a second JVM started from the same home', async () => {
  const [got, want] = await both(`{R}/jre/bin/java -XX:-UsePerfData ${CDS ? '-Xshare:on' : ''} -cp {R}/app/hello.jar Hello {R}/data`);
  assert.match(want, new RegExp(`^home ${M}/jre\nfiles 32 [0-9a-f]{64}\nchild 0 \\S+ version`));
  assert.equal(got, want);
});

layered('go')('a static Go program from /cvmfs: its own system calls from many threads, a walk, files read in goroutines, itself started again through /proc/self/exe', async () => {
  const [got, want] = await both('{R}/bin/gowalk {R}/data');
  assert.match(want, new RegExp(`^files 31 [0-9a-f]{64}\nself ${M}/bin/gowalk child 997\n$`));
  assert.equal(got, want);
});

layered('numpy')('Python with numpy from /cvmfs: its extension modules and their libraries loaded, arithmetic, linear algebra and FFT; a venv\'s interpreter finds its prefix under /cvmfs', async () => {
  const code = 'import numpy, sys; a = numpy.arange(1000000, dtype=numpy.float64); m = numpy.random.default_rng(7).random((120, 120));'
    + ' print(numpy.__file__, a.sum(), "%.6e" % numpy.linalg.det(m @ m.T + numpy.eye(120)), numpy.fft.fft(numpy.arange(4.0)).tolist())';
  const [got, want] = await both(`PYTHONPATH={R}/py ${PY} -B -c '${code}'`);
  assert.match(want, new RegExp(`^${M}/py/numpy/__init__.py 499999500000.0 \\S+e\\+\\d+ \\[\\(6\\+0j\\), \\(-2\\+2j\\)`));
  assert.equal(got, want);
  const venv = await both(`{R}/venv/bin/python -c 'import sys, os; print(sys.prefix, sys.executable, sys.base_prefix)'`);
  assert.match(venv[1], new RegExp(`^${M}/venv ${M}/venv/bin/python /`));
  assert.equal(venv[0], venv[1]);
});

layered('git')('git on a repository in /cvmfs: log, status, show, grep and fsck read packed and loose objects, and a clone out of it', async () => {
  const clone = join(tempDir('ucvmfs-programs-clone-'), 'c');
  const line = `git -C {R}/git/proj log --format=%s; git -C {R}/git/proj status --porcelain; git -C {R}/git/proj show HEAD~2:a.txt;`
    + ` git -C {R}/git/proj grep -c line; git -C {R}/git/proj fsck --full 2>&1; git clone -q {R}/git/proj ${clone}.$$ && git -C ${clone}.$$ log --oneline | wc -l`;
  const [got, want] = await both(line, GIT_ENV);
  assert.equal(want, 'commit 4\ncommit 3\ncommit 2\ncommit 1\nline 1\nline 2\na.txt:4\n4\n');
  assert.equal(got, want);
});
