/*
 * The connector's in-process fast path, preloaded into dynamically linked programs (LD_PRELOAD).
 *
 * Every path system call costs a ptrace stop (~60 µs here) when it goes through the kernel's seccomp filter.
 * This library answers the common libc entry points (open, stat, statx, access, readlink, getcwd, chdir,
 * opendir, fopen) in-process instead: paths outside /cvmfs, and /cvmfs paths whose shadow-tree entries are
 * already complete (marker files written by the library), go to the kernel through a syscall gate at a fixed
 * address that the seccomp filter lets through without a stop. Anything else (a first access, a symlink to
 * follow, `..`, a repository not yet opened) is made through libc's ordinary syscall(), so the tracer sees it
 * and does exactly what it does for programs without this library (static ones, raw system calls, the dynamic
 * loader). The gate grants nothing a program could not do itself: it only skips the stop.
 */
#define _GNU_SOURCE
/* Both the plain and the 64 names are defined here, so no header may redirect one to the other. */
#undef _FILE_OFFSET_BITS
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "gate.h"
#include "modes.h"
#include "paths.h"

#if defined(__x86_64__)

typedef long (*gate_fn)(long nr, long a, long b, long c, long d, long e);

static gate_fn gate;
static char session[PATH_MAX], base[PATH_MAX];
static int recording;
static size_t session_len, base_len;

/* The gate: moves the C arguments into the syscall registers, then `syscall; ret`. */
static const unsigned char gate_code[] = {
    0x48, 0x89, 0xf8, /* mov rax, rdi */
    0x48, 0x89, 0xf7, /* mov rdi, rsi */
    0x48, 0x89, 0xd6, /* mov rsi, rdx */
    0x48, 0x89, 0xca, /* mov rdx, rcx */
    0x4d, 0x89, 0xc2, /* mov r10, r8 */
    0x4d, 0x89, 0xc8, /* mov r8, r9 */
    0x0f, 0x05,       /* syscall */
    0xc3,             /* ret */
};

__attribute__((constructor)) static void ucvmfs_preload_init(void) {
  const char *s = getenv("UCVMFS_SESSION"), *b = getenv("UCVMFS_SHADOW");
  if (!s || !b || strlen(s) >= sizeof session || strlen(b) >= sizeof base) return;
  /* A child process inherits the mapping (fork) or maps it again (exec): reuse it when it is already ours. */
  void *p = mmap((void *)UCVMFS_GATE_ADDR, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) {
    if (errno == EEXIST && memcmp((void *)UCVMFS_GATE_ADDR, gate_code, sizeof gate_code) == 0) p = (void *)UCVMFS_GATE_ADDR;
    else return;
  } else {
    if (p != (void *)UCVMFS_GATE_ADDR) return;
    memcpy(p, gate_code, sizeof gate_code);
    if (mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0) return;
  }
  /* In another mount namespace (a container the job started) a path outside /cvmfs may lead into a bind of the
   * shadow tree, which only the tracer recognizes (addon/container.h): there every call goes to the tracer. */
  const char *ns = getenv("UCVMFS_MNTNS");
  if (ns) {
    struct stat st;
    long r = ((gate_fn)p)(SYS_newfstatat, AT_FDCWD, (long)"/proc/self/ns/mnt", (long)&st, 0, 0);
    if (r != 0 || (unsigned long long)st.st_ino != strtoull(ns, NULL, 10)) return;
  }
  strcpy(session, s);
  strcpy(base, b);
  recording = getenv("UCVMFS_RECORD") != NULL;
  session_len = strlen(s);
  base_len = strlen(b);
  gate = (gate_fn)p;
}

/* The tracer sets this byte of the gate page in a process whose system calls a tracer of the job watches
 * (strace): its calls then all go to the kernel as the program made them (no gate), so that the watcher sees
 * /cvmfs paths, not the shadow tree, and none of this library's own look-ups. */
static int gate_open(void) { return gate && !((volatile const unsigned char *)UCVMFS_GATE_ADDR)[UCVMFS_GATE_CLOSED]; }

static long ret(long r) {
  if (r < 0 && r > -4096) {
    errno = (int)-r;
    return -1;
  }
  return r;
}

/* ---- The shadow area ---- */

/* Answers that never change within a session are remembered: repository → revision directory, and markers
 * found (markers are only ever added). Lock-free: slots are written once, whole, with atomic stores. */
static int revision_dir_uncached(const char *fqrn, size_t n, char *out, size_t size);
#define REVS 16
static struct { char fqrn[256]; char rev[PATH_MAX]; } revs[REVS];
static int nrevs;

#define MARKS 16384
static uint64_t marks[MARKS];

static uint64_t fnv(const char *a, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)a[i]) * 0x100000001b3ULL;
  return h;
}

static int mark_known(uint64_t h) {
  for (size_t i = 0; i < 8; i++) {
    uint64_t v = __atomic_load_n(&marks[(h + i) % MARKS], __ATOMIC_RELAXED);
    if (v == h) return 1;
    if (v == 0) return 0;
  }
  return 0;
}

static void mark_remember(uint64_t h) {
  for (size_t i = 0; i < 8; i++) {
    uint64_t expected = 0;
    if (__atomic_compare_exchange_n(&marks[(h + i) % MARKS], &expected, h, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED) || expected == h) return;
  }
}

