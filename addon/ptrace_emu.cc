// See ptrace_emu.h. Errors follow the kernel's (kernel/ptrace.c, kernel/exit.c): ESRCH for a process that is
// not the caller's stopped tracee, EPERM for one traced already, EIO for an unknown request.
#include "ptrace_emu.h"

#include "gate.h"

#if defined(__x86_64__)
#include <asm/prctl.h>
#endif
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace ucvmfs {
namespace {

// Tgid and PPid of a thread from /proc (0 when it is gone).
void ProcIds(pid_t tid, pid_t* tgid, pid_t* ppid) {
  *tgid = 0;
  if (ppid) *ppid = 0;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
  FILE* f = fopen(path, "re");
  if (!f) return;
  while (fgets(buf, sizeof buf, f)) {
    if (!strncmp(buf, "Tgid:", 5)) *tgid = (pid_t)atoi(buf + 5);
    else if (!strncmp(buf, "PPid:", 5) && ppid) *ppid = (pid_t)atoi(buf + 5);
  }
  fclose(f);
}

// Whether a process is traced by this thread (the tracer's loop), though its first stop may not have been seen yet:
// a process of the job can learn a new pid at once (from its parent, through a pipe) and attach to it.
bool TracedHere(pid_t tid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
  FILE* f = fopen(path, "re");
  if (!f) return false;
  pid_t tracer = -1;
  while (fgets(buf, sizeof buf, f))
    if (!strncmp(buf, "TracerPid:", 10)) tracer = (pid_t)atoi(buf + 10);
  fclose(f);
  return tracer == (pid_t)syscall(SYS_gettid);
}

pid_t TgidOf(pid_t tid) {
  pid_t g;
  ProcIds(tid, &g, nullptr);
  return g;
}

int Tgkill(pid_t tid, int sig) {
  pid_t g = TgidOf(tid);
  return (int)syscall(SYS_tgkill, g ? g : tid, tid, sig);
}

constexpr long kKnownOpts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                            PTRACE_O_TRACEEXEC | PTRACE_O_TRACEVFORKDONE | PTRACE_O_TRACEEXIT | PTRACE_O_TRACESECCOMP |
                            PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP;
// What we cannot give: the stops of a tracee's own seccomp filter reach us, not its virtual tracer (a nested
// `ucvmfs exec` or proot gets EPERM/EINVAL, as before this emulation existed).
constexpr long kRefusedOpts = PTRACE_O_TRACESECCOMP | PTRACE_O_SUSPEND_SECCOMP;
// Events we ask the kernel for only while a virtual tracer wants them.
constexpr long kOnDemandOpts = PTRACE_O_TRACEEXIT | PTRACE_O_TRACEVFORKDONE;

}  // namespace

bool PtraceEmu::Emulated(long nr) { return nr == __NR_ptrace || nr == __NR_wait4 || nr == __NR_waitid; }

PtraceEmu::Tracer& PtraceEmu::TracerOf(pid_t tid) {
  auto it = tracers_.find(tid);
  if (it != tracers_.end()) return it->second;
  Tracer& v = tracers_[tid];
  v.tgid = TgidOf(tid);
  return v;
}

long PtraceEmu::ResumeRequest(pid_t pid, long req) const {
  auto it = tracees_.find(pid);
  if (it == tracees_.end() || it->second.exited) return req;
  if (it->second.mode == Mode::Syscall) return PTRACE_SYSCALL;
  if (it->second.mode == Mode::Step && req != PTRACE_SYSCALL && req != PTRACE_LISTEN) return PTRACE_SINGLESTEP;
  return req;
}

// A process whose system calls a virtual tracer watches (strace) must make them all itself, so that the
// tracer sees the /cvmfs paths the program gave and none of the preload library's look-ups: the library's gate
// is closed (a byte of its page, which the library reads before each use). False until the library mapped it.
bool PtraceEmu::CloseGate(pid_t pid) {
#if defined(__x86_64__)
  unsigned char code[3];
  if (!ReadMem(pid, UCVMFS_GATE_ADDR, code, sizeof code)) return false;
  if (!code[0] && !code[1] && !code[2]) return false;  // mapped, its code not yet copied in
  if (code[0] != 0x48 || code[1] != 0x89 || code[2] != 0xf8) return true;  // another mapping there: no gate
  errno = 0;
  long w = ptrace(PTRACE_PEEKDATA, pid, UCVMFS_GATE_ADDR + UCVMFS_GATE_CLOSED, 0);
  if (errno) return false;
  w |= 1;
  return ptrace(PTRACE_POKEDATA, pid, UCVMFS_GATE_ADDR + UCVMFS_GATE_CLOSED, w) == 0;
#else
  return true;
#endif
}

// Only at a stop (a listening or running tracee refuses): until it succeeds, Route retries at each stop.
bool PtraceEmu::ApplyRealOptions(pid_t pid, long opts) { return ptrace(PTRACE_SETOPTIONS, pid, 0, base_ | (opts & kOnDemandOpts)) == 0; }

bool PtraceEmu::OnCall(pid_t pid, Regs& r) {
  long nr = r.Nr();
  Call c;
  if (nr == __NR_ptrace) {
    bool emulate = false;
    c.ret = Ptrace(pid, r, &emulate);
    if (!emulate) return false;
  } else {
    // A shell's wait costs this lookup only.
    if (tracees_.empty()) return false;
    Wait w;
    if (!ParseWait(nr, r, &w)) return false;
    Tracer& v = TracerOf(pid);
    v.pausedWait = false;  // a wait of its own: any earlier one has returned
    if (!AnyCandidate(v.tgid, w, pid)) return false;
    pid_t ev = Find(pid, w);
    if (ev) {
      c.ret = Deliver(pid, ev, w);
    } else {
      // Nothing to report yet: its real children may still end the wait, so the real call runs. An event
      // for it interrupts that call (Notify), and the restarted call stops here again.
      c.what = (w.options & WNOHANG) ? Call::RealNohang : Call::RealBlocking;
      c.wait = w;
      if (c.what == Call::RealBlocking) v.inRealWait = true;
      calls_[pid] = c;
      return true;
    }
  }
  r.SkipCall();
  if (!r.Store()) return false;
  calls_[pid] = c;
  return true;
}

bool PtraceEmu::OnCallExit(pid_t pid, bool* hold) {
  *hold = false;
  auto it = calls_.find(pid);
  if (it == calls_.end()) return false;
  Call c = it->second;
  calls_.erase(it);
  Regs r;
  if (!r.Load(pid)) return true;
  if (c.what == Call::Result) {
    r.SetRet(c.ret);
    r.Store();
    return true;
  }
  auto v = tracers_.find(pid);
  if (v == tracers_.end()) return true;
  if (c.what == Call::RealBlocking) v->second.inRealWait = false;
  if (r.Ret() != -ECHILD || !AnyCandidate(v->second.tgid, c.wait, pid)) return true;
  if (c.what == Call::RealNohang) {
    // No real child, yet tracees: "none ready", as the kernel says it.
    if (c.wait.waitid && c.wait.status) {
      char zero[128] = {};
      WriteMem(pid, c.wait.status, zero, sizeof zero);
    }
    r.SetRet(0);
    r.Store();
    return true;
  }
  // No real child to wait for (gdb -p, strace -p): the caller waits here until an event is queued for it.
  pid_t ev = Find(pid, c.wait);
  if (ev) {
    r.SetRet(Deliver(pid, ev, c.wait));
    r.Store();
    return true;
  }
  v->second.wait = c.wait;
  if (PauseWait(pid, v->second)) return true;
  v->second.heldWait = true;
  *hold = true;
  return true;
}

// A wait with nothing to wait for yet sleeps in pause(): the same syscall instruction runs again as pause, so
// that signals still reach the tracer (strace -p leaves on Ctrl-C while its tracee sleeps; a handler makes the
// wait return EINTR, as a real one would). An event interrupts the pause and is answered at that stop.
bool PtraceEmu::PauseWait(pid_t tracer, Tracer& v) {
#if defined(__x86_64__)
  user_regs_struct u;
  if (ptrace(PTRACE_GETREGS, tracer, 0, &u) != 0) return false;
  v.pauseIp = u.rip;
  v.pauseSp = u.rsp;
  u.rip -= 2;  // `syscall` is two bytes
  u.rax = __NR_pause;
  if (ptrace(PTRACE_SETREGS, tracer, 0, &u) != 0) return false;
  v.pausedWait = true;
  return true;
#else
  return false;
#endif
}

void PtraceEmu::AnswerPaused(pid_t tracer, Tracer& v) {
#if defined(__x86_64__)
  user_regs_struct u;
  if (ptrace(PTRACE_GETREGS, tracer, 0, &u) != 0) return;
  // In the pause, or interrupted before it began (back at the syscall instruction, pause in rax).
  bool in = (long)u.orig_rax == __NR_pause && u.rip == v.pauseIp;
  bool before = (long)u.rax == __NR_pause && u.rip == v.pauseIp - 2;
  if ((!in && !before) || u.rsp != v.pauseSp) {
    v.pausedWait = false;  // it left the pause (a signal handler ran): its next wait stops in the filter again
    return;
  }
  long ret;
  pid_t ev = Find(tracer, v.wait);
  if (ev) ret = Deliver(tracer, ev, v.wait);
  else if (!AnyCandidate(v.tgid, v.wait, tracer)) ret = -ECHILD;
  else return;  // nothing after all: the pause restarts
  v.pausedWait = false;
  u.rip = v.pauseIp;
  u.rax = (uint64_t)ret;
  u.orig_rax = (uint64_t)-1;  // no restart: the wait returns ret
  ptrace(PTRACE_SETREGS, tracer, 0, &u);
#endif
}

bool PtraceEmu::ParseWait(long nr, const Regs& r, Wait* w) {
  if (nr == __NR_wait4) {
    pid_t p = (pid_t)(int32_t)r.Arg(0);
    w->idtype = p == -1 ? P_ALL : p > 0 ? P_PID : P_PGID;
    w->id = p < -1 ? -p : p > 0 ? p : 0;
    w->options = (int)r.Arg(2) | WEXITED;
    w->status = r.Arg(1);
    w->rusage = r.Arg(3);
    return p != INT32_MIN;
  }
  w->waitid = true;
  w->idtype = (int)r.Arg(0);
  w->id = (long)(int32_t)r.Arg(1);
  w->options = (int)r.Arg(3);
  w->status = r.Arg(2);
  w->rusage = r.Arg(4);
  // P_PIDFD and invalid calls: the kernel answers them.
  return w->idtype == P_ALL || w->idtype == P_PID || w->idtype == P_PGID;
}

bool PtraceEmu::Matches(const Wait& w, pid_t caller, pid_t pid, const Tracee& t) {
  if (w.idtype == P_PID) return pid == w.id;
  if (w.idtype == P_PGID) {
    pid_t want = w.id ? (pid_t)w.id : getpgid(caller);
    return getpgid(t.tgid ? t.tgid : pid) == want;
  }
  return true;
}

bool PtraceEmu::AnyCandidate(pid_t callerTgid, const Wait& w, pid_t caller) {
  for (auto& [pid, t] : tracees_)
    if (t.tracerTgid == callerTgid && Matches(w, caller, pid, t) && !(t.exited && t.realChild)) return true;
  return false;
}

pid_t PtraceEmu::Find(pid_t caller, const Wait& w) {
  pid_t tgid = TracerOf(caller).tgid;
  pid_t best = 0;
  uint64_t bestSeq = UINT64_MAX;
  for (auto& [pid, t] : tracees_) {
    if (t.tracerTgid != tgid || !t.pending || t.seq >= bestSeq) continue;
    if (t.exited ? !(w.options & WEXITED) : false) continue;
    if (!Matches(w, caller, pid, t)) continue;
    best = pid;
    bestSeq = t.seq;
  }
  return best;
}

// Writes the event of `pid` as the wait call wants it and returns the call's result.
long PtraceEmu::Deliver(pid_t caller, pid_t pid, const Wait& w) {
  Tracee& t = tracees_[pid];
  int st = t.status;
  if (w.waitid) {
    if (w.status) {
      siginfo_t si;
      memset(&si, 0, sizeof si);
      si.si_signo = SIGCHLD;
      si.si_pid = pid;
      si.si_uid = getuid();
      if (WIFEXITED(st)) {
        si.si_code = CLD_EXITED;
        si.si_status = WEXITSTATUS(st);
      } else if (WIFSIGNALED(st)) {
        si.si_code = WCOREDUMP(st) ? CLD_DUMPED : CLD_KILLED;
        si.si_status = WTERMSIG(st);
      } else {
        si.si_code = CLD_TRAPPED;
        si.si_status = (st >> 8) & 0xffff;
      }
      if (!WriteMem(caller, w.status, &si, sizeof si)) return -EFAULT;
    }
  } else if (w.status && !WriteMem(caller, w.status, &st, sizeof st)) {
    return -EFAULT;
  }
  if (w.rusage) {
    rusage ru{};
    WriteMem(caller, w.rusage, &ru, sizeof ru);
  }
  if (!(w.options & WNOWAIT)) {
    t.pending = false;
    if (t.exited) tracees_.erase(pid);
  }
  return w.waitid ? 0 : pid;
}

void PtraceEmu::Queue(pid_t pid, Tracee& t, int status) {
  t.pending = true;
  t.status = status;
  t.seq = ++seq_;
  Notify(t.tracer);
}

// Tells a virtual tracer that an event waits for it, as the kernel does: SIGCHLD (gdb's event loop waits for
// it), and a blocking wait it is making for real is interrupted so that it comes back and finds the event.
void PtraceEmu::Notify(pid_t tracer) {
  auto it = tracers_.find(tracer);
  if (it == tracers_.end()) {
    TracerOf(tracer);
    it = tracers_.find(tracer);
  }
  Tracer& v = it->second;
  if (v.pausedWait) {
    if (!v.answering && ptrace(PTRACE_INTERRUPT, tracer, 0, 0) == 0) v.answering = true;
    return;
  }
  if (v.heldWait) {
    pid_t ev = Find(tracer, v.wait);
    if (ev) CompleteHeldWait(tracer, Deliver(tracer, ev, v.wait));
    return;
  }
  syscall(SYS_tgkill, v.tgid ? v.tgid : tracer, tracer, SIGCHLD);
  if (v.inRealWait && !v.kicked && ptrace(PTRACE_INTERRUPT, tracer, 0, 0) == 0) v.kicked = true;
}

void PtraceEmu::CompleteHeldWait(pid_t tracer, long ret) {
  Tracer& v = tracers_[tracer];
  v.heldWait = false;
  Regs r;
  if (r.Load(tracer)) {
    r.SetRet(ret);
    r.Store();
  }
  ptrace((__ptrace_request)ResumeRequest(tracer, PTRACE_CONT), tracer, 0, 0);
}

void PtraceEmu::Adopt(pid_t child, const Tracee& parent) {
  if (tracees_.count(child)) return;
  Tracee c;
  c.tracer = parent.tracer;
  c.tracerTgid = parent.tracerTgid;
  c.seized = parent.seized;
  c.opts = parent.opts;
  pid_t ppid;
  ProcIds(child, &c.tgid, &ppid);
  c.realChild = c.tgid == child && ppid == c.tracerTgid;
  c.optsPending = (c.opts & kOnDemandOpts) != 0;
  tracees_[child] = c;
}

bool PtraceEmu::Route(pid_t pid, int status, Stop kind, long* req) {
  int event = status >> 16;
  auto vt = tracers_.find(pid);
  bool ours = false;
  if (vt != tracers_.end() && kind == Stop::Event && event == PTRACE_EVENT_STOP && (vt->second.kicked || vt->second.answering)) {
    if (vt->second.answering && vt->second.pausedWait) AnswerPaused(pid, vt->second);
    vt->second.kicked = vt->second.answering = false;
    ours = true;
  }
  auto it = tracees_.find(pid);
  if (it == tracees_.end() && kind == Stop::Fresh && !tracees_.empty()) {
    // A new process or thread may stop before its parent's fork event is seen: its creator decides.
    pid_t tgid, ppid;
    ProcIds(pid, &tgid, &ppid);
    pid_t creator = tgid != pid ? tgid : ppid;
    long want = tgid != pid ? PTRACE_O_TRACECLONE : PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE;
    for (auto& [p, t] : tracees_)
      if (!t.exited && t.tgid == creator && (t.opts & want)) {
        Adopt(pid, t);
        break;
      }
    it = tracees_.find(pid);
  }
  if (it == tracees_.end() || it->second.exited) return false;
  Tracee& t = it->second;
  if (t.optsPending) t.optsPending = !ApplyRealOptions(pid, t.opts);
  if (kind == Stop::Event && event == PTRACE_EVENT_EXEC) t.gateClosed = false;  // a new image maps it anew
  if (t.mode == Mode::Syscall && !t.gateClosed) t.gateClosed = CloseGate(pid);
  int code = -1;  // what the virtual tracer's wait sees: WSTOPSIG and the event above it
  int sig = status >> 8 & 0xff;
  switch (kind) {
    case Stop::Entry:
      if (t.mode == Mode::Syscall) {
        code = SIGTRAP | ((t.opts & PTRACE_O_TRACESYSGOOD) ? 0x80 : 0);
        t.inSyscall = true;
      }
      break;
    case Stop::Exit:
      if (t.mode == Mode::Syscall && t.inSyscall) {
        code = SIGTRAP | ((t.opts & PTRACE_O_TRACESYSGOOD) ? 0x80 : 0);
        t.inSyscall = false;
      }
      break;
    case Stop::Seccomp:
      break;
    case Stop::Event:
      if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK || event == PTRACE_EVENT_CLONE) {
        long bit = event == PTRACE_EVENT_FORK ? PTRACE_O_TRACEFORK : event == PTRACE_EVENT_VFORK ? PTRACE_O_TRACEVFORK : PTRACE_O_TRACECLONE;
        if (t.opts & bit) {
          unsigned long child = 0;
          if (ptrace(PTRACE_GETEVENTMSG, pid, 0, &child) == 0 && child) Adopt((pid_t)child, t);
          code = SIGTRAP | event << 8;
        }
      } else if (event == PTRACE_EVENT_EXEC) {
        if (t.opts & PTRACE_O_TRACEEXEC) {
          code = SIGTRAP | event << 8;
        } else if (!t.seized) {
          // The kernel sends a traced process SIGTRAP after exec unless its tracer asked for the event.
          code = SIGTRAP;
          t.fakeSig = SIGTRAP;
        }
      } else if (event == PTRACE_EVENT_VFORK_DONE) {
        if (t.opts & PTRACE_O_TRACEVFORKDONE) code = SIGTRAP | event << 8;
      } else if (event == PTRACE_EVENT_EXIT) {
        if (t.opts & PTRACE_O_TRACEEXIT) code = SIGTRAP | event << 8;
      } else if (event == PTRACE_EVENT_STOP && t.interrupt && !ours) {
        t.interrupt = false;
        code = SIGTRAP | PTRACE_EVENT_STOP << 8;
      }
      break;
    case Stop::Fresh:
      // A new tracee's first stop: PTRACE_EVENT_STOP for a seizing tracer, SIGSTOP for the others. Not for a
      // process attached before the connector saw it: that stop is the connector's own.
      if (t.unseen) {
        t.unseen = false;
      } else if (t.seized) {
        code = SIGTRAP | PTRACE_EVENT_STOP << 8;
      } else {
        code = SIGSTOP;
        t.fakeSig = SIGSTOP;
      }
      break;
    case Stop::GroupStop:
      t.groupStop = true;
      code = t.seized ? sig | PTRACE_EVENT_STOP << 8 : sig;
      t.interrupt = false;
      break;
    case Stop::Signal:
      code = sig;
      t.realSignal = true;
      break;
  }
  if (code < 0) {
    *req = ResumeRequest(pid, *req);
    return false;
  }
  t.held = true;
  Queue(pid, t, code << 8 | 0x7f);
  return true;
}

