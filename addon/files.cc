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
  MakeEntries(Napi::Env env, std::string dir, std::string packed, size_t count)
      : Napi::AsyncWorker(env), dir_(std::move(dir)), packed_(std::move(packed)), count_(count), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (!Unpack()) {
      err_ = EINVAL;
      return;
    }
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
      Napi::Error e = Napi::Error::New(Env(), std::string(strerrorname_np(err_) ? strerrorname_np(err_) : "EIO") + ": " + strerror(err_) + ", making entries in " + dir_);
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
  // Reads the entries packed by lib/connector/entry-batch.ts (in this worker thread, not the main one); false when
  // the bytes do not hold exactly `count_` entries.
  bool Unpack() {
    const unsigned char* p = (const unsigned char*)packed_.data();
    size_t at = 0, n = packed_.size();
    auto take = [&](void* out, size_t len) {
      if (n - at < len) return false;
      memcpy(out, p + at, len);
      at += len;
      return true;
    };
    auto text = [&](std::string& out, size_t lenBytes) {
      uint32_t len = 0;
      if (!take(&len, lenBytes) || n - at < len) return false;
      out.assign((const char*)p + at, len);
      at += len;
      return true;
    };
    entries_.reserve(count_);
    for (size_t i = 0; i < count_; i++) {
      NewEntry e;
      uint8_t kind;
      uint32_t mode;
      double size;
      int64_t ns;
      uint16_t nx = 0;
      if (!take(&kind, 1) || !take(&mode, 4) || !take(&size, 8) || !take(&ns, 8)) return false;
      if (!text(e.name, 2) || !text(e.target, 2) || !take(&nx, 2)) return false;
      for (uint16_t k = 0; k < nx; k++) {
        std::string name, value;
        if (!text(name, 2) || !text(value, 4)) return false;
        e.xattrs.emplace_back(std::move(name), std::move(value));
      }
      if (kind > 2 || !(size >= 0)) return false;
      e.kind = kind;
      e.mode = mode;
      e.size = (uint64_t)size;
      // Floor division: a time before 1970 has a negative second and a nanosecond part in [0, 1e9).
      int64_t sec = ns / 1000000000, rem = ns % 1000000000;
      if (rem < 0) {
        sec -= 1;
        rem += 1000000000;
      }
      e.mtime.tv_sec = (time_t)sec;
      e.mtime.tv_nsec = (long)rem;
      entries_.push_back(std::move(e));
    }
    return at == n;
  }

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

  // 0, or the errno that made it fail (EEXIST: the name is there already; the caller checks and repairs). Made with
  // its final mode and the owner's write bit (whileMade in lib/connector/modes.ts): a stat of another job racing
  // the make reads the stored mode already.
  int Make(int dfd, const NewEntry& n) const {
    if (n.kind == 2) {
      if (symlinkat(n.target.c_str(), dfd, n.name.c_str()) != 0) return errno;
      struct timespec ts[2] = {n.mtime, n.mtime};
      return utimensat(dfd, n.name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0 ? errno : 0;
    }
    int fd;
    if (n.kind == 1) {
      if (mkdirat(dfd, n.name.c_str(), n.mode | 0700) != 0) return errno;
      fd = openat(dfd, n.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } else {
      fd = openat(dfd, n.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, Direct(n) ? n.mode : n.mode | 0600);
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
  std::string packed_;
  size_t count_;
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

// makeEntries(dir, packed, count) → Promise<[index, errno][]>: `count` entries packed by
// lib/connector/entry-batch.ts, made in a worker thread, each through its descriptor.
Napi::Value UcvmfsMakeEntries(const Napi::CallbackInfo& info) {
  auto b = info[1].As<Napi::Buffer<char>>();
  auto* w = new MakeEntries(info.Env(), Bytes(info[0]), std::string(b.Data(), b.Length()), (size_t)info[2].As<Napi::Number>().Int64Value());
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