/* The revision directory of a mounted repository (the session's link to it), or 0. */
static int revision_dir(const char *fqrn, size_t n, char *out, size_t size) {
  int have = __atomic_load_n(&nrevs, __ATOMIC_ACQUIRE);
  for (int i = 0; i < have; i++) {
    if (strlen(revs[i].fqrn) == n && memcmp(revs[i].fqrn, fqrn, n) == 0) {
      if (strlen(revs[i].rev) >= size) return 0;
      strcpy(out, revs[i].rev);
      return 1;
    }
  }
  int found = revision_dir_uncached(fqrn, n, out, size);
  if (found && n < sizeof revs[0].fqrn && strlen(out) < sizeof revs[0].rev) {
    int slot = __atomic_fetch_add(&nrevs, 0, __ATOMIC_RELAXED);
    if (slot < REVS && __atomic_compare_exchange_n(&nrevs, &slot, slot + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
      memcpy(revs[slot].fqrn, fqrn, n);
      revs[slot].fqrn[n] = 0;
      strcpy(revs[slot].rev, out);
    }
  }
  return found;
}

static int revision_dir_uncached(const char *fqrn, size_t n, char *out, size_t size) {
  char link[PATH_MAX];
  if (session_len + 1 + n + 1 > sizeof link) return 0;
  memcpy(link, session, session_len);
  link[session_len] = '/';
  memcpy(link + session_len + 1, fqrn, n);
  link[session_len + 1 + n] = 0;
  long r = gate(SYS_readlinkat, AT_FDCWD, (long)link, (long)out, (long)size - 1, 0);
  if (r <= 0) return 0;
  out[r] = 0;
  return 1;
}

static int exists(const char *p) {
  struct stat st;
  return gate(SYS_newfstatat, AT_FDCWD, (long)p, (long)&st, AT_SYMLINK_NOFOLLOW, 0) == 0;
}

static int marked_on_disk(const char *rev, char kind, const char *rpath, size_t rlen);

/* Whether the marker `kind` (l: listed, f: content written) exists for a repository path. */
static int marked(const char *rev, char kind, const char *rpath, size_t rlen) {
  /* Recording an access profile (UCVMFS_RECORD): the tracer must hear of every path, so nothing counts as done. */
  if (recording) return 0;
  uint64_t h = fnv(rpath, rlen, fnv(&kind, 1, fnv(rev, strlen(rev), 0xcbf29ce484222325ULL)));
  if (h == 0) h = 1;
  if (mark_known(h)) return 1;
  if (!marked_on_disk(rev, kind, rpath, rlen)) return 0;
  mark_remember(h);
  return 1;
}

static int marked_on_disk(const char *rev, char kind, const char *rpath, size_t rlen) {
  char m[PATH_MAX];
  return ucvmfs_marker(rev, kind, rpath, rlen, m, sizeof m) && exists(m);
}

enum need { NEED_STAT, NEED_LSTAT, NEED_OPEN, NEED_LIST };
enum route { NATIVE, REWRITTEN, TRACER };

/* The directory a relative path starts from: the cwd, or what `dirfd` names (the kernel's view). Its length, or <= 0. */
static long base_dir(int dirfd, char *b, size_t bsz) {
  long r;
  if (dirfd == AT_FDCWD) {
    r = gate(SYS_getcwd, (long)b, bsz, 0, 0, 0);
  } else {
    char fdp[64];
    snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", dirfd);
    r = gate(SYS_readlinkat, AT_FDCWD, (long)fdp, (long)b, bsz - 1, 0);
    if (r > 0) b[r] = 0;
  }
  return r;
}

/*
 * Decides where a call goes. NATIVE: as given, through the gate. REWRITTEN: through the gate with `out`.
 * TRACER: through libc's syscall(), which stops in the tracer (first accesses and everything unusual).
 */
/* Whether a path (or a relative name) is plain: no `.`/`..` components, no doubled or trailing slash. */
static int plain(const char *p) {
  size_t n = strlen(p);
  return n > 0 && p[0] != '.' && !strstr(p, "/.") && !strstr(p, "//") && p[n - 1] != '/';
}

/* The shadow tree's answer for `rpath` (a plain repository path, "/" for the top) in revision directory `rev`,
 * whose real path is `out`. */
static enum route decide(const char *rev, const char *rpath, enum need need, const char *out) {
  size_t rlen = strlen(rpath);
  /* The parent directory must be listed, or the name made (`n`, or `f`: a file filled at once) or found absent
   * (`a`) on its own. */
  int listed = 1;
  if (rlen > 1) {
    const char *last = strrchr(rpath, '/');
    size_t plen = last == rpath ? 1 : (size_t)(last - rpath);
    listed = marked(rev, 'l', rpath, plen);
    if (!listed) {
      if (marked(rev, 'a', rpath, rlen)) return REWRITTEN; /* the kernel answers ENOENT */
      if (!marked(rev, 'n', rpath, rlen) && !marked(rev, 'f', rpath, rlen)) return TRACER;
    }
  }
  struct stat st;
  long r = gate(SYS_newfstatat, AT_FDCWD, (long)out, (long)&st, AT_SYMLINK_NOFOLLOW, 0);
  if (r == -ENOENT) return listed ? REWRITTEN : TRACER; /* the kernel answers ENOENT */
  if (r != 0) return TRACER;
  if (S_ISLNK(st.st_mode)) return need == NEED_LSTAT ? REWRITTEN : TRACER;
  if (S_ISDIR(st.st_mode)) return marked(rev, 'l', rpath, rlen) ? REWRITTEN : TRACER;
  if (S_ISREG(st.st_mode) && need == NEED_OPEN) return st.st_size == 0 || marked(rev, 'f', rpath, rlen) ? REWRITTEN : TRACER;
  return REWRITTEN;
}

static int in_shadow_area(const char *real);

/* Whether `p` goes through one of /proc's magic links into the shadow area, or through a root link into /cvmfs
 * (paths.h: ucvmfs_magic_link): the tracer prepares what the kernel would reach there. */
static int through_magic_link(const char *p) {
  char link[64], target[PATH_MAX];
  const char *rest;
  if (!ucvmfs_magic_link(p, link, sizeof link, &rest) || !*rest) return 0; /* the link itself: as before */
  long n = gate(SYS_readlinkat, AT_FDCWD, (long)link, (long)target, sizeof target - 1, 0);
  if (n <= 0) return 0;
  target[n] = 0;
  size_t l = strlen(link);
  return in_shadow_area(target) || (l >= 5 && strcmp(link + l - 5, "/root") == 0 && strstr(rest, "/cvmfs") == rest);
}

/*
 * A pointer the compiler may not assume non-NULL: glibc declares the paths of stat, open, access ... nonnull, and
 * GCC would drop a NULL test after them, where the kernel answers EFAULT (or, with AT_EMPTY_PATH, uses the fd).
 */
static inline const char *opaque(const char *p) {
  __asm__("" : "+r"(p));
  return p;
}

/*
 * Decides where a call goes. NATIVE: as given, through the gate. REWRITTEN: through the gate with `out`.
 * TRACER: through libc's syscall(), which stops in the tracer (first accesses and everything unusual).
 */
static enum route route(int dirfd, const char *p, enum need need, char *out, size_t outsz) {
  /* A NULL path is the kernel's to judge (EFAULT; with AT_EMPTY_PATH, the descriptor since Linux 6.11). */
  if (!opaque(p) || !gate_open()) return TRACER;
  if (!*p) return NATIVE;
  if (p[0] != '/') {
    /* Relative: as given unless the base directory is in the shadow area (or the name may climb into /cvmfs). */
    char b[PATH_MAX];
    long r = base_dir(dirfd, b, sizeof b);
    if (r <= 0) return TRACER;
    if (strncmp(b, session, session_len) == 0) return TRACER;
    if (strncmp(b, base, base_len) == 0) {
      /* Inside a revision directory (find, fts, openat on a directory handle): decide as for its /cvmfs path. */
      if (strncmp(b + base_len, "/rev/", 5) != 0 || !plain(p)) return TRACER;
      const char *dir = b + base_len + 5, *end = strchr(dir, '/');
      size_t revlen = end ? (size_t)(end - b) : strlen(b);
      if (!memchr(dir, '@', revlen - (size_t)(dir - b)) || (revlen >= 7 && memcmp(b + revlen - 7, ".hidden", 7) == 0)) return TRACER;
      char rev[PATH_MAX], rpath[PATH_MAX];
      if (revlen >= sizeof rev) return TRACER;
      memcpy(rev, b, revlen);
      rev[revlen] = 0;
      int n = snprintf(rpath, sizeof rpath, "%s/%s", b + revlen, p);
      int m = snprintf(out, outsz, "%s/%s", b, p);
      if (n < 0 || (size_t)n >= sizeof rpath || m < 0 || (size_t)m >= outsz) return TRACER;
      return decide(rev, rpath, need, out);
    }
    if (strstr(p, "..")) return TRACER;
    /* From `/`, `cvmfs/x`, `./cvmfs/x`, `.//cvmfs`: /cvmfs. */
    if (b[0] == '/' && b[1] == 0) {
      const char *q = p;
      while (*q == '/' || (q[0] == '.' && (q[1] == '/' || q[1] == 0))) q++;
      if (strncmp(q, "cvmfs", 5) == 0 && (q[5] == '/' || q[5] == 0)) return TRACER;
    }
    return NATIVE;
  }
  if ((p[1] == 'p' || p[1] == 'd') && through_magic_link(p)) return TRACER;
  /* A shadow path the kernel revealed (/proc/self/maps): the tracer reads it as its /cvmfs path. */
  if (strncmp(p, base, base_len) == 0 && in_shadow_area(p)) return TRACER;
  if (strncmp(p, "/cvmfs", 6) != 0 || (p[6] != '/' && p[6] != 0)) return strstr(p, "/cvmfs") ? TRACER : NATIVE;
  if (p[6] == 0 || !plain(p + 1)) return TRACER;
  const char *fqrn = NULL;
  size_t flen = ucvmfs_repo_of(p, &fqrn);
  const char *slash = fqrn[flen] ? fqrn + flen : NULL;
  if (!memchr(fqrn, '.', flen)) {
    /* No repository (`/cvmfs/lib`, which Python probes): the session's /cvmfs has no such name, ENOENT at once. */
    int n = snprintf(out, outsz, "%s%s", session, p + 6);
    return n < 0 || (size_t)n >= outsz ? TRACER : REWRITTEN;
  }
  char rev[PATH_MAX];
  if (!revision_dir(fqrn, flen, rev, sizeof rev)) return TRACER;
  if (!ucvmfs_in_revision(rev, slash ? slash : "", out, outsz)) return TRACER;
  return decide(rev, slash ? slash : "/", need, out);
}

/* The /cvmfs form of a real path in the shadow area, written over `p` (size `size`); 0 if not there. */
static int virtualize(char *p, size_t size) {
  char tmp[PATH_MAX];
  if (!ucvmfs_virtualize(p, session, session_len, base, base_len, tmp, sizeof tmp) || strlen(tmp) + 1 > size) return 0;
  strcpy(p, tmp);
  return 1;
}

/* Whether a real path is in the shadow area (the revision trees and their markers, the session's /cvmfs); other
 * sessions' directories are not (a nested `ucvmfs exec` makes its own there), as in the tracer. */
static int in_shadow_area(const char *real) {
  return (strncmp(real, base, base_len) == 0 && (real[base_len] == '/' || real[base_len] == 0) &&
          !ucvmfs_under(real + base_len, "/sessions", 9)) ||
         (strncmp(real, session, session_len) == 0 && (real[session_len] == '/' || real[session_len] == 0));
}

static int fd_in_shadow_area(long fd) {
  char link[64], real[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%ld", fd);
  long n = gate(SYS_readlinkat, AT_FDCWD, (long)link, (long)real, sizeof real - 1, 0);
  if (n <= 0) return 0;
  real[n] = 0;
  return in_shadow_area(real);
}

/*
 * Whether opening (dirfd, p) to write would reach the shadow tree by a path outside /cvmfs (a /proc/self/fd
 * link, a shadow path read from /proc/self/maps, a symlink to one), as the kernel resolves it. A name that does
 * not exist yet is judged by its directory.
 */
static int targets_shadow(int dirfd, const char *p, int follow) {
  long fd = gate(SYS_openat, dirfd, (long)p, O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW), 0, 0);
  if (fd == -ENOENT) {
    char dir[PATH_MAX];
    const char *slash = strrchr(p, '/');
    if (!slash) {
      strcpy(dir, ".");
    } else {
      size_t n = slash == p ? 1 : (size_t)(slash - p);
      if (n >= sizeof dir) return 0;
      memcpy(dir, p, n);
      dir[n] = 0;
    }
    fd = gate(SYS_openat, dirfd, (long)dir, O_PATH | O_CLOEXEC | O_DIRECTORY, 0, 0);
  }
  if (fd < 0) return 0;
  int in = fd_in_shadow_area(fd);
  gate(SYS_close, fd, 0, 0, 0, 0);
  return in;
}

/* ---- Stored modes (addon/modes.h) ---- */

/* The stored mode of a shadow entry at the real path `real` whose on-disk mode is `disk`. */
static unsigned stored_mode_at(const char *real, unsigned disk, int follow) {
  if (!ucvmfs_mode_marked(disk)) return disk;
  char v[8];
  long n = gate(follow ? SYS_getxattr : SYS_lgetxattr, (long)real, (long)UCVMFS_MODE_XATTR, (long)v, sizeof v, 0);
  return ucvmfs_stored_mode(disk, v, n);
}

/* Whether a file on device `dev` may be in the shadow area: others are not looked up (no readlink per fstat). */
static int on_shadow_device(dev_t dev) {
  static dev_t shadow_dev;
  static int known; /* 0: not looked at yet, 1: known, 2: unknown (every descriptor is looked up) */
  int k = __atomic_load_n(&known, __ATOMIC_ACQUIRE);
  if (!k) {
    struct stat st;
    if (gate(SYS_newfstatat, AT_FDCWD, (long)base, (long)&st, 0, 0) == 0) {
      shadow_dev = st.st_dev;
      k = 1;
    } else {
      k = 2;
    }
    __atomic_store_n(&known, k, __ATOMIC_RELEASE);
  }
  return k == 2 || dev == shadow_dev;
}

/* The stored mode of a shadow entry open as `fd` whose on-disk mode is `disk`. */
static unsigned stored_mode_of_shadow_fd(long fd, unsigned disk) {
  if (!ucvmfs_mode_marked(disk)) return disk;
  char v[8];
  long n = gate(SYS_fgetxattr, fd, (long)UCVMFS_MODE_XATTR, (long)v, sizeof v, 0);
  return ucvmfs_stored_mode(disk, v, n);
}

/*
 * Whether a descriptor whose fstat gave `st` (on the shadow's file system) is in the shadow area, remembered by a
 * fingerprint of its inode number and ctime (a reused inode number comes with another ctime): a program that
 * fstats in a loop pays the readlink once (about 4 µs here, against 1.3 µs for the fstat itself).
 */
#define SHADOW_SEEN 256
static uint64_t shadow_seen[SHADOW_SEEN];

static int shadow_inode(long fd, uint64_t ino, int64_t ctime_sec, uint32_t ctime_nsec) {
  uint64_t fp = ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)ctime_sec * 0xC2B2AE3D27D4EB4Full ^ (uint64_t)ctime_nsec * 0x165667B19E3779F9ull;
  uint64_t key = (fp & ~1ull) | 2; /* never 0: an empty slot matches nothing */
  uint64_t *slot = &shadow_seen[(fp >> 40) % SHADOW_SEEN];
  uint64_t v = __atomic_load_n(slot, __ATOMIC_RELAXED);
  if ((v & ~1ull) == key) return (int)(v & 1);
  int in = fd_in_shadow_area(fd);
  __atomic_store_n(slot, key | (uint64_t)in, __ATOMIC_RELAXED);
  return in;
}

