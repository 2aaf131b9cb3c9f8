// Containers started inside a job (bubblewrap, a runtime started by podman) that take /cvmfs paths as bind
// sources or as their root. Two things differ from a process that names /cvmfs paths:
//
// - Such a program refers to the host's files through a directory where it still sees the host's root after
//   changing its own (bwrap: `/oldroot/cvmfs/<fqrn>/...` after pivot_root). Those paths are recognized by their
//   prefix: a directory that is the host's root, seen from the process (same device and inode as the tracer's `/`).
// - After the bind, the container sees shadow entries under paths of its own, which the tracer does not translate:
//   what it reads there must be complete before the mount is made (the tracer asks JavaScript to complete the
//   source's subtree). The source is identified by the file the kernel will bind, whatever path names it
//   (`/proc/self/fd/N` as runc uses, a shadow path), so that no route binds a placeholder.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <set>
#include <string>
#include <utility>

#include "paths.h"
#include "tracee.h"

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MS_BIND
#define MS_BIND 4096
#endif
#ifndef MS_REMOUNT
#define MS_REMOUNT 32
#endif
#ifndef MS_MOVE
#define MS_MOVE 8192
#endif

namespace ucvmfs {

// Where the host's root is seen in an absolute, normalized path of process `pid` that continues into /cvmfs
// (`/oldroot` in `/oldroot/cvmfs/<fqrn>/x`): the prefix's length, or npos. A prefix of `/` itself is the plain
// /cvmfs case, handled elsewhere.
inline size_t HostRootPrefix(pid_t pid, const std::string& abs, const struct stat& hostRoot) {
  int root = -1;
  size_t found = std::string::npos;
  for (size_t i = abs.find("/cvmfs", 1); i != std::string::npos; i = abs.find("/cvmfs", i + 1)) {
    if (i + 6 != abs.size() && abs[i + 6] != '/') continue;
    if (root < 0) root = open(("/proc/" + std::to_string(pid) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) break;
    // Resolved in the process's root, as it resolves the prefix (its absolute symlinks stay in its tree).
    open_how how{O_PATH | O_CLOEXEC | O_DIRECTORY, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    std::string prefix = abs.substr(0, i);
    int fd = (int)syscall(SYS_openat2, root, prefix.c_str(), &how, sizeof how);
    if (fd < 0) continue;
    struct stat st;
    bool host = fstat(fd, &st) == 0 && st.st_dev == hostRoot.st_dev && st.st_ino == hostRoot.st_ino;
    close(fd);
    if (host) {
      found = i;
      break;
    }
  }
  if (root >= 0) close(root);
  return found;
}

// Opens (O_PATH) what a path argument of process `pid` names, as the kernel will resolve it for that process:
// absolute paths in its root, relative ones from its cwd or dirfd, its /proc/self as itself. -1 when it cannot.
inline int OpenAsTracee(pid_t pid, int dirfd, const std::string& s, bool follow) {
  std::string proc = "/proc/" + std::to_string(pid);
  int flags = O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  std::string at = dirfd == AT_FDCWD ? proc + "/cwd" : proc + "/fd/" + std::to_string(dirfd);
  if (s.empty()) return open(at.c_str(), O_PATH | O_CLOEXEC);
  if (s == "/proc/self" || s.compare(0, 11, "/proc/self/") == 0) return open((proc + s.substr(10)).c_str(), flags);
  if (s == "/proc/thread-self" || s.compare(0, 18, "/proc/thread-self/") == 0)
    return open((proc + "/task/" + std::to_string(pid) + s.substr(17)).c_str(), flags);
  if (s[0] != '/') return open((at + "/" + s).c_str(), flags);
  int root = open((proc + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return -1;
  open_how how{(uint64_t)flags, 0, RESOLVE_IN_ROOT};
  int fd = (int)syscall(SYS_openat2, root, s.c_str(), &how, sizeof how);
  close(root);
  return fd;
}

// The host path of an open file when it lies under `area` (a directory of the tracer's namespace), else "".
// The kernel names a file of another mount namespace from that namespace's root (`/oldroot/<area>/...`, or the
// path there): the area is looked for in the name, and the candidate checked to be the very same file.
inline std::string HostPathUnder(int fd, const std::string& area) {
  std::string name = ProcLink(getpid(), "fd/" + std::to_string(fd));
  struct stat st, cand;
  if (name.empty() || fstat(fd, &st) != 0) return "";
  for (size_t i = name.find(area); i != std::string::npos; i = name.find(area, i + 1)) {
    std::string c = name.substr(i);
    if (!ucvmfs_under(c.c_str(), area.c_str(), area.size())) continue;
    if (lstat(c.c_str(), &cand) == 0 && cand.st_dev == st.st_dev && cand.st_ino == st.st_ino) return c;
  }
  return "";
}

// The roots of the shadow tree's binds into containers (device, inode), seen at mount time. In a container a
// bound shadow file has a name of the container's (`/opt/x/f`), not a shadow path: it is found to be one by
// climbing from its directory to a bound root.
class BoundRoots {
 public:
  void Add(const std::string& hostPath) {
    struct stat st;
    if (stat(hostPath.c_str(), &st) == 0) roots_.insert({st.st_dev, st.st_ino});
  }

  // Whether the directory open as `dirfd` (O_PATH) is a bound root or below one.
  bool Holds(int dirfd) const {
    if (roots_.empty()) return false;
    struct stat st;
    if (fstat(dirfd, &st) != 0) return false;
    int cur = dup(dirfd);
    bool in = false;
    // The walk stays on the shadow tree's device: a bind's root climbs to the container's own directories.
    for (int depth = 0; cur >= 0 && depth < 4096; depth++) {
      if (roots_.count({st.st_dev, st.st_ino})) {
        in = true;
        break;
      }
      int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
      struct stat ps;
      if (up < 0 || fstat(up, &ps) != 0 || ps.st_dev != st.st_dev || ps.st_ino == st.st_ino) {
        if (up >= 0) close(up);
        break;
      }
      close(cur);
      cur = up;
      st = ps;
    }
    if (cur >= 0) close(cur);
    return in;
  }

 private:
  std::set<std::pair<dev_t, ino_t>> roots_;
};

}  // namespace ucvmfs
