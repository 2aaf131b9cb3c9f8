/**
 * Debuggers and tracers inside `ucvmfs exec` (issue 18, finding 5): every process of a job is traced by the
 * connector, and the tracer acts for the job's own tracers (addon/ptrace_emu.*). strace, gdb (run, crash,
 * backtrace, breakpoints, attach to a running process) and ltrace of a program we publish, compiled here with
 * debug information, in both layers (preload library + ptrace, ptrace only).
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publish } from '../lib/index.js';
import { serve, tempDir, ucvmfs, ROOT, type CliResult } from './helpers.js';
import { LAYERS } from './layers.js';
import type { RepositoryServer } from '../lib/serve.js';

const DBG = 'dbg.test.example.org';
const PROG = `/cvmfs/${DBG}/bin/dbg`;
const DATA = `/cvmfs/${DBG}/share/hello.txt`;
const has = (tool: string) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
const tools = { gdb: has('gdb'), strace: has('strace'), ltrace: has('ltrace') };

const SOURCE = `#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) int deref_null(int *p) {
  return *p + 1; /* CRASH */
}

__attribute__((noinline)) int add_numbers(int a, int b) {
  return a + b; /* ADD */
}

__attribute__((noinline)) void wait_here(void) {
  for (;;) pause(); /* PAUSE */
}

/* A crash handler, as ROOT-based frameworks have: it runs gdb on its own process to print the stack. */
static void on_segv(int sig) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "gdb -nx -batch -p %d -ex bt 2>&1", (int)getpid());
  if (system(cmd) != 0) printf("gdb failed\\n");
  _exit(128 + sig);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "handler")) signal(SIGSEGV, on_segv);
  if (argc > 1 && (!strcmp(argv[1], "crash") || !strcmp(argv[1], "handler"))) {
    printf("about to crash\\n");
    fflush(stdout);
    return deref_null(NULL); /* MAIN-CRASH */
  }
  if (argc > 1 && !strcmp(argv[1], "wait")) {
    printf("%d\\n", (int)getpid());
    fflush(stdout);
    wait_here(); /* MAIN-WAIT */
  }
  int s = add_numbers(2, 3); /* MAIN-ADD */
  printf("sum %d\\n", s);
  return s;
}
`;
/** The line of SOURCE that holds a marker comment (what gdb names as `dbg.c:LINE`). */
const line = (marker: string) => SOURCE.split('\n').findIndex((l) => l.includes(`/* ${marker} */`)) + 1;

let server: RepositoryServer;
let env: Record<string, string>;
let layerEnv: Record<string, string> = {};

before(async () => {
  const src = tempDir('ucvmfs-dbg-src-');
  mkdirSync(join(src, 'bin'));
  mkdirSync(join(src, 'src'));
  mkdirSync(join(src, 'share'));
  writeFileSync(join(src, 'src/dbg.c'), SOURCE);
  writeFileSync(join(src, 'share/hello.txt'), 'hello from cvmfs\n');
  execFileSync('gcc', ['-g', '-O0', '-o', join(src, 'bin/dbg'), 'dbg.c'], { cwd: join(src, 'src') });
  const out = join(tempDir('ucvmfs-dbg-'), 'repo');
  const r = await publish(src, { fqrn: DBG, out });
  server = await serve({ [DBG]: out });
  env = {
    CVMFS_SERVER_URL: `${server.url}/@fqrn@`,
    CVMFS_PUBLIC_KEY: r.publicKeyPath,
    CVMFS_CACHE_BASE: tempDir('ucvmfs-dbg-cache-'),
    // gdb must not ask a debuginfod server for the host's libraries.
    DEBUGINFOD_URLS: '',
  };
});
after(() => server.close());

function exec(argv: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  return ucvmfs(['exec', '--', ...argv], { ...env, ...layerEnv, ...extra });
}

/** Registers a test in both layers (see test/connector.test.ts); skipped when the tool is not installed. */
function layered(name: string, tool: keyof typeof tools, fn: (t: TestContext) => Promise<void>): void {
  for (const [layer, e] of LAYERS) {
    test(`${name} [${layer}]`, { skip: tools[tool] ? false : `${tool} is not installed`, timeout: 180_000 }, async (t) => {
      layerEnv = e;
      try {
        await fn(t);
      } finally {
        layerEnv = {};
      }
    });
  }
}

const gdb = (...args: string[]) => ['gdb', '-nx', '-batch', ...args];

layered('strace of a program from /cvmfs and of /bin/true: the calls with the /cvmfs paths the program gave, its output and exit status', 'strace', async () => {
  const r = await exec(['strace', '-e', 'trace=execve,openat,exit_group', PROG]);
  assert.equal(r.code, 5, r.stderr);
  assert.equal(r.stdout.toString(), 'sum 5\n');
  assert.match(r.stderr, new RegExp(`^execve\\("${PROG}", \\["/cvmfs/.*\\) = 0$`, 'm'));
  assert.match(r.stderr, /^exit_group\(5\) += \?$/m);
  assert.match(r.stderr, /^\+\+\+ exited with 5 \+\+\+$/m);
  assert.doesNotMatch(r.stderr, new RegExp(env.CVMFS_CACHE_BASE), 'no shadow path shows');

  const t = await exec(['strace', '/bin/true']);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stderr, /^execve\("\/bin\/true", \["\/bin\/true"\], .*\) = 0$/m);
  assert.match(t.stderr, /^\+\+\+ exited with 0 \+\+\+$/m);
  // strace's own report of the syscall stops it was given: consistent entries and exits.
  assert.doesNotMatch(t.stderr, /ptrace_syscall_info|Operation not permitted/);
});

