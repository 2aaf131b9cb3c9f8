/*
 * Stored modes, one implementation for the tracer (C++) and the preload library (C). The encoding is
 * lib/connector/modes.ts's: a shadow entry's on-disk mode is the stored mode's read and execute bits, plus S_ISVTX
 * when the stored mode has more (write, setuid, setgid or sticky bits); the stored mode is then `disk | 0200`
 * unless the attribute user.ucvmfs.mode (4 octal digits) names it. So a stat result without S_ISVTX is already
 * right, and one with it costs one getxattr. The attribute itself is hidden from programs. Also what a stat shows in
 * st_blocks.
 */
#pragma once

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define UCVMFS_MODE_XATTR "user.ucvmfs.mode"

/* Whether a shadow entry's on-disk mode stands for a stored mode that must be looked up. */
static inline int ucvmfs_mode_marked(unsigned mode) {
  return (mode & S_ISVTX) && (S_ISREG(mode) || S_ISDIR(mode));
}

/* The stored mode of a marked entry (type bits kept) from its attribute `attr` (`n` bytes; n < 0: none). */
static inline unsigned ucvmfs_stored_mode(unsigned disk, const char *attr, long n) {
  if (!ucvmfs_mode_marked(disk)) return disk;
  unsigned type = disk & S_IFMT;
  if (n == 4) {
    unsigned v = 0;
    int ok = 1;
    for (int i = 0; i < 4; i++) {
      if (attr[i] < '0' || attr[i] > '7') ok = 0;
      v = v * 8 + (unsigned)(attr[i] - '0');
    }
    if (ok) return type | v;
  }
  return type | (disk & 0555) | 0200;
}

/* O_TMPFILE, as the kernel tests it: glibc's __O_TMPFILE includes O_DIRECTORY, so `flags & __O_TMPFILE` is true of
 * every O_DIRECTORY open (coreutils' `O_PATH|O_DIRECTORY` probe of a destination among them). Its own bit: */
#define UCVMFS_TMPFILE_BIT 020000000
#define UCVMFS_IS_TMPFILE(flags) (((flags) & (UCVMFS_TMPFILE_BIT | O_DIRECTORY)) == (UCVMFS_TMPFILE_BIT | O_DIRECTORY))

/*
 * The genuine client's st_blocks for an entry whose size is `size` (cvmfs's DirectoryEntry::GetStatStructure: one
 * more than the size in 512-byte units, whatever the disk holds). A placeholder not yet filled is sparse and holds
 * no block, so without this `du` of a cold tree said almost nothing. Path-based stat calls show it; a descriptor's
 * fstat shows the disk's (it never stops in the tracer).
 */
static inline unsigned long long ucvmfs_genuine_blocks(long long size) {
  return 1 + (unsigned long long)(size < 0 ? 0 : size) / 512;
}

/*
 * The genuine client's times, for path-based stat calls as st_blocks: atime and ctime are the mtime
 * (GetStatStructure), and there is no birth time (FUSE without statx reports none). A shadow entry's ctime is when
 * it was made or filled, and its atime moves when it is read: git's index, `find -cmin` and `ls -lc` saw those.
 */
static inline int ucvmfs_same_time(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static inline int ucvmfs_genuine_times_shown(const struct stat *st) {
  return ucvmfs_same_time(&st->st_atim, &st->st_mtim) && ucvmfs_same_time(&st->st_ctim, &st->st_mtim);
}

static inline void ucvmfs_genuine_times(struct stat *st) {
  st->st_atim = st->st_mtim;
  st->st_ctim = st->st_mtim;
}

static inline int ucvmfs_same_statx_time(const struct statx_timestamp *a, const struct statx_timestamp *b) {
  return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static inline int ucvmfs_genuine_statx_times_shown(const struct statx *x) {
  if (x->stx_mask & STATX_BTIME) return 0;
  if (!(x->stx_mask & STATX_MTIME)) return 1;
  return (!(x->stx_mask & STATX_ATIME) || ucvmfs_same_statx_time(&x->stx_atime, &x->stx_mtime)) &&
         (!(x->stx_mask & STATX_CTIME) || ucvmfs_same_statx_time(&x->stx_ctime, &x->stx_mtime));
}

static inline void ucvmfs_genuine_statx_times(struct statx *x) {
  if (x->stx_mask & STATX_MTIME) {
    if (x->stx_mask & STATX_ATIME) x->stx_atime = x->stx_mtime;
    if (x->stx_mask & STATX_CTIME) x->stx_ctime = x->stx_mtime;
  }
  x->stx_mask &= ~(unsigned)STATX_BTIME;
  memset(&x->stx_btime, 0, sizeof x->stx_btime);
}

/* Removes the mode attribute's name from a listxattr answer (`n` bytes); the new length. */
static inline long ucvmfs_hide_mode_xattr(char *list, long n) {
  const size_t len = sizeof UCVMFS_MODE_XATTR; /* with its NUL */
  for (long i = 0; i < n;) {
    size_t l = strnlen(list + i, (size_t)(n - i)) + 1;
    if (l == len && memcmp(list + i, UCVMFS_MODE_XATTR, len) == 0) {
      memmove(list + i, list + i + l, (size_t)(n - i) - l);
      return n - (long)l;
    }
    i += (long)l;
  }
  return n;
}
