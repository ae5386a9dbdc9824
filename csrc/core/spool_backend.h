/*
 * spool_backend.h: the driver contract, what a storage backend implements.
 * The core (csrc/core/spool.c) does what is common to every backend (the
 * gate, deadlines, concurrency limits, counters, fork and shutdown
 * checks) and calls one of these tables; a new backend is one file under
 * csrc/backends/ that defines one more table, and one line in
 * csrc/backends/spool_backends.c.
 */
#ifndef SPOOL_BACKEND_H
#define SPOOL_BACKEND_H

#include "spool.h"
#include "spool_deadline.h"
#include "spool_group.h"

/* The driver contract's version.  Version 1: every slot below up to
 * `health`.  Version 2 appends `apply_batch`, version 3
 * `enumerate_order` and `background`.  A later version appends
 * slots; a driver of an earlier version leaves them out (its table is
 * shorter), and the core never reads them: they count as NULL.
 *
 * Required: open, load, the three cursor slots, stats, close, and either
 * store and remove or (version 2) apply_batch; a driver without them is
 * refused (spool_backend_register: misuse).  With apply_batch the core
 * queues every store and remove and hands them over in batches (group
 * commit, spool_group.h), and store and remove are not called.  A NULL
 * optional slot has a documented answer:
 *   probe              the kind is never detected, only named
 *   quarantine, restore, purge   misuse: "the <kind> backend keeps no quarantine"
 *   compact, cleanup   success, nothing reclaimed (stats all zero)
 *   advise_low_memory  success, 0 bytes released
 *   check              verify's structural part says ok, "no structural check"
 *   health             nothing added to the core's health
 *   background         no background trouble is ever reported
 * Every slot runs with no lock of the core held, may block, and returns
 * 0 or -1 with err set: a kind from spool_error.h, and the backend's own
 * code and its name (err->code, err->code_name: SQLite's extended result
 * code, an errno, a RocksDB status), which the core passes on unread. */
#define SPOOL_BACKEND_VERSION 4

/* One tuning option of a backend, declared once: the Lua binding reads
 * the value into the backend's parameters by `offset`, the Lua layer
 * validates against the type and range, and docs/BACKENDS.md's table of
 * options is generated from it (tools/backend-options.lua; a spec keeps
 * the two equal). */
typedef enum spool_option_type {
    SPOOL_OPT_INT,     /* an integer in [min, max]; C int */
    SPOOL_OPT_INT64,   /* an integer in [min, max]; C int64_t */
    SPOOL_OPT_POW2,    /* a power of two in [min, max]; C int */
    SPOOL_OPT_BOOL,    /* C int, 0 or 1 */
    SPOOL_OPT_STRING,  /* C const char *, owned by the caller */
    SPOOL_OPT_ENUM,    /* one of `values` ("None,Snappy,..."); C int, 1 + its index
                        * (0: not given) */
    SPOOL_OPT_DURATION, /* seconds in [min, max], or a string like "6h"; C double */
} spool_option_type;

typedef struct spool_option {
    const char *name;
    spool_option_type type;
    int64_t min, max;
    /* The C value an explicit 0 from Lua becomes (0: stays 0): SQLite's
     * wal_autocheckpoint = 0 means "disabled", which C writes as -1. */
    int64_t zero_is;
    const char *default_text; /* the default as the docs write it */
    size_t offset;            /* of the field in the backend's parameters */
    const char *doc;          /* one line for the docs */
    const char *values;       /* SPOOL_OPT_ENUM: the names, comma-separated */
} spool_option;