/*
 * What a stat of a descriptor shows of a shadow entry, as a stat by path does: its stored mode and the genuine
 * client's times (addon/modes.h), so that a program comparing the two (tar's "file changed as we read it") sees
 * one entry. Descriptors of anything else keep the kernel's answer.
 */
static void shadow_fd_stat(long fd, struct stat *st) {
  if (fd < 0 || !on_shadow_device(st->st_dev) || !shadow_inode(fd, st->st_ino, st->st_ctim.tv_sec, (uint32_t)st->st_ctim.tv_nsec)) return;
  st->st_mode = stored_mode_of_shadow_fd(fd, st->st_mode);
  ucvmfs_genuine_times(st);
}

/* The same for statx (called with STATX_INO and STATX_CTIME asked, so that the answer can be remembered too). */
static void shadow_fd_statx(long fd, struct statx *x) {
  if (fd < 0 || !on_shadow_device(makedev(x->stx_dev_major, x->stx_dev_minor))) return;
  int known = (x->stx_mask & (STATX_INO | STATX_CTIME)) == (STATX_INO | STATX_CTIME);
  if (!(known ? shadow_inode(fd, x->stx_ino, x->stx_ctime.tv_sec, x->stx_ctime.tv_nsec) : fd_in_shadow_area(fd))) return;
  if (x->stx_mask & STATX_MODE) x->stx_mode = (uint16_t)stored_mode_of_shadow_fd(fd, x->stx_mode);
  ucvmfs_genuine_statx_times(x);
}

