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

const char *spool_sqlite_code_name(int code)
{
    /* Values from sqlite3.h; listed here so this file needs no SQLite. */
    static const struct {
        int code;
        const char *name;
    } names[] = {
        {0, "SQLITE_OK"}, {1, "SQLITE_ERROR"}, {2, "SQLITE_INTERNAL"}, {3, "SQLITE_PERM"},
        {4, "SQLITE_ABORT"}, {5, "SQLITE_BUSY"}, {6, "SQLITE_LOCKED"}, {7, "SQLITE_NOMEM"},
        {8, "SQLITE_READONLY"}, {9, "SQLITE_INTERRUPT"}, {10, "SQLITE_IOERR"},
        {11, "SQLITE_CORRUPT"}, {12, "SQLITE_NOTFOUND"}, {13, "SQLITE_FULL"},
        {14, "SQLITE_CANTOPEN"}, {15, "SQLITE_PROTOCOL"}, {16, "SQLITE_EMPTY"},
        {17, "SQLITE_SCHEMA"}, {18, "SQLITE_TOOBIG"}, {19, "SQLITE_CONSTRAINT"},
        {20, "SQLITE_MISMATCH"}, {21, "SQLITE_MISUSE"}, {22, "SQLITE_NOLFS"},
        {23, "SQLITE_AUTH"}, {24, "SQLITE_FORMAT"}, {25, "SQLITE_RANGE"}, {26, "SQLITE_NOTADB"},
        {27, "SQLITE_NOTICE"}, {28, "SQLITE_WARNING"},
        {10 | (1 << 8), "SQLITE_IOERR_READ"}, {10 | (2 << 8), "SQLITE_IOERR_SHORT_READ"},
        {10 | (3 << 8), "SQLITE_IOERR_WRITE"}, {10 | (4 << 8), "SQLITE_IOERR_FSYNC"},
        {10 | (5 << 8), "SQLITE_IOERR_DIR_FSYNC"}, {10 | (6 << 8), "SQLITE_IOERR_TRUNCATE"},
        {10 | (7 << 8), "SQLITE_IOERR_FSTAT"}, {10 | (8 << 8), "SQLITE_IOERR_UNLOCK"},
        {10 | (9 << 8), "SQLITE_IOERR_RDLOCK"}, {10 | (10 << 8), "SQLITE_IOERR_DELETE"},
        {10 | (12 << 8), "SQLITE_IOERR_NOMEM"}, {10 | (13 << 8), "SQLITE_IOERR_ACCESS"},
        {10 | (14 << 8), "SQLITE_IOERR_CHECKRESERVEDLOCK"}, {10 | (15 << 8), "SQLITE_IOERR_LOCK"},
        {10 | (16 << 8), "SQLITE_IOERR_CLOSE"}, {10 | (18 << 8), "SQLITE_IOERR_SHMOPEN"},
        {10 | (19 << 8), "SQLITE_IOERR_SHMSIZE"}, {10 | (21 << 8), "SQLITE_IOERR_SHMMAP"},
        {10 | (22 << 8), "SQLITE_IOERR_SEEK"}, {10 | (23 << 8), "SQLITE_IOERR_DELETE_NOENT"},
        {10 | (24 << 8), "SQLITE_IOERR_MMAP"}, {10 | (25 << 8), "SQLITE_IOERR_GETTEMPPATH"},
        {10 | (26 << 8), "SQLITE_IOERR_CONVPATH"}, {10 | (33 << 8), "SQLITE_IOERR_DATA"},
        {10 | (34 << 8), "SQLITE_IOERR_CORRUPTFS"},
        {5 | (1 << 8), "SQLITE_BUSY_RECOVERY"}, {5 | (2 << 8), "SQLITE_BUSY_SNAPSHOT"},
        {5 | (3 << 8), "SQLITE_BUSY_TIMEOUT"}, {6 | (1 << 8), "SQLITE_LOCKED_SHAREDCACHE"},
        {11 | (1 << 8), "SQLITE_CORRUPT_VTAB"}, {11 | (2 << 8), "SQLITE_CORRUPT_SEQUENCE"},
        {11 | (3 << 8), "SQLITE_CORRUPT_INDEX"}, {14 | (1 << 8), "SQLITE_CANTOPEN_NOTEMPDIR"},
        {14 | (2 << 8), "SQLITE_CANTOPEN_ISDIR"}, {14 | (3 << 8), "SQLITE_CANTOPEN_FULLPATH"},
        {8 | (1 << 8), "SQLITE_READONLY_RECOVERY"}, {8 | (2 << 8), "SQLITE_READONLY_CANTLOCK"},
        {8 | (3 << 8), "SQLITE_READONLY_ROLLBACK"}, {8 | (4 << 8), "SQLITE_READONLY_DBMOVED"},
        {8 | (5 << 8), "SQLITE_READONLY_CANTINIT"}, {8 | (6 << 8), "SQLITE_READONLY_DIRECTORY"},
        {19 | (8 << 8), "SQLITE_CONSTRAINT_UNIQUE"}, {19 | (6 << 8), "SQLITE_CONSTRAINT_PRIMARYKEY"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == code)
            return names[i].name;
    /* An extended code we do not list: name its primary code. */
    if (code > 255)
        return spool_sqlite_code_name(code & 0xff);
    return "SQLITE_UNKNOWN";
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