void PtraceEmu::Detach(pid_t pid, Tracee& t, int sig) {
  ApplyRealOptions(pid, 0);
  if (t.held) {
    bool group = t.groupStop;
    int real = t.realSignal ? sig : 0;
    ptrace(group ? PTRACE_LISTEN : PTRACE_CONT, pid, 0, (void*)(long)real);
    if (sig && !t.realSignal) Tgkill(pid, sig);
  }
}

void PtraceEmu::Gone(pid_t pid, int status) {
  calls_.erase(pid);
  auto v = tracers_.find(pid);
  if (v != tracers_.end()) {
    // A tracer's end detaches its tracees (or kills them: PTRACE_O_EXITKILL).
    for (auto it = tracees_.begin(); it != tracees_.end();) {
      Tracee& t = it->second;
      if (t.tracer != pid) {
        ++it;
        continue;
      }
      if (!t.exited) {
        if (t.opts & PTRACE_O_EXITKILL) Tgkill(it->first, SIGKILL);
        else Detach(it->first, t, 0);
      }
      it = tracees_.erase(it);
    }
    tracers_.erase(v);
  }
  auto it = tracees_.find(pid);
  if (it != tracees_.end()) {
    Tracee& t = it->second;
    pid_t tracer = t.tracer;
    if (t.realChild || t.exited) {
      // Its parent, the tracer, learns of it from the kernel.
      tracees_.erase(it);
    } else {
      t.exited = true;
      t.held = false;
      Queue(pid, t, status);
    }
    auto w = tracers_.find(tracer);
    if (w != tracers_.end() && (w->second.heldWait || w->second.pausedWait) && !AnyCandidate(w->second.tgid, w->second.wait, tracer)) {
      if (w->second.heldWait) CompleteHeldWait(tracer, -ECHILD);
      else Notify(tracer);  // answered ECHILD at the interrupt
    }
  }
}