/* ---- Symlinks from outside into /cvmfs ---- */

static long lmode_gate(const char *p) {
  struct stat st;
  long r = gate(SYS_newfstatat, AT_FDCWD, (long)p, (long)&st, AT_SYMLINK_NOFOLLOW, 0);
  return r < 0 ? r : (long)st.st_mode;
}

static long readlink_gate(const char *p, char *buf, size_t n) {
  return gate(SYS_readlinkat, AT_FDCWD, (long)p, (long)buf, (long)n, 0);
}

/*
 * After the kernel's ENOENT for a path outside /cvmfs (`res`): whether the path passes through a symlink into
 * /cvmfs (~/sw -> /cvmfs/<fqrn>/sw), and then its /cvmfs form in `v`. Calls that succeed never get here.
 */
static int through_link(long res, int dirfd, const char *p, int follow, char *v, size_t vsz) {
  p = opaque(p);
  if (res != -ENOENT || !p || !*p || strncmp(p, "/proc/", 6) == 0) return 0;
  char abs[2 * PATH_MAX + 2];
  if (p[0] == '/') {
    if (strlen(p) >= sizeof abs) return 0;
    strcpy(abs, p);
  } else {
    char b[PATH_MAX];
    long r = base_dir(dirfd, b, sizeof b);
    if (r <= 0 || b[0] != '/' || (size_t)snprintf(abs, sizeof abs, "%s/%s", b, p) >= sizeof abs) return 0;
  }
  return ucvmfs_link_into_root(abs, follow, v, vsz, lmode_gate, readlink_gate);
}

