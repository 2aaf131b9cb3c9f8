// System calls the tracer must see, and the per-architecture register access it needs.
// Kept apart from the tracer loop so that adding an architecture touches this file only.
#pragma once

#include <cstdint>
#include <linux/audit.h>
#include <sys/syscall.h>
#include <sys/types.h>

namespace ucvmfs {

// What the tracer does with the path argument(s) of a call.
enum class Kind : uint8_t {
  None,      // not traced
  Read,      // path is looked up; the target must exist in the shadow tree
  Open,      // open-like: may read content, or write (EROFS)
  Exec,      // execve / execveat: content, and #! handling
  Chdir,     // the directory must be listed
  Write,     // modifies the file system: EROFS under /cvmfs
  Getcwd,    // the answer is translated back
  Readlink,  // the answer is translated back
  FdWrite,   // fd-based change (fchmod, fchown, fsetxattr ...): EROFS when the fd is in the shadow tree
  Mount,     // mount / open_tree: a bind source in the shadow tree is completed first (addon/container.h)
  Creds,     // changes the caller's credentials: stat answers given for it are judged again (tracer.cc)
};

struct CallInfo {
  long nr;
  Kind kind;
  int8_t dirfd;    // index of the dirfd argument, -1 when the path is relative to the cwd
  int8_t path;     // index of the path argument, -1 when none
  int8_t dirfd2;   // second path (rename, link): dirfd index or -1
  int8_t path2;    // second path index or -1
  int8_t flags;    // index of open flags (Open), -1 otherwise
  int8_t empty;    // index of an AT_* flags argument that may hold AT_EMPTY_PATH, -1 otherwise
};

#ifndef __NR_openat2
#define __NR_openat2 437
#endif
#ifndef __NR_faccessat2
#define __NR_faccessat2 439
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#ifndef __NR_open_tree
#define __NR_open_tree 428
#endif

// Order does not matter; the BPF filter and the lookup table are built from this list.
static const CallInfo kCalls[] = {
#ifdef __NR_open
    {__NR_open, Kind::Open, -1, 0, -1, -1, 1, -1},
    {__NR_creat, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_stat, Kind::Read, -1, 0, -1, -1, -1, -1},
    {__NR_lstat, Kind::Read, -1, 0, -1, -1, -1, -1},
    {__NR_access, Kind::Read, -1, 0, -1, -1, -1, -1},
    {__NR_readlink, Kind::Readlink, -1, 0, -1, -1, -1, -1},
    {__NR_mkdir, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_rmdir, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_unlink, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_rename, Kind::Write, -1, 0, -1, 1, -1, -1},
    {__NR_link, Kind::Write, -1, 0, -1, 1, -1, -1},
    {__NR_symlink, Kind::Write, -1, -1, -1, 1, -1, -1},
    {__NR_chmod, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_chown, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_lchown, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_utime, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_utimes, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_futimesat, Kind::Write, 0, 1, -1, -1, -1, -1},
    {__NR_mknod, Kind::Write, -1, 0, -1, -1, -1, -1},
#endif
    {__NR_openat, Kind::Open, 0, 1, -1, -1, 2, -1},
    {__NR_openat2, Kind::Open, 0, 1, -1, -1, -1, -1},
    {__NR_newfstatat, Kind::Read, 0, 1, -1, -1, -1, 3},
    {__NR_statx, Kind::Read, 0, 1, -1, -1, -1, 2},
    {__NR_faccessat, Kind::Read, 0, 1, -1, -1, -1, -1},
    {__NR_faccessat2, Kind::Read, 0, 1, -1, -1, -1, -1},
    {__NR_readlinkat, Kind::Readlink, 0, 1, -1, -1, -1, -1},
    {__NR_execve, Kind::Exec, -1, 0, -1, -1, -1, -1},
    {__NR_execveat, Kind::Exec, 0, 1, -1, -1, -1, 4},
    {__NR_chdir, Kind::Chdir, -1, 0, -1, -1, -1, -1},
    {__NR_getcwd, Kind::Getcwd, -1, -1, -1, -1, -1, -1},
    {__NR_statfs, Kind::Read, -1, 0, -1, -1, -1, -1},
    {__NR_truncate, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_mkdirat, Kind::Write, 0, 1, -1, -1, -1, -1},
    {__NR_mknodat, Kind::Write, 0, 1, -1, -1, -1, -1},
    {__NR_unlinkat, Kind::Write, 0, 1, -1, -1, -1, -1},
#ifdef __NR_renameat
    {__NR_renameat, Kind::Write, 0, 1, 2, 3, -1, -1},
#endif
    {__NR_renameat2, Kind::Write, 0, 1, 2, 3, -1, -1},
    {__NR_linkat, Kind::Write, 0, 1, 2, 3, -1, -1},
    {__NR_symlinkat, Kind::Write, -1, -1, 1, 2, -1, -1},
    {__NR_fchmodat, Kind::Write, 0, 1, -1, -1, -1, -1},
    {__NR_fchmodat2, Kind::Write, 0, 1, -1, -1, -1, -1},
    {__NR_fchownat, Kind::Write, 0, 1, -1, -1, -1, -1},
    {__NR_utimensat, Kind::Write, 0, 1, -1, -1, -1, -1},
    {__NR_setxattr, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_lsetxattr, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_removexattr, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_lremovexattr, Kind::Write, -1, 0, -1, -1, -1, -1},
    {__NR_getxattr, Kind::Read, -1, 0, -1, -1, -1, -1},
    {__NR_lgetxattr, Kind::Read, -1, 0, -1, -1, -1, -1},
    {__NR_listxattr, Kind::Read, -1, 0, -1, -1, -1, -1},
    {__NR_llistxattr, Kind::Read, -1, 0, -1, -1, -1, -1},
    {__NR_inotify_add_watch, Kind::Read, -1, 1, -1, -1, -1, -1},
    {__NR_fchmod, Kind::FdWrite, 0, -1, -1, -1, -1, -1},
    {__NR_fchown, Kind::FdWrite, 0, -1, -1, -1, -1, -1},
    {__NR_fsetxattr, Kind::FdWrite, 0, -1, -1, -1, -1, -1},
    {__NR_fremovexattr, Kind::FdWrite, 0, -1, -1, -1, -1, -1},
    {__NR_ftruncate, Kind::FdWrite, 0, -1, -1, -1, -1, -1},
    {__NR_fallocate, Kind::FdWrite, 0, -1, -1, -1, -1, -1},
    // Source (or the tree to clone) and target; open_tree always stops, even with AT_EMPTY_PATH (its fd decides).
    {__NR_mount, Kind::Mount, -1, 0, -1, 1, -1, -1},
    {__NR_open_tree, Kind::Mount, 0, 1, -1, -1, -1, -1},
    // Credentials: the tracer answers a stat only for a process with its own (StoredMode in tracer.cc).
    {__NR_setuid, Kind::Creds, -1, -1, -1, -1, -1, -1},
    {__NR_setgid, Kind::Creds, -1, -1, -1, -1, -1, -1},
    {__NR_setreuid, Kind::Creds, -1, -1, -1, -1, -1, -1},
    {__NR_setregid, Kind::Creds, -1, -1, -1, -1, -1, -1},
    {__NR_setresuid, Kind::Creds, -1, -1, -1, -1, -1, -1},
    {__NR_setresgid, Kind::Creds, -1, -1, -1, -1, -1, -1},
    {__NR_setfsuid, Kind::Creds, -1, -1, -1, -1, -1, -1},
    {__NR_setfsgid, Kind::Creds, -1, -1, -1, -1, -1, -1},
    {__NR_setgroups, Kind::Creds, -1, -1, -1, -1, -1, -1},
    {__NR_capset, Kind::Creds, -1, -1, -1, -1, -1, -1},
};

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif
// Refused with ENOSYS by the filter: io_uring's path operations (openat, statx, unlinkat ...) run in the kernel
// without any system call the tracer could see. Programs fall back to plain calls, as on kernels without it.
static const long kRefused[] = {__NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register};

#if defined(__x86_64__)
static const uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
static const uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "ucvmfs tracer: unsupported architecture (x86_64 and aarch64 are supported)"
#endif

}  // namespace ucvmfs