long PtraceEmu::Ptrace(pid_t caller, Regs& r, bool* emulate) {
  long req = (long)r.Arg(0);
  pid_t pid = (pid_t)(int32_t)r.Arg(1);
  uint64_t addr = r.Arg(2), data = r.Arg(3);
  *emulate = true;
  if (req == PTRACE_TRACEME) {
    pid_t tgid, ppid;
    ProcIds(caller, &tgid, &ppid);
    // Its parent must be of the job (the command itself, whose parent is the tracer, is refused as before).
    if (!ppid || !job_->count(ppid)) {
      *emulate = false;
      return 0;
    }
    if (tracees_.count(caller)) return -EPERM;
    Tracee t;
    t.tracer = ppid;
    t.tracerTgid = ppid;
    t.tgid = tgid;
    t.realChild = tgid == caller;
    tracees_[caller] = t;
    TracerOf(ppid);
    return 0;
  }
  if (!job_->count(pid) && !TracedHere(pid)) {
    *emulate = false;  // a process outside the job: the kernel decides
    return 0;
  }
  if (req == PTRACE_ATTACH || req == PTRACE_SEIZE) return Attach(caller, req, pid, addr, data);
  auto it = tracees_.find(pid);
  if (it == tracees_.end() || it->second.exited || it->second.tracerTgid != TracerOf(caller).tgid) return -ESRCH;
  return Request(caller, it->second, pid, req, addr, data);
}