/* ---- The entry points ---- */

static int open_common(int dirfd, const char *p, int flags, mode_t mode) {
  char out[PATH_MAX];
  /* O_PATH opens neither reads nor writes (the kernel ignores the other flags; before Linux 5.6 it made a file of
   * O_PATH|O_TMPFILE, so that pair goes to the tracer, which takes O_TMPFILE out). */
  if ((flags & O_PATH) && UCVMFS_IS_TMPFILE(flags)) return (int)syscall(SYS_openat, dirfd, p, flags, mode);
  int changes = !(flags & O_PATH) && ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)));
  enum route r = route(dirfd, p, NEED_OPEN, out, sizeof out);
  int follow = !(flags & O_NOFOLLOW) && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
  if (changes && r == NATIVE && targets_shadow(dirfd, p, follow)) {
    errno = EROFS;
    return -1;
  }
  /* A /cvmfs path opened to change it is the tracer's to judge, in the order a read-only mount answers (ENOENT,
   * EEXIST, EISDIR before EROFS; O_CREAT of an existing name opens it for reading): addon/readonly.h. */
  if (r == TRACER || (r == REWRITTEN && changes)) return (int)syscall(SYS_openat, dirfd, p, flags, mode);
  long res = gate(SYS_openat, dirfd, (long)(r == REWRITTEN ? out : p), flags, mode, 0);
  char v[PATH_MAX];
  if (r == NATIVE && through_link(res, dirfd, p, follow, v, sizeof v)) return open_common(AT_FDCWD, v, flags, mode);
  return (int)ret(res);
}

#define MODE_ARG(flags)                              \
  mode_t mode = 0;                                  \
  if (((flags) & O_CREAT) || UCVMFS_IS_TMPFILE(flags)) { \
    va_list ap;                                     \
    va_start(ap, flags);                            \
    mode = va_arg(ap, mode_t);                      \
    va_end(ap);                                     \
  }

int open(const char *p, int flags, ...) { MODE_ARG(flags) return open_common(AT_FDCWD, p, flags, mode); }
int open64(const char *p, int flags, ...) { MODE_ARG(flags) return open_common(AT_FDCWD, p, flags, mode); }
int openat(int d, const char *p, int flags, ...) { MODE_ARG(flags) return open_common(d, p, flags, mode); }
int openat64(int d, const char *p, int flags, ...) { MODE_ARG(flags) return open_common(d, p, flags, mode); }
int __open_2(const char *p, int flags) { return open_common(AT_FDCWD, p, flags, 0); }
int __open64_2(const char *p, int flags) { return open_common(AT_FDCWD, p, flags, 0); }
int __openat_2(int d, const char *p, int flags) { return open_common(d, p, flags, 0); }
int __openat64_2(int d, const char *p, int flags) { return open_common(d, p, flags, 0); }

static int stat_common(int dirfd, const char *p, struct stat *st, int flags) {
  char out[PATH_MAX];
  p = opaque(p);
  enum route r = route(dirfd, p, (flags & AT_SYMLINK_NOFOLLOW) ? NEED_LSTAT : NEED_STAT, out, sizeof out);
  if ((!p || !*p) && (flags & AT_EMPTY_PATH)) r = NATIVE;
  if (r == TRACER) return (int)syscall(SYS_newfstatat, dirfd, p, st, flags);
  long res = gate(SYS_newfstatat, dirfd, (long)(r == REWRITTEN ? out : p), (long)st, flags, 0);
  if (res == 0 && r == REWRITTEN) {
    st->st_mode = stored_mode_at(out, st->st_mode, !(flags & AT_SYMLINK_NOFOLLOW));
    st->st_blocks = (blkcnt_t)ucvmfs_genuine_blocks(st->st_size);
    ucvmfs_genuine_times(st);
  } else if (res == 0 && (!p || !*p)) {
    shadow_fd_stat(dirfd, st);
  }
  char v[PATH_MAX];
  if (r == NATIVE && through_link(res, dirfd, p, !(flags & AT_SYMLINK_NOFOLLOW), v, sizeof v)) return stat_common(AT_FDCWD, v, st, flags);
  return (int)ret(res);
}

int stat(const char *p, struct stat *st) { return stat_common(AT_FDCWD, p, st, 0); }
int stat64(const char *p, struct stat64 *st) { return stat_common(AT_FDCWD, p, (struct stat *)st, 0); }
int lstat(const char *p, struct stat *st) { return stat_common(AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW); }
int lstat64(const char *p, struct stat64 *st) { return stat_common(AT_FDCWD, p, (struct stat *)st, AT_SYMLINK_NOFOLLOW); }
int fstatat(int d, const char *p, struct stat *st, int f) { return stat_common(d, p, st, f); }
int fstatat64(int d, const char *p, struct stat64 *st, int f) { return stat_common(d, p, (struct stat *)st, f); }
int __xstat(int v, const char *p, struct stat *st) { (void)v; return stat_common(AT_FDCWD, p, st, 0); }
int __xstat64(int v, const char *p, struct stat64 *st) { (void)v; return stat_common(AT_FDCWD, p, (struct stat *)st, 0); }
int __lxstat(int v, const char *p, struct stat *st) { (void)v; return stat_common(AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW); }
int __lxstat64(int v, const char *p, struct stat64 *st) { (void)v; return stat_common(AT_FDCWD, p, (struct stat *)st, AT_SYMLINK_NOFOLLOW); }
int __fxstatat(int v, int d, const char *p, struct stat *st, int f) { (void)v; return stat_common(d, p, st, f); }
int __fxstatat64(int v, int d, const char *p, struct stat64 *st, int f) { (void)v; return stat_common(d, p, (struct stat *)st, f); }

