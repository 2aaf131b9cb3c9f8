// File operations the connector needs and Node lacks: filling a shadow placeholder in place from a cache object
// (a reflink, else the kernel's copy_file_range: the bytes never pass through JavaScript), off the event loop.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace {

class CopyInto : public Napi::AsyncWorker {
 public:
  CopyInto(Napi::Env env, std::string src, int dst)
      : Napi::AsyncWorker(env), src_(std::move(src)), dst_(dst), deferred_(Napi::Promise::Deferred::New(env)) {}
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
    } else if (ioctl(dst_, FICLONE, s) == 0) {
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
    Napi::Error e = Napi::Error::New(Env(), std::string(strerror(err_)) + ", copying " + src_);
    e.Set("errno", Napi::Number::New(Env(), err_));
    deferred_.Reject(e.Value());
  }

 private:
  // copy_file_range from offset 0 over whatever the destination held; read and write where the file systems
  // cannot (another file system, an old kernel).
  void Copy(int s) {
    loff_t in = 0, out = 0;
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
        ssize_t k = pwrite(dst_, b.data() + w, (size_t)(n - w), (off_t)copied_);
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