long PtraceEmu::Attach(pid_t caller, long req, pid_t pid, uint64_t addr, uint64_t data) {
  if (req == PTRACE_SEIZE) {
    if (addr != 0 || (data & ~kKnownOpts)) return -EIO;
    if (data & kRefusedOpts) return -EPERM;
  }
  Tracer& v = TracerOf(caller);
  pid_t tgid, ppid;
  ProcIds(pid, &tgid, &ppid);
  if (!tgid) return -ESRCH;
  if (tgid == v.tgid || tracees_.count(pid)) return -EPERM;
  Tracee t;
  t.tracer = caller;
  t.tracerTgid = v.tgid;
  t.tgid = tgid;
  t.realChild = tgid == pid && ppid == v.tgid;
  t.seized = req == PTRACE_SEIZE;
  t.unseen = !job_->count(pid);
  if (t.seized) t.opts = (long)data;
  tracees_[pid] = t;
  tracees_[pid].optsPending = (t.opts & kOnDemandOpts) != 0;
  // A process in a group stop traps again, so that its new tracer sees the stop.
  if (t.seized) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE* f = fopen(path, "re");
    if (f) {
      if (fgets(buf, sizeof buf, f)) {
        const char* p = strrchr(buf, ')');
        if (p && p[1] == ' ' && (p[2] == 't' || p[2] == 'T')) ptrace(PTRACE_INTERRUPT, pid, 0, 0);
      }
      fclose(f);
    }
  } else {
    syscall(SYS_tgkill, tgid, pid, SIGSTOP);
  }
  return 0;
}

