// The command's first process: started sharing the tracer's memory (as posix_spawn does) rather than as a copy
// of Node's (fork copies the page tables of a process of 50 MB and more, and each page the child then touches
// faults: about 2.4 ms of every `exec` here), and the program found on PATH before it starts rather than by
// execve tries (each try is a stop in the tracer: eight of them for `true` with this machine's PATH).
//
// Until it execs, the child runs on a stack of its own in the tracer's memory and must change nothing there: it
// makes raw system calls only (no errno: the tracer thread's, which the tracer reads while the child runs) and
// reads what the plan prepared before it started.
#pragma once

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <string>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace ucvmfs {

// A system call without libc: returns -errno on failure.
static inline long RawCall(long n, long a = 0, long b = 0, long c = 0, long d = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
#else
#error "the tracer supports x86_64 and aarch64"
#endif
}

// Whether execve of `candidate` (a PATH entry `dir` joined with the name) would fail with ENOENT or ENOTDIR as
// the host's file system stands: only for an absolute `dir` that is wholly the host's (no /cvmfs in it, before or
// after its links are followed), since /cvmfs is the job's alone, and a relative one is the job's directory.
inline bool AbsentOnHost(const std::string& dir, const std::string& candidate) {
  auto inCvmfs = [](const char* p) { return strncmp(p, "/cvmfs", 6) == 0 && (p[6] == 0 || p[6] == '/'); };
  if (dir.empty() || dir[0] != '/' || inCvmfs(dir.c_str()) || dir.find("/cvmfs") != std::string::npos) return false;
  char real[PATH_MAX];
  if (!realpath(dir.c_str(), real) || inCvmfs(real)) return false;
  struct stat st;
  return lstat(candidate.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR);
}

// What the child does and needs, all prepared by the tracer before it starts.
struct SpawnPlan {
  // The paths execve is tried with, in glibc execvpe's order (a name with a slash as it is; else each PATH
  // entry, PATH taken from this process as execvpe does, "/bin:/usr/bin" when unset), less those AbsentOnHost.
  std::vector<std::string> tries;
  std::vector<const char*> tryPtrs;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  // For a file the kernel will not run (ENOEXEC): /bin/sh, the file (set by the child), then argv[1...].
  std::vector<char*> scriptArgv;
  uint64_t ignored = 0, blocked = 0;
  bool nofileSet = false, fsizeSet = false;
  rlim_t nofile = RLIM_INFINITY, fsize = RLIM_INFINITY;
  std::vector<int> clearCloexec, closeFds;
  const sock_fprog* filter = nullptr;
  const char* cwd = nullptr;  // null: stay
  pid_t parent = 0;
  int errFd = -1;

  void FindOnPath(const std::string& file) {
    if (file.find('/') != std::string::npos || file.empty()) {
      tries.push_back(file);
    } else {
      const char* path = getenv("PATH");
      std::string p = path ? path : "/bin:/usr/bin";
      std::string first;
      for (size_t at = 0;;) {
        size_t colon = p.find(':', at);
        std::string dir = p.substr(at, colon == std::string::npos ? std::string::npos : colon - at);
        std::string c = dir.empty() ? file : dir + "/" + file;
        if (first.empty()) first = c;
        if (!AbsentOnHost(dir, c)) tries.push_back(c);
        if (colon == std::string::npos) break;
        at = colon + 1;
      }
      // Nowhere: one try, for the kernel's own answer.
      if (tries.empty()) tries.push_back(first);
    }
    for (auto& t : tries) tryPtrs.push_back(t.c_str());
  }
};

// The kernel's sigaction (the same layout on x86_64 and aarch64).
struct KernelSigaction {
  unsigned long handler, flags, restorer;
  uint64_t mask;
};

static inline void RawSoftLimit(int resource, bool set, rlim_t soft) {
  if (!set) return;
  struct rlimit lim;
  if (RawCall(SYS_prlimit64, 0, resource, 0, (long)&lim) != 0) return;
  lim.rlim_cur = lim.rlim_max != RLIM_INFINITY && (soft == RLIM_INFINITY || soft > lim.rlim_max) ? lim.rlim_max : soft;
  RawCall(SYS_prlimit64, 0, resource, (long)&lim, 0);
}

// The child: the caller's signal state, limits and descriptors, a stop for the tracer to attach, the filter, the
// directory, then execve as glibc's execvpe tries it. Writes {stage, errno} to errFd when it cannot go on.
static inline int SpawnedChild(void* arg) {
  const SpawnPlan& p = *static_cast<const SpawnPlan*>(arg);
  RawCall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  if (RawCall(SYS_getppid) != p.parent) RawCall(SYS_exit_group, 127);
  // Handlers first (every signal is blocked until the mask below): a handler of Node's must never run here.
  for (int s = 1; s <= 64; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    KernelSigaction act{(p.ignored >> (s - 1) & 1) ? (unsigned long)SIG_IGN : (unsigned long)SIG_DFL, 0, 0, 0};
    RawCall(SYS_rt_sigaction, s, (long)&act, 0, 8);
  }
  uint64_t mask = p.blocked;
  RawCall(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8);
  RawSoftLimit(RLIMIT_NOFILE, p.nofileSet, p.nofile);
  RawSoftLimit(RLIMIT_FSIZE, p.fsizeSet, p.fsize);
  // Node opens its stdio close-on-exec; the command must inherit them. Node may also have made them
  // non-blocking (a pipe's flags are shared); programs expect blocking stdio.
  for (int fd : p.clearCloexec) RawCall(SYS_fcntl, fd, F_SETFD, 0);
  for (int fd = 0; fd < 3; fd++) {
    RawCall(SYS_fcntl, fd, F_SETFD, 0);
    long fl = RawCall(SYS_fcntl, fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) RawCall(SYS_fcntl, fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  for (int fd : p.closeFds) RawCall(SYS_close, fd);
  RawCall(SYS_kill, RawCall(SYS_getpid), SIGSTOP);
  int stage = 1;
  long err = -RawCall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0);
  if (err == 0) err = -RawCall(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, (long)p.filter);
  if (err == 0) {
    stage = 2;
    if (p.cwd) err = -RawCall(SYS_chdir, (long)p.cwd);
  }
  if (err == 0) {
    stage = 3;
    bool eacces = false;
    err = ENOENT;
    for (const char* t : p.tryPtrs) {
      err = -RawCall(SYS_execve, (long)t, (long)p.argv, (long)p.envp);
      if (err == ENOEXEC) {
        const_cast<char**>(p.scriptArgv.data())[1] = const_cast<char*>(t);
        err = -RawCall(SYS_execve, (long)"/bin/sh", (long)p.scriptArgv.data(), (long)p.envp);
      }
      if (err == EACCES) eacces = true;
      else if (err != ENOENT && err != ESTALE && err != ENOTDIR && err != ENODEV && err != ETIMEDOUT) break;
    }
    if (eacces && (err == ENOENT || err == ESTALE || err == ENOTDIR || err == ENODEV || err == ETIMEDOUT)) err = EACCES;
  }
  int e[2] = {stage, (int)err};
  RawCall(SYS_write, p.errFd, (long)e, sizeof e);
  RawCall(SYS_exit_group, stage == 3 ? (err == ENOENT ? 127 : 126) : 125);
  return 0;
}

// Starts the child on `stack` (`bytes` long, the caller's until the child has exec'd or ended); -1 with errno.
constexpr size_t kSpawnStackBytes = 256 * 1024;
inline pid_t Spawn(SpawnPlan& p, void* stack, size_t bytes) {
  // Blocked from before the child exists, so that no handler of Node's runs on its stack; it sets its own mask.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // Test hook (README): as if a seccomp profile refused this clone.
  const char* fault = getenv("UCVMFS_TEST_FAULT");
  pid_t child = fault && strcmp(fault, "clone") == 0 ? (errno = EPERM, -1) : clone(SpawnedChild, static_cast<char*>(stack) + bytes, CLONE_VM | SIGCHLD, &p);
  // A seccomp profile that refuses this clone (none known does): the copy of a fork, the same child code.
  if (child < 0 && (errno == EPERM || errno == ENOSYS || errno == EINVAL)) {
    child = fork();
    if (child == 0) SpawnedChild(&p);
  }
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = e;
  return child;
}

}  // namespace ucvmfs