/* fstat never stops in the tracer; here it shows the stored mode of a shadow file too (one check of marked ones). */
static int fstat_common(int fd, struct stat *st) {
  if (!gate_open()) return (int)syscall(SYS_fstat, fd, st);
  long res = gate(SYS_fstat, fd, (long)st, 0, 0, 0);
  if (res == 0) shadow_fd_stat(fd, st);
  return (int)ret(res);
}

int fstat(int fd, struct stat *st) { return fstat_common(fd, st); }
int fstat64(int fd, struct stat64 *st) { return fstat_common(fd, (struct stat *)st); }
int __fxstat(int v, int fd, struct stat *st) { (void)v; return fstat_common(fd, st); }
int __fxstat64(int v, int fd, struct stat64 *st) { (void)v; return fstat_common(fd, (struct stat *)st); }

int statx(int dirfd, const char *p, int flags, unsigned int mask, struct statx *stx) {
  char out[PATH_MAX];
  p = opaque(p);
  enum route r = route(dirfd, p, (flags & AT_SYMLINK_NOFOLLOW) ? NEED_LSTAT : NEED_STAT, out, sizeof out);
  if ((!p || !*p) && (flags & AT_EMPTY_PATH)) r = NATIVE;
  if (r == TRACER) return (int)syscall(SYS_statx, dirfd, p, flags, mask, stx);
  /* With the mtime whatever the mask: the genuine times are made from it (addon/modes.h); a descriptor's with the
   * inode and ctime that tell whether it is a shadow entry. */
  unsigned asked = r == REWRITTEN ? mask | STATX_MTIME : (!p || !*p) ? mask | STATX_MTIME | STATX_INO | STATX_CTIME : mask;
  long res = gate(SYS_statx, dirfd, (long)(r == REWRITTEN ? out : p), flags, asked, (long)stx);
  if (res == 0 && r == REWRITTEN && (stx->stx_mask & STATX_MODE)) stx->stx_mode = (uint16_t)stored_mode_at(out, stx->stx_mode, !(flags & AT_SYMLINK_NOFOLLOW));
  else if (res == 0 && (!p || !*p)) shadow_fd_statx(dirfd, stx);
  if (res == 0 && r == REWRITTEN) {
    if (stx->stx_mask & STATX_BLOCKS) stx->stx_blocks = ucvmfs_genuine_blocks((long long)stx->stx_size);
    ucvmfs_genuine_statx_times(stx);
  }
  char v[PATH_MAX];
  if (r == NATIVE && through_link(res, dirfd, p, !(flags & AT_SYMLINK_NOFOLLOW), v, sizeof v)) return statx(AT_FDCWD, v, flags, mask, stx);
  return (int)ret(res);
}

static int access_common(int dirfd, const char *p, int mode) {
  char out[PATH_MAX];
  enum route r = route(dirfd, p, NEED_STAT, out, sizeof out);
  if (r == TRACER || (r == REWRITTEN && (mode & W_OK))) return (int)syscall(SYS_faccessat, dirfd, p, mode);
  long res = gate(SYS_faccessat, dirfd, (long)(r == REWRITTEN ? out : p), mode, 0, 0);
  char v[PATH_MAX];
  if (r == NATIVE && through_link(res, dirfd, p, 1, v, sizeof v)) return access_common(AT_FDCWD, v, mode);
  return (int)ret(res);
}

int access(const char *p, int mode) { return access_common(AT_FDCWD, p, mode); }
int faccessat(int d, const char *p, int mode, int flags) {
  if (flags) return (int)syscall(__NR_faccessat2, d, p, mode, flags);
  return access_common(d, p, mode);
}

static ssize_t readlink_common(int dirfd, const char *p, char *buf, size_t size) {
  char out[PATH_MAX];
  /* `/proc/<n>/exe`: the tracer knows the program a loader under /cvmfs runs (see ShownExe in tracer.cc). */
  p = opaque(p);
  buf = (char *)opaque(buf);
  size_t plen = p ? strlen(p) : 0;
  if (!buf) return syscall(SYS_readlinkat, dirfd, p, buf, size); /* the kernel's EFAULT */
  if (p && strncmp(p, "/proc/", 6) == 0 && plen > 10 && strcmp(p + plen - 4, "/exe") == 0) return syscall(SYS_readlinkat, dirfd, p, buf, size);
  if (p && (strncmp(p, "/proc/", 6) == 0 || strncmp(p, "/dev/fd/", 8) == 0 || strncmp(p, "/dev/std", 8) == 0)) {
    /* /proc links (and /dev/fd/N, /dev/stdin..., which lead there) reveal shadow paths: read the target, translate. */
    char t[PATH_MAX];
    long n = gate_open() ? gate(SYS_readlinkat, dirfd, (long)p, (long)t, sizeof t - 1, 0) : -ENOSYS;
    if (n == -ENOSYS) return syscall(SYS_readlinkat, dirfd, p, buf, size);
    if (n < 0) return ret(n);
    t[n] = 0;
    virtualize(t, sizeof t);
    size_t m = strlen(t) < size ? strlen(t) : size;
    memcpy(buf, t, m);
    return (ssize_t)m;
  }
  enum route r = route(dirfd, p, NEED_LSTAT, out, sizeof out);
  if (r == TRACER) return syscall(SYS_readlinkat, dirfd, p, buf, size);
  if (r == NATIVE) {
    long res = gate(SYS_readlinkat, dirfd, (long)p, (long)buf, (long)size, 0);
    char v[PATH_MAX];
    if (through_link(res, dirfd, p, 0, v, sizeof v)) return readlink_common(AT_FDCWD, v, buf, size);
    return ret(res);
  }
  char t[PATH_MAX];
  long n = gate(SYS_readlinkat, AT_FDCWD, (long)out, (long)t, sizeof t - 1, 0);
  if (n < 0) return ret(n);
  t[n] = 0;
  if (strncmp(t, ".//", 3) == 0) {
    /* A target into /cvmfs stored relative at its original length: resolve it next to the link. */
    char full[2 * PATH_MAX + 2];
    char *slash = strrchr(out, '/');
    if (slash) *slash = 0;
    snprintf(full, sizeof full, "%s/%s", out, t);
    ucvmfs_normalize(full);
    if (virtualize(full, sizeof full) && strlen(full) < sizeof t) strcpy(t, full);
  } else {
    virtualize(t, sizeof t);
  }
  size_t m = strlen(t) < size ? strlen(t) : size;
  memcpy(buf, t, m);
  return (ssize_t)m;
}

