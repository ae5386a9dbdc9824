/*
 * spool_file.c: file helpers of the file-based backends (spool_file.h).
 */
#define _GNU_SOURCE
#include "spool_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int spool_file_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int spool_file_read(int at, const char *name, char **out, size_t *len)
{
    int fd = openat(at, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    size_t cap = (size_t)st.st_size, n = 0;
    char *buf = malloc(cap + 1); /* + the NUL */
    if (buf == NULL) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        if (n == cap) {
            /* The file grew (it should not): read what is there. */
            char probe;
            ssize_t r = read(fd, &probe, 1);
            if (r == 0)
                break;
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                goto fail;
            char *bigger = realloc(buf, cap * 2 + 2);
            if (bigger == NULL) {
                errno = ENOMEM;
                goto fail;
            }
            buf = bigger;
            cap = cap * 2 + 1;
            buf[n++] = probe;
            continue;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
fail:;
    int e = errno;
    free(buf);
    close(fd);
    errno = e;
    return -1;
}

int spool_file_fail(spool_error *err, int e, const char *what, const char *dir, const char *name)
{
    spool_kind k = e == ENOSPC || e == EDQUOT ? SPOOL_FULL : e == ENOMEM ? SPOOL_INTERNAL : SPOOL_IO;
    spool_error_set(err, k, "%s %s/%s: %s", what, dir, name ? name : "", strerror(e));
    err->sys_errno = err->code = e;
    err->code_name = spool_errno_name(e);
    return -1;
}

int spool_file_record_name(int at, const char *dir, const char *name, mode_t mode, spool_error *err)
{
    if (name == NULL)
        return 0;
    int fd = openat(at, "spool.name", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return spool_file_fail(err, errno, "open", dir, "spool.name");
    char have[300];
    ssize_t r = pread(fd, have, sizeof have - 1, 0);
    int rc = 0;
    if (r < 0) {
        rc = spool_file_fail(err, errno, "read", dir, "spool.name");
    } else if (r == 0) {
        if (spool_file_write_all(fd, name, strlen(name)) != 0 || fdatasync(fd) != 0)
            rc = spool_file_fail(err, errno, "write", dir, "spool.name");
    } else {
        have[r] = '\0';
        if (strcmp(have, name) != 0)
            rc = spool_error_set(err, SPOOL_MISUSE,
                                 "cannot define spool '%s' on %s: that directory holds spool '%s' "
                                 "(a directory holds one spool)",
                                 name, dir, have);
    }
    close(fd);
    return rc;
}