layered('strace -f of a shell: every process, the openat of a /cvmfs file, a child killed by a signal, exit statuses', 'strace', async () => {
  const dir = tempDir('ucvmfs-strace-');
  const log = join(dir, 'trace');
  const r = await exec(['strace', '-f', '-o', log, '-e', 'trace=execve,openat,chdir', '/bin/bash', '-c', `cat ${DATA}; cd /cvmfs/${DBG}/bin && ./dbg; /bin/sh -c 'kill -TERM $$'; exit 3`]);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout.toString(), 'hello from cvmfs\nsum 5\n');
  const out = readFileSync(log, 'utf8');
  assert.match(out, new RegExp(`^\\d+ +openat\\(AT_FDCWD, "${DATA}", O_RDONLY\\) = 3$`, 'm'));
  assert.match(out, new RegExp(`^\\d+ +chdir\\("/cvmfs/${DBG}/bin"\\) += 0$`, 'm'));
  assert.match(out, /^\d+ +execve\("\.\/dbg", \["\.\/dbg"\], .*\) = 0$/m);
  assert.match(out, /^\d+ +\+\+\+ exited with 5 \+\+\+$/m);
  assert.match(out, /^\d+ +\+\+\+ killed by SIGTERM \+\+\+$/m);
  assert.match(out, /^\d+ +\+\+\+ exited with 3 \+\+\+$/m);
  const pids = new Set(out.split('\n').filter(Boolean).map((l) => l.split(' ')[0]));
  assert.ok(pids.size >= 4, `bash, cat, dbg and sh each traced (${[...pids].join(' ')})`);
  assert.doesNotMatch(out, new RegExp(env.CVMFS_CACHE_BASE), 'no shadow path shows');
});

layered('gdb runs a program from /cvmfs that crashes: the backtrace names the function and the source line', 'gdb', async () => {
  const r = await exec(gdb('-ex', 'run', '-ex', 'bt', '--args', PROG, 'crash'));
  const out = r.stdout.toString();
  assert.equal(r.code, 0, r.stderr);
  assert.match(out, /^about to crash$/m, 'the program ran and wrote');
  assert.match(out, /Program received signal SIGSEGV, Segmentation fault\./);
  assert.match(out, new RegExp(`^#0 +(0x[0-9a-f]+ in )?deref_null \\(p=0x0\\) at dbg\\.c:${line('CRASH')}$`, 'm'));
  assert.match(out, new RegExp(`^#1 +0x[0-9a-f]+ in main \\(argc=2, argv=0x[0-9a-f]+\\) at dbg\\.c:${line('MAIN-CRASH')}$`, 'm'));
  assert.doesNotMatch(r.stderr, /Operation not permitted|exited with code 127/);
});

layered('gdb: a breakpoint, the arguments there, continue to the end with the program\'s output and exit status', 'gdb', async () => {
  const r = await exec(gdb('-ex', 'break add_numbers', '-ex', 'run', '-ex', 'bt', '-ex', 'print a * 10 + b', '-ex', 'continue', PROG));
  const out = r.stdout.toString();
  assert.equal(r.code, 0, r.stderr);
  assert.match(out, new RegExp(`^Breakpoint 1 at 0x[0-9a-f]+: file dbg\\.c, line ${line('ADD')}\\.$`, 'm'));
  assert.match(out, new RegExp(`^Breakpoint 1, add_numbers \\(a=2, b=3\\) at dbg\\.c:${line('ADD')}$`, 'm'));
  assert.match(out, new RegExp(`^#1 +0x[0-9a-f]+ in main \\(argc=1, argv=0x[0-9a-f]+\\) at dbg\\.c:${line('MAIN-ADD')}$`, 'm'));
  assert.match(out, /^\$1 = 23$/m);
  assert.match(out, /^sum 5$/m);
  assert.match(out, /^\[Inferior 1 \(process \d+\) exited with code 05\]$/m);
});

