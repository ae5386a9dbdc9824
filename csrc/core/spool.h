/*
 * spool.h: the public face of the spool's C core.
 *
 * A spool maps SpoolIds to opaque blobs and keeps every acknowledged
 * store.  This header knows nothing of Lua: a C program, a benchmark or a
 * fuzzer uses it directly.  Every fallible function returns 0 on success
 * and -1 on failure, with the reason in a `spool_error` out-parameter
 * (which may be NULL when the caller does not care).
 *
 * Thread safety: one handle may be used from several threads at once.
 * A handle must not be used after fork() in the child: every call answers
 * SPOOL_CLOSED there, and spool_close() leaks rather than touch files the
 * parent still uses.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spool_error.h"
#include "spool_id.h"

#define SPOOL_VERSION "0.1.0"

typedef struct spool spool;

/* A free-space or free-inode minimum: a percentage or an absolute count. */
typedef struct spool_threshold {
    int is_percent;
    double value; /* percent in [0, 100], or bytes / inodes */
} spool_threshold;

/* One backend tuning value (spool_params_tune_number / _text): option
 * `name` of the backend whose options key is `key` ("sqlite",
 * "rocks_params").  Each backend declares its options once
 * (spool_backend.h); the core checks a value against that declaration at
 * open and hands the backend its own struct, so that this header names
 * no backend's settings. */
typedef struct spool_tuning {
    const char *key;
    const char *name;
    const char *text; /* a string or enum value, else NULL */
    double number;    /* a number, a boolean (0 or 1), a duration in seconds */
} spool_tuning;

#define SPOOL_TUNING_MAX 32

typedef struct spool_params {
    const char *path;                 /* directory; created if missing */
    const char *kind;                 /* "SQLite", "LocalDisk", "RocksDB"; NULL: the kind of the
                                       * spool found in path, SQLite for a new one */
    const char *name;                 /* the registry name (spool_define), else NULL;
                                       * recorded in the spool at first define */
    int group_access;                 /* 1: new files 0640 and directories 0750
                                       * (default 0: 0600 and 0700) */
    int flush;                        /* 1: every commit durable against power loss */
    spool_threshold min_free_space;   /* default 10% */
    spool_threshold min_free_inodes;  /* default 10% */
    int64_t reserve_bytes;            /* disk-full reserve file; default 8 MiB, 0 = none */
    double store_deadline;            /* seconds; default 30 */
    double error_latch_duration;      /* seconds; default 15 */
    double error_unlatch_duration;    /* seconds; default 300 */
    int allow_error_unlatch;          /* default 1 */
    unsigned limit_concurrent_stores; /* 0 = unlimited */
    unsigned limit_concurrent_loads;
    unsigned limit_concurrent_removes;
    double commit_wait;               /* seconds: the longest a group-commit leader waits for
                                       * concurrent writers to join its batch; default
                                       * 0.0002, 0 = never (spool_group.h) */
    /* Backend tuning, set with spool_params_tune_*: the rows whose key is
     * the opened backend's options key apply, the others are ignored (a
     * `sqlite` table does not hinder opening a LocalDisk directory); a
     * key no backend declares is refused at open. */
    size_t ntuning;
    spool_tuning tuning[SPOOL_TUNING_MAX];
} spool_params;

/* Options of a write.  deadline: absolute spool_monotonic() seconds, or 0
 * for none (store_deadline still applies). */
typedef struct spool_write_opts {
    int force_sync;
    double deadline;
} spool_write_opts;

typedef struct spool_item {
    spool_id id;
    const void *data;
    size_t len;
} spool_item;

enum spool_which { SPOOL_ENTRIES = 0, SPOOL_QUARANTINE = 1 };

typedef struct spool_enum_opts {
    int which;            /* SPOOL_ENTRIES or SPOOL_QUARANTINE */
    int has_start;        /* 0: start_time = now */
    int64_t start_100ns;  /* skip entries created at or after (Unix, 100 ns) */
    int include_data;     /* 0: no data in entries (checksums are still verified) */
    int ids_only;         /* 1: read ids alone from the key index: no data
                           * is read, so no checksum is verified */
} spool_enum_opts;

/* One enumerated entry; its pointers are valid until the next call on
 * the cursor.  A corrupt entry has corrupt=1 and error set; its id is
 * valid unless id_valid=0. */
typedef struct spool_entry {
    spool_id id;
    int id_valid;
    int corrupt;
    const char *error;
    const void *data;
    size_t len;
    const char *reason; /* quarantine only */
    double time;        /* quarantine only: Unix seconds */
} spool_entry;

typedef struct spool_cursor spool_cursor;

/* A backend's own figures, beside the kind-neutral ones: named numbers
 * (static names, e.g. SQLite's "wal_bytes", LocalDisk's
 * "directories_removed") that the core and the binding pass on unread
 * (Lua: the `backend` table of stats(), compact(), cleanup(), health()). */
