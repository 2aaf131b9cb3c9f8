// ptrace for the job's own debuggers and tracers (gdb, strace, ltrace, crash handlers that run gdb).
//
// Every process of a job already has a tracer, ours, and the kernel gives a process one tracer: a `ptrace`
// call inside the job would fail with EPERM. So, as proot does, the tracer acts for the job's tracers: their
// ptrace calls are answered here (we are the real tracer of the tracee and it is stopped), the stops of their
// tracees that they asked for are held and queued for them, and their wait4/waitid return those stops. The
// stops that serve /cvmfs stay hidden. This class owns that virtual state; the tracer's loop calls it at a
// few points (OnCall/OnCallExit at the emulated calls, Route at every stop, Gone at every death).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "tracee.h"

namespace ucvmfs {

class PtraceEmu {
 public:
  // job: the processes the tracer traces (a ptrace call about any other process runs as the program made it).
  // base: the options of the tracer's own PTRACE_SEIZE.
  PtraceEmu(const std::unordered_set<pid_t>* job, long base) : job_(job), base_(base) {}

  // The calls the seccomp filter must stop for this emulation.
  static bool Emulated(long nr);

  // A seccomp stop of ptrace, wait4 or waitid: answers it (the call is skipped) or lets it run. Returns whether
  // the call's exit stop must be seen (OnCallExit).
  bool OnCall(pid_t pid, Regs& r);
  // A syscall-exit stop: true when it ends a call OnCall took (its result is set). *hold: the caller stays
  // stopped (a blocking wait with nothing to wait for yet, to be answered when an event comes).
  bool OnCallExit(pid_t pid, bool* hold);

  enum class Stop { Entry, Exit, Seccomp, Event, Fresh, GroupStop, Signal };
  // After the tracer's own work at a stop: true when the process stays stopped for its virtual tracer;
  // otherwise *req is how it resumes (the virtual tracer's PTRACE_SYSCALL or SINGLESTEP kept).
  bool Route(pid_t pid, int status, Stop kind, long* req);
  // A process or thread died (the tracer reaped it).
  void Gone(pid_t pid, int status);

  // Whether any process of the job traces another: when not, Route and Gone have nothing to do.
  bool Active() const { return !tracees_.empty() || !tracers_.empty(); }

 private:
  enum class Mode { Cont, Syscall, Step };
  struct Tracee {
    pid_t tracer = 0;      // the virtual tracer (a thread)
    pid_t tracerTgid = 0;  // its process: any of its threads may wait
    pid_t tgid = 0;        // the tracee's own process
    bool seized = false;
    bool realChild = false;  // a process the tracer forked: its exit reaches the tracer from the kernel
    long opts = 0;
    Mode mode = Mode::Cont;
    bool held = false;        // stopped for the virtual tracer (its ptrace requests may act)
    bool pending = false;     // a stop or exit the virtual tracer has not waited for
    int status = 0;           // that event, as wait4 encodes it
    uint64_t seq = 0;         // events are waited for in the order they came
    int fakeSig = 0;          // the stop stands for a signal the kernel would have sent (exec SIGTRAP, SIGSTOP)
    bool realSignal = false;  // held at a signal-delivery stop: the resume's signal is delivered
    bool groupStop = false;
    bool inSyscall = false;   // its syscall-entry stop was reported: the exit stop will be
    bool interrupt = false;   // PTRACE_INTERRUPT asked for
    bool exited = false;      // gone: only its exit status is left to wait for
    bool optsPending = false;  // the kernel is yet to be told of options it wants (TRACEEXIT, VFORKDONE)
    bool gateClosed = false;  // the preload library's gate is closed in its current image (CloseGate)
    bool unseen = false;      // attached before the connector saw its first stop, which is not the tracer's to see
  };
  struct Wait {
    bool waitid = false;
    int idtype = 0;  // waitid's, or for wait4: P_ALL / P_PID / P_PGID from its pid argument
    long id = 0;
    int options = 0;
    uint64_t status = 0, rusage = 0;  // where the caller wants them
  };
  struct Tracer {
    pid_t tgid = 0;
    bool inRealWait = false;  // a blocking wait it makes for real (its real children) is under way
    bool kicked = false;      // interrupted out of that wait by us: the resulting PTRACE_EVENT_STOP is ours
    bool heldWait = false;    // held at the exit of a wait that had nothing yet (see OnCallExit)
    bool pausedWait = false;  // that wait sleeps in pause() instead (x86_64), signals reach it
    bool answering = false;   // interrupted out of that pause: the PTRACE_EVENT_STOP answers the wait
    uint64_t pauseIp = 0, pauseSp = 0;
    Wait wait;
  };
  struct Call {
    enum { Result, RealNohang, RealBlocking } what = Result;
    long ret = 0;
    Wait wait;
  };

  const std::unordered_set<pid_t>* job_;
  long base_;
  std::map<pid_t, Tracee> tracees_;
  std::unordered_map<pid_t, Tracer> tracers_;
  std::unordered_map<pid_t, Call> calls_;
  uint64_t seq_ = 0;

  long Ptrace(pid_t caller, Regs& r, bool* emulate);
  long Attach(pid_t caller, long req, pid_t pid, uint64_t addr, uint64_t data);
  long Request(pid_t caller, Tracee& t, pid_t pid, long req, uint64_t addr, uint64_t data);
  long Resume(pid_t pid, Tracee& t, long req, uint64_t data);
  bool ParseWait(long nr, const Regs& r, Wait* w);
  bool Matches(const Wait& w, pid_t caller, pid_t pid, const Tracee& t);
  bool AnyCandidate(pid_t callerTgid, const Wait& w, pid_t caller);
  // The oldest waitable event for a wait, or 0.
  pid_t Find(pid_t caller, const Wait& w);
  long Deliver(pid_t caller, pid_t pid, const Wait& w);
  void Queue(pid_t pid, Tracee& t, int status);
  void Notify(pid_t tracer);
  void CompleteHeldWait(pid_t tracer, long ret);
  bool PauseWait(pid_t tracer, Tracer& v);
  void AnswerPaused(pid_t tracer, Tracer& v);
  void Adopt(pid_t child, const Tracee& parent);
  bool ApplyRealOptions(pid_t pid, long opts);
  void Detach(pid_t pid, Tracee& t, int sig);
  Tracer& TracerOf(pid_t tid);
  static bool CloseGate(pid_t pid);
  long ResumeRequest(pid_t pid, long req) const;
};

}  // namespace ucvmfs