layered('gdb -p attaches to a running process of the job (a crash handler\'s case): its stack, then it runs on after the detach', 'gdb', async () => {
  const script = `${PROG} wait > pidfile & p=$!
for i in $(seq 100); do [ -s pidfile ] && break; sleep 0.1; done
gdb -nx -batch -p $p -ex bt 2>&1
kill -0 $p && echo still running
kill -TERM $p; wait $p; echo "status $?"`;
  const dir = tempDir('ucvmfs-gdbp-');
  const s = await exec(['/bin/bash', '-c', `cd ${dir}\n${script}`]);
  const out = s.stdout.toString();
  assert.equal(s.code, 0, s.stderr);
  assert.match(out, new RegExp(`^#\\d+ +0x[0-9a-f]+ in wait_here \\(\\) at dbg\\.c:${line('PAUSE')}$`, 'm'));
  assert.match(out, new RegExp(`^#\\d+ +0x[0-9a-f]+ in main \\(argc=2, argv=0x[0-9a-f]+\\) at dbg\\.c:${line('MAIN-WAIT')}$`, 'm'));
  assert.match(out, /^\[Inferior 1 \(process \d+\) detached\]$/m);
  assert.match(out, /^still running$/m);
  assert.match(out, /^status 143$/m, 'ended by our SIGTERM, not by the debugger');
});

