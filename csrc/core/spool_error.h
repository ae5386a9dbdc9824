/*
 * spool_error.h: the closed set of error kinds and the error record that
 * every fallible function of the C core fills in.
 */
#ifndef SPOOL_ERROR_H
#define SPOOL_ERROR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum spool_kind {
    SPOOL_OK = 0,
    SPOOL_NOT_FOUND,
    SPOOL_UNHEALTHY,
    SPOOL_CALLER_DEADLINE_EXCEEDED,
    SPOOL_BACKPRESSURE_TIMEOUT,
    SPOOL_CORRUPT,
    SPOOL_FULL,
    SPOOL_IO,
    SPOOL_BUSY,
    SPOOL_CLOSED,
    SPOOL_INTERNAL,
    SPOOL_CONFLICT, /* another entry with the id is in the way (quarantine, restore) */
    /* Not a runtime failure: the caller passed something invalid.  The Lua
     * binding raises these instead of returning them. */
    SPOOL_MISUSE,
    SPOOL_KIND_COUNT
} spool_kind;

#define SPOOL_ERROR_MESSAGE_MAX 512

typedef struct spool_error {
    spool_kind kind;
    /* The backend's own code for the failure and its name, both supplied
     * by the backend (SQLite's extended result code and "SQLITE_IOERR_FSYNC",
     * an errno and "ENOSPC", a RocksDB status); 0 and NULL when none.  The
     * core never interprets them. */
    int code;
    const char *code_name; /* static storage */
    int sys_errno;    /* errno, 0 when none */
    double deadline;  /* seconds; backpressure_timeout only, else 0 */
    int ambiguous;    /* 1: the commit may or may not have happened */
    char message[SPOOL_ERROR_MESSAGE_MAX];
} spool_error;

/* The kind's name as Lua sees it ("not_found", ...); NULL when out of range. */
const char *spool_kind_name(spool_kind kind);

/* Parses a kind name.  Returns the kind, or -1 for an unknown name. */
int spool_kind_from_name(const char *name);

/* The kind's standard message. */
const char *spool_kind_message(spool_kind kind);

/* Whether retrying the same operation later may succeed. */
int spool_kind_retryable(spool_kind kind);

/* Clears an error record to SPOOL_OK. */
void spool_error_clear(spool_error *err);

/* Sets kind and a printf-formatted message; the three reference kinds
 * always get their reference text instead.  Returns -1, so that callers
 * can `return spool_error_set(...)`.  err may be NULL. */
int spool_error_set(spool_error *err, spool_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The backpressure timeout with its deadline written as Rust's Duration
 * debug format writes it ("30s", "200ms", "1.5s").  Returns -1. */
int spool_error_backpressure(spool_error *err, double deadline_seconds);

/* Formats seconds as Rust's `{:?}` of a Duration into out.  Returns out. */
char *spool_format_duration(double seconds, char *out, size_t size);

/* The symbolic name of an errno value ("ENOSPC"), or NULL for one this
 * table does not know. */
const char *spool_errno_name(int e);

#endif
