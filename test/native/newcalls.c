/* System calls Parrot never learned, made on /cvmfs paths under `ucvmfs exec`; prints one line per check. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *file;
static char linked_dummy[16];

/* NULL, which the compiler cannot see (glibc declares these paths nonnull). */
static const char *opaque_null(void) {
  const char *p = NULL;
  __asm__("" : "+r"(p));
  return p;
}

static void *reader(void *arg) {
  (void)arg;
  char buf[4];
  int fd = open(file, O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, buf, 4) : -1;
  printf("thread_read %zd %s\n", n, n == 4 && memcmp(buf, "\177ELF", 4) == 0 ? "ELF" : "?");
  if (fd >= 0) close(fd);
  return NULL;
}

static void *execer(void *arg) {
  char *const argv[] = {(char *)file, (char *)"from-a-thread", NULL};
  fflush(stdout);
  syscall(SYS_execveat, AT_FDCWD, file, argv, (char *const *)arg, 0);
  printf("execveat failed %s\n", strerror(errno));
  exit(3);
}

int main(int argc, char **argv, char **envp) {
  if (argc < 2) return 2;
  file = argv[1];
  struct statx sx;
  int rc = statx(AT_FDCWD, file, 0, STATX_BASIC_STATS, &sx);
  printf("statx %d %llu\n", rc, (unsigned long long)sx.stx_size);
  int fd = open(file, O_RDONLY);
  memset(&sx, 0, sizeof sx);
  rc = statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx);
  printf("statx_empty_path %d %llu\n", rc, (unsigned long long)sx.stx_size);
  struct stat st;
  rc = fstatat(fd, "", &st, AT_EMPTY_PATH);
  printf("fstatat_empty_path %d %lld\n", rc, (long long)st.st_size);
  /* NULL paths: the kernel's answers (EFAULT; the descriptor with AT_EMPTY_PATH since Linux 6.11), never a crash. */
  long nr;
#define NULL_PROBE(name, call) errno = 0, nr = (long)(call), printf("%s %ld %d\n", name, nr, nr < 0 ? errno : 0)
  NULL_PROBE("null_stat", stat(opaque_null(), &st));
  NULL_PROBE("null_open", open(opaque_null(), O_RDONLY));
  NULL_PROBE("null_access", access(opaque_null(), R_OK));
  NULL_PROBE("null_readlink", readlink(opaque_null(), linked_dummy, sizeof linked_dummy));
  NULL_PROBE("null_readlink_buf", readlink("/proc/self/cwd", (char *)opaque_null(), 16));
  NULL_PROBE("null_fstatat_empty", fstatat(fd, opaque_null(), &st, AT_EMPTY_PATH));
  /* A name elsewhere for the descriptor's file: EXDEV, as between two mounts. */
  char linked[64];
  snprintf(linked, sizeof linked, "/tmp/ucvmfs-newcalls-%d", (int)getpid());
  rc = linkat(fd, "", AT_FDCWD, linked, AT_EMPTY_PATH);
  printf("linkat_empty_path %d %s\n", rc, rc ? strerror(errno) : "linked");
  if (rc == 0) unlink(linked);
  /* The descriptor's path in a zeroed buffer whose length is not looked at: nothing after the /cvmfs path. */
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  memset(target, 0, sizeof target);
  readlink(link, target, sizeof target - 1);
  printf("readlink_fd %s\n", target);
  close(fd);
  struct open_how how = {.flags = O_RDONLY | O_CLOEXEC};
  fd = (int)syscall(SYS_openat2, AT_FDCWD, file, &how, sizeof how);
  char buf[4] = {0};
  printf("openat2 %s\n", fd >= 0 && read(fd, buf, 4) == 4 && memcmp(buf, "\177ELF", 4) == 0 ? "ELF" : strerror(errno));
  if (fd >= 0) close(fd);
  struct open_how wr = {.flags = O_WRONLY | O_CREAT, .mode = 0644};
  char created[4096];
  snprintf(created, sizeof created, "%s.new", file);
  fd = (int)syscall(SYS_openat2, AT_FDCWD, created, &wr, sizeof wr);
  printf("openat2_create %s\n", fd >= 0 ? "opened" : strerror(errno));
  printf("faccessat2_x %ld\n", syscall(SYS_faccessat2, AT_FDCWD, file, X_OK, AT_EACCESS));
  long w = syscall(SYS_faccessat2, AT_FDCWD, file, W_OK, 0);
  printf("faccessat2_w %ld %s\n", w, w ? strerror(errno) : "");
  for (int i = 2; i < argc; i++) {
    char *r = realpath(argv[i], NULL);
    printf("realpath %s\n", r ? r : strerror(errno));
    free(r);
  }
  pthread_t t;
  pthread_create(&t, NULL, reader, NULL); /* glibc >= 2.34 creates threads with clone3 */
  pthread_join(t, NULL);
  printf("close_range %ld\n", syscall(SYS_close_range, 3, ~0U, 0));
  pthread_create(&t, NULL, execer, envp);
  pthread_join(t, NULL);
  return 4;
}
