/*
 * The front of `ucvmfs exec`: the process a shell or batch system starts and waits for.
 *
 * The tracer (Node) must outlive the command when the command leaves processes behind (a daemon, `cmd &`),
 * since they keep reading /cvmfs through it; yet the caller must see the command's own end, as with a mounted
 * /cvmfs. So the caller waits for this small process instead, which starts Node as its child, exits with the
 * command's status (or dies of its signal) as soon as Node reports it, and passes on the signals sent to it.
 *
 * It also records what Node cannot: the signal dispositions and mask the caller gave (Node resets every
 * disposition and the mask when it starts), so that `nohup`, `trap '' INT` and blocked signals reach the
 * command as they would without ucvmfs; the caller's soft limit of open files, which Node raises to the hard
 * limit at start (programs that use select() rely on the usual 1024, and some loop over every possible
 * descriptor); and which descriptors beyond 0-2 the caller left open for the command (a lock held on fd 9, make's
 * jobserver, bash's `<(...)`), which Node marks close-on-exec at start; and which of 0-2 the caller had closed
 * (`<&-`), where Node would open /dev/null and this process its own pipe. And it puts back the variables that
 * bin/ucvmfs.js's shell dropped (see restore_environment).
 *
 * usage: ucvmfs_front SCRIPT [ARG]...   (runs `node SCRIPT ARG...`; bin/ucvmfs.js calls it)
 *        ucvmfs_front --dropped-environment PID   (see print_dropped)
 * Node reads UCVMFS_FRONT_FD (a pipe to write "p<pid>\n", then "x<code>\n" or "s<signal>\n" into) and
 * UCVMFS_SIGNALS ("<ignored>:<blocked>", 64-bit hexadecimal masks, bit n-1 for signal n) and UCVMFS_NOFILE
 * (the soft RLIMIT_NOFILE, decimal, or "inf") and UCVMFS_FSIZE (the soft RLIMIT_FSIZE, the same way: this process
 * raises its own to the hard limit, so that ucvmfs can keep files larger than the command may write) and UCVMFS_FDS (the descriptors above 2 open without
 * close-on-exec, comma-separated, or empty) and UCVMFS_CLOSED (which of 0-2 were closed, comma-separated).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t target; /* where signals sent to this process go: Node, then the command */

/* A signal sent by a process (kill, timeout, a batch system) goes on to the command, as if sent to it. One from
 * the terminal (Ctrl-C, a hang-up, a resize) reached the whole foreground group, the command included. */
static void pass_on(int sig, siginfo_t *info, void *ctx) {
  (void)ctx;
  int e = errno;
  if (info->si_code <= 0 && target > 0) kill(target, sig);
  errno = e;
  if (info->si_code > 0 && (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)) {
    /* Stop with the group, so that the shell sees the job stop (it waits for this process). */
    kill(getpid(), SIGSTOP);
  }
}

/* Ends this process as the command ended: the same status, or the same signal. Never with a core dump of its
 * own: the command dumped its core already if it was to, and a core of this process would take its place (a
 * plain `core` in the working directory). A shell then says "Segmentation fault" without "(core dumped)". */
static void leave(int code, int sig) {
  if (sig > 0) {
    struct rlimit none = {0, 0};
    if (getrlimit(RLIMIT_CORE, &none) == 0) none.rlim_cur = 0;
    setrlimit(RLIMIT_CORE, &none);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    code = 128 + sig; /* a signal that does not kill (SIGCHLD ...): say it by the code, as a shell would */
  }
  _exit(code);
}

/* The descriptors above 2 the command would inherit from a shell: open, without close-on-exec. At most what fits
 * in `out` (4096 bytes: hundreds of descriptors); the rest stay closed to the command. */
static void inherited(char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  int own = dirfd(d);
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end != '\0' || fd <= 2 || fd == own) continue;
    int flags = fcntl((int)fd, F_GETFD);
    if (flags < 0 || (flags & FD_CLOEXEC)) continue;
    int n = snprintf(out + used, size - used, "%s%ld", used ? "," : "", fd);
    if (n < 0 || (size_t)n >= size - used) {
      out[used] = '\0';
      break;
    }
    used += (size_t)n;
  }
  closedir(d);
}

/* A variable name the shell keeps: dash drops the others when it runs a program (bash's exported functions such as
 * `BASH_FUNC_module%%`, names like `a.b`). */
