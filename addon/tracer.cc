// The connector's tracer: runs a command under ptrace with a seccomp filter so that only path system calls
// stop, rewrites /cvmfs paths to a shadow tree the TypeScript side materializes on demand, answers EROFS for
// writes, and translates shadow paths back where the kernel reveals them (getcwd, readlink of /proc links).
//
// Threading: the tracer is one native thread (ptrace ties a tracee to the thread that attached it). When a
// path needs materializing it calls into JavaScript through a thread-safe function and waits for the answer;
// answers are remembered, so each path costs one round trip per session.
#include <napi.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/openat2.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include <chrono>
#include <future>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "container.h"
#include "spawn.h"
#include "filter.h"
#include "modes.h"
#include "readonly.h"
#include "paths.h"
#include "ptrace_emu.h"
#include "syscalls.h"
#include "tracee.h"

namespace ucvmfs {
namespace {

const std::string kVirtual = "/cvmfs";

// One question to JavaScript: op is 'l' (look up), 'o' (open), 'd' (list directory), 'x' (execute).
struct Request {
  char op;
  std::string path;
  std::promise<std::vector<std::string>> answer;
  bool answered = false;  // set once, on the main thread: a second reply (a bug in JavaScript) is ignored

  void Answer(std::vector<std::string> a) {
    if (answered) return;
    answered = true;
    answer.set_value(std::move(a));
  }
};

// The answer that makes a call fail with EIO (JavaScript sends the same when it cannot prepare a path).
const std::vector<std::string> kEio = {std::string("\0EIO", 4)};

struct Done {
  int code = -1;
  int signal = 0;
  std::string error;
};

struct Message {
  std::unique_ptr<Request> request;  // or, when null, the run is over
  Done done;
};

struct Options {
  // shadow: this session's stand-in for /cvmfs (mount directories only); base: the shared shadow area whose
  // rev/<fqrn>@<root hash>/ directories hold the trees and root/<fqrn> links name the newest of each.
  std::string file, cwd, shadow, base;
  std::vector<std::string> argv, envp;
  // Recording an access profile: markers left by earlier jobs are ignored, so that JavaScript hears of every
  // path the job needs once (this session's own answers still spare it repeated questions).
  bool record = false;
  // The signal dispositions and mask the caller gave ucvmfs (bit n-1 for signal n), which Node reset when it
  // started: the command gets them back, as a shell's child would (nohup, trap '' INT, a blocked signal).
  uint64_t ignored = 0, blocked = 0;
  // The caller's soft limit of open files, which Node raised to the hard limit when it started: the command gets
  // it back (select() users rely on 1024). Unset: left as Node has it.
  bool nofileSet = false;
  rlim_t nofile = RLIM_INFINITY;
  // The caller's soft limit of file size, which the front raised (ucvmfs's own files are not the job's writes).
  bool fsizeSet = false;
  rlim_t fsize = RLIM_INFINITY;
  // Descriptors above 2 the caller left open for the command, which Node marked close-on-exec at start; and
  // which of 0-2 the caller had closed (Node opened /dev/null there): closed for the command too.
  std::vector<int> fds, closed;
};

// A soft limit handed over as text ("inf" or decimal): whether it was there and well formed, and its value.
static bool LimitOption(const Napi::Object& o, const char* name, rlim_t* value) {
  if (!o.Has(name)) return false;
  std::string n = o.Get(name).ToString().Utf8Value();
  bool digits = !n.empty() && n.size() <= 19 && n.find_first_not_of("0123456789") == std::string::npos;
  if (n != "inf" && !digits) return false;
  *value = n == "inf" ? RLIM_INFINITY : (rlim_t)std::stoull(n, nullptr, 10);
  return true;
}

// What must happen at the exit of a call.
struct Pending {
  enum { None, SetErrno, TranslateBuf, SetValue, PatchMode, HideModeXattr, ReadOnlyFs, ShowExe } what = None;
  long err = 0;
  uint64_t buf = 0, size = 0;
  bool getcwd = false;
  std::string link;  // readlink: the link as the tracer can name it, to re-read an answer the buffer cut short
  std::string linkDir;  // readlink under /cvmfs: the link's directory, as a /cvmfs path
  std::string value;    // getxattr of a magic attribute: the value to hand back; ShowExe: the program's path
  unsigned mode = 0;    // PatchMode: the stored mode's permission bits
  bool statx = false;   // PatchMode: buf is a struct statx (else a struct stat)
  uint64_t mask = 0;    // PatchMode, statx: the mask the tracee asked for (its register is set back at the exit)
  std::string saved;    // readlink translated: the buffer's bytes before the call (see KeepBuffer)
};

// std::string forms of addon/paths.h, which the preload library shares.
bool Under(const std::string& path, const std::string& prefix) { return ucvmfs_under(path.c_str(), prefix.c_str(), prefix.size()); }

// Lexical normalization (an absolute path, or a relative one taken from `/`).
std::string Normalize(const std::string& p) {
  std::string out = p;
  ucvmfs_normalize(&out[0]);
  out.resize(strlen(out.c_str()));
  return out;
}

// Runs on the main thread: either a question for JavaScript or the end of the run.
void CallJs(Napi::Env env, Napi::Function onRequest, Napi::Promise::Deferred* deferred, Message* m) {
  std::unique_ptr<Message> own(m);
  if (env == nullptr) {
    // JavaScript is gone (the environment is shutting down): nothing was prepared, so the call fails.
    if (m->request) m->request->Answer(kEio);
    return;
  }
  if (!m->request) {
    Napi::Object res = Napi::Object::New(env);
    res.Set("code", m->done.code);
    res.Set("signal", m->done.signal);
    if (!m->done.error.empty()) res.Set("error", m->done.error);
    deferred->Resolve(res);
    delete deferred;
    return;
  }
  std::shared_ptr<Request> r(m->request.release());
  auto reply = Napi::Function::New(env, [r](const Napi::CallbackInfo& info) {
    std::vector<std::string> out;
    if (info.Length() == 0 || !info[0].IsArray()) {
      // Not an answer: nothing is known to be prepared.
      r->Answer(kEio);
      return;
    }
    {
      Napi::Array a = info[0].As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Value v = a.Get(i);
        if (v.IsBuffer()) {
          auto b = v.As<Napi::Buffer<char>>();
          out.emplace_back(b.Data(), b.Length());
        } else {
          out.push_back(v.ToString().Utf8Value());
        }
      }
    }
    r->Answer(std::move(out));
  });
  // The path as bytes: names need not be UTF-8 (a string would turn stray bytes into U+FFFD).
  onRequest.Call({Napi::String::New(env, std::string(1, r->op)), Napi::Buffer<char>::Copy(env, r->path.data(), r->path.size()), reply});
  if (env.IsExceptionPending()) {
    // The handler threw before answering: the call fails (EIO) and the job goes on.
    Napi::Error e = env.GetAndClearPendingException();
    fprintf(stderr, "ucvmfs: %s: %s\n", r->path.c_str(), e.Message().c_str());
    r->Answer(kEio);
  }
}

using Tsfn = Napi::TypedThreadSafeFunction<Napi::Promise::Deferred, Message, CallJs>;

class Tracer {
 public:
  Tracer(Options o, Tsfn tsfn) : o_(std::move(o)), tsfn_(tsfn) {}

  void Run() {
    Done d = Trace();
    auto* m = new Message{nullptr, d};
    tsfn_.BlockingCall(m);
    tsfn_.Release();
  }

 private:
  Options o_;
  Tsfn tsfn_;
  std::unordered_set<std::string> ready_;
  std::unordered_map<std::string, std::vector<std::string>> interp_;
  std::unordered_map<pid_t, Pending> pending_;
  std::unordered_set<pid_t> known_;
  std::unordered_set<std::string> listed_;  // /cvmfs paths of directories JavaScript has listed
  bool nofollow_ = false;                   // the call being handled does not follow a final symlink
  std::unordered_map<std::string, std::string> mounts_;  // repository → revision directory
  uint64_t asks_ = 0, askNs_ = 0, stops_ = 0;
  bool debug_ = getenv("UCVMFS_TRACER_DEBUG") != nullptr;
  // Test hook (documented in the README): the tracer throws while handling a /cvmfs path, to show that such an
  // error fails the call instead of letting it through.
  bool faultTracer_ = getenv("UCVMFS_TEST_FAULT") != nullptr && std::string(getenv("UCVMFS_TEST_FAULT")) == "tracer";
  std::unordered_map<long, uint64_t> byNr_;  // seccomp stops per system call (debug)
  ino_t ownNs_ = NamespaceOf("self");          // the tracer's mount namespace
  std::unordered_set<ino_t> nsWarned_;         // mount namespaces the job was told do not see the shadow area
  // A process's mount namespace and whether it sees the shadow area, known since its last exec: a process
  // changes its mount namespace by unshare or setns and then, nearly always, execs (bwrap and podman do it in a
  // new child).
  struct NsView {
    ino_t ns;
    int sees;  // -1 until a /cvmfs path is asked for (a container being set up does not yet show its binds)
  };
  std::unordered_map<pid_t, NsView> pidNs_;
  // Stored modes are answered at a stat's entry for processes with the tracer's credentials (OwnCredentials).
  bool rootTracer_ = geteuid() == 0;
  unsigned long long ownCaps_ = OwnCaps();
  std::unordered_map<pid_t, bool> creds_;
  static unsigned long long OwnCaps() {
    unsigned long fsuid;
    unsigned long long cap = 0;
    return ProcStatus((pid_t)syscall(SYS_gettid), &fsuid, &cap) ? cap : 0;
  }
  static constexpr long kOpts = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK |
                                PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESECCOMP;
  // ptrace for the job's debuggers (addon/ptrace_emu.h); UCVMFS_PTRACE=off leaves ptrace failing with EPERM.
  bool emulatePtrace_ = !(getenv("UCVMFS_PTRACE") && std::string(getenv("UCVMFS_PTRACE")) == "off");
  PtraceEmu emu_{&known_, kOpts};

  static ino_t NamespaceOf(const std::string& pid) {
    struct stat st;
    return stat(("/proc/" + pid + "/ns/mnt").c_str(), &st) == 0 ? st.st_ino : 0;
  }

  // A process in another mount namespace (a container started inside the job: bwrap, podman) reaches /cvmfs
  // only when the shadow area is at the same path there, since the tracer hands the kernel shadow paths. When
  // it is not, the job is told why, once per namespace.
  NsView& ViewOf(pid_t pid) {
    auto known = pidNs_.find(pid);
    if (known != pidNs_.end()) return known->second;
    return pidNs_[pid] = NsView{NamespaceOf(std::to_string(pid)), -1};
  }

  bool SeesShadow(pid_t pid) {
    NsView& v = ViewOf(pid);
    if (v.sees < 0) v.sees = NamespaceSeesShadow(pid, v.ns);
    return v.sees;
  }

  // Whether a process resolves absolute paths as the tracer does (same mount namespace).
  bool SameNamespace(pid_t pid) {
    ino_t ns = ViewOf(pid).ns;
    return ns == 0 || ns == ownNs_;
  }

  bool NamespaceSeesShadow(pid_t pid, ino_t ns) {
    if (ns == 0 || ns == ownNs_) return true;
    auto same = [&](const std::string& dir) {
      struct stat a, b;
      return stat(dir.c_str(), &a) == 0 && stat(("/proc/" + std::to_string(pid) + "/root" + dir).c_str(), &b) == 0 &&
             a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    };
    bool sees = same(o_.base) && same(o_.shadow);
    if (!sees && nsWarned_.insert(ns).second) {
      // The cache directory holds both the shadow trees (shadow/) and the session's /cvmfs (sessions/).
      std::string cache = o_.base.substr(0, o_.base.rfind('/'));
      fprintf(stderr,
              "ucvmfs: /cvmfs is not available to process %d: it runs in another mount namespace (a container started "
              "inside the job) that does not show the connector's cache directory %s at the same path; bind it "
              "there (e.g. bwrap --bind %s %s)\n",
              (int)pid, cache.c_str(), cache.c_str(), cache.c_str());
    }
    return sees;
  }

  // ---- Containers whose bind sources or root are under /cvmfs (container.h) ----
  struct stat hostRoot_ = RootOf();
  BoundRoots bound_;  // shadow directories bound into containers
  static struct stat RootOf() {
    struct stat st{};
    stat("/", &st);
    return st;
  }

