/*
 * faultshim.c: an LD_PRELOAD library for the reliability suite
 * (tools/reliability/faultshim.lua) that makes the real file system fail
 * or stall under one directory, for real processes using the real
 * module and the real SQLite, on demand.
 *
 *   SPOOL_FAULT_DIR=/path/to/spool        the directory (and below)
 *   SPOOL_FAULT_SENTINEL=/path/to/file    faults are on while it exists
 *
 * The sentinel's first line selects the fault:
 *
 *   ENOSPC [ops]      the call fails with ENOSPC (default ops: write,alloc)
 *   EIO [ops]         the call fails with EIO (default: write,sync,truncate,alloc)
 *   slow-sync <ms>    fsync and fdatasync sleep <ms> first, then run
 *
 * where ops is a comma-separated subset of write (write, pwrite,
 * pwrite64), sync (fsync, fdatasync), truncate (ftruncate, ftruncate64)
 * and alloc (fallocate, fallocate64, posix_fallocate,
 * posix_fallocate64).  No sentinel, an unreadable one or an unknown mode:
 * every call passes through.  Writers replace the sentinel by rename(2),
 * so that a reader never sees half of it.
 *
 * Each intercepted call reads the sentinel (open/read/close) and, when a
 * fault is on, the descriptor's path through readlink(/proc/self/fd/N):
 * nothing is cached, so a reused descriptor can never carry a stale
 * answer, and no state is shared between threads except the real
 * functions' addresses, resolved once with dlsym(RTLD_NEXT) at load (and
 * through pthread_once if a call comes before the constructor).  The
 * per-call path uses only async-signal-safe calls and the stack.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define OP_WRITE 1
#define OP_SYNC 2
#define OP_TRUNCATE 4
#define OP_ALLOC 8

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef int (*sync_fn)(int);
typedef int (*truncate_fn)(int, off_t);
typedef int (*fallocate_fn)(int, int, off_t, off_t);
typedef int (*pfallocate_fn)(int, off_t, off_t);

static struct {
    write_fn write;
    pwrite_fn pwrite, pwrite64;
    sync_fn fsync, fdatasync;
    truncate_fn ftruncate, ftruncate64;
    fallocate_fn fallocate, fallocate64;
    pfallocate_fn posix_fallocate, posix_fallocate64;
} real;

static char fault_dir[PATH_MAX];
static size_t fault_dir_len;
static char sentinel[PATH_MAX];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Resolves the real functions and reads the environment.  Runs once. */
static void init(void)
{
    real.write = (write_fn)dlsym(RTLD_NEXT, "write");
    real.pwrite = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    real.pwrite64 = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
    real.fsync = (sync_fn)dlsym(RTLD_NEXT, "fsync");
    real.fdatasync = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
    real.ftruncate = (truncate_fn)dlsym(RTLD_NEXT, "ftruncate");
    real.ftruncate64 = (truncate_fn)dlsym(RTLD_NEXT, "ftruncate64");
    real.fallocate = (fallocate_fn)dlsym(RTLD_NEXT, "fallocate");
    real.fallocate64 = (fallocate_fn)dlsym(RTLD_NEXT, "fallocate64");
    real.posix_fallocate = (pfallocate_fn)dlsym(RTLD_NEXT, "posix_fallocate");
    real.posix_fallocate64 = (pfallocate_fn)dlsym(RTLD_NEXT, "posix_fallocate64");
    const char *d = getenv("SPOOL_FAULT_DIR");
    const char *f = getenv("SPOOL_FAULT_SENTINEL");
    if (d && *d && f && *f && strlen(f) < sizeof sentinel) {
        /* The directory as the kernel names it in /proc/self/fd. */
        if (realpath(d, fault_dir) == NULL && strlen(d) < sizeof fault_dir)
            strcpy(fault_dir, d);
        fault_dir_len = strlen(fault_dir);
        while (fault_dir_len > 1 && fault_dir[fault_dir_len - 1] == '/')
            fault_dir[--fault_dir_len] = '\0';
        strcpy(sentinel, f);
    }
}

__attribute__((constructor)) static void shim_load(void)
{
    pthread_once(&once, init);
}

static void ensure_init(void)
{
    pthread_once(&once, init);
}

/* Whether fd names a file at or under the fault directory. */
static int under_dir(int fd)
{
    char link[64], path[PATH_MAX];
    /* "/proc/self/fd/" + decimal fd, without snprintf. */
    static const char prefix[] = "/proc/self/fd/";
    char digits[16];
    int nd = 0;
    unsigned v = (unsigned)fd;
    if (fd < 0)
        return 0;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && nd < (int)sizeof digits);
    memcpy(link, prefix, sizeof prefix - 1);
    for (int i = 0; i < nd; i++)
        link[sizeof prefix - 1 + i] = digits[nd - 1 - i];
    link[sizeof prefix - 1 + nd] = '\0';
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    if ((size_t)n < fault_dir_len || memcmp(path, fault_dir, fault_dir_len) != 0)
        return 0;
    return path[fault_dir_len] == '\0' || path[fault_dir_len] == '/' || fault_dir_len == 1;
}

