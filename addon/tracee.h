// Access to a stopped tracee: registers, memory, and the kernel's view of its cwd and fds.
#pragma once

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <elf.h>
#include <string>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <unistd.h>

#ifndef NT_ARM_SYSTEM_CALL
#define NT_ARM_SYSTEM_CALL 0x404
#endif

namespace ucvmfs {

// The registers of one syscall stop, read once and written back only when changed.
class Regs {
 public:
  bool Load(pid_t pid) {
    pid_ = pid;
    dirty_ = false;
#if defined(__x86_64__)
    return ptrace(PTRACE_GETREGS, pid, 0, &r_) == 0;
#else
    iovec io{&r_, sizeof r_};
    return ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, &io) == 0;
#endif
  }
  long Nr() const {
#if defined(__x86_64__)
    return (long)r_.orig_rax;
#else
    return (long)r_.regs[8];
#endif
  }
  uint64_t Arg(int i) const {
#if defined(__x86_64__)
    switch (i) {
      case 0: return r_.rdi;
      case 1: return r_.rsi;
      case 2: return r_.rdx;
      case 3: return r_.r10;
      case 4: return r_.r8;
      default: return r_.r9;
    }
#else
    return r_.regs[i];
#endif
  }
  void SetArg(int i, uint64_t v) {
    dirty_ = true;
#if defined(__x86_64__)
    switch (i) {
      case 0: r_.rdi = v; break;
      case 1: r_.rsi = v; break;
      case 2: r_.rdx = v; break;
      case 3: r_.r10 = v; break;
      case 4: r_.r8 = v; break;
      default: r_.r9 = v; break;
    }
#else
    r_.regs[i] = v;
#endif
  }
  uint64_t Sp() const {
#if defined(__x86_64__)
    return r_.rsp;
#else
    return r_.sp;
#endif
  }
  long Ret() const {
#if defined(__x86_64__)
    return (long)r_.rax;
#else
    return (long)r_.regs[0];
#endif
  }
  void SetRet(long v) {
    dirty_ = true;
#if defined(__x86_64__)
    r_.rax = (uint64_t)v;
#else
    r_.regs[0] = (uint64_t)v;
#endif
  }
  // Turns the call into one the kernel rejects without side effects; the exit stop then sets the result, or, at a
  // seccomp stop, SetRet before resuming does: a skipped call returns what the return register holds (seccomp(2);
  // on aarch64 x0, which the kernel leaves alone once the tracer skipped the call).
  bool SkipCall() {
#if defined(__x86_64__)
    dirty_ = true;
    r_.orig_rax = (uint64_t)-1;
    return true;
#else
    int nr = -1;
    iovec io{&nr, sizeof nr};
    return ptrace(PTRACE_SETREGSET, pid_, NT_ARM_SYSTEM_CALL, &io) == 0;
#endif
  }
  bool Store() {
    if (!dirty_) return true;
    dirty_ = false;
#if defined(__x86_64__)
    return ptrace(PTRACE_SETREGS, pid_, 0, &r_) == 0;
#else
    iovec io{&r_, sizeof r_};
    return ptrace(PTRACE_SETREGSET, pid_, NT_PRSTATUS, &io) == 0;
#endif
  }

 private:
  pid_t pid_ = 0;
  bool dirty_ = false;
#if defined(__x86_64__)
  user_regs_struct r_{};
#else
  user_pt_regs r_{};
#endif
};

// Reads a NUL-terminated string, page by page so that a string near the end of a mapping still reads.
inline bool ReadString(pid_t pid, uint64_t addr, std::string* out) {
  out->clear();
  if (addr == 0) return false;
  char buf[4096];
  while (out->size() < PATH_MAX) {
    size_t n = 4096 - (addr & 4095);
    iovec local{buf, n}, remote{(void*)addr, n};
    ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (got <= 0) return false;
    void* nul = memchr(buf, 0, (size_t)got);
    if (nul) {
      out->append(buf, (const char*)nul - buf);
      return true;
    }
    out->append(buf, (size_t)got);
    addr += (uint64_t)got;
  }
  return false;
}

inline bool ReadMem(pid_t pid, uint64_t addr, void* dst, size_t n) {
  iovec local{dst, n}, remote{(void*)addr, n};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)n;
}

inline bool WriteMem(pid_t pid, uint64_t addr, const void* src, size_t n) {
  iovec local{(void*)src, n}, remote{(void*)addr, n};
  if (process_vm_writev(pid, &local, 1, &remote, 1, 0) == (ssize_t)n) return true;
  // Pages the tracee cannot write itself (rare for the stack) still take ptrace pokes.
  const char* s = (const char*)src;
  for (size_t i = 0; i < n; i += sizeof(long)) {
    long word = 0;
    size_t k = n - i < sizeof(long) ? n - i : sizeof(long);
    if (k < sizeof(long)) {
      errno = 0;
      word = ptrace(PTRACE_PEEKDATA, pid, addr + i, 0);
      if (errno) return false;
    }
    memcpy(&word, s + i, k);
    if (ptrace(PTRACE_POKEDATA, pid, addr + i, word) != 0) return false;
  }
  return true;
}

// The target of /proc/<pid>/<what> (cwd, fd/N, exe), or "" when unreadable.
inline std::string ProcLink(pid_t pid, const std::string& what) {
  char path[64], buf[PATH_MAX + 1];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what.c_str());
  ssize_t n = readlink(path, buf, PATH_MAX);
  if (n < 0) return "";
  return std::string(buf, (size_t)n);
}

}  // namespace ucvmfs