  // A path of a process in another mount namespace that reaches the host's /cvmfs through the host's root seen
  // there (`/oldroot/cvmfs/...` in bwrap): its /cvmfs path, and in `rw` the same prefix followed by the shadow path.
  std::string ViaHostRoot(pid_t pid, const std::string& s, std::string* rw) {
    if (s.size() < 7 || s[0] != '/' || s.find("/cvmfs", 1) == std::string::npos || SameNamespace(pid)) return "";
    std::string n = Normalize(s);
    size_t at = HostRootPrefix(pid, n, hostRoot_);
    if (at == std::string::npos) return "";
    std::string virt = n.substr(at);
    *rw = n.substr(0, at) + ToShadow(virt);
    return virt;
  }

  // The /cvmfs path a mount argument names (and in `rw` what the kernel must get instead), or "".
  std::string MountPath(pid_t pid, const Regs& r, const std::string& s, std::string* rw) {
    rw->clear();
    if (s.empty() || s[0] != '/') return "";
    std::string virt = Classify(pid, r, -1, s, rw);
    if (!virt.empty() && SeesShadow(pid)) return virt;
    rw->clear();
    return ViaHostRoot(pid, s, rw);
  }

  // mount(2) and open_tree(2): /cvmfs paths translated as for other calls; a bind whose source is in the shadow
  // tree (by any path) waits until JavaScript completed the source's whole subtree, and fails when it cannot be.
  bool OnMount(pid_t pid, Regs& r, long nr) {
    bool tree = nr != __NR_mount;
    uint64_t flags = r.Arg(tree ? 2 : 3);
    bool bind = tree ? (flags & OPEN_TREE_CLONE) != 0 : (flags & MS_BIND) && !(flags & (MS_REMOUNT | MS_MOVE));
    uint64_t low = 0;  // scratch space used so far (two paths may be rewritten)
    auto rewrite = [&](int idx, const std::string& rw) {
      low = Scratch(pid, r, rw + '\0', low);
      if (low) r.SetArg(idx, low);
      return low != 0;
    };
    std::string s, rw;
    // The target: under /cvmfs it is the shadow directory (a runtime mounting /proc in a root it took from /cvmfs).
    if (!tree && ReadString(pid, r.Arg(1), &s)) {
      std::string virt = MountPath(pid, r, s, &rw);
      if (!virt.empty() && (Failed(Ask('l', virt)) || !rewrite(1, rw))) return FailNow(pid, r, EIO);
    }
    if (bind && ReadString(pid, r.Arg(tree ? 1 : 0), &s)) {
      std::string virt = MountPath(pid, r, s, &rw);
      if (!virt.empty() && !rewrite(tree ? 1 : 0, rw)) return FailNow(pid, r, EIO);
      if (virt.empty()) {
        // Not named as /cvmfs: what the kernel will bind decides (`/proc/self/fd/N`, a shadow path, a symlink).
        bool follow = !tree || !(flags & AT_SYMLINK_NOFOLLOW);
        int fd = OpenAsTracee(pid, tree ? (int)(int32_t)r.Arg(0) : AT_FDCWD, s, follow);
        std::string real;
        if (fd >= 0) {
          real = HostPathUnder(fd, o_.base);
          if (real.empty()) real = HostPathUnder(fd, o_.shadow);
          close(fd);
        }
        if (!real.empty()) {
          virt = Virtualize(real);
          // The shadow area's own directories (markers, revisions side by side) are nobody's to bind.
          if (virt.empty()) return FailNow(pid, r, EACCES);
        }
      }
      if (!virt.empty() && !CompleteTree(Normalize(virt))) return FailNow(pid, r, EIO);
      if (!virt.empty()) bound_.Add(ToShadow(Normalize(virt)));
    }
    if (low) r.Store();
    return false;
  }

  // In a container's mount namespace a /cvmfs path may lead to a file system mounted over the shadow tree there
  // (runc's tmpfs on <root>/dev when the root is a tree under /cvmfs): not ours, so the kernel decides. A bind of
  // the shadow tree keeps its device, and stays read-only. A name not there yet is judged by its directory.
  bool MountedOver(pid_t pid, const Regs& r, int dirfdIdx, const std::string& s, const std::string& rw) {
    if (SameNamespace(pid)) return false;
    int dirfd = rw.empty() && dirfdIdx >= 0 ? (int)(int32_t)r.Arg(dirfdIdx) : AT_FDCWD;
    std::string path = rw.empty() ? s : rw;
    int fd = OpenAsTracee(pid, dirfd, path, false);
    if (fd < 0 && errno == ENOENT) {
      size_t slash = path.find_last_of('/');
      fd = OpenAsTracee(pid, dirfd, slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash), true);
    }
    if (fd < 0) return false;
    struct stat st, area;
    bool other = fstat(fd, &st) == 0 && stat(o_.base.c_str(), &area) == 0 && st.st_dev != area.st_dev;
    close(fd);
    return other;
  }

  // Whether a change by a process of another mount namespace lands in the shadow area: in a container the
  // shadow tree may be bound under a path of its own (a writable bind, written by the container's root).
  bool ContainerTargetsShadow(pid_t pid, int dirfd, const std::string& s, bool follow) {
    // An fd: by the name the process knows it by (a bound shadow file has one of the container's).
    if (s.empty()) {
      std::string name = ProcLink(pid, dirfd == AT_FDCWD ? "cwd" : "fd/" + std::to_string(dirfd));
      return !name.empty() && name[0] == '/' && ContainerTargetsShadow(pid, AT_FDCWD, name, false);
    }
    int fd = OpenAsTracee(pid, dirfd, s, follow);
    bool in = false;
    if (fd >= 0) {
      in = !HostPathUnder(fd, o_.base).empty() || !HostPathUnder(fd, o_.shadow).empty();
      struct stat st;
      if (!in && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) in = bound_.Holds(fd);
      close(fd);
    }
    if (in) return true;
    // Its directory (a new name, or a file: files have no `..` to climb from).
    size_t slash = s.find_last_of('/');
    fd = OpenAsTracee(pid, dirfd, slash == std::string::npos ? "." : slash == 0 ? "/" : s.substr(0, slash), true);
    if (fd < 0) return false;
    in = !HostPathUnder(fd, o_.base).empty() || !HostPathUnder(fd, o_.shadow).empty() || bound_.Holds(fd);
    close(fd);
    return in;
  }

  // Asks JavaScript to complete a bind source (every directory listed, every file filled and verified), once per
  // path and session; /cvmfs itself is no repository's content (its entries are the repositories' tops).
  bool CompleteTree(const std::string& virt) {
    if (virt == kVirtual || ready_.count("t" + virt)) return true;
    if (Failed(AskJs('t', virt))) return false;
    ready_.insert("t" + virt);
    return true;
  }