typedef struct spool_backend {
    int version;      /* SPOOL_BACKEND_VERSION when the driver was written */
    const char *kind; /* the `kind` users name: "SQLite", "LocalDisk" */
    /* Whether the directory `path` holds this backend's data: 1 yes, 0 no.
     * Reads nothing but names (lstat): a new directory is 0 for all. */
    int (*probe)(const char *path);
    /* The backend's tuning: the key of its table in the parameters
     * ("sqlite"; spool_params_tune_* rows with that key), its options
     * (ending with a row whose name is NULL; offsets into the backend's
     * own struct) and that struct's size.  At open the core allocates
     * params_size zeroed bytes, writes each checked row into them and
     * passes them as `tuning` (valid during open only: the backend keeps
     * a copy).  options NULL and params_size 0: no tuning, tuning NULL. */
    const char *options_key;
    const spool_option *options;
    size_t params_size;
    int (*open)(const spool_params *p, const void *tuning, void **state, spool_error *err);
    int (*store)(void *st, const spool_item *items, size_t n, int force_sync,
                 const spool_deadline *dl, spool_error *err);
    /* Calls fn with the entry's verified bytes. */
    int (*load)(void *st, const spool_id *id, spool_blob_fn fn, void *ud,
                const spool_deadline *dl, spool_error *err);
    int (*remove)(void *st, const spool_id *ids, size_t n, int force_sync,
                  const spool_deadline *dl, size_t *removed, spool_error *err);
    int (*cursor_open)(void *st, const spool_enum_opts *o, void **cur, spool_error *err);
    /* 1 entry, 0 end, -1 error.  Must not touch the storage after the
     * backend was closed; spool.c guarantees it is not called then. */
    int (*cursor_next)(void *cur, spool_entry *e, spool_error *err);
    void (*cursor_close)(void *cur); /* frees memory only */
    int (*quarantine)(void *st, const spool_id *id, const char *reason,
                      const spool_deadline *dl, spool_error *err);
    int (*restore)(void *st, const spool_id *id, const spool_deadline *dl, spool_error *err);
    /* Deletes a quarantined entry; *purged = 1 when there was one. */
    int (*purge)(void *st, const spool_id *id, const spool_deadline *dl, int *purged, spool_error *err);
    int (*compact)(void *st, spool_compact_stats *stats, spool_error *err);
    int (*cleanup)(void *st, spool_cleanup_stats *stats, spool_error *err);
    int (*advise_low_memory)(void *st, int64_t *released, spool_error *err);
    /* The storage's own structural check; writes "ok" or findings. */
    int (*check)(void *st, int *ok, char *report, size_t size, spool_error *err);
    int (*stats)(void *st, spool_stats *out, spool_error *err);
    /* leak = 1 in a forked child: free nothing the parent's files depend on. */
    void (*close)(void *st, int leak);
    /* Optional (NULL: nothing to add): fills the backend's part of h.
     * Cheap: no lock other than the backend's own, at most a stat(). */
    void (*health)(void *st, spool_health *h);
    /* Version 2.  Commits a batch of stores and removes from several
     * callers together (spool_group.h): each request all or nothing, one
     * request's failure its own where the storage allows, waiting for
     * the storage no longer than the earliest pending deadline
     * (spool_group_expire drops the ones that passed). */
    spool_apply_fn apply_batch;
    /* Version 3.  The order enumerate visits entries in
     * (spool_enum_order), which callers may rely on: spool.recover
     * merges a meta and a data spool of one kind in one pass when it is
     * known, and looks each message up when it is SPOOL_ORDER_UNKNOWN. */
    int enumerate_order;
    /* Version 3, optional (NULL: nothing to report).  Polls the storage's
     * own background work (RocksDB's flushes and compactions): returns 1
     * with err describing it when new trouble appeared since the last
     * call, 0 when not.  Cheap: no I/O, no lock of the core held.  The
     * core calls it at most every min(5 s, error_latch_duration / 3) from
     * stores, cleanup and health, and the gate latches when every poll
     * for error_latch_duration reports trouble (spool_gate.h). */
    int (*background)(void *st, spool_error *err);
    /* Version 4.  1 when apply_batch commits the whole batch as one unit
     * (SQLite: one transaction), so that a request costs less in a larger
     * batch even when none asks for durability: a group-commit leader
     * then waits briefly for concurrent writers to join (spool_group.h).
     * 0, and a table older than version 4: it waits only for batches
     * with a durable request, whose sync the batch shares. */
    int batch_commit;
} spool_backend;

/* The orders a backend's enumerate can promise. */
typedef enum spool_enum_order {
    SPOOL_ORDER_UNKNOWN = 0, /* none promised (and a driver of version < 3) */
    SPOOL_ORDER_CREATED,     /* by creation time, then id bytes (spool_id_compare) */
    SPOOL_ORDER_ID_BYTES,    /* by the 16 id bytes, as memcmp orders them */
} spool_enum_order;

/* b's enumerate order: SPOOL_ORDER_UNKNOWN for a table older than
 * version 3, which has no such slot. */
int spool_backend_order(const spool_backend *b);

/* Checks the tuning rows of p whose key is b's options key against b's
 * declarations and writes them into out (b->params_size bytes).  Returns
 * 0, or -1 with a misuse error naming the option and what it expects. */
int spool_options_apply(const spool_backend *b, const spool_params *p, void *out, spool_error *err);

/* Adds a backend that a C program brings, after the built-in ones, in
 * the manner of sqlite3_vfs_register: spools then open it by its kind
 * (and detect it through its probe).  The table must outlive every spool
 * opened with it.  Refused (misuse) when a required slot is NULL or the
 * kind is taken; at most 8.  Returns 0 or -1 with err. */
int spool_backend_register(const spool_backend *b, spool_error *err);

/* The i-th backend (built-in, then registered), or NULL past the last. */
const spool_backend *spool_backend_get(size_t i);

/* The backends built into this library, in csrc/backends/spool_backends.c:
 * one line per backend; the first is the default for a new directory. */
extern const spool_backend *const spool_builtin_backends[];
extern const size_t spool_builtin_backend_count;

#endif