#define SPOOL_METRICS_MAX 12
typedef struct spool_metrics {
    int n;
    struct {
        const char *name;
        double value;
        int boolean; /* 1: a yes/no figure (value 0 or 1) */
    } m[SPOOL_METRICS_MAX];
} spool_metrics;

/* Sets metric `name` (a static string) to v, replacing an earlier value
 * of that name; past SPOOL_METRICS_MAX names the rest are dropped. */
static inline void spool_metrics_put(spool_metrics *ms, const char *name, double v, int boolean)
{
    int i = 0;
    while (i < ms->n && ms->m[i].name != name)
        i++;
    if (i == SPOOL_METRICS_MAX)
        return;
    ms->m[i].name = name;
    ms->m[i].value = v;
    ms->m[i].boolean = boolean;
    if (i == ms->n)
        ms->n++;
}
/* The value of metric `name`, or dflt when the backend gave none. */
static inline double spool_metrics_get(const spool_metrics *ms, const char *name, double dflt)
{
    for (int i = 0; i < ms->n; i++)
        if (strcmp(ms->m[i].name, name) == 0)
            return ms->m[i].value;
    return dflt;
}
#define spool_metrics_set(ms, name, v) spool_metrics_put((ms), (name), (v), 0)
#define spool_metrics_set_bool(ms, name, b) spool_metrics_put((ms), (name), (b) ? 1 : 0, 1)

/* Kind-neutral figures are -1 where a backend cannot tell (LocalDisk
 * does not count its entries: that would be a walk of every file). */
typedef struct spool_compact_stats {
    int64_t bytes_before, bytes_after; /* what the spool's files occupy */
    int steps;                         /* bounded steps taken */
    double seconds;
    spool_metrics backend;
} spool_compact_stats;

typedef struct spool_cleanup_stats {
    double seconds;
    spool_metrics backend;
} spool_cleanup_stats;

typedef struct spool_health {
    int healthy;
    const char *reason;        /* NULL when healthy */
    int error_latched;
    int space_low;
    double latched_for;        /* seconds since the gate latched, 0 if not */
    char last_error[SPOOL_ERROR_MESSAGE_MAX];
    const char *last_error_kind; /* NULL when no error since open */
    uint64_t free_bytes, total_bytes, free_inodes, total_inodes;
    int reserve_held;          /* the disk-full reserve is in place */
    spool_metrics backend;     /* SQLite: wal_bytes, wal_over_since */
} spool_health;

typedef struct spool_stats {
    uint64_t stores, loads, removes, errors;
    uint64_t overruns; /* writes that succeeded, but finished after their deadline */
    uint64_t errors_by_kind[SPOOL_KIND_COUNT];
    int64_t entries, quarantined;
    int64_t bytes;     /* what the spool's files occupy; -1 when not measured */
    spool_metrics backend;
} spool_stats;

/* Fills params with the defaults. */
void spool_params_init(spool_params *params);

/* Sets backend option key.name in params, replacing an earlier value of
 * it: a number (integers; booleans as 0 or 1; durations in seconds), or
 * text (strings; enum values by name, any case).  Only recorded here:
 * spool_open checks it against the backend's declaration and refuses
 * (misuse, naming key.name and what was expected) an unknown option, a
 * value of the wrong type or out of range.  Text is not copied: it must
 * outlive spool_open.  Returns 0, or -1 (misuse) when key or name is
 * empty or SPOOL_TUNING_MAX options are already set. */
int spool_params_tune_number(spool_params *params, const char *key, const char *name, double value,
                             spool_error *err);
int spool_params_tune_text(spool_params *params, const char *key, const char *name, const char *value,
                           spool_error *err);

/* Opens (creating if needed) the spool at params->path. */
int spool_open(const spool_params *params, spool **out, spool_error *err);

/* Stores (or replaces) one entry.  On success the entry is durable
 * against a process crash, and against power loss when flush or
 * opts->force_sync.  A failed store left nothing behind. */
int spool_store(spool *s, const spool_id *id, const void *data, size_t len,
                const spool_write_opts *opts, spool_error *err);

/* Stores n entries in one transaction: all or nothing. */
int spool_store_many(spool *s, const spool_item *items, size_t n,
                     const spool_write_opts *opts, spool_error *err);

/* Loads an entry into a malloc'd buffer (free with spool_free).
 * SPOOL_NOT_FOUND when absent, SPOOL_CORRUPT on a checksum mismatch. */
int spool_load(spool *s, const spool_id *id, void **data, size_t *len, spool_error *err);

/* Receives a loaded entry's bytes, valid only during the call (they are
 * SQLite's own buffer: no copy is made).  Returns 0, or -1 when it could
 * not take them (the load then fails with SPOOL_INTERNAL). */
typedef int (*spool_blob_fn)(void *ud, const void *data, size_t len);

/* Loads an entry and hands its bytes to fn, once, after the checksum
 * was verified; errors as spool_load.  No statement or lock is held
 * when it returns. */
int spool_load_with(spool *s, const spool_id *id, spool_blob_fn fn, void *ud, spool_error *err);