long PtraceEmu::Resume(pid_t pid, Tracee& t, long req, uint64_t data) {
  if (data > 64) return -EIO;
  int sig = (int)data;
  t.mode = req == PTRACE_SYSCALL ? Mode::Syscall : req == PTRACE_SINGLESTEP ? Mode::Step : Mode::Cont;
  long real = req == PTRACE_SYSCALL ? PTRACE_SYSCALL : req == PTRACE_SINGLESTEP ? PTRACE_SINGLESTEP : PTRACE_CONT;
  int deliver = t.realSignal ? sig : 0;
  bool late = sig && !t.realSignal && t.fakeSig;  // a signal the kernel would have had pending
  t.held = t.pending = t.realSignal = t.groupStop = false;
  t.fakeSig = 0;
  if (t.mode == Mode::Syscall && !t.gateClosed) t.gateClosed = CloseGate(pid);
  if (ptrace((__ptrace_request)real, pid, 0, (void*)(long)deliver) != 0) return -ESRCH;
  if (late) Tgkill(pid, sig);
  return 0;
}

long PtraceEmu::Request(pid_t caller, Tracee& t, pid_t pid, long req, uint64_t addr, uint64_t data) {
  switch (req) {
    case PTRACE_KILL:
      Tgkill(pid, SIGKILL);
      return 0;
    case PTRACE_INTERRUPT:
      if (!t.seized) return -EIO;
      if (!t.held) {
        t.interrupt = true;
        ptrace(PTRACE_INTERRUPT, pid, 0, 0);
      }
      return 0;
    default:
      break;
  }
  if (!t.held) return -ESRCH;
  switch (req) {
    case PTRACE_CONT:
    case PTRACE_SYSCALL:
    case PTRACE_SINGLESTEP:
      return Resume(pid, t, req, data);
    case PTRACE_LISTEN:
      if (!t.seized || !t.groupStop) return -EIO;
      t.held = t.pending = false;
      return ptrace(PTRACE_LISTEN, pid, 0, 0) == 0 ? 0 : -errno;
    case PTRACE_DETACH: {
      if (data > 64) return -EIO;
      Detach(pid, t, (int)data);
      tracees_.erase(pid);
      return 0;
    }
    case PTRACE_PEEKTEXT:
    case PTRACE_PEEKDATA:
    case PTRACE_PEEKUSER: {
      errno = 0;
      long w = ptrace((__ptrace_request)req, pid, addr, 0);
      if (errno) return -errno;
      return WriteMem(caller, data, &w, sizeof w) ? 0 : -EFAULT;
    }
    case PTRACE_POKETEXT:
    case PTRACE_POKEDATA:
    case PTRACE_POKEUSER:
      return ptrace((__ptrace_request)req, pid, addr, data) == 0 ? 0 : -errno;
#if defined(__x86_64__)
    case PTRACE_GETREGS:
    case PTRACE_GETFPREGS: {
      union {
        user_regs_struct r;
        user_fpregs_struct f;
      } u;
      size_t n = req == PTRACE_GETREGS ? sizeof u.r : sizeof u.f;
      if (ptrace((__ptrace_request)req, pid, 0, &u) != 0) return -errno;
      return WriteMem(caller, data, &u, n) ? 0 : -EFAULT;
    }
    case PTRACE_SETREGS:
    case PTRACE_SETFPREGS: {
      union {
        user_regs_struct r;
        user_fpregs_struct f;
      } u;
      size_t n = req == PTRACE_SETREGS ? sizeof u.r : sizeof u.f;
      if (!ReadMem(caller, data, &u, n)) return -EFAULT;
      return ptrace((__ptrace_request)req, pid, 0, &u) == 0 ? 0 : -errno;
    }
    case PTRACE_ARCH_PRCTL: {
      if (data == ARCH_GET_FS || data == ARCH_GET_GS) {
        unsigned long v = 0;
        if (ptrace(PTRACE_ARCH_PRCTL, pid, &v, data) != 0) return -errno;
        return WriteMem(caller, addr, &v, sizeof v) ? 0 : -EFAULT;
      }
      return ptrace(PTRACE_ARCH_PRCTL, pid, addr, data) == 0 ? 0 : -errno;
    }
#endif
    case PTRACE_GETREGSET:
    case PTRACE_SETREGSET: {
      iovec io;
      if (!ReadMem(caller, data, &io, sizeof io)) return -EFAULT;
      size_t n = io.iov_len < (1u << 16) ? io.iov_len : (1u << 16);
      std::vector<char> buf(n);
      if (req == PTRACE_SETREGSET && !ReadMem(caller, (uint64_t)io.iov_base, buf.data(), n)) return -EFAULT;
      iovec mine{buf.data(), n};
      if (ptrace((__ptrace_request)req, pid, addr, &mine) != 0) return -errno;
      if (req == PTRACE_GETREGSET) {
        if (!WriteMem(caller, (uint64_t)io.iov_base, buf.data(), mine.iov_len)) return -EFAULT;
        io.iov_len = mine.iov_len;
        if (!WriteMem(caller, data, &io, sizeof io)) return -EFAULT;
      }
      return 0;
    }
    case PTRACE_GETSIGINFO: {
      siginfo_t si;
      memset(&si, 0, sizeof si);
      if (t.fakeSig) {
        si.si_signo = t.fakeSig;
        si.si_code = SI_USER;
      } else if (ptrace(PTRACE_GETSIGINFO, pid, 0, &si) != 0) {
        return -errno;
      }
      return WriteMem(caller, data, &si, sizeof si) ? 0 : -EFAULT;
    }
    case PTRACE_SETSIGINFO: {
      siginfo_t si;
      if (!ReadMem(caller, data, &si, sizeof si)) return -EFAULT;
      if (t.fakeSig) return 0;
      return ptrace(PTRACE_SETSIGINFO, pid, 0, &si) == 0 ? 0 : -errno;
    }
    case PTRACE_GETEVENTMSG: {
      unsigned long m = 0;
      if (ptrace(PTRACE_GETEVENTMSG, pid, 0, &m) != 0) return -errno;
      return WriteMem(caller, data, &m, sizeof m) ? 0 : -EFAULT;
    }
    case PTRACE_SETOPTIONS:
      if (data & ~kKnownOpts) return -EINVAL;
      if (data & kRefusedOpts) return -EINVAL;
      t.opts = (long)data;
      t.optsPending = !ApplyRealOptions(pid, t.opts);
      return 0;
    case PTRACE_GET_SYSCALL_INFO: {
      __ptrace_syscall_info info;
      memset(&info, 0, sizeof info);
      long n = ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof info, &info);
      if (n < 0) return -errno;
      // A syscall stop that is ours alone (the virtual tracer did not resume with PTRACE_SYSCALL) is none of its.
      if (t.mode != Mode::Syscall && info.op != PTRACE_SYSCALL_INFO_NONE) {
        info.op = PTRACE_SYSCALL_INFO_NONE;
        n = offsetof(__ptrace_syscall_info, entry);
      }
      size_t k = addr < (uint64_t)n ? (size_t)addr : (size_t)n;
      if (k && !WriteMem(caller, data, &info, k)) return -EFAULT;
      return n;
    }
    case PTRACE_GETSIGMASK:
    case PTRACE_SETSIGMASK: {
      if (addr != 8) return -EINVAL;
      uint64_t m = 0;
      if (req == PTRACE_SETSIGMASK && !ReadMem(caller, data, &m, 8)) return -EFAULT;
      if (ptrace((__ptrace_request)req, pid, 8, &m) != 0) return -errno;
      if (req == PTRACE_GETSIGMASK && !WriteMem(caller, data, &m, 8)) return -EFAULT;
      return 0;
    }
    case PTRACE_PEEKSIGINFO: {
      __ptrace_peeksiginfo_args a;
      if (!ReadMem(caller, addr, &a, sizeof a)) return -EFAULT;
      if (a.nr > 256) a.nr = 256;
      std::vector<siginfo_t> buf(a.nr ? a.nr : 1);
      long n = ptrace(PTRACE_PEEKSIGINFO, pid, &a, buf.data());
      if (n < 0) return -errno;
      if (n && !WriteMem(caller, data, buf.data(), (size_t)n * sizeof(siginfo_t))) return -EFAULT;
      return n;
    }
    default:
      return -EIO;
  }
}

}  // namespace ucvmfs
