/*
 * Paths on the native side, one implementation for the tracer (C++) and the preload library (C): lexical
 * normalisation; the mapping between /cvmfs paths and the shadow area (the repository a path names, where it
 * lives in a revision directory, which /cvmfs path a real path stands for, the marker files that say a listing
 * or a content is complete); and the resolution of a path outside /cvmfs that passes through a symlink into
 * /cvmfs (a home directory link, a site's /opt link), which the kernel answers with ENOENT since /cvmfs does not
 * exist for it. File-system access goes through callbacks: the preload library must make its calls through its
 * gate. The shadow area's layout is lib/connector/shadow.ts's: <base>/rev/<fqrn>@<root hash>/ (a revision's
 * tree), <...>.hidden/.cvmfs (its hidden /.cvmfs), <...>.state/<kind>-<md5> (markers), <base>/root/<fqrn> (link to
 * the newest revision), and the session's directory standing for /cvmfs itself.
 */
#pragma once

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>

#include "md5.h"

#define UCVMFS_ROOT "/cvmfs"
#define UCVMFS_ROOT_LEN 6
#define UCVMFS_MAX_LINKS 40

/* Whether `p` is `prefix` (n bytes, no trailing slash) or a path below it. */
static inline int ucvmfs_under(const char *p, const char *prefix, size_t n) {
  return strncmp(p, prefix, n) == 0 && (p[n] == '/' || p[n] == 0);
}

/*
 * A path that goes through one of /proc's magic links (`/proc/self/fd/N/...`, `/dev/fd/N/...`, `/proc/<pid>/cwd/...`,
 * `/proc/self/root/...`; `self`, `thread-self` or a pid): the link's own path in `link` (`/dev/fd/N` as
 * `/proc/self/fd/N`), and in *rest what follows it ("" or "/..."). The kernel follows such a link to whatever the
 * descriptor or directory is, the shadow tree included, without the name ever starting with /cvmfs: reads there
 * must be prepared like those by /cvmfs paths. 0 when `p` is no such path.
 */
static inline int ucvmfs_magic_link(const char *p, char *link, size_t linksz, const char **rest) {
  const char *s;
  char who[32];
  if (strncmp(p, "/dev/fd/", 8) == 0) {
    strcpy(who, "self");
    s = p + 8;
    if (*s < '0' || *s > '9') return 0;
    while (*s >= '0' && *s <= '9') s++;
    if (*s && *s != '/') return 0;
    int n = snprintf(link, linksz, "/proc/self/fd/%.*s", (int)(s - (p + 8)), p + 8);
    *rest = s;
    return n > 0 && (size_t)n < linksz;
  }
  if (strncmp(p, "/proc/", 6) != 0) return 0;
  const char *w = p + 6, *e = strchr(w, '/');
  if (!e || (size_t)(e - w) >= sizeof who) return 0;
  memcpy(who, w, (size_t)(e - w));
  who[e - w] = 0;
  int digits = who[0] != 0;
  for (const char *c = who; *c; c++) digits = digits && *c >= '0' && *c <= '9';
  if (!digits && strcmp(who, "self") != 0 && strcmp(who, "thread-self") != 0) return 0;
  s = e + 1;
  if (strncmp(s, "fd/", 3) == 0) {
    const char *d = s + 3;
    if (*d < '0' || *d > '9') return 0;
    while (*d >= '0' && *d <= '9') d++;
    s = d;
  } else if (strncmp(s, "cwd", 3) == 0) {
    s += 3;
  } else if (strncmp(s, "root", 4) == 0) {
    s += 4;
  } else {
    return 0;
  }
  if (*s && *s != '/') return 0;
  if ((size_t)(s - p) >= linksz) return 0;
  memcpy(link, p, (size_t)(s - p));
  link[s - p] = 0;
  *rest = s;
  return 1;
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

/* The repository a /cvmfs path names: its first byte (in `virt`) and length; 0 for /cvmfs itself or another path. */
static inline size_t ucvmfs_repo_of(const char *virt, const char **name) {
  if (!ucvmfs_under(virt, UCVMFS_ROOT, UCVMFS_ROOT_LEN) || virt[UCVMFS_ROOT_LEN] == 0) return 0;
  const char *s = virt + UCVMFS_ROOT_LEN + 1, *e = strchr(s, '/');
  *name = s;
  return e ? (size_t)(e - s) : strlen(s);
}

/* Whether the repository path `rest` ("" or "/..." below a repository's top) is the hidden /.cvmfs or below it. */
static inline int ucvmfs_hidden(const char *rest) {
  return strncmp(rest, "/.cvmfs", 7) == 0 && (rest[7] == 0 || rest[7] == '/');
}

/* Where the kernel finds the repository path `rest` of the revision directory `rev`: in the tree, or, for the
 * hidden /.cvmfs, beside it (so that no listing of the top shows it). 0 when it does not fit. */
static inline int ucvmfs_in_revision(const char *rev, const char *rest, char *out, size_t outsz) {
  int n = snprintf(out, outsz, "%s%s%s", rev, ucvmfs_hidden(rest) ? ".hidden" : "", rest);
  return n >= 0 && (size_t)n < outsz;
}

/* The marker file of kind `kind` (l: directory listed, f: content written) for the repository path `rpath` ("/"
 * for the top) of revision `rev`: `<rev>.state/<kind>-<md5 of the path's bytes>`. 0 when it does not fit. */
static inline int ucvmfs_marker(const char *rev, char kind, const char *rpath, size_t rlen, char *out, size_t outsz) {
  unsigned char d[16];
  ucvmfs_md5((const unsigned char *)rpath, rlen, d);
  int n = snprintf(out, outsz, "%s.state/%c-", rev, kind);
  if (n < 0 || (size_t)n + 33 > outsz) return 0;
  for (int i = 0; i < 16; i++) snprintf(out + n + 2 * i, 3, "%02x", d[i]);
  return 1;
}

/* The /cvmfs path a real path of the shadow area stands for (the kernel reveals real paths: getcwd, /proc links),
 * written to `out`; 0 when `real` is not in the shadow area (or `out` is too small). */
static inline int ucvmfs_virtualize(const char *real, const char *session, size_t slen, const char *base, size_t blen,
                                    char *out, size_t outsz) {
  int n = -1;
  if (slen > 0 && ucvmfs_under(real, session, slen)) {
    n = snprintf(out, outsz, "%s%s", UCVMFS_ROOT, real + slen);
  } else if (blen > 0 && strncmp(real, base, blen) == 0 && strncmp(real + blen, "/rev/", 5) == 0) {
    const char *dir = real + blen + 5, *end = strchr(dir, '/');
    size_t dlen = end ? (size_t)(end - dir) : strlen(dir);
    const char *at = (const char *)memchr(dir, '@', dlen);
    if (!at) return 0;
    n = snprintf(out, outsz, "%s/%.*s%s", UCVMFS_ROOT, (int)(at - dir), dir, end ? end : "");
  } else if (blen > 0 && strncmp(real, base, blen) == 0 && ucvmfs_under(real + blen, "/root", 5)) {
    n = snprintf(out, outsz, "%s%s", UCVMFS_ROOT, real + blen + 5);
  }
  return n >= 0 && (size_t)n < outsz;
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