/* Removes an entry; *removed = 1 when there was one, else 0. */
int spool_remove(spool *s, const spool_id *id, const spool_write_opts *opts,
                 int *removed, spool_error *err);

/* Removes n entries in one transaction; *removed counts those present. */
int spool_remove_many(spool *s, const spool_id *ids, size_t n,
                      const spool_write_opts *opts, size_t *removed, spool_error *err);

/* Streams entries oldest first, in short read transactions, so that
 * memory and the WAL stay bounded.  No statement or lock is held between
 * calls to spool_cursor_next. */
int spool_cursor_open(spool *s, const spool_enum_opts *opts, spool_cursor **out, spool_error *err);
/* Returns 1 with *entry filled, 0 at the end, -1 on error. */
int spool_cursor_next(spool_cursor *c, spool_entry *entry, spool_error *err);
void spool_cursor_close(spool_cursor *c);

/* Calls fn for each entry; fn returns 0 to go on, 1 to stop, -1 to abort
 * (spool_enumerate then returns -1 with err untouched).  *visited counts
 * the calls. */
typedef int (*spool_enum_fn)(void *ud, const spool_entry *entry);
int spool_enumerate(spool *s, const spool_enum_opts *opts, spool_enum_fn fn, void *ud,
                    size_t *visited, spool_error *err);

/* Moves an entry aside with a reason (never loaded, enumerated or lost)
 * and back again.  SPOOL_NOT_FOUND when there is nothing to move. */
int spool_quarantine(spool *s, const spool_id *id, const char *reason, spool_error *err);
int spool_restore(spool *s, const spool_id *id, spool_error *err);
/* SPOOL_CONFLICT (a runtime state, not misuse): quarantine of an id
 * already quarantined, restore while a live entry has the id. */

/* Deletes a quarantined entry for good; *purged = 1 when there was one. */
int spool_purge_quarantined(spool *s, const spool_id *id, int *purged, spool_error *err);

/* Checkpoint and reclaim all free pages in bounded steps. */
int spool_compact(spool *s, spool_compact_stats *stats, spool_error *err);

typedef struct spool_verify_report {
    int storage_ok;            /* the backend's own check passed */
    char storage[SPOOL_ERROR_MESSAGE_MAX]; /* "ok" or what the check found */
    int64_t entries, corrupt;  /* entries read, and those that failed */
} spool_verify_report;

/* Checks everything: the storage's structure (SQLite's quick_check) and
 * every entry's checksum.  Returns 0 when the check ran (its findings are
 * in the report), -1 when it could not run. */
int spool_verify(spool *s, spool_verify_report *report, spool_error *err);

/* Bounded periodic maintenance, cheap enough to call every second. */
int spool_cleanup(spool *s, spool_cleanup_stats *stats, spool_error *err);

/* Releases caches; *released = bytes released (may be negative). */
int spool_advise_low_memory(spool *s, int64_t *released, spool_error *err);

/* NULL when healthy, else a static, bland reason (also for a shut-down
 * or inherited handle).  No I/O, no allocation, no lock. */
const char *spool_unhealthy_reason(spool *s);

int spool_get_health(spool *s, spool_health *out, spool_error *err);
int spool_get_stats(spool *s, spool_stats *out, spool_error *err);

/* Closes the storage; idempotent.  Later calls answer SPOOL_CLOSED.  The
 * handle itself stays valid until spool_close. */
int spool_shutdown(spool *s, spool_error *err);

/* Shuts down (if needed) and drops the caller's reference.  Never fails. */
void spool_close(spool *s);

/* Reference counting, for handles shared between threads or Lua states:
 * the storage closes when the last reference is released (or at
 * spool_shutdown, for every holder at once). */
void spool_retain(spool *s);
void spool_release(spool *s);

/* The process-wide registry of named spools.  spool_define opens and
 * registers a spool under `name` (SPOOL_MISUSE if the name is taken by an
 * open spool); the caller holds one reference.  The registry itself holds
 * none: a spool leaves it when shut down or when its last reference goes. */
int spool_define(const char *name, const spool_params *params, spool **out, spool_error *err);

/* The spool registered under `name`, with a new reference for the
 * caller, or NULL when none is. */
spool *spool_lookup(const char *name);

/* Whether the handle is unusable: shut down, or inherited across fork()
 * (opened by an ancestor of this process). */
int spool_is_closed(spool *s);

/* Why the handle is unusable, written into buf; NULL when it is open. */
const char *spool_closed_reason(spool *s, char *buf, size_t size);

/* The directory the spool was opened on (valid while referenced). */
const char *spool_get_path(spool *s);

/* The backend the spool was opened with: "SQLite", "LocalDisk". */
const char *spool_get_kind(spool *s);

/* The kind of the i-th built backend (0 is the default for a new
 * directory), or NULL past the last. */
const char *spool_backend_kind(size_t i);

/* Frees a buffer returned by spool_load. */
void spool_free(void *p);

/* Seconds on the clock that deadlines use (CLOCK_MONOTONIC). */
double spool_monotonic(void);

#endif
