// What a read-only mount answers to a call that would change it, in the kernel's order of checks (fs/namei.c,
// fs/open.c): a call on an existing name looks it up first (ENOENT, ENOTDIR, ELOOP); one that makes a name looks
// its directory up, then finds the name there (EEXIST); one that removes or renames a name asks for write access
// right after its directory's lookup, and a rename or link between two mounts is EXDEV; EROFS comes last. The
// tracer judges /cvmfs paths on their shadow entries (once the library has made the names on the way) and paths
// elsewhere as the tracee names them, so that `touch -c`, `open(p, "r+")`, `mv` out of /cvmfs and the like get the
// errors a mount gives (`touch -c` of a missing name succeeds, `mv` copies on EXDEV).
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

#include <string>

namespace ucvmfs {

// The error of looking `path` up (0: it is there, and *st says what it is).
inline long LookupError(const std::string& path, bool follow, struct stat* st) {
  return (follow ? stat : lstat)(path.c_str(), st) == 0 ? 0 : errno;
}

// The error of looking up the directory that holds (or would hold) the last name of `path`.
inline long ParentError(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

// mkdir, mknod, symlink, link's new name: the directory's error, EEXIST where the name is, else EROFS.
inline long MakeError(const std::string& path) {
  if (long e = ParentError(path)) return e;
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? EEXIST : EROFS;
}

// unlink and rmdir: write access is asked for before the name is looked up.
inline long RemoveError(const std::string& path) {
  long e = ParentError(path);
  return e ? e : EROFS;
}

// chmod, chown, utimes, truncate and the xattr calls of a name that must be there.
inline long ChangeError(const std::string& path, bool follow, bool truncate) {
  struct stat st;
  if (long e = LookupError(path, follow, &st)) return e;
  if (truncate && S_ISDIR(st.st_mode)) return EISDIR;
  if (truncate && !S_ISREG(st.st_mode)) return EINVAL;
  return EROFS;
}

// An open with write access, O_TRUNC, O_CREAT or O_TMPFILE; 0: it opens for reading (O_CREAT alone, of a name that
// is there: flock(1) opens its lock file so).
inline long OpenError(const std::string& path, uint64_t flags) {
  const bool creat = flags & O_CREAT, excl = creat && (flags & O_EXCL);
  const bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
  struct stat st;
  long e = LookupError(path, !(flags & O_NOFOLLOW) && !excl, &st);
  if (UCVMFS_IS_TMPFILE(flags)) return e ? e : S_ISDIR(st.st_mode) ? EROFS : ENOTDIR;
  if (e == ENOENT && creat) {
    // A new name, or the target of a dangling symlink (which O_CREAT would make): EROFS once its directory is there.
    if (lstat(path.c_str(), &st) == 0) return EROFS;
    long p = ParentError(path);
    return p ? p : EROFS;
  }
  if (e) return e;
  if (excl) return EEXIST;
  if (creat && S_ISDIR(st.st_mode)) return EISDIR;
  if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode)) return ENOTDIR;
  if (S_ISLNK(st.st_mode)) return ELOOP;
  if (S_ISDIR(st.st_mode)) return write ? EISDIR : 0;
  // A read-only mount refuses writes to files, directories and links only: a FIFO opens for writing (the kernel
  // drops O_TRUNC there). (Devices and sockets are empty files in the shadow tree: see the README.)
  if (S_ISFIFO(st.st_mode)) return 0;
  return write ? EROFS : 0;
}

}  // namespace ucvmfs