ssize_t readlink(const char *p, char *buf, size_t size) { return readlink_common(AT_FDCWD, p, buf, size); }
ssize_t readlinkat(int d, const char *p, char *buf, size_t size) { return readlink_common(d, p, buf, size); }

char *getcwd(char *buf, size_t size) {
  char t[PATH_MAX];
  int g = gate_open();
  long n = g ? gate(SYS_getcwd, (long)t, sizeof t, 0, 0, 0) : (long)syscall(SYS_getcwd, t, sizeof t);
  if (n < 0) {
    if (g) errno = (int)-n;
    return NULL;
  }
  virtualize(t, sizeof t);
  size_t len = strlen(t) + 1;
  if (!buf) {
    /* glibc: a size given with no buffer is the buffer's size (too small: ERANGE); 0 means as large as needed. */
    if (size > 0 && size < len) {
      errno = ERANGE;
      return NULL;
    }
    buf = malloc(size > len ? size : len);
    if (!buf) return NULL;
  } else if (size < len) {
    errno = size == 0 ? EINVAL : ERANGE;
    return NULL;
  }
  memcpy(buf, t, len);
  return buf;
}

int chdir(const char *p) {
  char out[PATH_MAX];
  enum route r = route(AT_FDCWD, p, NEED_LIST, out, sizeof out);
  if (r == TRACER) return (int)syscall(SYS_chdir, p);
  long res = gate(SYS_chdir, (long)(r == REWRITTEN ? out : p), 0, 0, 0, 0);
  char v[PATH_MAX];
  if (r == NATIVE && through_link(res, AT_FDCWD, p, 1, v, sizeof v)) return chdir(v);
  return (int)ret(res);
}

DIR *opendir(const char *p) {
  char out[PATH_MAX];
  int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  enum route r = route(AT_FDCWD, p, NEED_LIST, out, sizeof out);
  long res = r == TRACER ? 0 : gate(SYS_openat, AT_FDCWD, (long)(r == REWRITTEN ? out : p), flags, 0, 0);
  char v[PATH_MAX];
  if (r == NATIVE && through_link(res, AT_FDCWD, p, 1, v, sizeof v)) return opendir(v);
  int fd = r == TRACER ? (int)syscall(SYS_openat, AT_FDCWD, p, flags, 0) : (int)ret(res);
  if (fd < 0) return NULL;
  DIR *d = fdopendir(fd);
  if (!d) close(fd);
  return d;
}

/* Stored attributes are real ones on the shadow files; user.* names may be magic ones only the tracer knows. */
static ssize_t getxattr_common(const char *p, const char *name, void *v, size_t size, int follow) {
  char out[PATH_MAX];
  enum route r = route(AT_FDCWD, p, follow ? NEED_STAT : NEED_LSTAT, out, sizeof out);
  long nr = follow ? SYS_getxattr : SYS_lgetxattr;
  if (r == TRACER || (r == REWRITTEN && strncmp(name, "user.", 5) == 0)) return syscall(nr, p, name, v, size);
  long res = gate(nr, (long)(r == REWRITTEN ? out : p), (long)name, (long)v, (long)size, 0);
  char vp[PATH_MAX];
  if (r == NATIVE && through_link(res, AT_FDCWD, p, follow, vp, sizeof vp)) return getxattr_common(vp, name, v, size, follow);
  return ret(res);
}

ssize_t getxattr(const char *p, const char *n, void *v, size_t s) { return getxattr_common(p, n, v, s, 1); }
ssize_t lgetxattr(const char *p, const char *n, void *v, size_t s) { return getxattr_common(p, n, v, s, 0); }

static ssize_t listxattr_common(const char *p, char *list, size_t size, int follow) {
  char out[PATH_MAX];
  enum route r = route(AT_FDCWD, p, follow ? NEED_STAT : NEED_LSTAT, out, sizeof out);
  long nr = follow ? SYS_listxattr : SYS_llistxattr;
  if (r == TRACER) return syscall(nr, p, list, size);
  long res = gate(nr, (long)(r == REWRITTEN ? out : p), (long)list, (long)size, 0, 0);
  /* The stored-mode attribute is the connector's, not the repository's. */
  if (res > 0 && size > 0 && r == REWRITTEN) res = ucvmfs_hide_mode_xattr(list, res);
  char v[PATH_MAX];
  if (r == NATIVE && through_link(res, AT_FDCWD, p, follow, v, sizeof v)) return listxattr_common(v, list, size, follow);
  return ret(res);
}

/* Descriptor forms (cp -a and rsync -X copy attributes through them): the stored-mode attribute stays hidden. */
ssize_t fgetxattr(int fd, const char *name, void *v, size_t size) {
  if (!gate_open()) return syscall(SYS_fgetxattr, fd, name, v, size);
  if (strcmp(name, UCVMFS_MODE_XATTR) == 0 && fd_in_shadow_area(fd)) {
    errno = ENODATA;
    return -1;
  }
  return ret(gate(SYS_fgetxattr, fd, (long)name, (long)v, (long)size, 0));
}

