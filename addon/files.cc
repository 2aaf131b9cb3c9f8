// File operations the connector needs and Node lacks: filling a shadow placeholder in place from a cache object
// (a reflink, else the kernel's copy_file_range: the bytes never pass through JavaScript), off the event loop.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

namespace {

class CopyInto : public Napi::AsyncWorker {
 public:
  CopyInto(Napi::Env env, std::string src, int dst, int64_t at = 0)
      : Napi::AsyncWorker(env), src_(std::move(src)), dst_(dst), at_(at), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    int s = open(src_.c_str(), O_RDONLY | O_CLOEXEC);
    if (s < 0) {
      err_ = errno;
      return;
    }
    struct stat st;
    if (fstat(s, &st) != 0) {
      err_ = errno;
    } else if (at_ == 0 && ioctl(dst_, FICLONE, s) == 0) {
      copied_ = (uint64_t)st.st_size;
    } else {
      Copy(s);
    }
    close(s);
  }

  void OnOK() override {
    if (err_ == 0) {
      deferred_.Resolve(Napi::Number::New(Env(), (double)copied_));
      return;
    }
    Napi::Error e = Napi::Error::New(Env(), std::string(strerrorname_np(err_) ? strerrorname_np(err_) : "EIO") + ": " + strerror(err_) + ", copying " + src_);
    e.Set("code", Napi::String::New(Env(), strerrorname_np(err_) ? strerrorname_np(err_) : "EIO"));
    e.Set("errno", Napi::Number::New(Env(), -err_));
    deferred_.Reject(e.Value());
  }

 private:
  // copy_file_range from offset 0 over whatever the destination held from at_ on; read and write where the file
  // systems cannot (another file system, an old kernel).
  void Copy(int s) {
    loff_t in = 0, out = at_;
    for (;;) {
      ssize_t n = copy_file_range(s, &in, dst_, &out, 1 << 30, 0);
      if (n == 0) return;
      if (n > 0) {
        copied_ += (uint64_t)n;
        continue;
      }
      if (errno == EINTR) continue;
      if (copied_ == 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) break;
      err_ = errno;
      return;
    }
    std::string b(1 << 20, '\0');
    for (;;) {
      ssize_t n = pread(s, &b[0], b.size(), (off_t)copied_);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err_ = errno;
        return;
      }
      if (n == 0) return;
      for (ssize_t w = 0; w < n;) {
        ssize_t k = pwrite(dst_, b.data() + w, (size_t)(n - w), (off_t)(at_ + (int64_t)copied_));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
          err_ = k < 0 ? errno : EIO;
          return;
        }
        w += k;
        copied_ += (uint64_t)k;
      }
    }
  }

  std::string src_;
  int dst_;
  int64_t at_;
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  uint64_t copied_ = 0;
};

}  // namespace

