/*
 * Paths on the native side, one implementation for the tracer (C++) and the preload library (C): lexical
 * normalisation, and the resolution of a path outside /cvmfs that passes through a symlink into /cvmfs (a home
 * directory link, a site's /opt link), which the kernel answers with ENOENT since /cvmfs does not exist for it.
 * File-system access goes through callbacks: the preload library must make its calls through its gate.
 */
#pragma once

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#define UCVMFS_ROOT "/cvmfs"
#define UCVMFS_ROOT_LEN 6
#define UCVMFS_MAX_LINKS 40

/* Whether `p` is `prefix` (n bytes, no trailing slash) or a path below it. */
static inline int ucvmfs_under(const char *p, const char *prefix, size_t n) {
  return strncmp(p, prefix, n) == 0 && (p[n] == '/' || p[n] == 0);
}

/* Lexical normalisation of an absolute path, in place: no `.`, `..`, doubled or trailing slashes; `..` stops at
 * `/`. In place is safe: what is written never runs ahead of what is read. */
static inline void ucvmfs_normalize(char *p) {
  size_t o = 0;
  const char *s = p;
  while (*s) {
    while (*s == '/') s++;
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 0) break;
    if (n == 1 && s[0] == '.') {
    } else if (n == 2 && s[0] == '.' && s[1] == '.') {
      while (o > 0 && p[o - 1] != '/') o--;
      if (o > 0) o--;
    } else {
      p[o++] = '/';
      memmove(p + o, s, n);
      o += n;
    }
    s += n;
  }
  if (o == 0) p[o++] = '/';
  p[o] = 0;
}

/* The type bits of a path's lstat, or -errno; a symlink's target (length, or -errno). */
typedef long (*ucvmfs_lmode_fn)(const char *path);
typedef long (*ucvmfs_readlink_fn)(const char *path, char *buf, size_t size);

/*
 * Resolves the absolute path `path` component by component as the kernel would, and tells whether the
 * resolution reaches /cvmfs through a symlink: then the /cvmfs path (what is left of `path` appended, for the
 * connector to resolve further) is written to `out` and 1 is returned. 0: no symlink into /cvmfs on the way (a
 * component is missing before one, the path exists as it is, a loop, a name too long). `follow`: whether a
 * final symlink is followed. Meant for calls that already failed with ENOENT, so that others pay nothing.
 */
static inline int ucvmfs_link_into_root(const char *path, int follow, char *out, size_t outsz, ucvmfs_lmode_fn lmode,
                                        ucvmfs_readlink_fn rdlink) {
  char rest[2 * PATH_MAX + 2], done[PATH_MAX + 1], target[PATH_MAX + 1];
  size_t dlen = 0, plen = strlen(path);
  int links = 0;
  if (path[0] != '/' || plen >= sizeof rest) return 0;
  memcpy(rest, path, plen + 1);
  done[0] = 0;
  const char *cur = rest;
  for (;;) {
    while (*cur == '/') cur++;
    if (!*cur) return 0;
    const char *end = strchr(cur, '/');
    size_t n = end ? (size_t)(end - cur) : strlen(cur);
    const char *after = cur + n;
    if (n == 1 && cur[0] == '.') {
      cur = after;
      continue;
    }
    if (n == 2 && cur[0] == '.' && cur[1] == '.') {
      while (dlen > 0 && done[dlen - 1] != '/') dlen--;
      if (dlen > 0) dlen--;
      done[dlen] = 0;
      cur = after;
      continue;
    }
    if (dlen + 1 + n >= sizeof done) return 0;
    done[dlen] = '/';
    memcpy(done + dlen + 1, cur, n);
    dlen += 1 + n;
    done[dlen] = 0;
    if (ucvmfs_under(done, UCVMFS_ROOT, UCVMFS_ROOT_LEN)) {
      /* Only through a symlink: a path naming /cvmfs itself is the connector's already. */
      if (links == 0 || dlen + strlen(after) >= outsz) return 0;
      memcpy(out, done, dlen);
      strcpy(out + dlen, after);
      return 1;
    }
    long mode = lmode(done);
    if (mode < 0) return 0;
    int more = after[strspn(after, "/")] != 0 || *after == '/';
    if (!S_ISLNK((mode_t)mode) || !(more || follow)) {
      cur = after;
      continue;
    }
    if (++links > UCVMFS_MAX_LINKS) return 0;
    long t = rdlink(done, target, sizeof target - 1);
    if (t <= 0) return 0;
    target[t] = 0;
    size_t alen = strlen(after);
    if ((size_t)t + alen + 1 >= sizeof rest) return 0;
    /* The target replaces the link; what followed it follows the target. `after` lives in `rest`: move it first. */
    memmove(rest + t, after, alen + 1);
    memcpy(rest, target, (size_t)t);
    if (target[0] == '/') {
      dlen = 0;
    } else {
      while (dlen > 0 && done[dlen - 1] != '/') dlen--;
      if (dlen > 0) dlen--;
    }
    done[dlen] = 0;
    cur = rest;
  }
}