layered('a crash handler that runs gdb -p on its own process (as ROOT-based frameworks do) prints the stack of the crash', 'gdb', async () => {
  const r = await exec([PROG, 'handler']);
  const out = r.stdout.toString();
  assert.equal(r.code, 128 + 11, r.stderr);
  assert.match(out, /^about to crash$/m);
  assert.match(out, /^#\d+ +0x[0-9a-f]+ in on_segv \(sig=11\) at dbg\.c:\d+$/m);
  assert.match(out, /^#\d+ +<signal handler called>$/m);
  assert.match(out, new RegExp(`^#\\d+ +0x[0-9a-f]+ in deref_null \\(p=0x0\\) at dbg\\.c:${line('CRASH')}$`, 'm'));
  assert.match(out, new RegExp(`^#\\d+ +0x[0-9a-f]+ in main \\(argc=2, argv=0x[0-9a-f]+\\) at dbg\\.c:${line('MAIN-CRASH')}$`, 'm'));
  assert.doesNotMatch(out, /gdb failed|ptrace: Operation not permitted/);
});

layered('strace -p: it follows a running process of the job to its end; Ctrl-C (SIGINT) ends it while that process sleeps, which runs on', 'strace', async () => {
  const dir = tempDir('ucvmfs-strace-p-');
  const r = await exec(['/bin/bash', '-c', `cd ${dir}
/bin/bash -c "sleep 1; cat ${DATA} > copy; exit 4" & p=$!
strace -f -p $p -o trace -e trace=openat,exit_group 2>/dev/null; echo "strace $?"; wait $p; echo "traced $?"
/bin/sleep 30 & p=$!
strace -p $p -o /dev/null 2>/dev/null & s=$!
sleep 1; kill -INT $s; wait $s; echo "strace after SIGINT $?"
kill -0 $p && echo "sleep runs on"; kill $p`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), 'strace 0\ntraced 4\nstrace after SIGINT 130\nsleep runs on\n');  // 130, as outside a job
  const trace = readFileSync(join(dir, 'trace'), 'utf8');
  assert.match(trace, new RegExp(`^\\d+ +openat\\(AT_FDCWD, "${DATA}", O_RDONLY\\) = 3$`, 'm'));
  assert.match(trace, /^\d+ +\+\+\+ exited with 4 \+\+\+$/m);
  assert.equal(readFileSync(join(dir, 'copy'), 'utf8'), 'hello from cvmfs\n');
});

layered('ltrace of a program from /cvmfs: its library calls and exit status', 'ltrace', async () => {
  const r = await exec(['ltrace', '-e', 'printf', PROG]);
  assert.equal(r.code, 0, r.stderr);  // ltrace's own status, not its tracee's
  assert.equal(r.stdout.toString(), 'sum 5\n');
  assert.match(r.stderr, /dbg->printf\("sum %d\\n", 5\) += 6/);
  assert.match(r.stderr, /^\+\+\+ exited \(status 5\) \+\+\+$/m);
});

layered('a tracer that dies leaves no tracee stopped: strace killed mid-way detaches (the traced loop runs to its end), gdb killed at a breakpoint takes its inferior along (PTRACE_O_EXITKILL)', 'gdb', async () => {
  const dir = tempDir('ucvmfs-killed-tracer-');
  const t0 = Date.now();
  const r = await exec(['/bin/bash', '-c', `cd ${dir}
strace -f -o /dev/null /bin/sh -c 'i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done; echo loop done > out' & s=$!
sleep 1; kill -KILL $s; wait $s; echo "strace $?"
for i in $(seq 600); do [ -s out ] && break; sleep 0.1; done; cat out
gdb -nx -batch -ex 'break add_numbers' -ex run -ex 'shell kill -KILL $PPID' ${PROG} >/dev/null 2>&1; echo "gdb $?"`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), 'strace 137\nloop done\ngdb 137\n');
  assert.ok(Date.now() - t0 < 90_000, `${Date.now() - t0} ms`);
  assert.equal(spawnSync('pgrep', ['-f', `^${PROG}$`]).status, 1, 'the inferior is gone');
});

/** A C program of ours compiled into a temporary directory (as `p`), and its run outside the job (it must succeed). */
function compiledAndRun(source: string): { dir: string; native: SpawnSyncReturns<string> } {
  const dir = tempDir('ucvmfs-ptrace-');
  writeFileSync(join(dir, 'p.c'), source);
  execFileSync('gcc', ['-O1', '-o', join(dir, 'p'), join(dir, 'p.c')]);
  const native = spawnSync(join(dir, 'p'), { encoding: 'utf8' });
  assert.equal(native.status, 0, native.stderr);
  return { dir, native };
}

/** A tracer of our own: each ptrace request the kernel answers with an error, and the value of a successful one. */
const ERRORS_SOURCE = `#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>
static long magic = 0x5eed1234;
static void show(const char *what, long r) { printf("%s: %s\\n", what, r == -1 ? strerror(errno) : "ok"); }
int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  pid_t c = fork();
  if (c == 0) {
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(2);
    show("second TRACEME", ptrace(PTRACE_TRACEME, 0, 0, 0));
    raise(SIGSTOP);
    _exit(7);
  }
  int st;
  if (waitpid(c, &st, 0) != c) return 1;
  printf("stopped: %d %s\\n", WIFSTOPPED(st), strsignal(WSTOPSIG(st)));
  show("ATTACH self", ptrace(PTRACE_ATTACH, getpid(), 0, 0));
  show("ATTACH traced child", ptrace(PTRACE_ATTACH, c, 0, 0));
  show("CONT of a process not traced", ptrace(PTRACE_CONT, getppid(), 0, 0));
  show("unknown request", ptrace((enum __ptrace_request)0x4299, c, 0, 0));
  show("SETOPTIONS unknown bit", ptrace(PTRACE_SETOPTIONS, c, 0, 0x80000000L));
  errno = 0;
  long w = ptrace(PTRACE_PEEKDATA, c, &magic, 0);
  printf("PEEKDATA: %lx %s\\n", w, strerror(errno));
  errno = 0;
  ptrace(PTRACE_PEEKDATA, c, 8, 0);
  printf("PEEKDATA of address 8: %s\\n", strerror(errno));
  show("POKEDATA", ptrace(PTRACE_POKEDATA, c, &magic, 0x77));
  printf("PEEKDATA after POKE: %lx\\n", ptrace(PTRACE_PEEKDATA, c, &magic, 0));
  siginfo_t si;
  show("GETSIGINFO", ptrace(PTRACE_GETSIGINFO, c, 0, &si));
  printf("siginfo: %s from %d\\n", strsignal(si.si_signo), si.si_pid == c);
  show("CONT", ptrace(PTRACE_CONT, c, 0, 0));
  if (waitpid(c, &st, 0) != c) return 1;
  printf("exited: %d %d, parent's magic %lx\\n", WIFEXITED(st), WEXITSTATUS(st), magic);
  show("CONT after its end", ptrace(PTRACE_CONT, c, 0, 0));
  show("waitpid with no child", waitpid(-1, &st, WNOHANG));
  return 0;
}
`;

layered('a ptrace program of our own gets what the kernel gives outside the job: values, and errors (EPERM, ESRCH, EIO, EINVAL)', 'strace', async () => {
  const { dir, native } = compiledAndRun(ERRORS_SOURCE);
  assert.match(native.stdout, /^ATTACH traced child: Operation not permitted$/m, 'the native run is what the test means');
  const r = await exec([join(dir, 'p')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), native.stdout);
  // Not emulated: a tracer's own seccomp stops would reach the connector (a nested ucvmfs exec fails as before).
  const nested = await exec(['/bin/sh', '-c', `${process.execPath} ${join(ROOT, 'dist/lib/cli/main.js')} exec -- /bin/true`]);
  assert.notEqual(nested.code, 0);
  assert.match(nested.stderr, /ptrace is not allowed here \(Operation not permitted\)/);
});

layered('UCVMFS_PTRACE=off: ptrace fails with EPERM inside the job, as without the emulation', 'strace', async () => {
  const r = await exec(['strace', '/bin/true'], { UCVMFS_PTRACE: 'off' });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Operation not permitted/);
});

/**
 * A tracer of our own that only polls (waitpid with WNOHANG): a child that asked to be traced, then a grandchild
 * (not its child: the kernel answers ECHILD for it outside the ptrace relation) attached to as soon as its pid
 * came through a pipe, perhaps before the connector saw the grandchild's first stop (that attach was EPERM once).
 */
const POLLING_SOURCE = `#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>
/* What a poll of c found: "stopped by ...", "exited N", or why it failed. */
static const char *poll_for(pid_t c, char *out, size_t n) {
  int st;
  pid_t r;
  for (int i = 0; (r = waitpid(c, &st, WNOHANG)) == 0; i++) {
    if (i == 10000) return "never";
    usleep(500);
  }
  if (r != c) snprintf(out, n, "%s", strerror(errno));
  else if (WIFSTOPPED(st)) snprintf(out, n, "stopped by %s", strsignal(WSTOPSIG(st)));
  else snprintf(out, n, "exited %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  return out;
}
int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  char a[128], b[128];
  int st;
  pid_t c = fork();
  if (c == 0) {
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(2);
    raise(SIGSTOP);
    _exit(5);
  }
  printf("child: %s\\n", poll_for(c, a, sizeof a));
  ptrace(PTRACE_CONT, c, 0, 0);
  printf("child: %s\\n", poll_for(c, a, sizeof a));
  /* Rounds: a middle process forks a grandchild and sends its pid at once; it is attached to at once. */
  int good = 0;
  for (int round = 0; round < 60; round++) {
    int p[2], q[2];
    if (pipe(p) || pipe(q)) return 1;
    pid_t m = fork();
    if (m == 0) {
      pid_t g = fork();
      if (g == 0) {
        char x;
        if (read(q[0], &x, 1) != 1) _exit(3);
        _exit(9);
      }
      if (write(p[1], &g, sizeof g) != sizeof g) _exit(3);
      waitpid(g, &st, 0);
      _exit(0);
    }
    pid_t g;
    if (read(p[0], &g, sizeof g) != sizeof g) return 1;
    int before = waitpid(g, &st, WNOHANG) < 0 && errno == ECHILD;
    if (ptrace(PTRACE_ATTACH, g, 0, 0) != 0) {
      printf("round %d: attach: %s\\n", round, strerror(errno));
      kill(g, SIGKILL);
    } else {
      poll_for(g, a, sizeof a);
      ptrace(PTRACE_CONT, g, 0, 0);
      if (write(q[1], "x", 1) != 1) return 1;
      poll_for(g, b, sizeof b);
      if (before && !strcmp(a, "stopped by Stopped (signal)") && !strcmp(b, "exited 9")) good++;
      else printf("round %d: %d, %s, %s\\n", round, before, a, b);
    }
    waitpid(m, &st, 0);
    close(p[0]); close(p[1]); close(q[0]); close(q[1]);
  }
  printf("grandchildren: %d of 60 seen stopped, then exited 9\\n", good);
  printf("no child left: %s\\n", waitpid(-1, &st, WNOHANG) < 0 ? strerror(errno) : "one");
  return 0;
}
`;

layered('a tracer that polls (WNOHANG) sees its tracees\' stops and ends: a child\'s, and a grandchild\'s attached as soon as its pid came through a pipe', 'strace', async () => {
  const { dir, native } = compiledAndRun(POLLING_SOURCE);
  assert.equal(native.stdout, 'child: stopped by Stopped (signal)\nchild: exited 5\ngrandchildren: 60 of 60 seen stopped, then exited 9\n'
    + 'no child left: No child processes\n', 'the native run is what the test means');
  const r = await exec([join(dir, 'p')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), native.stdout);
});