  std::vector<std::string> Ask(char op, const std::string& path) {
    std::string key = std::string(1, op) + path;
    if (op == 'g') return AskJs(op, path);
    // Under a name that is no repository (no dot): nothing to prepare, the kernel answers ENOENT.
    std::string top = RepoOf(path);
    if (!top.empty() && top != "." && top != ".." && top.find('.') == std::string::npos) return {};
    if (op != 'x' && ready_.count(key)) return {};
    if (op == 'x') {
      auto it = interp_.find(path);
      if (it != interp_.end()) return it->second;
    }
    if (op != 'x' && Known(op, path)) return {};
    std::vector<std::string> a = AskJs(op, path);
    if (Failed(a)) return a;
    if (op == 'x') interp_[path] = a;
    ready_.insert(key);
    if (op == 'o' || op == 'x') ready_.insert("l" + path);
    if (Clean(path)) {
      // A final directory is listed (the directories passed through are not: only the name needed there).
      struct stat st;
      if (lstat(ToShadow(path).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) listed_.insert(path);
    }
    return a;
  }

  // Whether an open's flags ask for more than reading (O_PATH opens neither reads nor writes: the kernel ignores
  // the rest).
  static bool ChangesFile(uint64_t flags) {
    if (flags & O_PATH) return false;  // O_TMPFILE beside it is taken out at the call's entry (OnEntry)
    return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
  }

  // Calls that make a new name (its last path argument): on a read-only mount the kernel answers EEXIST before
  // EROFS when the name is there (`mkdir -p`; a runtime's `symlinkat("/proc/mounts", etc, "mtab")` in a root
  // file system taken from /cvmfs).
  static bool CreatesName(long nr) {
    switch (nr) {
#ifdef __NR_mkdir
      case __NR_mkdir: case __NR_mknod: case __NR_symlink: case __NR_link:
#endif
      case __NR_mkdirat: case __NR_mknodat: case __NR_symlinkat: case __NR_linkat:
        return true;
      default:
        return false;
    }
  }

  // The shadow path of a /cvmfs path whose names the library has made, for judging a change there (readonly.h).
  // Empty when the library could not make them (the call then fails with EIO).
  std::string Prepared(const std::string& virt) {
    if (Failed(Ask('l', virt))) return "";
    return ToShadow(Normalize(virt));
  }

  // Where a path of a rename or link is, as the kernel would look it up: a /cvmfs path's shadow entry, else the
  // tracee's own path (empty in another mount namespace, where the tracer cannot look it up as the tracee would).
  std::string PairPath(pid_t pid, const Regs& r, int dirfdIdx, const std::string& s, const std::string& virt) {
    if (!virt.empty()) return Prepared(virt);  // "" only when that failed: PairError says EIO
    if (!SameNamespace(pid)) return "";
    return TraceePath(pid, dirfdIdx < 0 ? AT_FDCWD : (int)(int32_t)r.Arg(dirfdIdx), s);
  }

  // rename, link and symlink with a /cvmfs path on either side (readonly.h): each name's directory, the link's
  // source and new name, then EXDEV between two mounts (each repository is one, as on a real /cvmfs) or EROFS.
  long PairError(pid_t pid, const Regs& r, const CallInfo* c, long nr, const std::string& s1, const std::string& v1,
                 const std::string& s2, const std::string& v2) {
    std::string to = PairPath(pid, r, c->dirfd2, s2, v2);
    if (!v2.empty() && to.empty()) return EIO;
    if (c->path < 0) return v2.empty() ? EROFS : MakeError(to);  // symlink: its target is only text
    std::string from = PairPath(pid, r, c->dirfd, s1, v1);
    if (!v1.empty() && from.empty()) return EIO;
    bool link = CreatesName(nr);
    if (link) {
      struct stat st;
      if (long e = from.empty() ? 0 : LookupError(from, FollowsLast(nr, r), &st)) return e;
      if (!v2.empty()) return MakeError(to);
      if (to.empty()) return EXDEV;
      if (long e = ParentError(to)) return e;
      return lstat(to.c_str(), &st) == 0 ? EEXIST : EXDEV;
    }
    for (const std::string* p : {&from, &to})
      if (long e = p->empty() ? 0 : ParentError(*p)) return e;
    auto repo = [](const std::string& v) { return v.substr(0, v.find('/', kVirtual.size() + 1)); };
    return !v1.empty() && !v2.empty() && repo(v1) == repo(v2) ? EROFS : EXDEV;
  }

  // A call of the write family on a /cvmfs path that is not a rename or link (readonly.h), judged on its prepared
  // shadow entry.
  long WriteError(long nr, const Regs& r, const std::string& shadow) {
    switch (nr) {
#ifdef __NR_creat
      case __NR_creat:
        return OpenError(shadow, O_CREAT | O_WRONLY | O_TRUNC);
      case __NR_unlink: case __NR_rmdir:
#endif
      case __NR_unlinkat:
        return RemoveError(shadow);
      default:
        if (CreatesName(nr)) return MakeError(shadow);
        return ChangeError(shadow, FollowsLast(nr, r), nr == __NR_truncate);
    }
  }

  // JavaScript's answer when it could not prepare a path (the call then fails with EIO).
  static bool Failed(const std::vector<std::string>& a) { return a.size() == 1 && a[0] == std::string("\0EIO", 4); }

  std::vector<std::string> AskJs(char op, const std::string& path) {
    auto t0 = std::chrono::steady_clock::now();
    asks_++;
    if (debug_ && getenv("UCVMFS_TRACER_DEBUG")[0] == '2') fprintf(stderr, "[tracer] question %c %s\n", op, path.c_str());
    auto* r = new Request{op, path, {}};
    auto fut = r->answer.get_future();
    auto* m = new Message{std::unique_ptr<Request>(r), {}};
    if (tsfn_.BlockingCall(m) != napi_ok) {
      delete m;
      return kEio;
    }
    std::vector<std::string> a = fut.get();
    askNs_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    return a;
  }

  // Whether a path has a `..` component.
  static bool HasDotDot(const std::string& p) {
    for (size_t i = p.find(".."); i != std::string::npos; i = p.find("..", i + 1))
      if ((i == 0 || p[i - 1] == '/') && (i + 2 == p.size() || p[i + 2] == '/')) return true;
    return false;
  }

  // A path without `.`/`..` components or doubled slashes: its lexical parent is where the kernel looks.
  static bool Clean(const std::string& p) {
    if (p.empty() || p.back() == '/' || p.find("//") != std::string::npos) return false;
    // No `.` or `..` component (names that merely start with a dot are fine).
    for (size_t i = p.find("/."); i != std::string::npos; i = p.find("/.", i + 1)) {
      size_t e = i + 2;
      if (e == p.size() || p[e] == '/' || (p[e] == '.' && (e + 1 == p.size() || p[e + 1] == '/'))) return false;
    }
    return true;
  }

  // Whether the shadow tree already holds what `op` needs, so that JavaScript need not be asked: the parent
  // is listed, and the name is absent (the kernel answers ENOENT), a listed directory, or, for a lookup, a
  // file. Symlinks always go to JavaScript, which resolves them and lists what they lead to.
  bool Known(char op, const std::string& path) {
    if (!Clean(path)) return false;
    // The hidden /.cvmfs is made on first access by the library (and is never in a listing).
    std::string name = RepoOf(path);
    size_t top = kVirtual.size() + 1 + name.size();
    if (path.size() >= top && ucvmfs_hidden(path.c_str() + top)) return false;
    std::string parent = path.substr(0, path.rfind('/'));
    if (parent == kVirtual) return Listed(path);  // a repository's top: mounted and listed
    // A directory not listed in full (a path passed through it) still answers for the names made in it one by
    // one (`n`, or `f` for a file filled right away) and for those looked up and found absent (`a`).
    bool listed = Listed(parent);
    if (!listed) {
      if (Marked('a', path)) return true;
      if (!Marked('n', path) && !Marked('f', path)) return false;  // a filled file needs no `n`
    }
    struct stat st;
    if (lstat(ToShadow(path).c_str(), &st) != 0) return listed && errno == ENOENT;
    if (S_ISDIR(st.st_mode)) return Listed(path);
    if (S_ISREG(st.st_mode)) return op == 'l' || (op == 'o' && (st.st_size == 0 || Marked('f', path)));
    // A symlink is known to a call that does not follow it (lstat, readlink); following it is the library's job.
    return !S_ISLNK(st.st_mode) || (op == 'l' && nofollow_);
  }

  // A directory listed in this session, or by any process before (its marker file, see shadow.ts).
  bool Listed(const std::string& virt) {
    if (listed_.count(virt)) return true;
    if (!Marked('l', virt)) return false;
    listed_.insert(virt);
    return true;
  }

  // Whether the library left the marker `kind` for a /cvmfs path of a mounted repository.
  bool Marked(char kind, const std::string& virt) {
    if (o_.record) return false;
    std::string name = RepoOf(virt);
    auto it = mounts_.find(name);
    if (name.empty() || it == mounts_.end() || it->second.empty()) return false;
    std::string rpath = virt.substr(kVirtual.size() + 1 + name.size());
    if (rpath.empty()) rpath = "/";
    if (ucvmfs_hidden(rpath.c_str())) return false;
    char marker[PATH_MAX + 64];
    return ucvmfs_marker(it->second.c_str(), kind, rpath.data(), rpath.size(), marker, sizeof marker) && access(marker, F_OK) == 0;
  }

  // The repository name in a /cvmfs path ("" for /cvmfs itself).
  static std::string RepoOf(const std::string& virt) {
    const char* name = nullptr;
    size_t n = ucvmfs_repo_of(virt.c_str(), &name);
    return n ? std::string(name, n) : "";
  }

  // The revision directory of a repository, opened on first use ("" when it cannot be opened).
  const std::string& Mount(const std::string& name) {
    auto it = mounts_.find(name);
    if (it != mounts_.end()) return it->second;
    // A repository has a fully qualified name: `/cvmfs/lib` (which Python probes) is no repository, at once.
    if (name.find('.') == std::string::npos) return mounts_[name] = std::string();
    std::vector<std::string> a = AskJs('m', name);
    return mounts_[name] = a.empty() || Failed(a) ? std::string() : a[0];
  }

  // Where the kernel finds a /cvmfs path: in the repository's revision directory, or in the session's
  // directory for /cvmfs itself and names that are no repository.
  std::string ToShadow(const std::string& virt) {
    std::string name = RepoOf(virt);
    if (!name.empty() && name != "." && name != "..") {
      const std::string& rev = Mount(name);
      if (!rev.empty()) {
        std::string rest = virt.substr(kVirtual.size() + 1 + name.size());
        std::string out(rev.size() + rest.size() + 8, '\0');
        if (!ucvmfs_in_revision(rev.c_str(), rest.c_str(), &out[0], out.size())) throw std::runtime_error("shadow path too long");
        out.resize(strlen(out.c_str()));
        return out;
      }
    }
    return o_.shadow + virt.substr(kVirtual.size());
  }

  // The /cvmfs path of a real path the kernel revealed, or "" when it is not in the shadow area.
  std::string Virtualize(const std::string& real) const {
    std::string out(real.size() + kVirtual.size() + 1, '\0');
    if (!ucvmfs_virtualize(real.c_str(), o_.shadow.c_str(), o_.shadow.size(), o_.base.c_str(), o_.base.size(), &out[0], out.size())) return "";
    out.resize(strlen(out.c_str()));
    return out;
  }

  // The /cvmfs path that a path through one of /proc's magic links (paths.h: ucvmfs_magic_link) stands for, when
  // the link leads into the shadow area (`/proc/self/fd/N/x` of a descriptor of a /cvmfs directory, `/proc/self/cwd/x`
  // inside /cvmfs) or to the root (`/proc/self/root/cvmfs/...`); else "". The kernel would reach the shadow entry
  // without the library preparing it: a placeholder's zeros, a directory not yet listed.
  std::string ThroughMagicLink(pid_t pid, const std::string& s) {
    char link[64];
    const char* rest = nullptr;
    // Only a path through the link: the link itself (readlink of /proc/self/cwd, a reopened descriptor) is answered
    // as before (translated back, judged where it lands).
    if (!ucvmfs_magic_link(s.c_str(), link, sizeof link, &rest) || !*rest || !SameNamespace(pid)) return "";
    char target[PATH_MAX + 1];
    ssize_t n = readlink(TraceePath(pid, AT_FDCWD, link).c_str(), target, PATH_MAX);
    if (n <= 0) return "";
    std::string t(target, (size_t)n);
    if (InShadowArea(t)) {
      std::string v = Virtualize(t);
      return v.empty() ? "" : v + rest;
    }
    std::string l(link);
    if (l.size() >= 5 && l.compare(l.size() - 5, 5, "/root") == 0) {
      std::string a = Normalize((t == "/" ? "" : t) + rest);
      return Under(a, kVirtual) ? a : "";
    }
    return "";
  }

  // The /cvmfs path a call argument names, or "" when it names something else. `rewrite` receives the
  // argument the kernel should see instead ("" to leave it).
  std::string Classify(pid_t pid, const Regs& r, int dirfdIdx, const std::string& s, std::string* rewrite) {
    rewrite->clear();
    if (s.empty()) return "";
    std::string abs;
    bool relative = s[0] != '/';
    if (!relative) {
      abs = s;
      if (s[1] == 'p' || s[1] == 'd') {
        std::string through = ThroughMagicLink(pid, s);
        if (!through.empty()) abs = through;
      }
      // A shadow path the kernel revealed (/proc/self/maps) names its /cvmfs path: read so, a placeholder not yet
      // filled would give zeros.
      if (abs == s && InShadowArea(s)) {
        std::string v = ShadowPathVirtual(s);
        if (!v.empty()) abs = v;
      }
    } else {
      int dirfd = dirfdIdx < 0 ? AT_FDCWD : (int)(int32_t)r.Arg(dirfdIdx);
      std::string base = ProcLink(pid, dirfd == AT_FDCWD ? "cwd" : "fd/" + std::to_string(dirfd));
      std::string v = Virtualize(base);
      if (!v.empty()) {
        abs = v + "/" + s;
        // The base is a physical directory, so leading `..` components (fts climbing back up) are exact
        // lexically; a `..` after a name could follow a symlink and stays for the library to resolve.
        size_t lead = 0;
        while (s.compare(lead, 2, "..") == 0 && (lead + 2 == s.size() || s[lead + 2] == '/')) lead += lead + 2 == s.size() ? 2 : 3;
        if (lead > 0 && s.find("/..", lead) == std::string::npos && !(s.size() >= lead + 2 && s.compare(lead, 2, "..") == 0)) {
          std::string n = Normalize(abs);
          if (Under(n, kVirtual)) abs = n;
        }
        // The session directory only stands for /cvmfs itself: below it, the kernel must go to the revisions.
        // And a `..` must climb as in /cvmfs: from a repository's top the kernel would reach the shadow area's
        // own directories (rev/, markers, unfilled placeholders), so such a path is given to it absolute.
        if (Under(base, o_.shadow) || HasDotDot(s)) relative = false;
      } else {
        // Relative to a real directory, yet naming /cvmfs (`cd / && ls cvmfs/x`): give the kernel the shadow path.
        if (base.empty() || (s.find("cvmfs") == std::string::npos && s.find("..") == std::string::npos)) return "";
        std::string n = Normalize(base + "/" + s);
        if (!Under(n, kVirtual)) return "";
        abs = KeepTrailing(s, n);
        relative = false;
      }
    }
    if (!Under(abs, kVirtual)) {
      const bool dots = abs.find("..") != std::string::npos;
      if (!dots && abs.find("//") == std::string::npos && abs.find("/.") == std::string::npos) return "";
      std::string n = Normalize(abs);
      if (!Under(n, kVirtual)) return "";
      if (!dots) abs = KeepTrailing(abs, n);  // `//cvmfs/x`, `/./cvmfs/x`: only doubled slashes and `.`, the same path
    }
    if (abs.find("/..") != std::string::npos) {
      std::string n = Normalize(abs);
      if (!Under(n, kVirtual)) {
        // Climbs out of /cvmfs: the kernel would climb out of the shadow tree instead.
        *rewrite = n;
        return "";
      }
    }
    // With `..` the kernel must not climb out of a revision directory into its siblings: give it the lexical
    // form (a `..` after a symlink is then taken lexically: a rare case, and only for the path's last part).
    if (!relative) *rewrite = ToShadow(abs.find("/..") == std::string::npos ? abs : Normalize(abs));
    return abs;
  }

  // The /cvmfs path of a path in a revision tree or this session's /cvmfs; "" for the shadow area's other names
  // (markers and fill temporaries in `<rev>.state`, the hidden /.cvmfs beside a tree), which stay as they are.
  std::string ShadowPathVirtual(const std::string& real) const {
    std::string n = Normalize(real);
    std::string v;
    std::string revs = o_.base + "/rev/";
    if (n.compare(0, revs.size(), revs) == 0) {
      size_t end = n.find('/', revs.size());
      std::string dir = n.substr(revs.size(), end == std::string::npos ? std::string::npos : end - revs.size());
      auto endsWith = [&](const char* x) { size_t l = strlen(x); return dir.size() >= l && dir.compare(dir.size() - l, l, x) == 0; };
      if (endsWith(".state") || endsWith(".hidden")) return "";
    }
    v = Virtualize(n);
    return v.empty() ? v : KeepTrailing(real, v);
  }

  // `n`, the normalized form of `p`, with the trailing `/` that `p` had (or the one its trailing `/.` stands for):
  // the kernel takes a path ending so as one that must be a directory (ENOTDIR for a file, a symlink followed).
  static std::string KeepTrailing(const std::string& p, const std::string& n) {
    bool slash = (!p.empty() && p.back() == '/') || (p.size() >= 2 && p.compare(p.size() - 2, 2, "/.") == 0) || p == ".";
    return slash && n != "/" ? n + "/" : n;
  }

  // Whether a real path is in the shadow area (revision trees, their markers, this session's /cvmfs). The other
  // sessions' directories (base/sessions) are left out: a nested `ucvmfs exec` must be able to make its own (and
  // then say that ptrace is not allowed), as when they lived outside the shadow area.
  bool InShadowArea(const std::string& real) const {
    return (Under(real, o_.base) && !Under(real, o_.base + "/sessions")) || Under(real, o_.shadow);
  }

  // A path the tracer can open for the tracee's (dirfd, s): its /proc/self, cwd and dirfd are not the tracer's.
  static std::string TraceePath(pid_t pid, int dirfd, const std::string& s) {
    std::string p = "/proc/" + std::to_string(pid);
    if (s.empty()) return p + (dirfd == AT_FDCWD ? "/cwd" : "/fd/" + std::to_string(dirfd));
    if (s[0] == '/') {
      if (s == "/proc/self" || s.compare(0, 11, "/proc/self/") == 0) return p + s.substr(10);
      // /dev/fd and /dev/std* are symlinks to /proc/self/...: the tracer would follow them to its own descriptors.
      if (s == "/dev/fd" || s.compare(0, 8, "/dev/fd/") == 0) return p + "/fd" + s.substr(7);
      static const char* const kStd[] = {"/dev/stdin", "/dev/stdout", "/dev/stderr"};
      for (int i = 0; i < 3; i++) {
        size_t n = strlen(kStd[i]);
        if (s.compare(0, n, kStd[i]) == 0 && (s.size() == n || s[n] == '/')) return p + "/fd/" + std::to_string(i) + s.substr(n);
      }
      if (s == "/proc/thread-self" || s.compare(0, 18, "/proc/thread-self/") == 0) return p + "/task/" + std::to_string(pid) + s.substr(17);
      return s;
    }
    return p + (dirfd == AT_FDCWD ? "/cwd/" : "/fd/" + std::to_string(dirfd) + "/") + s;
  }

  // Where a change the tracee asks for by (dirfd, s) would land, resolved by the kernel for the tracer as it will
  // be for the tracee (same mount namespace); a name that does not exist yet by its directory. "" when unknown.
  std::string Lands(pid_t pid, int dirfd, const std::string& s, bool follow) {
    std::string p = TraceePath(pid, dirfd, s);
    int fd = open(p.c_str(), O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    if (fd < 0) {
      if (errno != ENOENT || s.empty()) return "";
      size_t slash = p.find_last_of('/');
      std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
      fd = open(dir.c_str(), O_PATH | O_CLOEXEC | O_DIRECTORY);
      if (fd < 0) return "";
    }
    std::string real = ProcLink(getpid(), "fd/" + std::to_string(fd));
    close(fd);
    return real;
  }

  // Whether a change the tracee asks for through a path outside /cvmfs would land in the shadow area (a
  // /proc/self/fd/N link, a shadow path read from /proc/self/maps, a symlink to one).
  bool TargetsShadow(pid_t pid, int dirfd, const std::string& s, bool follow) {
    if (!SameNamespace(pid)) return ContainerTargetsShadow(pid, dirfd, s, follow);
    return InShadowArea(Lands(pid, dirfd, s, follow));
  }

  // Whether a change by a /cvmfs path lands outside the shadow area, known for certain: a symlink of the repository
  // leads out of /cvmfs (`links/out -> /tmp/x/f`, `links/dir -> /tmp/x`). The kernel then makes the call where the
  // link leads, as on a mount. Judged on the path the kernel gets, once the library made the names on the way.
  bool LeadsOut(pid_t pid, const Regs& r, const CallInfo* c, const std::string& s, const std::string& rw, bool follow) {
    if (!SameNamespace(pid)) return false;
    int dirfd = c->dirfd < 0 ? AT_FDCWD : (int)(int32_t)r.Arg(c->dirfd);
    std::string real = Lands(pid, rw.empty() ? dirfd : AT_FDCWD, rw.empty() ? s : rw, follow);
    return !real.empty() && real[0] == '/' && !InShadowArea(real);
  }

  static long LMode(const char* p) {
    struct stat st;
    return lstat(p, &st) == 0 ? (long)st.st_mode : -errno;
  }
  static long RdLink(const char* p, char* buf, size_t n) {
    ssize_t m = readlink(p, buf, n);
    return m < 0 ? -errno : (long)m;
  }

  // The /cvmfs path a path outside /cvmfs reaches through a symlink into /cvmfs, or "". Paid by calls the
  // kernel could not answer (one access() by the tracer first; the walk only when that fails with ENOENT).
  std::string ThroughLink(pid_t pid, int dirfd, const std::string& s, bool follow) {
    // In a container's own mount namespace the tracer would resolve the path in the wrong tree: left alone.
    if (s.empty() || s.compare(0, 6, "/proc/") == 0 || !SameNamespace(pid)) return "";
    std::string tp = TraceePath(pid, dirfd, s);
    if (faccessat(AT_FDCWD, tp.c_str(), F_OK, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) return "";
    std::string abs = s;
    if (s[0] != '/') {
      std::string base = ProcLink(pid, dirfd == AT_FDCWD ? "cwd" : "fd/" + std::to_string(dirfd));
      if (base.empty() || base[0] != '/') return "";
      abs = base + "/" + s;
    }
    char out[PATH_MAX + 1];
    return ucvmfs_link_into_root(abs.c_str(), follow, out, sizeof out, LMode, RdLink) ? std::string(out) : "";
  }

  // Whether a modifying call acts on the target of a final symlink (else on the link or the name itself).
  static bool FollowsLast(long nr, const Regs& r) {
    switch (nr) {
#ifdef __NR_open
      case __NR_chmod: case __NR_chown: case __NR_utime: case __NR_utimes: case __NR_futimesat: case __NR_creat:
#endif
      // A mode cannot be set on a symlink, so the chmod family always acts on the target (fchmodat takes no flags).
      case __NR_truncate: case __NR_setxattr: case __NR_removexattr: case __NR_fchmodat: case __NR_fchmodat2:
        return true;
      case __NR_utimensat:
        return !(r.Arg(3) & AT_SYMLINK_NOFOLLOW);
      case __NR_fchownat:
        return !(r.Arg(4) & AT_SYMLINK_NOFOLLOW);
      case __NR_linkat:
        return r.Arg(4) & AT_SYMLINK_FOLLOW;
      default:
        return false;
    }
  }

  // A readlink whose answer the tracer shortens (a shadow path shown as its /cvmfs path, a loader as the program):
  // the buffer's bytes before the call, so that those past the shorter answer are given back as they were (a
  // program that zeroes its buffer and ignores the length must not find the rest of the shadow path there).
  Pending KeepBuffer(pid_t pid, Pending p) {
    size_t n = p.size < (uint64_t)PATH_MAX ? (size_t)p.size : (size_t)PATH_MAX;
    p.saved.assign(n, '\0');
    if (n == 0 || !ReadMem(pid, p.buf, &p.saved[0], n)) p.saved.clear();
    return p;
  }

  // Puts back what the kernel wrote past the `m` bytes of the answer, up to the `written` bytes it wrote.
  void RestoreTail(pid_t pid, const Pending& p, size_t m, size_t written) {
    if (written > p.saved.size()) written = p.saved.size();
    if (written > m) WriteMem(pid, p.buf + m, p.saved.data() + m, written - m);
  }

  // Writes `data` below the tracee's stack pointer (past the x86-64 red zone) and returns its address.
  uint64_t Scratch(pid_t pid, const Regs& r, const std::string& data, uint64_t below = 0) {
    uint64_t top = below ? below : r.Sp() - 256;
    uint64_t addr = (top - data.size()) & ~(uint64_t)15;
    return WriteMem(pid, addr, data.data(), data.size()) ? addr : 0;
  }

  // A name the tracer itself can readlink for the tracee's argument: its own /proc/self is not the tracee's.
  // For `/proc/<n>/exe` of a process the tracer started through its loader under /cvmfs (`<loader> --argv0 <argv0>
  // <program> ...`, as exec plans run it, the exe being the loader in the shadow tree): the program's path. "" else.
  std::string ShownExe(const std::string& link) {
    if (link.compare(0, 6, "/proc/") != 0 || link.size() < 11 || link.compare(link.size() - 4, 4, "/exe") != 0) return "";
    std::string dir = link.substr(0, link.size() - 4);
    if (dir.find_first_not_of("0123456789", 6) != std::string::npos) return "";
    char exe[PATH_MAX + 1];
    ssize_t n = readlink(link.c_str(), exe, PATH_MAX);
    if (n <= 0 || !InShadowArea(std::string(exe, (size_t)n))) return "";
    int fd = open((dir + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    char buf[3 * PATH_MAX];
    ssize_t m = read(fd, buf, sizeof buf);
    close(fd);
    if (m <= 0) return "";
    std::vector<std::string> args;
    for (ssize_t i = 0, start = 0; i < m && args.size() < 4; i++) {
      if (buf[i] == 0) {
        args.emplace_back(buf + start, (size_t)(i - start));
        start = i + 1;
      }
    }
    if (args.size() < 4 || args[1] != "--argv0" || !Under(Normalize(args[0]), kVirtual) || args[3].empty() || args[3][0] != '/') return "";
    return args[3];
  }

  std::string LinkName(pid_t pid, const Regs& r, const CallInfo* c, const std::string& s) {
    std::string p = std::to_string(pid);
    if (s.compare(0, 11, "/proc/self/") == 0) return "/proc/" + p + s.substr(10);
    if (s.compare(0, 18, "/proc/thread-self/") == 0) return "/proc/" + p + s.substr(17);
    // /dev/fd/N and /dev/std* are the job's descriptors, not the tracer's.
    if (s[0] == '/') return Under(s, kVirtual) ? ToShadow(s) : TraceePath(pid, AT_FDCWD, s);
    int dirfd = c->dirfd < 0 ? AT_FDCWD : (int)(int32_t)r.Arg(c->dirfd);
    return "/proc/" + p + (dirfd == AT_FDCWD ? "/cwd/" : "/fd/" + std::to_string(dirfd) + "/") + s;
  }

  // The error the kernel gives for a path argument the tracer could not read: unmapped, or longer than PATH_MAX.
  static long UnreadableError(pid_t pid, uint64_t addr) {
    char c;
    return addr != 0 && ReadMem(pid, addr, &c, 1) ? ENAMETOOLONG : EFAULT;
  }

  // stat, lstat, newfstatat, statx of a /cvmfs path: the buffer argument, or -1 for other calls.
  static int StatBuffer(long nr) {
#ifdef __NR_stat
    if (nr == __NR_stat || nr == __NR_lstat) return 1;
#endif
    return nr == __NR_newfstatat ? 2 : nr == __NR_statx ? 4 : -1;
  }

  // Whether a process's system calls may be answered by the tracer's own calls: what a path call may see is
  // decided by the caller's credentials, so the tracer answers only for a process that has its own. A tracer
  // that is not root has no other user's processes in the job (no_new_privs: no setuid program changes them); a
  // root tracer checks a process's fsuid and DAC capabilities (a job that switches user, issue 18), kept until the
  // process changes its credentials (the seccomp filter stops set*id, setgroups and capset: Kind::Creds) or execs.
  bool OwnCredentials(pid_t pid) {
    if (!rootTracer_) return true;
    auto it = creds_.find(pid);
    if (it != creds_.end()) return it->second;
    bool own = false;
    unsigned long fsuid = ~0ul;
    unsigned long long cap = 0;
    if (ProcStatus(pid, &fsuid, &cap)) own = fsuid == 0 && (cap & kDacCaps) == (ownCaps_ & kDacCaps);
    creds_[pid] = own;
    return own;
  }

  static constexpr unsigned long long kDacCaps = 1ull << 1 | 1ull << 2;  // CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH

  // A thread's /proc status into `buf` (NUL-terminated); false when it cannot be read.
  static bool ReadStatus(pid_t pid, char* buf, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = 0;
    return true;
  }

  // The fsuid and effective capabilities of a thread (its /proc status).
  static bool ProcStatus(pid_t pid, unsigned long* fsuid, unsigned long long* cap) {
    char buf[4096];
    if (!ReadStatus(pid, buf, sizeof buf)) return false;
    const char* u = strstr(buf, "\nUid:");
    const char* c = strstr(buf, "\nCapEff:");
    unsigned long ids[4];
    if (!u || !c || sscanf(u + 5, "%lu %lu %lu %lu", &ids[0], &ids[1], &ids[2], &ids[3]) != 4 || sscanf(c + 8, "%llx", cap) != 1) return false;
    *fsuid = ids[3];
    return true;
  }

  // access() of a special file of the tree (see the W_OK case of OnEntry), as a mount answers it for the user whose
  // every entry is (the stored mode's owner bits; root: all but executing without an execute bit). 0 or EACCES.
  long SpecialAccess(const std::string& shadow, unsigned disk, int mode) {
    unsigned stored = disk & 07777;
    if (ucvmfs_mode_marked(disk)) {
      char v[8];
      ssize_t n = getxattr(shadow.c_str(), UCVMFS_MODE_XATTR, v, sizeof v);
      stored = ucvmfs_stored_mode(disk, v, n) & 07777;
    }
    if (rootTracer_) return (mode & X_OK) && !(stored & 0111) ? EACCES : 0;
    if (((mode & R_OK) && !(stored & S_IRUSR)) || ((mode & W_OK) && !(stored & S_IWUSR)) || ((mode & X_OK) && !(stored & S_IXUSR))) return EACCES;
    return 0;
  }

  // Whether a process may execute `file`, a program the tracer starts through its interpreter or loader (where the
  // kernel, running it itself, would have checked its execute permission first: a `#!` script of mode 0644 is
  // EACCES). The tracer's own check for a process with its credentials; else the mode against the process's fsuid,
  // fsgid and groups, as the kernel checks them.
  bool MayExecute(pid_t pid, const std::string& file) {
    if (OwnCredentials(pid)) return faccessat(AT_FDCWD, file.c_str(), X_OK, AT_EACCESS) == 0;
    struct stat st;
    if (stat(file.c_str(), &st) != 0) return false;
    char buf[8192];
    if (!ReadStatus(pid, buf, sizeof buf)) return false;
    unsigned long u[4], g[4];
    const char* us = strstr(buf, "\nUid:");
    const char* gs = strstr(buf, "\nGid:");
    if (!us || !gs || sscanf(us + 5, "%lu %lu %lu %lu", &u[0], &u[1], &u[2], &u[3]) != 4 || sscanf(gs + 5, "%lu %lu %lu %lu", &g[0], &g[1], &g[2], &g[3]) != 4) return false;
    if (u[3] == 0) return (st.st_mode & 0111) != 0;
    if (u[3] == st.st_uid) return (st.st_mode & S_IXUSR) != 0;
    bool member = g[3] == st.st_gid;
    if (const char* gr = strstr(buf, "\nGroups:")) {
      for (const char* q = gr + 8; !member && *q && *q != '\n';) {
        char* end;
        unsigned long id = strtoul(q, &end, 10);
        if (end == q) break;
        member = id == st.st_gid;
        q = end;
      }
    }
    return (st.st_mode & (member ? S_IXGRP : S_IXOTH)) != 0;
  }

  // Writes a system call's result into the tracee's memory only where the tracee could write it itself (no ptrace
  // pokes: the kernel's copy_to_user gives EFAULT on a read-only page, and so must the tracer's answer).
  static bool WriteAsTracee(pid_t pid, uint64_t addr, const void* src, size_t n) {
    iovec local{(void*)src, n}, remote{(void*)addr, n};
    return addr != 0 && process_vm_writev(pid, &local, 1, &remote, 1, 0) == (ssize_t)n;
  }

  // The kernel's struct stat for newfstatat (and x86-64's stat and lstat, the same `newstat` layout) is the C
  // library's on both architectures; struct statx is the kernel's everywhere.
#if defined(__x86_64__)
  static_assert(sizeof(struct stat) == 144, "x86-64 struct stat");
#else
  static_assert(sizeof(struct stat) == 128, "asm-generic struct stat");
#endif
  static_assert(sizeof(struct statx) == 256, "struct statx");

  // stat, lstat, newfstatat and statx of a /cvmfs path, and listxattr: what stored modes and the genuine client's
  // st_blocks and times need (addon/modes.h), decided by the tracer's own look at the shadow entry. An entry without
  // S_ISVTX on disk (lib/connector/modes.ts) whose blocks and times are already right needs nothing: the call runs as
  // it is. The others (nearly all: a shadow entry's ctime is when it was made) are answered here, at the call's entry, so
  // that showing stored modes costs no second stop: the tracer makes the same call (same flags, statx's mask) on
  // what the kernel would look up, puts the stored mode in, writes the result into the tracee's buffer and skips
  // the call with 0. When that cannot be exact, the call runs and its exit is patched instead (PatchAtExit): a
  // buffer the tracee cannot write (the kernel's EFAULT), a process with other credentials than the tracer's.
  // An error of the tracer's own call lets the call run: the kernel gives the error. listxattr's exit is seen
  // only for an entry that has the stored-mode attribute (unusual modes) and a call with a buffer.
  // Returns whether the exit must be seen; *answered: the call is answered (its registers are set to skip it).
  bool StoredMode(pid_t pid, Regs& r, const CallInfo* c, long nr, const std::string& s, const std::string& rw, bool* answered) {
    *answered = false;
    int buf = StatBuffer(nr);
    bool list = nr == __NR_listxattr || nr == __NR_llistxattr;
    if (buf < 0 && !list) return false;
    if (list && r.Arg(2) == 0) return false;  // a size query keeps the kernel's answer (see PatchAtExit)
    // Where the kernel will look: the rewritten path, or the relative one from the tracee's shadow directory. In
    // another mount namespace (a container's `/oldroot/cvmfs/...`) the entry is opened as that process resolves
    // the path, and the tracer's calls name the descriptor.
    int dirfd = c->dirfd < 0 ? AT_FDCWD : (int)(int32_t)r.Arg(c->dirfd);
    int fd = -1;
    std::string real;
    if (SameNamespace(pid)) {
      real = !rw.empty() ? rw : TraceePath(pid, dirfd, s);
    } else {
      fd = OpenAsTracee(pid, rw.empty() ? dirfd : AT_FDCWD, rw.empty() ? s : rw, !nofollow_);
      if (fd < 0) return false;
      real = "/proc/self/fd/" + std::to_string(fd);
    }
    struct Closer {
      int fd;
      ~Closer() {
        if (fd >= 0) close(fd);
      }
    } closer{fd};
    const char* at = fd >= 0 ? "" : real.c_str();
    int atFd = fd >= 0 ? fd : AT_FDCWD;
    long empty = fd >= 0 ? AT_EMPTY_PATH : 0;
    auto getx = nofollow_ && fd < 0 ? lgetxattr : getxattr;
    if (list) {
      if (getx(real.c_str(), UCVMFS_MODE_XATTR, nullptr, 0) < 0) return false;
      pending_[pid] = Pending{Pending::HideModeXattr, 0, r.Arg(1), r.Arg(2), false, {}};
      return true;
    }
    bool statx = nr == __NR_statx;
    struct stat st;
    struct statx stx;
    unsigned mode;
    if (statx) {
      // With the mtime whatever the mask: a kernel that fills the atime unasked may leave the mtime out, and the
      // genuine client's atime is the mtime.
      if (syscall(SYS_statx, atFd, at, (long)(int)r.Arg(2) | empty, (unsigned)r.Arg(3) | STATX_MTIME, &stx) != 0) return false;
      mode = stx.stx_mode;
    } else {
      long flags = nr == __NR_newfstatat ? (long)(int)r.Arg(3) : nofollow_ ? AT_SYMLINK_NOFOLLOW : 0;
      if (syscall(SYS_newfstatat, atFd, at, &st, flags | empty) != 0) return false;
      mode = st.st_mode;
    }
    bool marked = ucvmfs_mode_marked(mode);
    bool blocksRight = statx ? !(stx.stx_mask & STATX_BLOCKS) || stx.stx_blocks == ucvmfs_genuine_blocks((long long)stx.stx_size)
                             : (unsigned long long)st.st_blocks == ucvmfs_genuine_blocks(st.st_size);
    bool timesRight = statx ? ucvmfs_genuine_statx_times_shown(&stx) : ucvmfs_genuine_times_shown(&st);
    if (!marked && blocksRight && timesRight) return false;
    unsigned stored = mode & 07777;
    if (marked) {
      char v[8];
      ssize_t n = getx(real.c_str(), UCVMFS_MODE_XATTR, v, sizeof v);
      stored = ucvmfs_stored_mode(mode, v, n) & 07777;
    }
    if (OwnCredentials(pid)) {
      bool wrote;
      if (statx) {
        stx.stx_mode = (uint16_t)((stx.stx_mode & S_IFMT) | stored);
        if (stx.stx_mask & STATX_BLOCKS) stx.stx_blocks = ucvmfs_genuine_blocks((long long)stx.stx_size);
        ucvmfs_genuine_statx_times(&stx);
        wrote = WriteAsTracee(pid, r.Arg(buf), &stx, sizeof stx);
      } else {
        st.st_mode = (st.st_mode & S_IFMT) | stored;
        st.st_blocks = (blkcnt_t)ucvmfs_genuine_blocks(st.st_size);
        ucvmfs_genuine_times(&st);
        wrote = WriteAsTracee(pid, r.Arg(buf), &st, sizeof st);
      }
      if (wrote) {
        if (!r.SkipCall()) return false;
        r.SetRet(0);
        *answered = true;
        return false;
      }
    }
    Pending p{Pending::PatchMode, 0, r.Arg(buf), 0, false, {}};
    p.mode = stored;
    p.statx = statx;
    if (statx) {
      // The exit makes the times from the mtime (the caller stores the register; the exit sets it back).
      p.mask = r.Arg(3);
      r.SetArg(3, p.mask | STATX_MTIME);
    }
    pending_[pid] = p;
    return true;
  }

  // The exit of a call StoredMode could not answer: the stored mode (type bits kept), blocks and times into the tracee's
  // stat buffer, or
  // the stored-mode attribute out of its listxattr answer.
  void PatchAtExit(pid_t pid, Regs& r, const Pending& p) {
    long ret = r.Ret();
    if (p.what == Pending::HideModeXattr) {
      if (ret <= 0) return;
      // A size query keeps the kernel's answer: the buffer then sized holds the whole list, the hidden name
      // included, before it is taken out (a smaller size would make the next call fail with ERANGE).
      if (p.size == 0) return;
      std::string list((size_t)ret, '\0');
      if (!ReadMem(pid, p.buf, &list[0], list.size())) return;
      long n = ucvmfs_hide_mode_xattr(&list[0], ret);
      if (n != ret && WriteMem(pid, p.buf, list.data(), (size_t)n)) {
        r.SetRet(n);
        r.Store();
      }
      return;
    }
    if (p.statx) {
      // Kept as the tracee passed it: the kernel leaves argument registers unchanged, and code may rely on that.
      r.SetArg(3, p.mask);
      r.Store();
    }
    if (ret != 0) return;
    if (p.statx) {
      struct statx x;
      if (!ReadMem(pid, p.buf, &x, sizeof x)) return;
      if (x.stx_mask & STATX_MODE) x.stx_mode = (uint16_t)((x.stx_mode & S_IFMT) | p.mode);
      if (x.stx_mask & STATX_BLOCKS) x.stx_blocks = ucvmfs_genuine_blocks((long long)x.stx_size);
      ucvmfs_genuine_statx_times(&x);
      WriteMem(pid, p.buf, &x, sizeof x);
      return;
    }
    struct stat st;
    if (!ReadMem(pid, p.buf, &st, sizeof st)) return;
    st.st_mode = (st.st_mode & S_IFMT) | p.mode;
    st.st_blocks = (blkcnt_t)ucvmfs_genuine_blocks(st.st_size);
    ucvmfs_genuine_times(&st);
    WriteMem(pid, p.buf, &st, sizeof st);
  }

  bool FailNow(pid_t pid, Regs& r, long err) {
    Fail(pid, r, err);
    r.Store();
    return true;
  }

  void Fail(pid_t pid, Regs& r, long err) {
    r.SkipCall();
    pending_[pid] = Pending{Pending::SetErrno, err, 0, 0, false, {}};
  }

  // A seccomp stop: decide, maybe rewrite, and say whether the exit must be seen.
  bool OnEntry(pid_t pid) {
    Regs r;
    if (!r.Load(pid)) return false;
    long nr = r.Nr();
    if (debug_) byNr_[nr]++;
    if (PtraceEmu::Emulated(nr)) return emu_.OnCall(pid, r);
    const CallInfo* c = nullptr;
    for (const CallInfo& x : kCalls)
      if (x.nr == nr) c = &x;
    if (!c) return false;
    if (c->kind == Kind::Open && c->flags >= 0 && (r.Arg(c->flags) & O_PATH) && UCVMFS_IS_TMPFILE(r.Arg(c->flags))) {
      // Since Linux 5.6 O_PATH makes the kernel ignore O_TMPFILE; before, that pair made a file, in the shadow tree
      // too. Every kernel gets the newer meaning. (openat2 refuses the pair itself.)
      // Only O_TMPFILE's own bit: the kernel keeps O_DIRECTORY for O_PATH, and so the open stays `O_PATH|O_DIRECTORY`.
      r.SetArg(c->flags, r.Arg(c->flags) & ~(uint64_t)UCVMFS_TMPFILE_BIT);
      r.Store();
    }
    if (c->kind == Kind::Getcwd) {
      if (Virtualize(ProcLink(pid, "cwd")).empty()) return false;
      pending_[pid] = Pending{Pending::TranslateBuf, 0, r.Arg(0), r.Arg(1), true, {}};
      return true;
    }
    if (c->kind == Kind::FdWrite) {
      std::string target = ProcLink(pid, "fd/" + std::to_string((int)(int32_t)r.Arg(0)));
      if (!InShadowArea(target) && (SameNamespace(pid) || !ContainerTargetsShadow(pid, (int)(int32_t)r.Arg(0), "", true))) return false;
      Fail(pid, r, EROFS);
      r.Store();
      return true;
    }
    if (c->kind == Kind::Mount) return OnMount(pid, r, nr);
    if (c->kind == Kind::Creds) {
      creds_.erase(pid);  // judged again at its next stat (the change is made when this stop ends)
      return false;
    }
    // Calls with two paths (rename, link, symlink): the second one decides EROFS as well.
    std::string s, rw;
    if (c->path2 >= 0) {
      if (!ReadString(pid, r.Arg(c->path2), &s)) return FailNow(pid, r, UnreadableError(pid, r.Arg(c->path2)));
      int dirfd2 = c->dirfd2 < 0 ? AT_FDCWD : (int)(int32_t)r.Arg(c->dirfd2);
      std::string v2 = Classify(pid, r, c->dirfd2, s, &rw);
      if (!v2.empty() && c->path < 0 && MountedOver(pid, r, c->dirfd2, s, rw)) {
        // symlink into a file system a container mounted over the shadow tree (runc's /dev/ptmx).
        uint64_t a = rw.empty() ? r.Arg(c->path2) : Scratch(pid, r, rw + '\0');
        if (!a) return FailNow(pid, r, EIO);
        r.SetArg(c->path2, a);
        r.Store();
        return false;
      }
      if (!v2.empty()) {
        std::string s1, rw1;
        if (c->path >= 0 && !ReadString(pid, r.Arg(c->path), &s1)) return FailNow(pid, r, UnreadableError(pid, r.Arg(c->path)));
        std::string v1 = c->path >= 0 ? Classify(pid, r, c->dirfd, s1, &rw1) : "";
        return FailNow(pid, r, PairError(pid, r, c, nr, s1, v1, s, v2));
      }
      if (TargetsShadow(pid, dirfd2, s, false)) return FailNow(pid, r, EROFS);
      // A destination through a symlink into /cvmfs (rename, link and symlink are rare: the check is cheap here).
      if (rw.empty() && !ThroughLink(pid, dirfd2, s, false).empty()) return FailNow(pid, r, EROFS);
    }
    if (c->path < 0) return false;
    if (!ReadString(pid, r.Arg(c->path), &s)) {
      // utimensat(fd, NULL, ...) is futimens: the fd decides.
      if (nr == __NR_utimensat && r.Arg(c->path) == 0) {
        if (!InShadowArea(ProcLink(pid, "fd/" + std::to_string((int)(int32_t)r.Arg(0))))) return false;
        return FailNow(pid, r, EROFS);
      }
      // What the kernel would answer, without letting it read a string the tracer could not.
      return FailNow(pid, r, UnreadableError(pid, r.Arg(c->path)));
    }
    if (faultTracer_ && Under(s, kVirtual)) throw std::runtime_error("injected fault (UCVMFS_TEST_FAULT=tracer)");
    std::string virt = Classify(pid, r, c->dirfd, s, &rw);
    if (c->kind == Kind::Exec && virt.empty() && s.compare(0, 6, "/proc/") == 0) {
      // Re-executing itself through /proc/self/exe, a program started through its loader would start the loader.
      std::string shown = ShownExe(LinkName(pid, r, c, s));
      if (!shown.empty()) {
        s = shown;
        virt = Classify(pid, r, -1, s, &rw);
      }
    }
    nofollow_ = c->kind == Kind::Readlink || nr == __NR_lgetxattr || nr == __NR_llistxattr ||
                (nr == __NR_newfstatat && (r.Arg(3) & AT_SYMLINK_NOFOLLOW)) || (nr == __NR_statx && (r.Arg(2) & AT_SYMLINK_NOFOLLOW));
#ifdef __NR_lstat
    nofollow_ = nofollow_ || nr == __NR_lstat;
#endif
    if (virt.empty() && rw.empty() && c->kind != Kind::Getcwd) {
      // Outside /cvmfs, yet perhaps through a symlink into it (~/sw -> /cvmfs/<fqrn>/sw): the kernel would say
      // ENOENT. Then the call is made on the /cvmfs path instead.
      bool follow = c->kind == Kind::Write ? FollowsLast(nr, r) : !nofollow_;
      if (c->kind == Kind::Open) {
        uint64_t flags = 0;
        if (c->flags >= 0) flags = r.Arg(c->flags);
        else ReadMem(pid, r.Arg(2), &flags, sizeof flags);
        follow = !(flags & O_NOFOLLOW) && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
      }
      std::string v = ThroughLink(pid, c->dirfd < 0 ? AT_FDCWD : (int)(int32_t)r.Arg(c->dirfd), s, follow);
      if (!v.empty()) {
        s = v;
        virt = Classify(pid, r, -1, s, &rw);
      }
    }
    if (!virt.empty() && !SeesShadow(pid)) return FailNow(pid, r, ENOENT);
    if (virt.empty() && rw.empty()) virt = ViaHostRoot(pid, s, &rw);
    if (virt.empty() && (c->kind == Kind::Write || c->kind == Kind::Open)) {
      // A change through a path outside /cvmfs that leads into the shadow tree: as read-only as /cvmfs itself.
      bool writes = c->kind == Kind::Write;
      bool follow = FollowsLast(nr, r);
      if (c->kind == Kind::Open) {
        uint64_t flags = 0;
        if (c->flags >= 0) flags = r.Arg(c->flags);
        else ReadMem(pid, r.Arg(2), &flags, sizeof flags);
        writes = ChangesFile(flags);
        follow = !(flags & O_NOFOLLOW) && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
      }
      int dirfd = c->dirfd < 0 ? AT_FDCWD : (int)(int32_t)r.Arg(c->dirfd);
      // linkat(fd, "", ..., AT_EMPTY_PATH) names the descriptor's file: a /cvmfs file given a name elsewhere is
      // EXDEV, as between two mounts (else that name would open the shared shadow inode for writing).
      if (nr == __NR_linkat && s.empty() && (r.Arg(4) & AT_EMPTY_PATH) && TargetsShadow(pid, dirfd, s, true)) return FailNow(pid, r, EXDEV);
      // Judged on what the kernel will get: a path rewritten absolute (`/cvmfs/../<elsewhere>`) names its own place.
      if (writes && TargetsShadow(pid, rw.empty() ? dirfd : AT_FDCWD, rw.empty() ? s : rw, follow)) return FailNow(pid, r, EROFS);
    }
    if (virt.empty() && c->kind == Kind::Readlink && s.compare(0, 6, "/proc/") == 0) {
      // A program the tracer started through its loader under /cvmfs: its exe is the loader, where the kernel would
      // show the program (the JVM finds its home from it).
      std::string shown = ShownExe(LinkName(pid, r, c, s));
      if (!shown.empty()) {
        pending_[pid] = KeepBuffer(pid, Pending{Pending::ShowExe, 0, r.Arg(c->path + 1), r.Arg(c->path + 2), false, {}, {}, shown});
        return true;
      }
    }
    if (virt.empty() && c->kind == Kind::Readlink && (s.compare(0, 6, "/proc/") == 0 || s.compare(0, 5, "/dev/") == 0)) {
      // /proc/<pid>/cwd, exe, fd/N, ... reveal shadow paths: translate the answer.
      pending_[pid] = KeepBuffer(pid, Pending{Pending::TranslateBuf, 0, r.Arg(c->path + 1), r.Arg(c->path + 2), false, LinkName(pid, r, c, s)});
      return true;
    }
    if (virt.empty() && rw.empty() && c->kind == Kind::Exec && SameNamespace(pid)) {
      // A program outside /cvmfs whose `#!` interpreter or loader (PT_INTERP) lies under /cvmfs: the kernel would
      // look that up on the host. Planned as a /cvmfs program is (exec-plan.ts); only a path named from the cwd
      // or absolute, as the plan hands the program's path on as given.
      int dirfd = c->dirfd < 0 ? AT_FDCWD : (int)(int32_t)r.Arg(c->dirfd);
      std::string real = TraceePath(pid, dirfd, s);
      if (!s.empty() && (s[0] == '/' || dirfd == AT_FDCWD) && NamesRootInterpreter(real)) {
        std::vector<std::string> in = AskJs('y', real);
        if (Failed(in)) return FailNow(pid, r, EIO);
        if (!in.empty() && !MayExecute(pid, real)) return FailNow(pid, r, EACCES);
        if (!in.empty()) return RewriteExec(pid, r, c, s, s, in);
      }
    }
    if (virt.empty()) {
      if (rw.empty()) return false;
      uint64_t a = Scratch(pid, r, rw + '\0');
      if (!a) return FailNow(pid, r, EIO);
      r.SetArg(c->path, a);
      r.Store();
      return false;
    }
    bool needExit = false;
    switch (c->kind) {
      case Kind::Write: {
        if (MountedOver(pid, r, c->dirfd, s, rw)) break;
        if (c->path2 >= 0) {
          // rename or link out of /cvmfs (a path into it went the way above).
          std::string s2;
          ReadString(pid, r.Arg(c->path2), &s2);
          return FailNow(pid, r, PairError(pid, r, c, nr, s, virt, s2, ""));
        }
        std::string shadow = Prepared(virt);
        if (shadow.empty()) return FailNow(pid, r, EIO);
        if (LeadsOut(pid, r, c, s, rw, FollowsLast(nr, r))) break;
        return FailNow(pid, r, WriteError(nr, r, shadow));
      }
      case Kind::Open: {
        uint64_t flags = 0;
        if (c->flags >= 0) flags = r.Arg(c->flags);
        else ReadMem(pid, r.Arg(2), &flags, sizeof flags);  // openat2: struct open_how starts with flags
        if (ChangesFile(flags)) {
          if (MountedOver(pid, r, c->dirfd, s, rw)) break;
          bool reads = !((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC));  // O_CREAT alone
          if (Failed(Ask(reads ? 'o' : 'l', virt))) return FailNow(pid, r, EIO);
          if (LeadsOut(pid, r, c, s, rw, !(flags & O_NOFOLLOW) && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL))) break;
          if (long e = OpenError(ToShadow(Normalize(virt)), flags)) return FailNow(pid, r, e);
          // O_CREAT of a name that is there opens it for reading, as on a read-only mount. The kernel gets the
          // call without O_CREAT, so that it can never make a name in the shadow tree (root may write there):
          // openat2's struct open_how is the program's memory, so a copy goes below the stack, past the room
          // the rewritten path takes.
          if (c->flags >= 0) {
            r.SetArg(c->flags, flags & ~(uint64_t)O_CREAT);
          } else {
            struct open_how how {};
            if (r.Arg(3) < sizeof how) return FailNow(pid, r, EINVAL);
            if (!ReadMem(pid, r.Arg(2), &how, sizeof how)) return FailNow(pid, r, EFAULT);
            how.flags &= ~(uint64_t)O_CREAT;
            how.mode = 0;  // openat2 refuses a mode without O_CREAT
            uint64_t a = Scratch(pid, r, std::string((const char*)&how, sizeof how), r.Sp() - 256 - PATH_MAX - 64);
            if (!a) return FailNow(pid, r, EIO);
            r.SetArg(2, a);
            r.SetArg(3, sizeof how);
          }
          break;
        }
        if (Failed(Ask('o', virt))) return FailNow(pid, r, EIO);
        break;
      }
      case Kind::Exec: {
        std::vector<std::string> in = Ask('x', virt);
        if (Failed(in)) return FailNow(pid, r, EIO);
        if (!in.empty() && !MayExecute(pid, ToShadow(Normalize(virt)))) return FailNow(pid, r, EACCES);
        if (!in.empty()) {
          // A script's interpreter gets the path as the process named it, as from the kernel; one relative to a
          // directory descriptor (the kernel's /dev/fd/N/..., unusable once that closes) gets the /cvmfs path.
          bool named = !s.empty() && (s[0] == '/' || c->dirfd < 0 || (int)(int32_t)r.Arg(c->dirfd) == AT_FDCWD);
          return RewriteExec(pid, r, c, s, named ? s : virt, in);
        }
        break;
      }
      case Kind::Chdir:
        if (Failed(Ask('d', virt))) return FailNow(pid, r, EIO);
        break;
      case Kind::Readlink:
        if (Failed(Ask('l', virt))) return FailNow(pid, r, EIO);
        needExit = true;
        pending_[pid] = KeepBuffer(pid, Pending{Pending::TranslateBuf, 0, r.Arg(c->path + 1), r.Arg(c->path + 2), false, rw.empty() ? LinkName(pid, r, c, s) : rw});
        pending_[pid].linkDir = Normalize(virt + "/..");
        break;
      default: {
        bool access = false;
#ifdef __NR_access
        access = nr == __NR_access;
#endif
        int modeIdx = access ? 1 : (nr == __NR_faccessat || nr == __NR_faccessat2) ? 2 : -1;
        if (modeIdx >= 0 && (r.Arg(modeIdx) & W_OK)) {
          if (Failed(Ask('l', virt))) return FailNow(pid, r, EIO);
          struct stat st;
          bool follow = !(nr == __NR_faccessat2 && (r.Arg(3) & AT_SYMLINK_NOFOLLOW));
          if (LeadsOut(pid, r, c, s, rw, follow)) break;  // the kernel answers for what the link leads to
          std::string shadow = ToShadow(Normalize(virt));
          long e = LookupError(shadow, follow, &st);
          // A FIFO, socket or device is written outside the file system: the kernel looks at its mode only, not at
          // the mount's read-only flag.
          if (!e && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) && OwnCredentials(pid)) {
            return FailNow(pid, r, SpecialAccess(shadow, st.st_mode, (int)r.Arg(modeIdx)));
          }
          return FailNow(pid, r, e ? e : EROFS);
        }
        if (Failed(Ask('l', virt))) return FailNow(pid, r, EIO);
        if (nr == __NR_statfs) {
          // A /cvmfs mount is read-only, nosuid and nodev: statvfs's ST_RDONLY is what programs look at.
          pending_[pid] = Pending{Pending::ReadOnlyFs, 0, r.Arg(1), 0, false, {}};
          needExit = true;
        }
        bool answered = false;
        if (StoredMode(pid, r, c, nr, s, rw, &answered)) needExit = true;
        if (answered) {
          r.Store();
          return false;
        }
        if (nr == __NR_getxattr || nr == __NR_lgetxattr) {
          // Magic attributes (user.hash, user.revision, ...) are computed by the library; stored ones are
          // real attributes of the shadow files and the kernel answers those.
          std::string name;
          bool named = ReadString(pid, r.Arg(1), &name);
          if (named && name == UCVMFS_MODE_XATTR) return FailNow(pid, r, ENODATA);
          if (named && name.compare(0, 5, "user.") == 0) {
            std::vector<std::string> v = Ask('g', virt + std::string(1, '\0') + (nr == __NR_lgetxattr ? "l" : "f") + name);
            if (Failed(v)) return FailNow(pid, r, EIO);
            if (!v.empty()) {
              Fail(pid, r, 0);
              Pending& p = pending_[pid];
              p.what = Pending::SetValue;
              p.value = v[0];
              p.buf = r.Arg(2);
              p.size = r.Arg(3);
              if (!rw.empty()) {
                uint64_t a = Scratch(pid, r, rw + '\0');
                if (!a) return FailNow(pid, r, EIO);
                r.SetArg(c->path, a);
              }
              r.Store();
              return true;
            }
          }
        }
      }
    }
    if (!rw.empty()) {
      uint64_t a = Scratch(pid, r, rw + '\0');
      if (!a) {
        // The kernel would otherwise look the /cvmfs path up as it is.
        pending_.erase(pid);
        return FailNow(pid, r, EIO);
      }
      r.SetArg(c->path, a);
    }
    r.Store();
    return needExit;
  }

  // Whether a file's `#!` line or ELF loader (PT_INTERP, 64-bit) names something with `cvmfs` in it: then
  // JavaScript decides whether it lies under /cvmfs. A file the tracer cannot read (execute-only) is left to the
  // kernel. One open and two or three small reads per exec of a program outside /cvmfs.
  static bool NamesRootInterpreter(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return false;
    unsigned char h[256];
    ssize_t n = pread(fd, h, sizeof h, 0);
    bool found = false;
    if (n >= 2 && h[0] == '#' && h[1] == '!') {
      std::string line((const char*)h + 2, (size_t)n - 2);
      line = line.substr(0, line.find('\n'));
      size_t b = line.find_first_not_of(" \t");
      found = b != std::string::npos && line.substr(b, line.find_first_of(" \t", b) - b).find("cvmfs") != std::string::npos;
    } else if (n >= 64 && memcmp(h, "\x7f" "ELF", 4) == 0 && h[4] == 2 && h[5] == 1) {
      uint64_t phoff;
      uint16_t phentsize, phnum;
      memcpy(&phoff, h + 32, 8);
      memcpy(&phentsize, h + 54, 2);
      memcpy(&phnum, h + 56, 2);
      for (uint16_t i = 0; i < phnum && i < 64 && phentsize >= 56 && !found; i++) {
        unsigned char ph[56];
        if (pread(fd, ph, sizeof ph, (off_t)(phoff + (uint64_t)i * phentsize)) != (ssize_t)sizeof ph) break;
        uint32_t type;
        uint64_t off, size;
        memcpy(&type, ph, 4);
        memcpy(&off, ph + 8, 8);
        memcpy(&size, ph + 32, 8);
        if (type != 3 /* PT_INTERP */) continue;
        if (size == 0 || size > PATH_MAX) break;
        std::string interp(size, '\0');
        if (pread(fd, &interp[0], size, (off_t)off) != (ssize_t)size) break;
        found = interp.find("cvmfs") != std::string::npos;
        break;
      }
    }
    close(fd);
    return found;
  }

  // An exec plan from JavaScript (ShadowTree.execPlan): execute in[0] (a /cvmfs path goes to the shadow tree)
  // with argv = in[1..] followed by the original argv[1..]; "\x01" stands for the original argv[0], "\x02" for
  // the program's path as given (`given`). A `#!`
  // script gets its interpreter with the script's /cvmfs path, as the kernel would do it; an ELF whose loader
  // is under /cvmfs gets that loader with the program as argument.
  bool RewriteExec(pid_t pid, Regs& r, const CallInfo* c, const std::string& program, const std::string& given, const std::vector<std::string>& in) {
    const std::string& target = in[0];
    std::string file = Under(target, kVirtual) ? ToShadow(target) : target;
    int argvIdx = c->path + 1;
    uint64_t argv0 = 0;
    std::vector<uint64_t> rest;
    for (uint64_t p = r.Arg(argvIdx), i = 0; p && i < 100000; i++) {
      uint64_t v = 0;
      if (!ReadMem(pid, p + i * 8, &v, 8)) return FailNow(pid, r, EFAULT);
      if (!v) break;
      if (i == 0) argv0 = v;
      else rest.push_back(v);
    }
    std::string blob;
    std::vector<int64_t> offs;  // -1: the original argv[0] pointer
    for (size_t k = 1; k < in.size(); k++) {
      if (in[k] == "\x01" && argv0) {
        offs.push_back(-1);
        continue;
      }
      offs.push_back((int64_t)blob.size());
      blob += in[k] == "\x01" ? program : in[k] == "\x02" ? given : in[k];
      blob += '\0';
    }
    size_t fileOff = blob.size();
    blob += file;
    blob += '\0';
    // Failing to write the new arguments fails the call (the kernel would run the /cvmfs path as it is).
    uint64_t strs = Scratch(pid, r, blob);
    if (!strs) return FailNow(pid, r, EIO);
    std::vector<uint64_t> ptrs;
    for (int64_t o : offs) ptrs.push_back(o < 0 ? argv0 : strs + (uint64_t)o);
    ptrs.insert(ptrs.end(), rest.begin(), rest.end());
    ptrs.push_back(0);
    std::string arr((const char*)ptrs.data(), ptrs.size() * 8);
    uint64_t a = Scratch(pid, r, arr, strs - 64);
    if (!a) return FailNow(pid, r, EIO);
    r.SetArg(c->path, strs + fileOff);
    r.SetArg(argvIdx, a);
    if (c->dirfd >= 0) r.SetArg(c->dirfd, (uint64_t)(int64_t)AT_FDCWD);
    r.Store();
    return false;
  }

  void OnExit(pid_t pid) {
    auto it = pending_.find(pid);
    if (it == pending_.end()) return;
    Pending p = it->second;
    pending_.erase(it);
    Regs r;
    if (!r.Load(pid)) return;
    if (p.what == Pending::SetErrno) {
      r.SetRet(-p.err);
      r.Store();
      return;
    }
    if (p.what == Pending::PatchMode || p.what == Pending::HideModeXattr) {
      PatchAtExit(pid, r, p);
      return;
    }
    if (p.what == Pending::ReadOnlyFs) {
      decltype(statfs::f_flags) f = 0;
      uint64_t at = p.buf + offsetof(struct statfs, f_flags);
      if (r.Ret() == 0 && ReadMem(pid, at, &f, sizeof f)) {
        f |= ST_RDONLY | ST_NOSUID | ST_NODEV;
        WriteMem(pid, at, &f, sizeof f);
      }
      return;
    }
    if (p.what == Pending::ShowExe) {
      if (r.Ret() <= 0) return;
      size_t wrote = (size_t)r.Ret();
      size_t m = p.value.size() < p.size ? p.value.size() : (size_t)p.size;
      r.SetRet(WriteMem(pid, p.buf, p.value.data(), m) ? (long)m : -EFAULT);
      RestoreTail(pid, p, m, wrote);
      r.Store();
      return;
    }
    if (p.what == Pending::SetValue) {
      long n = (long)p.value.size();
      if (p.size == 0) r.SetRet(n);
      else if ((uint64_t)n > p.size) r.SetRet(-ERANGE);
      else r.SetRet(WriteMem(pid, p.buf, p.value.data(), (size_t)n) ? n : -EFAULT);
      r.Store();
      return;
    }
    long ret = r.Ret();
    if (ret <= 0) return;
    size_t n = (size_t)ret - (p.getcwd ? 1 : 0);
    std::string got(n, '\0');
    if (!ReadMem(pid, p.buf, &got[0], n)) return;
    if (!p.getcwd && n == p.size && !p.link.empty()) {
      // The buffer may have cut the (longer) shadow path: read the whole link to translate it.
      char full[PATH_MAX + 1];
      ssize_t m = readlink(p.link.c_str(), full, PATH_MAX);
      if (m > 0) got.assign(full, (size_t)m);
    }
    std::string out;
    if (!p.linkDir.empty() && got.compare(0, 3, ".//") == 0) {
      // A target into /cvmfs the shadow tree stored relative, at the original length: give the original.
      out = Virtualize(Normalize(ToShadow(p.linkDir) + "/" + got));
    } else {
      out = Virtualize(got);
    }
    if (out.empty()) return;
    if (p.getcwd) {
      if (out.size() + 1 > p.size) {
        r.SetRet(-ERANGE);
      } else {
        WriteMem(pid, p.buf, out.c_str(), out.size() + 1);
        r.SetRet((long)out.size() + 1);
      }
    } else {
      size_t m = out.size() < p.size ? out.size() : p.size;
      WriteMem(pid, p.buf, out.data(), m);
      RestoreTail(pid, p, m, (size_t)ret);
      r.SetRet((long)m);
    }
    r.Store();
  }

  // What the command's first process needs (addon/spawn.h), prepared before it exists: it shares this memory.
  void PlanSpawn(SpawnPlan& plan, std::vector<char*>& argv, std::vector<char*>& envp, const sock_fprog* prog, int errFd) {
    plan.FindOnPath(o_.file);
    plan.argv = argv.data();
    plan.envp = envp.data();
    plan.scriptArgv.push_back(const_cast<char*>("/bin/sh"));
    plan.scriptArgv.push_back(nullptr);
    for (size_t i = 1; i + 1 < argv.size(); i++) plan.scriptArgv.push_back(argv[i]);
    plan.scriptArgv.push_back(nullptr);
    plan.ignored = o_.ignored;
    plan.blocked = o_.blocked;
    plan.nofileSet = o_.nofileSet;
    plan.nofile = o_.nofile;
    plan.fsizeSet = o_.fsizeSet;
    plan.fsize = o_.fsize;
    plan.clearCloexec = o_.fds;
    plan.closeFds = o_.closed;
    plan.filter = prog;
    // Already there (the usual case, the caller's directory outside /cvmfs): no chdir, which would stop.
    char here[PATH_MAX];
    bool there = !o_.cwd.empty() && getcwd(here, sizeof here) && o_.cwd == here;
    plan.cwd = o_.cwd.empty() || there ? nullptr : o_.cwd.c_str();
    plan.parent = getpid();
    plan.errFd = errFd;
  }

  Done Trace() {
    Done d;
    std::vector<char*> argv, envp;
    for (auto& a : o_.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (auto& e : o_.envp) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    std::vector<sock_filter> filter = BuildFilter(emulatePtrace_);
    sock_fprog prog{(unsigned short)filter.size(), filter.data()};
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
      d.error = std::string("pipe: ") + strerror(errno);
      return d;
    }
    SpawnPlan plan;
    PlanSpawn(plan, argv, envp, &prog, errpipe[1]);
    // The tracer writes an exec's new arguments below the child's stack pointer (Scratch): room for all of them,
    // and an inaccessible guard below, so that such a write can only fail, never land in Node's memory.
    size_t argBytes = 0;
    for (auto& a : o_.argv) argBytes += a.size() + 1 + 8;
    size_t stackBytes = kSpawnStackBytes + 2 * argBytes + 4 * PATH_MAX, guard = 1 << 20;
    stackBytes = (stackBytes + 4095) & ~(size_t)4095;
    char* region = static_cast<char*>(mmap(nullptr, guard + stackBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (region == MAP_FAILED || mprotect(region + guard, stackBytes, PROT_READ | PROT_WRITE) != 0) {
      d.error = std::string("mmap: ") + strerror(errno);
      if (region != MAP_FAILED) munmap(region, guard + stackBytes);
      close(errpipe[0]);
      close(errpipe[1]);
      return d;
    }
    struct Unmap {
      char* at;
      size_t n;
      ~Unmap() { munmap(at, n); }
    } unmap{region, guard + stackBytes};
    pid_t child = Spawn(plan, region + guard, stackBytes);
    if (child < 0) {
      d.error = std::string("clone: ") + strerror(errno);
      close(errpipe[0]);
      close(errpipe[1]);
      return d;
    }
    close(errpipe[1]);
    int status = 0;
    if (waitpid(child, &status, WUNTRACED) != child || !WIFSTOPPED(status)) {
      d.error = "the child did not start";
      close(errpipe[0]);
      return d;
    }
    if (ptrace(PTRACE_SEIZE, child, 0, kOpts) != 0) {
      int e = errno;
      d.error = std::string("ptrace is not allowed here (") + strerror(e) +
                "): the kernel's Yama ptrace_scope, a container's seccomp profile or an existing tracer forbids it";
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      close(errpipe[0]);
      return d;
    }
    known_.insert(child);
    kill(child, SIGCONT);
    // Tell JavaScript the pid (to pass signals on); nobody waits for this answer.
    tsfn_.NonBlockingCall(new Message{std::unique_ptr<Request>(new Request{'s', std::to_string(child), {}}), {}});
    auto t0 = std::chrono::steady_clock::now();
    Loop(child, &d, errpipe[0]);
    if (getenv("UCVMFS_TRACER_DEBUG")) {
      double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fprintf(stderr, "[tracer] %.3f s, %llu stops, %llu questions to JavaScript taking %.3f s\n", total,
              (unsigned long long)stops_, (unsigned long long)asks_, askNs_ / 1e9);
      for (auto& [nr, n] : byNr_) fprintf(stderr, "[tracer]   syscall %ld: %llu stops\n", nr, (unsigned long long)n);
    }
    if (d.error.empty()) d.error = StartError(errpipe[0]);
    close(errpipe[0]);
    return d;
  }

  // Why the command could not be started, from the pipe its process writes into when exec fails ("" when exec
  // succeeded: the write end closed at exec). Read when that process ends, so that the reason is told with the
  // end: a caller that returns at the command's end (the front) must get it before this process's stdio goes.
  std::string StartError(int fd) {
    int e[2] = {0, 0};
    if (read(fd, e, sizeof e) != (ssize_t)sizeof e) return "";
    static const char* what[] = {"", "installing the seccomp filter", "changing directory", "executing"};
    return std::string(what[e[0] > 0 && e[0] < 4 ? e[0] : 0]) + " " + o_.file + ": " + strerror(e[1]);
  }

  // A bug or a failure in the tracer fails the call it was handling (EIO): it never runs as the program made it.
  bool FailClosed(pid_t pid, const char* what) {
    fprintf(stderr, "ucvmfs: tracer error (the call fails with EIO): %s\n", what);
    pending_.erase(pid);
    Regs r;
    if (!r.Load(pid)) return false;  // the tracee is gone
    return FailNow(pid, r, EIO);
  }

  void Loop(pid_t root, Done* d, int errFd) {
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, __WALL);
      if (pid < 0) {
        if (errno == EINTR) continue;
        break;  // ECHILD: every tracee is gone
      }
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        pending_.erase(pid);
        known_.erase(pid);
        pidNs_.erase(pid);
        creds_.erase(pid);
        if (emu_.Active()) emu_.Gone(pid, status);
        if (pid == root) {
          if (WIFEXITED(status)) d->code = WEXITSTATUS(status);
          else d->signal = WTERMSIG(status);
          // The command's end, told at once: what it left running may go on for long (nobody waits for this).
          d->error = StartError(errFd);
          std::string how = std::to_string(d->code) + ":" + std::to_string(d->signal) + (d->error.empty() ? "" : ":" + d->error);
          tsfn_.NonBlockingCall(new Message{std::unique_ptr<Request>(new Request{'e', how, {}}), {}});
        }
        continue;
      }
      if (!WIFSTOPPED(status)) continue;
      bool fresh = known_.insert(pid).second;
      stops_++;
      int sig = WSTOPSIG(status);
      int event = status >> 16;
      long req = PTRACE_CONT;
      int inject = 0;
      PtraceEmu::Stop kind = PtraceEmu::Stop::Event;
      if (sig == (SIGTRAP | 0x80)) {
        __ptrace_syscall_info info{};
        long n = ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof info, &info);
        if (n > 0 && info.op == PTRACE_SYSCALL_INFO_ENTRY) {
          req = PTRACE_SYSCALL;
          kind = PtraceEmu::Stop::Entry;
        } else {
          kind = PtraceEmu::Stop::Exit;
          bool hold = false;
          try {
            if (!emu_.OnCallExit(pid, &hold)) OnExit(pid);
          } catch (const std::exception& e) {
            Regs r;
            fprintf(stderr, "ucvmfs: tracer error (the call fails with EIO): %s\n", e.what());
            if (r.Load(pid)) {
              r.SetRet(-EIO);
              r.Store();
            }
          }
          if (hold) continue;  // a virtual tracer's wait, answered when an event comes
        }
      } else if (event == PTRACE_EVENT_SECCOMP) {
        kind = PtraceEmu::Stop::Seccomp;
        // A bug here must not take the job down, nor let the call run as the program made it: it fails.
        bool exitStop;
        try {
          exitStop = OnEntry(pid);
        } catch (const std::exception& e) {
          exitStop = FailClosed(pid, e.what());
        }
        if (exitStop) req = PTRACE_SYSCALL;
      } else if (event == PTRACE_EVENT_EXEC) {
        unsigned long former = 0;
        ptrace(PTRACE_GETEVENTMSG, pid, 0, &former);
        pidNs_.erase(pid);
        pidNs_.erase((pid_t)former);
        creds_.erase(pid);
        creds_.erase((pid_t)former);
        if ((pid_t)former != pid) {
          known_.erase((pid_t)former);
          pending_.erase((pid_t)former);
        }
      } else if (event == PTRACE_EVENT_STOP) {
        bool groupStop = !fresh && (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU);
        if (groupStop) req = PTRACE_LISTEN;
        kind = fresh ? PtraceEmu::Stop::Fresh : groupStop ? PtraceEmu::Stop::GroupStop : PtraceEmu::Stop::Event;
      } else if (event == 0) {
        inject = sig;  // signal-delivery stop: pass the signal on
        kind = PtraceEmu::Stop::Signal;
      }
      // A stop a virtual tracer is to see leaves the process stopped until that tracer resumes it.
      if (emu_.Active() && emu_.Route(pid, status, kind, &req)) continue;
      ptrace((__ptrace_request)req, pid, 0, (void*)(long)inject);
    }
  }
};


// A string's UTF-8, or a Buffer's bytes as they are (arguments, environment and directories need not be UTF-8).
std::string BytesOf(const Napi::Value& v) {
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<char>>();
    return std::string(b.Data(), b.Length());
  }
  return v.ToString().Utf8Value();
}