ssize_t flistxattr(int fd, char *list, size_t size) {
  if (!gate_open()) return syscall(SYS_flistxattr, fd, list, size);
  long res = gate(SYS_flistxattr, fd, (long)list, (long)size, 0, 0);
  if (res > 0 && size > 0 && memmem(list, (size_t)res, UCVMFS_MODE_XATTR, sizeof UCVMFS_MODE_XATTR) && fd_in_shadow_area(fd))
    res = ucvmfs_hide_mode_xattr(list, res);
  return ret(res);
}

ssize_t listxattr(const char *p, char *l, size_t s) { return listxattr_common(p, l, s, 1); }
ssize_t llistxattr(const char *p, char *l, size_t s) { return listxattr_common(p, l, s, 0); }

static FILE *fopen_common(const char *p, const char *m) {
  int flags = 0;
  switch (m[0]) {
    case 'r': flags = O_RDONLY; break;
    case 'w': flags = O_WRONLY | O_CREAT | O_TRUNC; break;
    case 'a': flags = O_WRONLY | O_CREAT | O_APPEND; break;
    default: errno = EINVAL; return NULL;
  }
  for (const char *c = m + 1; *c && *c != ','; c++) {
    if (*c == '+') flags = (flags & ~O_ACCMODE) | O_RDWR;
    else if (*c == 'e') flags |= O_CLOEXEC;
    else if (*c == 'x') flags |= O_EXCL;
  }
  int fd = open_common(AT_FDCWD, p, flags, 0666);
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, m);
  if (!f) close(fd);
  return f;
}

/*
 * realpath: glibc's makes one internal readlink per component, which the preload cannot see and which would
 * each stop in the tracer (gcc's cc1 makes ~1,200 of them per compile, mostly under /usr). Paths that stay out
 * of /cvmfs and the shadow area are resolved here through the gate; the others by glibc, whose calls the tracer
 * translates.
 */
static char *(*next_realpath)(const char *, char *);

static char *libc_realpath(const char *p, char *resolved) {
  if (!next_realpath) next_realpath = (char *(*)(const char *, char *))dlsym(RTLD_NEXT, "realpath");
  return next_realpath ? next_realpath(p, resolved) : NULL;
}

static int outside(const char *p) {
  return strncmp(p, "/cvmfs", 6) != 0 && strncmp(p, base, base_len) != 0 && strncmp(p, session, session_len) != 0;
}

char *realpath(const char *p, char *resolved) {
  if (!p) {
    errno = EINVAL;
    return NULL;
  }
  if (!gate_open() || !*p) return libc_realpath(p, resolved);
  char rest[2 * PATH_MAX + 2], done[PATH_MAX];
  size_t dlen = 0;
  if (p[0] == '/') {
    if (strlen(p) >= sizeof rest) return libc_realpath(p, resolved);
    strcpy(rest, p);
  } else {
    char cwd[PATH_MAX];
    if (gate(SYS_getcwd, (long)cwd, sizeof cwd, 0, 0, 0) <= 0) return libc_realpath(p, resolved);
    if ((size_t)snprintf(rest, sizeof rest, "%s/%s", cwd, p) >= sizeof rest) return libc_realpath(p, resolved);
  }
  if (!outside(rest)) return libc_realpath(p, resolved);
  int links = 0;
  char *cur = rest;
  done[0] = 0;
  while (*cur) {
    while (*cur == '/') cur++;
    if (!*cur) break;
    char *end = strchr(cur, '/');
    size_t n = end ? (size_t)(end - cur) : strlen(cur);
    if (n == 1 && cur[0] == '.') {
      cur += n;
      continue;
    }
    if (n == 2 && cur[0] == '.' && cur[1] == '.') {
      while (dlen > 0 && done[dlen - 1] != '/') dlen--;
      if (dlen > 0) dlen--;
      done[dlen] = 0;
      cur += n;
      continue;
    }
    if (dlen + 1 + n >= sizeof done) {
      errno = ENAMETOOLONG;
      return NULL;
    }
    done[dlen] = '/';
    memcpy(done + dlen + 1, cur, n);
    dlen += 1 + n;
    done[dlen] = 0;
    cur += n;
    if (!outside(done)) return libc_realpath(p, resolved);
    struct stat st;
    long r = gate(SYS_newfstatat, AT_FDCWD, (long)done, (long)&st, AT_SYMLINK_NOFOLLOW, 0);
    if (r < 0) return (char *)(intptr_t)(ret(r), 0);
    if (S_ISLNK(st.st_mode)) {
      if (++links > 40) {
        errno = ELOOP;
        return NULL;
      }
      char target[PATH_MAX];
      long t = gate(SYS_readlinkat, AT_FDCWD, (long)done, (long)target, sizeof target - 1, 0);
      if (t < 0) return (char *)(intptr_t)(ret(t), 0);
      target[t] = 0;
      char next[2 * PATH_MAX + 2];
      if ((size_t)snprintf(next, sizeof next, "%s%s", target, cur) >= sizeof next) {
        errno = ENAMETOOLONG;
        return NULL;
      }
      if (target[0] == '/') {
        if (!outside(target)) return libc_realpath(p, resolved);
        dlen = 0;
      } else {
        while (dlen > 0 && done[dlen - 1] != '/') dlen--;
        if (dlen > 0) dlen--;
      }
      done[dlen] = 0;
      strcpy(rest, next);
      cur = rest;
    } else if (!S_ISDIR(st.st_mode) && *cur == '/') {
      /* Anything after a name that is no directory, a trailing slash too (`/etc/passwd/`), as glibc says. */
      errno = ENOTDIR;
      return NULL;
    }
  }
  if (dlen == 0) strcpy(done, "/");
  if (!resolved) return strdup(done);
  strcpy(resolved, done);
  return resolved;
}

char *canonicalize_file_name(const char *p) { return realpath(p, NULL); }
char *__realpath_chk(const char *p, char *resolved, size_t len) {
  (void)len;
  return realpath(p, resolved);
}

FILE *fopen(const char *p, const char *m) { return fopen_common(p, m); }
FILE *fopen64(const char *p, const char *m) { return fopen_common(p, m); }

#endif /* __x86_64__ */