/* Parses a comma-separated list of op classes; 0 when there is none. */
static int parse_ops(const char *p)
{
    int ops = 0;
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p && *p != '\n') {
        size_t len = strcspn(p, ",\n \t");
        if (len == 5 && memcmp(p, "write", 5) == 0)
            ops |= OP_WRITE;
        else if (len == 4 && memcmp(p, "sync", 4) == 0)
            ops |= OP_SYNC;
        else if (len == 8 && memcmp(p, "truncate", 8) == 0)
            ops |= OP_TRUNCATE;
        else if (len == 5 && memcmp(p, "alloc", 5) == 0)
            ops |= OP_ALLOC;
        p += len;
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
    }
    return ops;
}

/* The fault for one call of class op on fd: returns the errno to fail
 * with, or 0 to run the real call (after sleeping for slow-sync). */
static int fault_for(int op, int fd)
{
    ensure_init();
    if (fault_dir_len == 0)
        return 0;
    int sfd = open(sentinel, O_RDONLY | O_CLOEXEC);
    if (sfd < 0)
        return 0;
    char buf[128];
    ssize_t n = read(sfd, buf, sizeof buf - 1);
    close(sfd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    int err = 0, ops = 0;
    long ms = -1;
    if (strncmp(buf, "ENOSPC", 6) == 0) {
        err = ENOSPC;
        ops = parse_ops(buf + 6);
        if (ops == 0)
            ops = OP_WRITE | OP_ALLOC;
    } else if (strncmp(buf, "EIO", 3) == 0) {
        err = EIO;
        ops = parse_ops(buf + 3);
        if (ops == 0)
            ops = OP_WRITE | OP_SYNC | OP_TRUNCATE | OP_ALLOC;
    } else if (strncmp(buf, "slow-sync", 9) == 0) {
        ms = 0;
        for (const char *p = buf + 9; *p; p++) {
            if (*p >= '0' && *p <= '9')
                ms = ms * 10 + (*p - '0');
            else if (*p != ' ' && *p != '\t')
                break;
        }
        ops = OP_SYNC;
    }
    if (!(ops & op) || !under_dir(fd))
        return 0;
    if (ms >= 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        return 0;
    }
    return err;
}

/* Each wrapper: the fault when one is on for this descriptor, else the
 * real call.  errno is preserved across the shim's own calls. */
#define FAULT_OR(op, fd, failval)                                                                  \
    do {                                                                                           \
        int saved_ = errno;                                                                        \
        int e_ = fault_for(op, fd);                                                                \
        if (e_) {                                                                                  \
            errno = e_;                                                                            \
            return failval;                                                                        \
        }                                                                                          \
        errno = saved_;                                                                            \
    } while (0)

ssize_t write(int fd, const void *buf, size_t n)
{
    FAULT_OR(OP_WRITE, fd, -1);
    return real.write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    FAULT_OR(OP_WRITE, fd, -1);
    return real.pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    FAULT_OR(OP_WRITE, fd, -1);
    return real.pwrite64(fd, buf, n, off);
}

int fsync(int fd)
{
    FAULT_OR(OP_SYNC, fd, -1);
    return real.fsync(fd);
}

int fdatasync(int fd)
{
    FAULT_OR(OP_SYNC, fd, -1);
    return real.fdatasync(fd);
}

int ftruncate(int fd, off_t len)
{
    FAULT_OR(OP_TRUNCATE, fd, -1);
    return real.ftruncate(fd, len);
}

int ftruncate64(int fd, off_t len)
{
    FAULT_OR(OP_TRUNCATE, fd, -1);
    return real.ftruncate64(fd, len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    FAULT_OR(OP_ALLOC, fd, -1);
    return real.fallocate(fd, mode, off, len);
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
    FAULT_OR(OP_ALLOC, fd, -1);
    return real.fallocate64(fd, mode, off, len);
}

/* posix_fallocate answers the error number instead of setting errno. */
int posix_fallocate(int fd, off_t off, off_t len)
{
    int saved = errno;
    int e = fault_for(OP_ALLOC, fd);
    errno = saved;
    return e ? e : real.posix_fallocate(fd, off, len);
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
    int saved = errno;
    int e = fault_for(OP_ALLOC, fd);
    errno = saved;
    return e ? e : real.posix_fallocate64(fd, off, len);
}