// copyInto(srcPath, dstFd) → Promise<bytes copied>: the whole source over the start of an open file.
Napi::Value UcvmfsCopyInto(const Napi::CallbackInfo& info) {
  auto* w = new CopyInto(info.Env(), info[0].ToString().Utf8Value(), info[1].As<Napi::Number>().Int32Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// copyAt(srcPath, dstFd, offset) → Promise<bytes copied>: the whole source into an open file from `offset` on (a
// chunk of a chunked file into its place; never a reflink, which would replace the whole destination).
Napi::Value UcvmfsCopyAt(const Napi::CallbackInfo& info) {
  auto* w = new CopyInto(info.Env(), info[0].ToString().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                         info[2].As<Napi::Number>().Int64Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

namespace {

// One entry of a directory listing to make (see lib/connector/entry-maker.ts for what each kind becomes).
struct NewEntry {
  std::string name;
  int kind = 0;  // 0 file, 1 directory, 2 symlink
  uint64_t size = 0;
  unsigned mode = 0;
  struct timespec mtime {};
  std::string target;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

class MakeEntries : public Napi::AsyncWorker {
 public:
  MakeEntries(Napi::Env env, std::string dir, std::vector<NewEntry> entries)
      : Napi::AsyncWorker(env), dir_(std::move(dir)), entries_(std::move(entries)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    int dfd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      err_ = errno;
      return;
    }
    plain_ = fgetxattr(dfd, "system.posix_acl_default", nullptr, 0) < 0 && (errno == ENODATA || errno == EOPNOTSUPP);
    for (size_t i = 0; i < entries_.size(); i++) {
      int e = Make(dfd, entries_[i]);
      if (e != 0) failed_.emplace_back(i, e);
    }
    close(dfd);
  }

  void OnOK() override {
    if (err_ != 0) {
      Napi::Error e = Napi::Error::New(Env(), std::string(strerrorname_np(err_) ? strerrorname_np(err_) : "EIO") + ": " + strerror(err_) + ", opening " + dir_);
      e.Set("code", Napi::String::New(Env(), strerrorname_np(err_) ? strerrorname_np(err_) : "EIO"));
      e.Set("errno", Napi::Number::New(Env(), -err_));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Array out = Napi::Array::New(Env(), failed_.size());
    for (size_t k = 0; k < failed_.size(); k++) {
      Napi::Array pair = Napi::Array::New(Env(), 2);
      pair.Set(0u, Napi::Number::New(Env(), (double)failed_[k].first));
      pair.Set(1u, Napi::Number::New(Env(), failed_[k].second));
      out.Set((uint32_t)k, pair);
    }
    deferred_.Resolve(out);
  }

 private:
  // The process's umask, from /proc (umask() would change it for every thread to read it).
  static unsigned Umask() {
    static unsigned mask = [] {
      unsigned m = 077;
      if (FILE* f = fopen("/proc/self/status", "re")) {
        char line[256];
        while (fgets(line, sizeof line, f))
          if (sscanf(line, "Umask: %o", &m) == 1) break;
        fclose(f);
      }
      return m;
    }();
    return mask;
  }

  // Whether a file can be created with its final mode: no attribute to set (setting one needs write permission),
  // nothing the umask would take away, no default ACL in the directory (it would stand in for the umask). One
  // fchmod less per file. Never a directory: one made in a setgid directory would inherit S_ISGID.
  bool Direct(const NewEntry& n) const { return plain_ && n.kind == 0 && n.xattrs.empty() && (n.mode & ~Umask()) == n.mode; }

  // Attributes, mode and mtime through the descriptor: no path is looked up again.
  int Finish(int fd, const NewEntry& n) const {
    for (const auto& [k, v] : n.xattrs)
      if (fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) != 0) return errno;
    if (!Direct(n) && fchmod(fd, n.mode) != 0) return errno;
    struct timespec ts[2] = {n.mtime, n.mtime};
    if (futimens(fd, ts) != 0) return errno;
    return 0;
  }

  // 0, or the errno that made it fail (EEXIST: the name is there already; the caller checks and repairs).
  int Make(int dfd, const NewEntry& n) const {
    if (n.kind == 2) {
      if (symlinkat(n.target.c_str(), dfd, n.name.c_str()) != 0) return errno;
      struct timespec ts[2] = {n.mtime, n.mtime};
      return utimensat(dfd, n.name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0 ? errno : 0;
    }
    int fd;
    if (n.kind == 1) {
      if (mkdirat(dfd, n.name.c_str(), Direct(n) ? n.mode : 0700) != 0) return errno;
      fd = openat(dfd, n.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } else {
      fd = openat(dfd, n.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, Direct(n) ? n.mode : 0600);
      if (fd >= 0 && n.size > 0 && ftruncate(fd, (off_t)n.size) != 0) {
        int e = errno;
        close(fd);
        return e;
      }
    }
    if (fd < 0) return errno;
    int e = Finish(fd, n);
    close(fd);
    return e;
  }

  std::string dir_;
  std::vector<NewEntry> entries_;
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  std::vector<std::pair<size_t, int>> failed_;
  bool plain_ = false;
};

std::string Bytes(const Napi::Value& v) {
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<char>>();
    return std::string(b.Data(), b.Length());
  }
  return v.ToString().Utf8Value();
}

}  // namespace

// makeEntries(dir, [[name, kind, size, mode, sec, nsec, target, [[xattr, value]...]]...]) → Promise<[index, errno][]>:
// new entries of one shadow directory made in a worker thread, each through its descriptor.
Napi::Value UcvmfsMakeEntries(const Napi::CallbackInfo& info) {
  std::vector<NewEntry> entries;
  Napi::Array list = info[1].As<Napi::Array>();
  entries.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Array a = list.Get(i).As<Napi::Array>();
    NewEntry n;
    n.name = Bytes(a.Get(0u));
    n.kind = a.Get(1u).As<Napi::Number>().Int32Value();
    n.size = (uint64_t)a.Get(2u).As<Napi::Number>().Int64Value();
    n.mode = (unsigned)a.Get(3u).As<Napi::Number>().Uint32Value();
    n.mtime.tv_sec = (time_t)a.Get(4u).As<Napi::Number>().Int64Value();
    n.mtime.tv_nsec = (long)a.Get(5u).As<Napi::Number>().Int64Value();
    if (n.kind == 2) n.target = Bytes(a.Get(6u));
    Napi::Value x = a.Get(7u);
    if (x.IsArray()) {
      Napi::Array xs = x.As<Napi::Array>();
      for (uint32_t k = 0; k < xs.Length(); k++) {
        Napi::Array kv = xs.Get(k).As<Napi::Array>();
        n.xattrs.emplace_back(kv.Get(0u).ToString().Utf8Value(), Bytes(kv.Get(1u)));
      }
    }
    entries.push_back(std::move(n));
  }
  auto* w = new MakeEntries(info.Env(), Bytes(info[0]), std::move(entries));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// setTimes(path | fd, sec, nsec, nofollow) → 0, or the errno: atime and mtime to the nanosecond (utimensat, futimens).
// Node's utimes family takes seconds as a double and cuts them to microseconds.
Napi::Value UcvmfsSetTimes(const Napi::CallbackInfo& info) {
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = (time_t)info[1].As<Napi::Number>().Int64Value();
  ts[0].tv_nsec = ts[1].tv_nsec = (long)info[2].As<Napi::Number>().Int64Value();
  int r = info[0].IsNumber() ? futimens(info[0].As<Napi::Number>().Int32Value(), ts)
                             : utimensat(AT_FDCWD, Bytes(info[0]).c_str(), ts, info[3].ToBoolean() ? AT_SYMLINK_NOFOLLOW : 0);
  return Napi::Number::New(info.Env(), r == 0 ? 0 : errno);
}