// The descriptor numbers in `o[key]` (an array) that lie in [low, high]; none when absent.
std::vector<int> Descriptors(const Napi::Object& o, const char* key, int low, int high) {
  std::vector<int> out;
  if (!o.Has(key)) return out;
  Napi::Array a = o.Get(key).As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    int fd = a.Get(i).As<Napi::Number>().Int32Value();
    if (fd >= low && fd <= high) out.push_back(fd);
  }
  return out;
}

// run({file, argv, envp, cwd, shadow}, onRequest(op, path, reply)) → Promise<{code, signal, error?}>; file, argv,
// envp and cwd as strings or Buffers.
Napi::Value Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  Options opt;
  opt.file = BytesOf(o.Get("file"));
  opt.cwd = BytesOf(o.Get("cwd"));
  opt.shadow = o.Get("shadow").ToString().Utf8Value();
  opt.base = o.Get("base").ToString().Utf8Value();
  opt.record = o.Has("record") && o.Get("record").ToBoolean().Value();
  if (o.Has("ignored")) opt.ignored = std::stoull(o.Get("ignored").ToString().Utf8Value(), nullptr, 16);
  if (o.Has("blocked")) opt.blocked = std::stoull(o.Get("blocked").ToString().Utf8Value(), nullptr, 16);
  opt.nofileSet = LimitOption(o, "nofile", &opt.nofile);
  opt.fsizeSet = LimitOption(o, "fsize", &opt.fsize);
  opt.fds = Descriptors(o, "fds", 3, std::numeric_limits<int>::max());
  opt.closed = Descriptors(o, "closed", 0, 2);
  Napi::Array argv = o.Get("argv").As<Napi::Array>();
  for (uint32_t i = 0; i < argv.Length(); i++) opt.argv.push_back(BytesOf(argv.Get(i)));
  Napi::Array envp = o.Get("envp").As<Napi::Array>();
  for (uint32_t i = 0; i < envp.Length(); i++) opt.envp.push_back(BytesOf(envp.Get(i)));
  auto* deferred = new Napi::Promise::Deferred(env);
  Napi::Promise promise = deferred->Promise();
  auto tsfn = Tsfn::New(env, info[1].As<Napi::Function>(), "ucvmfs-tracer", 0, 1, deferred);
  std::thread([opt = std::move(opt), tsfn]() mutable { Tracer(std::move(opt), tsfn).Run(); }).detach();
  return promise;
}

}  // namespace
}  // namespace ucvmfs