static int shell_name(const char *s, size_t n) {
  if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return 0;
  return 1;
}

/* `ucvmfs_front --dropped-environment PID`, run by bin/ucvmfs.js's shell (PID) before it runs the front: the
 * entries of the shell's environment as it came whose names the shell drops, in hexadecimal, each with its
 * terminating zero byte. Usually none: then the shell hands over an empty document without writing it through a
 * process of its own, and this program starts sooner than `od` would (which read all of it, with its locale). */
static int print_dropped(const char *pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%s/environ", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 1;
  size_t cap = 1 << 16, len = 0;
  char *env = malloc(cap);
  for (ssize_t n; env && (n = read(fd, env + len, cap - len)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    len += (size_t)n;
    if (len == cap) {
      char *more = cap < (64u << 20) ? realloc(env, cap * 2) : NULL;
      if (!more) free(env);
      env = more;
      cap *= 2;
    }
  }
  close(fd);
  if (!env) return 1;
  static const char hex[] = "0123456789abcdef";
  for (size_t at = 0; at < len;) {
    char *end = memchr(env + at, 0, len - at);
    size_t n = end ? (size_t)(end - (env + at)) : len - at;
    char *eq = memchr(env + at, '=', n);
    if (eq && eq > env + at && !shell_name(env + at, (size_t)(eq - (env + at)))) {
      for (size_t i = 0; i <= n && at + i < len; i++) {
        unsigned char c = (unsigned char)env[at + i];
        putchar(hex[c >> 4]);
        putchar(hex[c & 15]);
      }
      putchar('\n');
    }
    at += n + 1;
  }
  free(env);
  return fflush(stdout) == 0 ? 0 : 1;
}

/* bin/ucvmfs.js hands over, on descriptor UCVMFS_ENVIRON_FD, the entries of its environment the shell dropped
 * (print_dropped, after a `//`), in hexadecimal: they are put back here, as they were. The others the shell
 * passed on (with its own changes, NODE_EXTRA_CA_CERTS moved aside). */
static void restore_environment(void) {
  const char *v = getenv("UCVMFS_ENVIRON_FD");
  if (!v || v[0] < '3' || v[0] > '9' || v[1] != '\0') return;
  int fd = v[0] - '0';
  unsetenv("UCVMFS_ENVIRON_FD");
  size_t cap = 1 << 16, len = 0;
  unsigned char *env = malloc(cap);
  int high = -1;
  char buf[65536];
  for (ssize_t n; env && (n = read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (ssize_t i = 0; i < n; i++) {
      int c = buf[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) continue; /* spaces, newlines, the leading slashes */
      if (high < 0) {
        high = d;
        continue;
      }
      if (len == cap) {
        unsigned char *more = cap < (64u << 20) ? realloc(env, cap * 2) : NULL;
        if (!more) {
          free(env);
          env = NULL;
          break;
        }
        env = more;
        cap *= 2;
      }
      env[len++] = (unsigned char)(high << 4 | d);
      high = -1;
    }
  }
  close(fd);
  if (!env) return;
  for (size_t at = 0; at < len;) {
    unsigned char *end = memchr(env + at, 0, len - at);
    size_t n = end ? (size_t)(end - (env + at)) : len - at;
    char *entry = (char *)env + at;
    char *eq = memchr(entry, '=', n);
    if (eq && eq > entry && end && !shell_name(entry, (size_t)(eq - entry))) {
      *eq = '\0';
      if (!getenv(entry)) setenv(entry, eq + 1, 0);
    }
    at += n + 1;
  }
  free(env);
}

static void capture(uint64_t *ignored, uint64_t *blocked) {
  sigset_t mask;
  sigprocmask(SIG_BLOCK, NULL, &mask);
  *ignored = *blocked = 0;
  for (int s = 1; s <= 64 && s < NSIG; s++) {
    struct sigaction sa;
    if (sigaction(s, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN) *ignored |= 1ULL << (s - 1);
    if (sigismember(&mask, s) == 1) *blocked |= 1ULL << (s - 1);
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--dropped-environment") == 0) return print_dropped(argv[2]);
  /* First of all, before anything of ours could take their numbers: the standard descriptors the caller closed,
   * held on /dev/null meanwhile (open takes the lowest free number, this one). */
  char closed[8] = "";
  size_t nc = 0;
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int n = open("/dev/null", O_RDWR);
    if (n != fd) {
      if (n >= 0) close(n);
      continue;
    }
    closed[nc++] = (char)('0' + fd);
    closed[nc++] = ',';
  }
  if (nc) closed[nc - 1] = '\0';
  restore_environment();
  if (argc < 2) {
    fprintf(stderr, "usage: %s SCRIPT [ARG]...\n", argv[0]);
    return 2;
  }
  setenv("UCVMFS_CLOSED", closed, 1);
  uint64_t ignored, blocked;
  capture(&ignored, &blocked);
  char sigs[64], fdv[16];
  snprintf(sigs, sizeof sigs, "%llx:%llx", (unsigned long long)ignored, (unsigned long long)blocked);
  setenv("UCVMFS_SIGNALS", sigs, 1);
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    char lim[32] = "inf";
    if (nofile.rlim_cur != RLIM_INFINITY) snprintf(lim, sizeof lim, "%llu", (unsigned long long)nofile.rlim_cur);
    setenv("UCVMFS_NOFILE", lim, 1);
  }
  struct rlimit fsize;
  if (getrlimit(RLIMIT_FSIZE, &fsize) == 0) {
    char lim[32] = "inf";
    if (fsize.rlim_cur != RLIM_INFINITY) snprintf(lim, sizeof lim, "%llu", (unsigned long long)fsize.rlim_cur);
    setenv("UCVMFS_FSIZE", lim, 1);
    /* A batch system's file size limit is the job's: the cache and shadow files ucvmfs writes are not. */
    fsize.rlim_cur = fsize.rlim_max;
    setrlimit(RLIMIT_FSIZE, &fsize);
  }
  static char fds[4096];
  inherited(fds, sizeof fds);
  setenv("UCVMFS_FDS", fds, 1);
  int p[2];
  if (pipe(p) != 0) {
    perror("ucvmfs: pipe");
    return 125;
  }
  fcntl(p[0], F_SETFD, FD_CLOEXEC);
  snprintf(fdv, sizeof fdv, "%d", p[1]);
  setenv("UCVMFS_FRONT_FD", fdv, 1);
  /* Signals that arrive before Node runs wait until it can take them. */
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t parent = getpid();
  pid_t node = fork();
  if (node < 0) {
    perror("ucvmfs: fork");
    return 125;
  }
  if (node == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* Killed with SIGKILL, this front cannot pass it on: Node hears of it (SIGURG, which it ignores by
     * default) and kills the command if it still runs. */
    prctl(PR_SET_PDEATHSIG, SIGURG);
    if (getppid() != parent) kill(getpid(), SIGURG);
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) _exit(125);
    args[0] = "node";
    for (int i = 1; i < argc; i++) args[i] = argv[i];
    execvp("node", args);
    fprintf(stderr, "ucvmfs: cannot run node: %s\n", strerror(errno));
    _exit(127);
  }
  close(p[1]);
  target = node;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = pass_on;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP || s == SIGCHLD || s == SIGSEGV || s == SIGBUS || s == SIGFPE || s == SIGILL) continue;
    if (s <= 64 && (ignored >> (s - 1) & 1)) continue; /* ignored here: the command ignores it too */
    sigaction(s, &sa, NULL);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  /* Messages from Node: "p<pid>" when the command runs, then "x<code>" or "s<signal>" when it ends. */
  char buf[256];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(p[0], buf + have, sizeof buf - 1 - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += (size_t)n;
    buf[have] = 0;
    char *line = buf, *nl;
    while ((nl = strchr(line, '\n')) != NULL) {
      *nl = 0;
      long v = strtol(line + 1, NULL, 10);
      if (line[0] == 'p' && v > 0) target = (pid_t)v;
      else if (line[0] == 'x') leave((int)v, 0);
      else if (line[0] == 's') leave(0, (int)v);
      line = nl + 1;
    }
    have = strlen(line);
    memmove(buf, line, have);
    if (have >= sizeof buf - 1) have = 0; /* not a message of ours */
  }
  /* Node ended without a word (it failed, or the command was not started): its own status is the answer. */
  int status = 0;
  while (waitpid(node, &status, 0) < 0) {
    if (errno != EINTR) leave(125, 0);
  }
  if (WIFSIGNALED(status)) leave(0, WTERMSIG(status));
  leave(WEXITSTATUS(status), 0);
  return 0;
}
