/*
 * spool_error.c: kind names, messages, retryability, and the formats the
 * reference contract fixes.
 */
#include "spool_error.h"

#include <errno.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *message;
    int retryable;
} kinds[SPOOL_KIND_COUNT] = {
    [SPOOL_OK] = {"ok", "no error", 0},
    [SPOOL_NOT_FOUND] = {"not_found", "no entry with this id", 0},
    [SPOOL_UNHEALTHY] = {"unhealthy", "the spool is not accepting writes", 1},
    [SPOOL_CALLER_DEADLINE_EXCEEDED] = {"caller_deadline_exceeded",
        "the caller-provided deadline was reached before the spool accepted the write", 1},
    [SPOOL_BACKPRESSURE_TIMEOUT] = {"backpressure_timeout", "the spool did not accept the write in time", 1},
    [SPOOL_CORRUPT] = {"corrupt", "the spool's storage is corrupt", 0},
    [SPOOL_FULL] = {"full", "the disk holding the spool is full", 1},
    [SPOOL_IO] = {"io", "an I/O error occurred in the spool's storage", 0},
    [SPOOL_BUSY] = {"busy", "the spool's storage is locked by another user", 1},
    [SPOOL_CLOSED] = {"closed", "the spool is shut down", 0},
    [SPOOL_INTERNAL] = {"internal", "an internal error occurred in the spool", 0},
    [SPOOL_CONFLICT] = {"conflict", "another entry with this id is in the way", 0},
    [SPOOL_MISUSE] = {"misuse", "invalid argument", 0},
};

const char *spool_kind_name(spool_kind kind)
{
    if ((int)kind < 0 || kind >= SPOOL_KIND_COUNT)
        return NULL;
    return kinds[kind].name;
}

int spool_kind_from_name(const char *name)
{
    for (int k = SPOOL_NOT_FOUND; k < SPOOL_MISUSE; k++)
        if (strcmp(kinds[k].name, name) == 0)
            return k;
    return -1;
}

const char *spool_kind_message(spool_kind kind)
{
    if ((int)kind < 0 || kind >= SPOOL_KIND_COUNT)
        return "unknown error";
    return kinds[kind].message;
}

int spool_kind_retryable(spool_kind kind)
{
    if ((int)kind < 0 || kind >= SPOOL_KIND_COUNT)
        return 0;
    return kinds[kind].retryable;
}

void spool_error_clear(spool_error *err)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof *err);
}

int spool_error_set(spool_error *err, spool_kind kind, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    err->kind = kind;
    if (kind == SPOOL_UNHEALTHY || kind == SPOOL_CALLER_DEADLINE_EXCEEDED || fmt == NULL) {
        snprintf(err->message, sizeof err->message, "%s", spool_kind_message(kind));
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int spool_error_backpressure(spool_error *err, double deadline_seconds)
{
    if (err == NULL)
        return -1;
    char d[64];
    err->kind = SPOOL_BACKPRESSURE_TIMEOUT;
    err->deadline = deadline_seconds;
    snprintf(err->message, sizeof err->message, "the spool did not accept the write within %s",
             spool_format_duration(deadline_seconds, d, sizeof d));
    return -1;
}

/* Writes `whole` and the significant digits of `frac` (of `width` digits),
 * then the unit: Rust prints "1.5s", "200ms", never trailing zeros. */
static void fmt_unit(char *out, size_t size, uint64_t whole, uint64_t frac, int width, const char *unit)
{
    char digits[24] = "";
    if (frac > 0) {
        snprintf(digits, sizeof digits, "%0*llu", width, (unsigned long long)frac);
        size_t n = strlen(digits);
        while (n > 0 && digits[n - 1] == '0')
            digits[--n] = '\0';
    }
    snprintf(out, size, "%llu%s%s%s", (unsigned long long)whole, digits[0] ? "." : "", digits, unit);
}

char *spool_format_duration(double seconds, char *out, size_t size)
{
    if (!(seconds > 0))
        seconds = 0;
    if (seconds >= 18446744073709549568.0) /* the largest double below 2^64 */
        seconds = 18446744073709549568.0;
    double whole = floor(seconds);
    uint64_t secs = (uint64_t)whole;
    uint64_t nanos = (uint64_t)llround((seconds - whole) * 1e9);
    if (nanos >= 1000000000ULL) {
        secs++;
        nanos -= 1000000000ULL;
    }
    if (secs > 0)
        fmt_unit(out, size, secs, nanos, 9, "s");
    else if (nanos >= 1000000)
        fmt_unit(out, size, nanos / 1000000, nanos % 1000000, 6, "ms");
    else if (nanos >= 1000)
        fmt_unit(out, size, nanos / 1000, nanos % 1000, 3, "\xc2\xb5s");
    else
        fmt_unit(out, size, nanos, 0, 0, "ns");
    return out;
}

const char *spool_errno_name(int e)
{
    static const struct {
        int e;
        const char *name;
    } names[] = {
        {ENOSPC, "ENOSPC"}, {EDQUOT, "EDQUOT"},   {EIO, "EIO"},       {EROFS, "EROFS"},   {EACCES, "EACCES"},
        {EPERM, "EPERM"},   {ENOENT, "ENOENT"},   {ENOTDIR, "ENOTDIR"}, {EISDIR, "EISDIR"}, {ELOOP, "ELOOP"},
        {EEXIST, "EEXIST"}, {ENOTEMPTY, "ENOTEMPTY"}, {EMFILE, "EMFILE"}, {ENFILE, "ENFILE"}, {ENOMEM, "ENOMEM"},
        {EBUSY, "EBUSY"},   {EWOULDBLOCK, "EWOULDBLOCK"}, {EXDEV, "EXDEV"}, {ENAMETOOLONG, "ENAMETOOLONG"},
        {EINVAL, "EINVAL"}, {EINTR, "EINTR"},     {EFBIG, "EFBIG"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].e == e)
            return names[i].name;
    return NULL;
}