// lsetxattr(path, name, buffer): Node has no xattr API; the shadow tree stores the repository's attributes.
static Napi::Value SetXattr(const Napi::CallbackInfo& info) {
  // The path as bytes (a Buffer) when it holds a name that is not UTF-8.
  std::string path = info[0].IsBuffer() ? std::string(info[0].As<Napi::Buffer<char>>().Data(), info[0].As<Napi::Buffer<char>>().Length())
                                        : info[0].ToString().Utf8Value();
  std::string name = info[1].ToString().Utf8Value();
  auto b = info[2].As<Napi::Buffer<char>>();
  int rc = lsetxattr(path.c_str(), name.c_str(), b.Data(), b.Length(), 0);
  return Napi::Number::New(info.Env(), rc == 0 ? 0 : errno);
}

// detachStdio(): standard input, output and error become /dev/null. After the command ended, what it left running
// holds its own copies; ours must not keep a caller's pipe open (`out=$(ucvmfs exec -- sh -c 'daemon &')`).
static Napi::Value DetachStdio(const Napi::CallbackInfo& info) {
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) return Napi::Number::New(info.Env(), errno);
  for (int i = 0; i < 3; i++) dup2(fd, i);
  close(fd);
  return Napi::Number::New(info.Env(), 0);
}

// closeOnExec(fd): a descriptor inherited from the front must reach neither the command nor helpers we spawn.
static Napi::Value CloseOnExec(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int rc = fcntl(fd, F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(info.Env(), rc == 0 ? 0 : errno);
}

Napi::Value UcvmfsCopyInto(const Napi::CallbackInfo& info);     // addon/files.cc
Napi::Value UcvmfsCopyAt(const Napi::CallbackInfo& info);       // addon/files.cc
Napi::Value UcvmfsMakeEntries(const Napi::CallbackInfo& info);  // addon/files.cc
Napi::Value UcvmfsSetTimes(const Napi::CallbackInfo& info);     // addon/files.cc

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("copyInto", Napi::Function::New(env, UcvmfsCopyInto, "copyInto"));
  exports.Set("copyAt", Napi::Function::New(env, UcvmfsCopyAt, "copyAt"));
  exports.Set("makeEntries", Napi::Function::New(env, UcvmfsMakeEntries, "makeEntries"));
  exports.Set("setTimes", Napi::Function::New(env, UcvmfsSetTimes, "setTimes"));
  exports.Set("detachStdio", Napi::Function::New(env, DetachStdio, "detachStdio"));
  exports.Set("closeOnExec", Napi::Function::New(env, CloseOnExec, "closeOnExec"));
  exports.Set("run", Napi::Function::New(env, ucvmfs::Run, "run"));
  exports.Set("setxattr", Napi::Function::New(env, SetXattr, "setxattr"));
  exports.Set("arch", Napi::String::New(env,
#if defined(__x86_64__)
      "x64"
#else
      "arm64"
#endif
      ));
  return exports;
}

NODE_API_MODULE(ucvmfs_tracer, Init)
