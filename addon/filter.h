// The seccomp-bpf program: only calls that name a path (or change a file through an fd) stop in the tracer;
// everything else, and fd-based calls such as fstat via newfstatat(fd, "", AT_EMPTY_PATH), runs natively.
#pragma once

#include <cerrno>
#include <cstddef>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <vector>

#include "gate.h"
#include "syscalls.h"

namespace ucvmfs {

// emulatePtrace: ptrace, wait4 and waitid stop too (see ptrace_emu.h).
inline std::vector<sock_filter> BuildFilter(bool emulatePtrace) {
  // Instructions with symbolic jump targets, resolved once the layout is known.
  enum Target : int { kNext = -1, kAllow = -2, kTrace = -3, kNosys = -4 };
  struct Insn { uint16_t code; uint32_t k; int jt; int jf; int skip; };
  std::vector<Insn> p;
  const uint32_t kArgs = offsetof(seccomp_data, args);
  p.push_back({BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch), 0, 0, 0});
  p.push_back({BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 0, kAllow, 0});
  // Before the gate test: the gate must not grant these either.
  p.push_back({BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr), 0, 0, 0});
  for (long nr : kRefused) p.push_back({BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, kNosys, 0, 0});
#if defined(__x86_64__)
  // Calls from the preload library's gate page run without a stop (it only skips the stop: the same calls
  // made elsewhere would be allowed by the kernel just the same).
  const uint32_t ip = offsetof(seccomp_data, instruction_pointer);
  p.push_back({BPF_LD | BPF_W | BPF_ABS, ip + 4, 0, 0, 0});
  p.push_back({BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(UCVMFS_GATE_ADDR >> 32), 0, kNext, 3});
  p.push_back({BPF_LD | BPF_W | BPF_ABS, ip, 0, 0, 0});
  p.push_back({BPF_JMP | BPF_JGE | BPF_K, (uint32_t)UCVMFS_GATE_ADDR, 0, kNext, 1});
  p.push_back({BPF_JMP | BPF_JGE | BPF_K, (uint32_t)(UCVMFS_GATE_ADDR + UCVMFS_GATE_SIZE), kNext, kAllow, 0});
#endif
  p.push_back({BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr), 0, 0, 0});
#if defined(__x86_64__)
  // x32 calls carry bit 30; we do not translate them.
  p.push_back({BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, kAllow, 0, 0});
#endif
  if (emulatePtrace)
    for (long nr : {(long)__NR_ptrace, (long)__NR_wait4, (long)__NR_waitid}) p.push_back({BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, kTrace, 0, 0});
  for (const CallInfo& c : kCalls) {
    if (c.empty < 0) continue;
    // jeq nr ? fall into the flag test : skip it (2 instructions); A still holds nr when skipping.
    p.push_back({BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)c.nr, 0, kNext, 2});
    p.push_back({BPF_LD | BPF_W | BPF_ABS, kArgs + 8u * (uint32_t)c.empty, 0, 0, 0});
    p.push_back({BPF_JMP | BPF_JSET | BPF_K, AT_EMPTY_PATH, kAllow, kTrace, 0});
  }
  for (const CallInfo& c : kCalls) {
    if (c.empty >= 0) continue;
    p.push_back({BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)c.nr, kTrace, 0, 0});
  }
  const int allow = (int)p.size();
  p.push_back({BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0, 0});
  const int trace = (int)p.size();
  p.push_back({BPF_RET | BPF_K, SECCOMP_RET_TRACE, 0, 0, 0});
  const int nosys = (int)p.size();
  p.push_back({BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS, 0, 0, 0});
  std::vector<sock_filter> out;
  for (int i = 0; i < (int)p.size(); i++) {
    auto resolve = [&](int t, int skip) -> uint8_t {
      int to = t == kAllow ? allow : t == kTrace ? trace : t == kNosys ? nosys : t == kNext ? i + 1 + skip : i + 1 + t;
      return (uint8_t)(to - i - 1);
    };
    const Insn& x = p[i];
    bool jump = (x.code & 0x07) == BPF_JMP && (x.code & 0xf0) != BPF_JA;
    out.push_back({x.code, jump ? resolve(x.jt, x.skip) : (uint8_t)0, jump ? resolve(x.jf, x.skip) : (uint8_t)0, x.k});
  }
  return out;
}

}  // namespace ucvmfs
