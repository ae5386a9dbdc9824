/*
 * spool_rocksdb.c: the RocksDB backend, compatible with KumoMTA's rocks
 * spool (../shared/reference/FACTS.md): the default column family, key =
 * the 16 id bytes, value = the raw bytes, the options of KumoMTA's
 * RocksSpoolParams (rocks_params in Lua).  Built when librocksdb is
 * present (the Makefile's ROCKSDB).
 *
 * - Writes are WriteBatches with no_slowdown: a write that RocksDB would
 *   stall answers at once, and the write is retried with a backoff from
 *   0.5 ms doubling to 50 ms until it is accepted or the effective
 *   deadline passes (KumoMTA's loop).  Each store or remove is one
 *   WriteBatch (all of it or none of it written), written by its caller:
 *   not through the core's group commit, since RocksDB's own write group
 *   commits concurrent writers together (one WAL append, one sync for
 *   the synced ones) and inserts into the memtable in parallel, which a
 *   leader writing for everyone cannot.  Writes of one id are serialised
 *   by a stripe lock, so that their answers are exact.
 * - `flush` selects fsync instead of fdatasync (use_fsync), as KumoMTA
 *   maps it, and, unlike KumoMTA, also syncs every write: in this spool
 *   `flush` means "every commit durable against power loss" on every
 *   backend, and a reader of the same database (kumod) cannot tell.
 * - RocksDB checks its blocks' checksums: a Corruption status is a
 *   `corrupt` answer, never wrong bytes.
 * - One process per database (RocksDB's LOCK file): a second open answers
 *   `busy`, naming the lock.
 * - A cursor walks one iterator, renewed every second at the key after
 *   the last one read (an iterator pins the files it started on); a
 *   cursor left open across close is orphaned before the database goes.
 * - A remove answers whether there was an entry: from memory when this
 *   handle stored it (the known table), else by reading it.
 * - Quarantine lives beside the database, in quarantine/ (one file per
 *   entry, named by its id's hex, and <hex>.why with the time and the
 *   reason, as on LocalDisk): KumoMTA opens the database with its default
 *   column family only, and would refuse one with another.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool_backend.h"
#include "spool_file.h"

#define STRIPE_BITS 12 /* stripe locks (40 bytes each): the top bits of an id's hash */
#define KNOWN_BITS 14 /* buckets: the top bits of the hash, so a bucket is in one stripe */
#define KNOWN_WAYS 4  /* slots per bucket */
#define KNOWN_SLOTS ((1 << KNOWN_BITS) * KNOWN_WAYS) /* 16 bytes each: 1 MiB */

typedef struct rk {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wo, *wo_sync;
    rocksdb_readoptions_t *ro;
    rocksdb_readoptions_t *ro_probe; /* existence reads: checked, not cached */
    char *dir;
    int flush; /* every write synced */
    int qfd;   /* quarantine/ */
    mode_t file_mode;
    atomic_llong background_seen; /* rocksdb.background-errors at the last poll */
    atomic_llong background_writable; /* ... when writes last got through a stall */
    atomic_llong stalled_writes;      /* writes that met a stall and retried */
    struct rk_cursor *cursors;        /* open entry walks (cursors_lock) */
    /* Every write of an id holds the id's stripe lock, from whatever it
     * reads to answer (is the entry there?) until its WriteBatch is
     * written: writes of one id are serialised, so that each answers as
     * if they had run one by one, while writes of other ids go to
     * RocksDB together (its write group batches them). */
    pthread_mutex_t stripe[1 << STRIPE_BITS];
    /* Ids this handle stored and has not removed since: a table of
     * KNOWN_SLOTS ids in 4-slot buckets (all-zero bytes: empty), so that
     * a remove of an entry stored here knows there was one without
     * reading it back.  Only this handle writes the database (RocksDB's
     * LOCK).  A bucket holds ids of one stripe only, and is read and
     * written under that stripe's lock. */
    uint8_t (*known)[SPOOL_ID_BYTES];
    atomic_llong removes_known;  /* removes answered from the table */
} rk;

/* ------------------------------------------------------------- errors */

/* The kind and the RocksDB status name of an error string from the C
 * API ("IO error: ...", "Corruption: ..."). */
static spool_kind kind_of(const char *msg, const char **code)
{
    static const struct {
        const char *prefix, *code;
        spool_kind kind;
    } map[] = {
        {"Corruption:", "Corruption", SPOOL_CORRUPT},
        {"IO error: No space left", "IOError", SPOOL_FULL},
        {"IO error: While lock file", "IOError", SPOOL_BUSY},
        {"IO error:", "IOError", SPOOL_IO},
        {"Resource busy:", "Busy", SPOOL_BUSY},
        {"Operation timed out:", "TimedOut", SPOOL_BUSY},
        {"Operation aborted:", "Aborted", SPOOL_INTERNAL},
        {"Result incomplete:", "Incomplete", SPOOL_BUSY},
        {"Not implemented:", "NotSupported", SPOOL_INTERNAL},
        {"Invalid argument:", "InvalidArgument", SPOOL_INTERNAL},
        {"NotFound:", "NotFound", SPOOL_IO},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strncmp(msg, map[i].prefix, strlen(map[i].prefix)) == 0) {
            *code = map[i].code;
            /* A full disk reports itself inside other texts too. */
            if (map[i].kind == SPOOL_IO && strstr(msg, "No space left") != NULL)
                return SPOOL_FULL;
            return map[i].kind;
        }
    }
    *code = "Unknown";
    return SPOOL_INTERNAL;
}

/* Fills err from a RocksDB error string (freed here) for `what`.
 * Returns -1. */
static int fail(rk *s, char *msg, const char *what, spool_error *err)
{
    const char *code;
    spool_kind k = kind_of(msg, &code);
    if (k == SPOOL_BUSY && strstr(msg, "lock") != NULL)
        spool_error_set(err, k, "%s %s: %s (RocksDB allows one process per database: another holds its LOCK)",
                        what, s->dir, msg);
    else
        spool_error_set(err, k, "%s %s: %s", what, s->dir, msg);
    err->code_name = code;
    rocksdb_free(msg);
    return -1;
}

/* --------------------------------------------------------------- open */

static int q_fail(rk *s, int e, const char *what, const char *name, spool_error *err);

/* KumoMTA's RocksSpoolParams, the `rocks_params` options (rk_options
 * below).  0 means RocksDB's default unless said otherwise. */
typedef struct rk_tuning {
    int compression;          /* 1 + index into compression_names; 0 = Snappy, KumoMTA's default */
    int increase_parallelism; /* background threads; 0 = not set */
    int64_t optimize_level_style_compaction;     /* memtable budget bytes; 0 = not set */
    int64_t optimize_universal_style_compaction; /* memtable budget bytes; 0 = not set */
    int64_t compaction_readahead_size;
    int max_open_files; /* 0 = RocksDB's default (-1, unlimited) */
    int64_t write_buffer_size;
    int level0_stop_writes_trigger;
    int64_t memtable_huge_page_size;
    int paranoid_checks; /* default false */
    int level_compaction_dynamic_level_bytes;
    int log_level;                /* 1 + index into log_level_names; 0 = Info */
    double log_file_time_to_roll; /* seconds; 0 = one day */
    double obsolete_files_period; /* seconds; 0 = six hours */
} rk_tuning;

static const char *const compression_names = "None,Snappy,Zlib,Bz2,Lz4,Lz4hc,Zstd";
static const int compressions[] = {rocksdb_no_compression,  rocksdb_snappy_compression, rocksdb_zlib_compression,
                                   rocksdb_bz2_compression, rocksdb_lz4_compression,    rocksdb_lz4hc_compression,
                                   rocksdb_zstd_compression};
static const char *const log_level_names = "Debug,Info,Warn,Error,Fatal,Header";

/* The options KumoMTA's open sets, then the caller's rocks_params. */
static rocksdb_options_t *make_options(const spool_params *p, const rk_tuning *r)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_keep_log_file_num(o, 10);
    rocksdb_options_set_compression(o, compressions[r->compression > 0 ? r->compression - 1 : 1]);
    rocksdb_options_set_info_log_level(o, r->log_level > 0 ? r->log_level - 1 : 1);
    rocksdb_options_set_use_fsync(o, p->flush);
    rocksdb_options_set_paranoid_checks(o, r->paranoid_checks);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, r->level_compaction_dynamic_level_bytes);
    rocksdb_options_set_log_file_time_to_roll(o, (size_t)(r->log_file_time_to_roll > 0 ? r->log_file_time_to_roll
                                                                                         : 86400));
    double obsolete = r->obsolete_files_period > 0 ? r->obsolete_files_period : 6 * 3600;
    rocksdb_options_set_delete_obsolete_files_period_micros(o, (uint64_t)(obsolete * 1e6));
    if (r->increase_parallelism > 0)
        rocksdb_options_increase_parallelism(o, r->increase_parallelism);
    if (r->optimize_level_style_compaction > 0)
        rocksdb_options_optimize_level_style_compaction(o, (uint64_t)r->optimize_level_style_compaction);
    if (r->optimize_universal_style_compaction > 0)
        rocksdb_options_optimize_universal_style_compaction(o, (uint64_t)r->optimize_universal_style_compaction);
    if (r->compaction_readahead_size > 0)
        rocksdb_options_compaction_readahead_size(o, (size_t)r->compaction_readahead_size);
    if (r->max_open_files != 0)
        rocksdb_options_set_max_open_files(o, r->max_open_files);
    if (r->write_buffer_size > 0)
        rocksdb_options_set_write_buffer_size(o, (size_t)r->write_buffer_size);
    if (r->level0_stop_writes_trigger > 0)
        rocksdb_options_set_level0_stop_writes_trigger(o, r->level0_stop_writes_trigger);
    if (r->memtable_huge_page_size > 0)
        rocksdb_options_set_memtable_huge_page_size(o, (size_t)r->memtable_huge_page_size);
    return o;
}

static void cursors_orphan(rk *s);

static void rk_free(rk *s)
{
    cursors_orphan(s); /* iterators go before their database */
    if (s->db != NULL)
        rocksdb_close(s->db);
    if (s->opts != NULL)
        rocksdb_options_destroy(s->opts);
    if (s->wo != NULL)
        rocksdb_writeoptions_destroy(s->wo);
    if (s->wo_sync != NULL)
        rocksdb_writeoptions_destroy(s->wo_sync);
    if (s->ro != NULL)
        rocksdb_readoptions_destroy(s->ro);
    if (s->ro_probe != NULL)
        rocksdb_readoptions_destroy(s->ro_probe);
    if (s->qfd >= 0)
        close(s->qfd);
    for (int i = 0; i < 1 << STRIPE_BITS; i++)
        pthread_mutex_destroy(&s->stripe[i]);
    free(s->known);
    free(s->dir);
    free(s);
}

#ifndef SPOOL_ROCKSDB_VERSION
#define SPOOL_ROCKSDB_VERSION "unknown" /* the Makefile passes pkg-config's answer */
#endif
#define BLOCK_TABLE_MAGIC 0x88e241b785f4cff7ULL /* the last 8 bytes of a block-based table */

/* The newest block-based table format_version the linked RocksDB reads:
 * 6 from RocksDB 8.6 on, 5 before (7.8.3, Debian 12's, and what KumoMTA's
 * 8.10 writes by default). */
static int max_table_format(void)
{
    int major = 0, minor = 0;
    if (sscanf(SPOOL_ROCKSDB_VERSION, "%d.%d", &major, &minor) != 2)
        return 5;
    return major > 8 || (major == 8 && minor >= 6) ? 6 : 5;
}

/* The format_version a table file's footer states (its last 12 bytes:
 * the version, then the magic), or -1 when it is not a block-based table
 * this can read the footer of. */
static int table_format(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    uint8_t tail[12];
    int version = -1;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 53 &&
        pread(fd, tail, sizeof tail, st.st_size - (off_t)sizeof tail) == (ssize_t)sizeof tail) {
        uint64_t magic = 0;
        for (int i = 7; i >= 0; i--)
            magic = magic << 8 | tail[4 + i];
        if (magic == BLOCK_TABLE_MAGIC)
            version = (int)((uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 |
                            (uint32_t)tail[3] << 24);
    }
    if (fd >= 0)
        close(fd);
    return version;
}

/* The largest format_version an OPTIONS file names, and the RocksDB
 * version that wrote it (into ver).  -1 when it names none. */
static int options_format(int dirfd, const char *name, char *ver, size_t size)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    char line[512];
    int best = -1, v;
    while (fgets(line, sizeof line, f) != NULL) {
        const char *at = line + strspn(line, " \t");
        if (sscanf(at, "format_version=%d", &v) == 1 && v > best)
            best = v;
        else if (strncmp(at, "rocksdb_version=", 16) == 0)
            snprintf(ver, size, "%.*s", (int)strcspn(at + 16, "\r\n"), at + 16);
    }
    fclose(f);
    return best;
}

/* Refuses, touching nothing, a database in a table format newer than the
 * linked RocksDB reads: a table file whose footer says so, or a latest
 * OPTIONS file that does.  RocksDB itself opens such a database, rewrites
 * its MANIFEST and OPTIONS, and fails only when a read reaches the table
 * (7.8.3: "Corrupt or unsupported format_version"): opened half-way.
 * Returns 0 (also when the directory cannot be read: RocksDB then says
 * why), or -1 with a corrupt error naming the file and both versions. */
static int check_format(const char *dir, spool_error *err)
{
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dirfd >= 0 ? fdopendir(dirfd) : NULL;
    if (d == NULL) {
        if (dirfd >= 0)
            close(dirfd);
        return 0;
    }
    int max = max_table_format(), rc = 0;
    char options[64] = "", writer[32] = "";
    unsigned long options_no = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        unsigned long no;
        char rest;
        if (len > 4 && strcmp(e->d_name + len - 4, ".sst") == 0) {
            int v = table_format(dirfd, e->d_name);
            if (v > max)
                rc = spool_error_set(err, SPOOL_CORRUPT,
                                     "open %s: %s is in RocksDB table format_version %d, newer than this build's "
                                     "RocksDB (%s) reads (up to %d); left untouched: open it with a RocksDB as new "
                                     "as the one that wrote it",
                                     dir, e->d_name, v, SPOOL_ROCKSDB_VERSION, max);
        } else if (sscanf(e->d_name, "OPTIONS-%lu%c", &no, &rest) == 1 && no >= options_no &&
                   len < sizeof options) {
            options_no = no;
            memcpy(options, e->d_name, len + 1);
        }
    }
    int v;
    if (rc == 0 && options[0] != '\0' && (v = options_format(dirfd, options, writer, sizeof writer)) > max)
        rc = spool_error_set(err, SPOOL_CORRUPT,
                             "open %s: %s names table format_version %d (written by RocksDB %s), newer than this "
                             "build's RocksDB (%s) reads (up to %d); left untouched: open it with a RocksDB as new "
                             "as the one that wrote it",
                             dir, options, v, writer[0] ? writer : "?", SPOOL_ROCKSDB_VERSION, max);
    if (rc != 0)
        err->code_name = "NotSupported";
    closedir(d);
    return rc;
}

static int rk_open(const spool_params *p, const void *tuning, void **state, spool_error *err)
{
    rk *s = calloc(1, sizeof *s);
    if (s == NULL || (s->dir = strdup(p->path)) == NULL ||
        (s->known = calloc(KNOWN_SLOTS, sizeof *s->known)) == NULL) {
        if (s != NULL)
            free(s->dir);
        free(s);
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening %s", p->path);
    }
    for (int i = 0; i < 1 << STRIPE_BITS; i++)
        pthread_mutex_init(&s->stripe[i], NULL);
    atomic_init(&s->removes_known, 0);
    s->qfd = -1;
    atomic_init(&s->background_seen, 0);
    atomic_init(&s->background_writable, 0);
    atomic_init(&s->stalled_writes, 0);
    s->flush = p->flush;
    s->file_mode = p->group_access ? 0640 : 0600;
    /* RocksDB makes only the last level; KumoMTA's directory is 0755. */
    if (mkdir(p->path, p->group_access ? 0750 : 0700) != 0 && errno != EEXIST) {
        int e = errno;
        rk_free(s);
        spool_error_set(err, SPOOL_IO, "path: cannot create the directory %s: %s", p->path, strerror(e));
        err->sys_errno = err->code = e;
        err->code_name = spool_errno_name(e);
        return -1;
    }
    if (check_format(p->path, err) != 0) {
        rk_free(s);
        return -1;
    }
    s->opts = make_options(p, tuning);
    s->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_no_slowdown(s->wo, 1);
    s->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_no_slowdown(s->wo_sync, 1);
    rocksdb_writeoptions_set_sync(s->wo_sync, 1);
    s->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(s->ro, 1);
    s->ro_probe = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(s->ro_probe, 1);
    rocksdb_readoptions_set_fill_cache(s->ro_probe, 0);
    char *msg = NULL;
    s->db = rocksdb_open(s->opts, p->path, &msg);
    if (msg != NULL) {
        s->db = NULL;
        fail(s, msg, "open", err);
        rk_free(s);
        return -1;
    }
    char q[4096];
    snprintf(q, sizeof q, "%s/quarantine", p->path);
    if ((mkdir(q, p->group_access ? 0750 : 0700) != 0 && errno != EEXIST) ||
        (s->qfd = open(q, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        int e = errno;
        rk_free(s);
        spool_error_set(err, SPOOL_IO, "open %s: cannot make or use its quarantine/ directory: %s", p->path,
                        strerror(e));
        err->sys_errno = err->code = e;
        err->code_name = spool_errno_name(e);
        return -1;
    }
    int dirfd = open(p->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int named = dirfd >= 0 ? spool_file_record_name(dirfd, s->dir, p->name, s->file_mode, err)
                           : spool_file_fail(err, errno, "open", p->path, "");
    if (dirfd >= 0)
        close(dirfd);
    if (named != 0) {
        rk_free(s);
        return -1;
    }
    *state = s;
    return 0;
}

/* A directory holds a RocksDB database when it has RocksDB's CURRENT and
 * IDENTITY files. */
static int rk_probe(const char *path)
{
    char buf[4096];
    struct stat st;
    snprintf(buf, sizeof buf, "%s/CURRENT", path);
    if (lstat(buf, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    snprintf(buf, sizeof buf, "%s/IDENTITY", path);
    return lstat(buf, &st) == 0 && S_ISREG(st.st_mode);
}

/* ------------------------------------------------------------- writes */

static int64_t property(rk *s, const char *name);

/* Writes wb, retrying a stalled write with KumoMTA's backoff (0.5 ms
 * doubling to 50 ms) until dl.  A stall while RocksDB counts more
 * background errors than when writes last got through is not load: a
 * flush or compaction failed and the writes wait for it for good (7.8.3
 * answers them "Write stall", not the error), so it fails at once as an
 * I/O error, which latches the gate, instead of holding every writer
 * until its deadline.  Returns 0, or -1 with err, marked ambiguous
 * unless the batch was never written (a stall, the deadline). */
static int write_batch(rk *s, rocksdb_writebatch_t *wb, int sync, const spool_deadline *dl, spool_error *err)
{
    double pause = 0.0005;
    int stalled = 0;
    for (;;) {
        char *msg = NULL;
        rocksdb_write(s->db, sync ? s->wo_sync : s->wo, wb, &msg);
        if (msg == NULL) {
            if (stalled) /* through again: what failed before does not block writes */
                atomic_store(&s->background_writable, (long long)property(s, "rocksdb.background-errors"));
            return 0;
        }
        /* no_slowdown answers a would-be stall with Incomplete. */
        if (strncmp(msg, "Result incomplete:", 18) != 0) {
            /* RocksDB may have logged the batch before the error (a
             * failed sync above all) and would replay it at the next
             * open: the outcome is not known. */
            fail(s, msg, "write", err);
            err->ambiguous = 1;
            return -1;
        }
        rocksdb_free(msg);
        int64_t failed = property(s, "rocksdb.background-errors");
        if (failed > atomic_load(&s->background_writable)) {
            spool_error_set(err, SPOOL_IO,
                            "write %s: stalled behind a failed flush or compaction (RocksDB counts %lld background "
                            "errors; its LOG file says why)",
                            s->dir, (long long)failed);
            err->code_name = "IOError";
            return -1;
        }
        if (!stalled++)
            atomic_fetch_add(&s->stalled_writes, 1);
        double now = spool_monotonic();
        if (now >= dl->at)
            return spool_deadline_error(dl, err);
        if (now + pause > dl->at)
            pause = dl->at - now;
        struct timespec ts = {(time_t)pause, (long)((pause - (double)(time_t)pause) * 1e9)};
        nanosleep(&ts, NULL);
        pause = pause * 2 > 0.05 ? 0.05 : pause * 2;
    }
}

/* A hash of an id's 16 bytes. */
static uint64_t id_hash(const uint8_t *id)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    return (a ^ (b * 0x9E3779B97F4A7C15ULL)) * 0x9E3779B97F4A7C15ULL;
}

/* The bucket of id in the known table (KNOWN_WAYS slots); NULL for the
 * all-zero id, which would read as an empty slot. */
static uint8_t (*known_bucket(rk *s, const uint8_t *id))[SPOOL_ID_BYTES]
{
    static const uint8_t zero[SPOOL_ID_BYTES];
    if (memcmp(id, zero, SPOOL_ID_BYTES) == 0)
        return NULL;
    return s->known + (id_hash(id) >> (64 - KNOWN_BITS)) * KNOWN_WAYS;
}

/* The slot holding id in its bucket, or -1. */
static int known_find(uint8_t (*bucket)[SPOOL_ID_BYTES], const uint8_t *id)
{
    for (int w = 0; w < KNOWN_WAYS; w++)
        if (memcmp(bucket[w], id, SPOOL_ID_BYTES) == 0)
            return w;
    return -1;
}

/* Whether id is in the known table, taking it out: 1 or 0.  The id's
 * stripe lock held. */
static int known_take(rk *s, const uint8_t *id)
{
    uint8_t (*bucket)[SPOOL_ID_BYTES] = known_bucket(s, id);
    int w = bucket != NULL ? known_find(bucket, id) : -1;
    if (w >= 0)
        memset(bucket[w], 0, SPOOL_ID_BYTES);
    return w >= 0;
}

/* Enters id in the known table.  A full bucket gives up a slot chosen by
 * the id's hash: the id it held is then answered by a read.  The id's
 * stripe lock held. */
static void known_put(rk *s, const uint8_t *id)
{
    static const uint8_t zero[SPOOL_ID_BYTES];
    uint8_t (*bucket)[SPOOL_ID_BYTES] = known_bucket(s, id);
    if (bucket == NULL || known_find(bucket, id) >= 0)
        return;
    int w = known_find(bucket, zero);
    if (w < 0)
        w = (int)(id_hash(id) & (KNOWN_WAYS - 1));
    memcpy(bucket[w], id, SPOOL_ID_BYTES);
}

/* The stripes of a write's ids, as a bit set. */
typedef struct stripe_set {
    uint64_t bits[(1 << STRIPE_BITS) / 64];
} stripe_set;

/* The stripe of an id: the top bits of its hash. */
static unsigned stripe_of(const uint8_t *id)
{
    return (unsigned)(id_hash(id) >> (64 - STRIPE_BITS));
}

static void stripe_add(stripe_set *set, const uint8_t *id)
{
    unsigned i = stripe_of(id);
    set->bits[i / 64] |= 1ULL << (i % 64);
}

/* Takes stripe lock i, waiting no later than dl.  Returns 0, or -1 with
 * the deadline's error. */
static int stripe_lock_at(rk *s, unsigned i, const spool_deadline *dl, spool_error *err)
{
    if (pthread_mutex_trylock(&s->stripe[i]) == 0)
        return 0;
    struct timespec at = spool_deadline_timespec(dl->at);
    if (pthread_mutex_clocklock(&s->stripe[i], CLOCK_MONOTONIC, &at) != 0)
        return spool_deadline_error(dl, err);
    return 0;
}

/* Releases the stripe locks of set below index `below`. */
static void stripes_unlock(rk *s, const stripe_set *set, unsigned below)
{
    for (unsigned w = 0; w < (1u << STRIPE_BITS) / 64 && w * 64 < below; w++)
        for (uint64_t bits = set->bits[w]; bits != 0; bits &= bits - 1) {
            unsigned i = w * 64 + (unsigned)__builtin_ctzll(bits);
            if (i >= below)
                return;
            pthread_mutex_unlock(&s->stripe[i]);
        }
}

/* Takes the stripe locks of set, in increasing order (so that two writes
 * never wait for each other), each waiting no later than dl.  Returns 0,
 * or -1 with the deadline's error and none of them held. */
static int stripes_lock(rk *s, const stripe_set *set, const spool_deadline *dl, spool_error *err)
{
    for (unsigned w = 0; w < (1u << STRIPE_BITS) / 64; w++)
        for (uint64_t bits = set->bits[w]; bits != 0; bits &= bits - 1) {
            unsigned i = w * 64 + (unsigned)__builtin_ctzll(bits);
            if (stripe_lock_at(s, i, dl, err) != 0) {
                stripes_unlock(s, set, i);
                return -1;
            }
        }
    return 0;
}

/* The stripe lock of one id (quarantine, restore).  Returns 0, or -1
 * with the deadline's error. */
static int stripe_lock_one(rk *s, const spool_id *id, stripe_set *set, const spool_deadline *dl, spool_error *err)
{
    memset(set, 0, sizeof *set);
    stripe_add(set, id->b);
    return stripes_lock(s, set, dl, err);
}

static void stripes_unlock_all(rk *s, const stripe_set *set)
{
    stripes_unlock(s, set, 1u << STRIPE_BITS);
}

/* Whether an entry of id is there, for remove's answer: 1 or 0.  Memory
 * first (key_may_exist: the memtables and the block cache, no I/O),
 * which answers for a recent entry and for a key known absent; then a
 * read of the table files (not kept in the cache: the entry is going).
 * A read that fails (a damaged block) answers 1: the entry is there but
 * unreadable, and remove deletes it all the same, as the other backends
 * delete a row or a file without reading it. */
static int was_there(rk *s, const spool_id *id)
{
    char *value = NULL;
    size_t len = 0;
    unsigned char in_memory = 0;
    /* 7.8.3 copies a value (an empty one) out whenever its value_found
     * stays set, which it does for a key deleted in memory while the
     * answer is 0: freed either way. */
    unsigned char may = rocksdb_key_may_exist(s->db, s->ro_probe, (const char *)id->b, SPOOL_ID_BYTES, &value, &len,
                                              NULL, 0, &in_memory);
    rocksdb_free(value);
    if (!may)
        return 0;
    if (in_memory)
        return 1;
    char *msg = NULL;
    rocksdb_pinnableslice_t *v = rocksdb_get_pinned(s->db, s->ro_probe, (const char *)id->b, SPOOL_ID_BYTES, &msg);
    if (msg != NULL) {
        rocksdb_free(msg);
        return 1;
    }
    int found = v != NULL;
    rocksdb_pinnableslice_destroy(v);
    return found;
}

/* The ids of one remove_many already seen: open addressing over
 * pointers to their bytes (NULL: empty).  A request's deletes are not in
 * the database until its batch is written, so a repeated id is caught
 * here to be counted once (as SQLite's and LocalDisk's second delete
 * find nothing). */
typedef struct seen_ids {
    const uint8_t **slot;
    size_t mask;
} seen_ids;

/* Sizes t for n ids.  Returns 0, or -1 when out of memory. */
static int seen_init(seen_ids *t, size_t n)
{
    size_t size = 4;
    while (size < 2 * n && size < SIZE_MAX / 4 / sizeof *t->slot)
        size *= 2;
    t->mask = size - 1;
    t->slot = calloc(size, sizeof *t->slot);
    return t->slot != NULL ? 0 : -1;
}

/* Whether id was seen before, recording it. */
static int seen_before(seen_ids *t, const uint8_t *id)
{
    for (size_t h = id_hash(id) & t->mask;; h = (h + 1) & t->mask) {
        if (t->slot[h] == NULL) {
            t->slot[h] = id;
            return 0;
        }
        if (memcmp(t->slot[h], id, SPOOL_ID_BYTES) == 0)
            return 1;
    }
}

/* A store (items) or remove (ids) of n ids as one WriteBatch, synced
 * when force_sync or flush asks for it.  Not through the core's group
 * commit: each caller writes for itself, and RocksDB's write group
 * commits concurrent writers together (one WAL append and, for synced
 * ones, one sync), their memtable inserts in parallel.  The ids' stripe
 * locks are held from a remove's existence check until the known table
 * records the outcome.  A stall is retried until dl.  Returns 0 (with
 * *removed for a remove), or -1 with err (ambiguous when RocksDB may
 * have logged the batch, as write_batch says). */
static int rk_write(rk *s, const spool_item *items, const spool_id *ids, size_t n, int force_sync,
                    const spool_deadline *dl, size_t *removed, spool_error *err)
{
    seen_ids seen = {NULL, 0};
    if (ids != NULL && n > 1 && seen_init(&seen, n) != 0)
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory removing %zu entries from %s", n, s->dir);
    /* One id (the usual store or remove): its stripe alone, without the
     * set's scans; several: every stripe they touch, in order. */
    stripe_set set;
    unsigned one = n == 1 ? stripe_of(items != NULL ? items[0].id.b : ids[0].b) : 0;
    if (n != 1) {
        memset(&set, 0, sizeof set);
        for (size_t i = 0; i < n; i++)
            stripe_add(&set, items != NULL ? items[i].id.b : ids[i].b);
    }
    if ((n == 1 ? stripe_lock_at(s, one, dl, err) : stripes_lock(s, &set, dl, err)) != 0) {
        free(seen.slot);
        return -1;
    }
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (items != NULL) {
            rocksdb_writebatch_put(wb, (const char *)items[i].id.b, SPOOL_ID_BYTES,
                                   items[i].len ? items[i].data : "", items[i].len);
            continue;
        }
        if (seen.slot != NULL && seen_before(&seen, ids[i].b))
            continue;
        /* a failed write below leaves a taken id out of the table, which
         * only costs a read later */
        int known = known_take(s, ids[i].b);
        if (known)
            atomic_fetch_add_explicit(&s->removes_known, 1, memory_order_relaxed);
        if (known || was_there(s, &ids[i])) {
            rocksdb_writebatch_delete(wb, (const char *)ids[i].b, SPOOL_ID_BYTES);
            count++;
        }
    }
    free(seen.slot);
    int sync = force_sync || s->flush;
    int rc = rocksdb_writebatch_count(wb) > 0 ? write_batch(s, wb, sync, dl, err) : 0;
    rocksdb_writebatch_destroy(wb);
    if (rc == 0 && items != NULL)
        for (size_t i = 0; i < n; i++)
            known_put(s, items[i].id.b);
    if (n == 1)
        pthread_mutex_unlock(&s->stripe[one]);
    else
        stripes_unlock_all(s, &set);
    if (rc == 0 && removed != NULL)
        *removed = count;
    return rc;
}

static int rk_store(void *st, const spool_item *items, size_t n, int force_sync, const spool_deadline *dl,
                    spool_error *err)
{
    return rk_write(st, items, NULL, n, force_sync, dl, NULL, err);
}

static int rk_remove(void *st, const spool_id *ids, size_t n, int force_sync, const spool_deadline *dl,
                     size_t *removed, spool_error *err)
{
    return rk_write(st, NULL, ids, n, force_sync, dl, removed, err);
}

/* --------------------------------------------------------------- load */

static int rk_load(void *st, const spool_id *id, spool_blob_fn fn, void *ud, const spool_deadline *dl,
                   spool_error *err)
{
    (void)dl;
    rk *s = st;
    char *msg = NULL;
    rocksdb_pinnableslice_t *v = rocksdb_get_pinned(s->db, s->ro, (const char *)id->b, SPOOL_ID_BYTES, &msg);
    if (msg != NULL)
        return fail(s, msg, "load", err);
    if (v == NULL) {
        char text[SPOOL_ID_TEXT + 1];
        spool_id_format(id, text);
        return spool_error_set(err, SPOOL_NOT_FOUND, "no entry %s in %s", text, s->dir);
    }
    size_t len;
    const char *data = rocksdb_pinnableslice_value(v, &len);
    int rc = fn(ud, data ? data : "", len) == 0
                 ? 0
                 : spool_error_set(err, SPOOL_INTERNAL, "out of memory taking a loaded entry of %zu bytes", len);
    rocksdb_pinnableslice_destroy(v);
    return rc;
}

/* ------------------------------------------------------------- cursor */

/* The quarantine's walk (below). */
typedef struct q_cursor q_cursor;
static int q_list(rk *s, q_cursor *q, spool_error *err);
static int q_next(rk *s, q_cursor *q, spool_entry *e);
static void q_cursor_free(q_cursor *q);
static q_cursor *q_cursor_new(void);

typedef unsigned __int128 key128; /* a 16-byte key as a big-endian number */

/* A walk of the entries: one RocksDB iterator, whose key and value the
 * entries point into (valid until the next call: no copies), replaced by
 * a fresh one at the key after the last returned every ITER_SECONDS, so
 * that a long walk does not keep obsolete memtables and table files
 * alive.  The open cursors are on their database's list: rk_close
 * destroys their iterators before it closes the database (RocksDB
 * requires it), and a cursor closed later frees only its memory. */
#define ITER_SECONDS 1.0
typedef struct rk_cursor {
    rk *s;                 /* NULL once rk_close orphaned it (cursors_lock) */
    struct rk_cursor *prev, *next;
    spool_enum_opts o;
    rocksdb_iterator_t *it;
    double it_since;       /* spool_monotonic() when it was made */
    int fresh;             /* it was just positioned: no step before reading */
    uint8_t last[SPOOL_ID_BYTES + 1]; /* the key after the last one read */
    size_t last_len;
    int started, done;
    int64_t start; /* entries created at or after it are left out */
    char error[512];
    /* A damaged block stopped the walk: it resumes past it (skip_gap),
     * after a corrupt entry saying which keys it hides. */
    int gap;
    char gap_msg[256];
    key128 seen; /* the last key read, or the last the damage hid */
    int has_seen;
    q_cursor *q;   /* the quarantine's walk instead, or NULL */
} rk_cursor;

/* Guards every database's cursor list and each cursor's s: a cursor
 * closed while its database closes must not touch a freed rk. */
static pthread_mutex_t cursors_lock = PTHREAD_MUTEX_INITIALIZER;

static void iter_drop(rk_cursor *c)
{
    if (c->it != NULL)
        rocksdb_iter_destroy(c->it);
    c->it = NULL;
}

/* Called by rk_free: destroys the iterators of s's open cursors and
 * orphans them. */
static void cursors_orphan(rk *s)
{
    pthread_mutex_lock(&cursors_lock);
    for (rk_cursor *c = s->cursors; c != NULL; c = c->next) {
        iter_drop(c);
        c->s = NULL;
    }
    s->cursors = NULL;
    pthread_mutex_unlock(&cursors_lock);
}

static int rk_cursor_open(void *st, const spool_enum_opts *o, void **out, spool_error *err)
{
    rk *s = st;
    rk_cursor *c = calloc(1, sizeof *c);
    if (c == NULL)
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening a cursor on %s", s->dir);
    if (o->which == SPOOL_QUARANTINE) {
        if ((c->q = q_cursor_new()) == NULL) {
            free(c);
            return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening a cursor on %s", s->dir);
        }
        if (q_list(s, c->q, err) != 0) {
            q_cursor_free(c->q);
            free(c->q);
            free(c);
            return -1;
        }
    }
    c->o = *o;
    c->start = o->has_start ? o->start_100ns : spool_id_now_unix_100ns();
    pthread_mutex_lock(&cursors_lock);
    c->s = s;
    c->next = s->cursors;
    if (s->cursors != NULL)
        s->cursors->prev = c;
    s->cursors = c;
    pthread_mutex_unlock(&cursors_lock);
    *out = c;
    return 0;
}

static void key_hex(key128 v, char out[2 * SPOOL_ID_BYTES + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 2 * SPOOL_ID_BYTES - 1; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
    out[2 * SPOOL_ID_BYTES] = '\0';
}

static key128 key_number(const uint8_t *k, size_t len)
{
    key128 v = 0;
    for (size_t i = 0; i < SPOOL_ID_BYTES; i++)
        v = v << 8 | (i < len ? k[i] : 0);
    return v;
}

static void key_bytes(key128 v, uint8_t k[SPOOL_ID_BYTES])
{
    for (int i = SPOOL_ID_BYTES - 1; i >= 0; i--, v >>= 8)
        k[i] = (uint8_t)v;
}

/* Positions c->it at the next entry to read: a new iterator when there
 * is none or it is due for renewal (at the key after the last read, or
 * the first key), else a step.  The caller checks rocksdb_iter_valid. */
static void iter_advance(rk_cursor *c)
{
    double now = spool_monotonic();
    if (c->it != NULL && now - c->it_since >= ITER_SECONDS)
        iter_drop(c);
    if (c->it == NULL) {
        c->it = rocksdb_create_iterator(c->s->db, c->s->ro);
        c->it_since = now;
        if (c->started)
            rocksdb_iter_seek(c->it, (const char *)c->last, c->last_len);
        else
            rocksdb_iter_seek_to_first(c->it);
        c->started = 1;
        c->fresh = 1;
    }
    if (!c->fresh)
        rocksdb_iter_next(c->it);
    c->fresh = 0;
}

/* Whether a seek to key x reads without error (it finds a key, or the
 * end).  -1: an error that is not corruption, in err. */
static int seek_reads(rk *s, key128 x, spool_error *err)
{
    uint8_t k[SPOOL_ID_BYTES];
    key_bytes(x, k);
    rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->ro);
    rocksdb_iter_seek(it, (const char *)k, sizeof k);
    char *msg = NULL;
    rocksdb_iter_get_error(it, &msg);
    rocksdb_iter_destroy(it);
    const char *code;
    if (msg == NULL)
        return 1;
    if (kind_of(msg, &code) == SPOOL_CORRUPT) {
        rocksdb_free(msg);
        return 0;
    }
    return fail(s, msg, "enumerate", err);
}

/* Past the damaged block that ended the last chunk: finds the smallest
 * key after the last one read from which a seek reads again (a seek to x
 * fails exactly while the first key >= x lies in a damaged block, so a
 * binary search over the 128-bit key space finds it in 128 seeks) and
 * fills e with one corrupt entry naming the keys the damage hides.  The
 * walk goes on from there, or ends when nothing past it reads.  Returns
 * 1, or -1 with err on an error other than corruption. */
static int skip_gap(rk_cursor *c, spool_entry *e, spool_error *err)
{
    key128 lo = c->has_seen ? c->seen : 0; /* a seek to just past it failed */
    key128 hi = ~(key128)0;
    int resumes = seek_reads(c->s, hi, err), ok;
    if (resumes < 0)
        return -1;
    if (resumes) {
        /* Invariant: a seek to hi reads, every seek in (lo, hi) below the answer fails. */
        while (hi - lo > 1) {
            key128 mid = lo + (hi - lo) / 2;
            if ((ok = seek_reads(c->s, mid, err)) < 0)
                return -1;
            if (ok)
                hi = mid;
            else
                lo = mid;
        }
    }
    char from[2 * SPOOL_ID_BYTES + 1], to[2 * SPOOL_ID_BYTES + 1];
    key_hex(c->has_seen ? c->seen + 1 : 0, from);
    key_hex(resumes ? hi - 1 : hi, to);
    memset(e, 0, sizeof *e);
    e->corrupt = 1;
    snprintf(c->error, sizeof c->error, "the entries with keys from %s %s %s are in an unreadable block: %s", from,
             resumes ? "up to" : "to the end, through", to, c->gap_msg);
    e->error = c->error;
    c->gap = 0;
    if (!resumes) {
        c->done = 1;
        c->started = 1;
        return 1;
    }
    key_bytes(hi, c->last); /* resume at the first key a seek reads */
    c->last_len = SPOOL_ID_BYTES;
    c->seen = hi - 1;
    c->has_seen = 1;
    c->started = 1;
    return 1;
}

static int rk_cursor_next(void *cur, spool_entry *e, spool_error *err)
{
    rk_cursor *c = cur;
    if (c->q != NULL)
        return q_next(c->s, c->q, e);
    for (;;) {
        if (c->gap)
            return skip_gap(c, e, err);
        if (c->done)
            return 0;
        iter_advance(c);
        if (!rocksdb_iter_valid(c->it)) {
            char *msg = NULL;
            const char *code;
            rocksdb_iter_get_error(c->it, &msg);
            iter_drop(c);
            if (msg == NULL) {
                c->done = 1;
                return 0;
            }
            if (kind_of(msg, &code) == SPOOL_CORRUPT) {
                /* The entries before the damage stand; the damage becomes an entry. */
                snprintf(c->gap_msg, sizeof c->gap_msg, "%s", msg);
                rocksdb_free(msg);
                c->gap = 1;
                continue;
            }
            return fail(c->s, msg, "enumerate", err);
        }
        size_t klen;
        const char *k = rocksdb_iter_key(c->it, &klen);
        size_t l = klen < SPOOL_ID_BYTES ? klen : SPOOL_ID_BYTES;
        /* The smallest key after this one: itself and a zero byte. */
        memcpy(c->last, k, l);
        c->last[l] = 0;
        c->last_len = l + 1;
        c->seen = key_number((const uint8_t *)k, l);
        c->has_seen = 1;
        memset(e, 0, sizeof *e);
        const char *why = "a key that is not a 16-byte spool id";
        if (klen != SPOOL_ID_BYTES || spool_id_from_bytes((const uint8_t *)k, klen, &e->id, &why) != 0) {
            /* Not a key this spool writes: reported, never returned as data. */
            e->corrupt = 1;
            snprintf(c->error, sizeof c->error, "key: %s", why);
            e->error = c->error;
            return 1;
        }
        e->id_valid = 1;
        if (spool_id_unix_100ns(&e->id) >= c->start)
            continue;
        if (c->o.include_data && !c->o.ids_only) {
            size_t vlen;
            const char *v = rocksdb_iter_value(c->it, &vlen);
            e->data = vlen ? v : "";
            e->len = vlen;
        }
        return 1;
    }
}

static void rk_cursor_close(void *cur)
{
    rk_cursor *c = cur;
    if (c == NULL)
        return;
    pthread_mutex_lock(&cursors_lock);
    if (c->s != NULL) { /* its database is open: off its list */
        iter_drop(c);
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            c->s->cursors = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
    }
    pthread_mutex_unlock(&cursors_lock);
    if (c->q != NULL) {
        q_cursor_free(c->q);
        free(c->q);
    }
    free(c);
}

/* --------------------------------------------------------- quarantine */

/* Writes `name` under quarantine/ through a temporary file, synced.
 * Returns 0 or -1 with errno. */
static int write_q(rk *s, const char *name, const void *data, size_t len)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, ".%s.tmp", name);
    int fd = openat(s->qfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, s->file_mode);
    if (fd < 0)
        return -1;
    int rc = spool_file_write_all(fd, data, len) != 0 || fdatasync(fd) != 0 ? -1 : 0;
    int e = errno;
    close(fd);
    if (rc == 0 && renameat(s->qfd, tmp, s->qfd, name) != 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0)
        unlinkat(s->qfd, tmp, 0);
    errno = e;
    return rc;
}

static int q_fail(rk *s, int e, const char *what, const char *hex, spool_error *err)
{
    spool_error_set(err, e == ENOSPC || e == EDQUOT ? SPOOL_FULL : SPOOL_IO, "%s %s in %s/quarantine: %s", what,
                    hex, s->dir, strerror(e));
    err->sys_errno = err->code = e;
    err->code_name = spool_errno_name(e);
    return -1;
}

/* Deletes or puts one key with a synced write, taking it out of the
 * known table.  The id's stripe lock held. */
static int write_one(rk *s, const spool_id *id, const void *data, size_t len, int put, const spool_deadline *dl,
                     spool_error *err)
{
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    if (put)
        rocksdb_writebatch_put(wb, (const char *)id->b, SPOOL_ID_BYTES, len ? data : "", len);
    else
        rocksdb_writebatch_delete(wb, (const char *)id->b, SPOOL_ID_BYTES);
    known_take(s, id->b);
    int rc = write_batch(s, wb, 1, dl, err);
    rocksdb_writebatch_destroy(wb);
    return rc;
}

/* The entry's bytes go to quarantine/ (synced) before its key is
 * deleted: a crash between leaves both, never neither.  The id's stripe
 * lock held: no store of it comes between the read and the delete. */
static int quarantine_locked(rk *s, const spool_id *id, const char *reason, const spool_deadline *dl,
                             spool_error *err)
{
    char hex[SPOOL_ID_TEXT + 1], why[SPOOL_ID_TEXT + 8];
    spool_id_format(id, hex);
    snprintf(why, sizeof why, "%s.why", hex);
    struct stat q;
    if (fstatat(s->qfd, hex, &q, AT_SYMLINK_NOFOLLOW) == 0)
        return spool_error_set(err, SPOOL_CONFLICT,
                               "cannot quarantine %s: an entry with this id is already in quarantine in %s "
                               "(restore or purge it first)",
                               hex, s->dir);
    char *msg = NULL;
    rocksdb_pinnableslice_t *v = rocksdb_get_pinned(s->db, s->ro, (const char *)id->b, SPOOL_ID_BYTES, &msg);
    if (msg != NULL)
        return fail(s, msg, "quarantine", err);
    if (v == NULL)
        return spool_error_set(err, SPOOL_NOT_FOUND, "no entry %s in %s to quarantine", hex, s->dir);
    size_t len;
    const char *data = rocksdb_pinnableslice_value(v, &len);
    char line[SPOOL_ERROR_MESSAGE_MAX + 32];
    int n = snprintf(line, sizeof line, "%.3f %s", (double)time(NULL), reason);
    if (n >= (int)sizeof line)
        n = (int)sizeof line - 1;
    int rc = write_q(s, why, line, (size_t)n) == 0 && write_q(s, hex, data ? data : "", len) == 0 &&
                     fsync(s->qfd) == 0
                 ? 0
                 : q_fail(s, errno, "quarantine", hex, err);
    rocksdb_pinnableslice_destroy(v);
    if (rc == 0)
        rc = write_one(s, id, NULL, 0, 0, dl, err);
    return rc;
}

/* The stripe lock held: no store of the id comes between the check for
 * a live entry and the put. */
static int restore_locked(rk *s, const spool_id *id, const spool_deadline *dl, spool_error *err)
{
    char hex[SPOOL_ID_TEXT + 1], why[SPOOL_ID_TEXT + 8];
    spool_id_format(id, hex);
    snprintf(why, sizeof why, "%s.why", hex);
    char *data;
    size_t len;
    if (spool_file_read(s->qfd, hex, &data, &len) != 0) {
        if (errno == ENOENT)
            return spool_error_set(err, SPOOL_NOT_FOUND, "no quarantined entry %s in %s", hex, s->dir);
        return q_fail(s, errno, "restore", hex, err);
    }
    int rc = was_there(s, id) ? spool_error_set(err, SPOOL_CONFLICT,
                                                "cannot restore %s: a live entry with this id exists in %s "
                                                "(remove it first)",
                                                hex, s->dir)
                              : write_one(s, id, data, len, 1, dl, err);
    free(data);
    if (rc == 0) {
        unlinkat(s->qfd, hex, 0);
        unlinkat(s->qfd, why, 0);
        fsync(s->qfd);
    }
    return rc;
}

static int purge_locked(rk *s, const spool_id *id, int *purged, spool_error *err)
{
    char hex[SPOOL_ID_TEXT + 1], why[SPOOL_ID_TEXT + 8];
    spool_id_format(id, hex);
    snprintf(why, sizeof why, "%s.why", hex);
    *purged = 0;
    if (unlinkat(s->qfd, hex, 0) != 0)
        return errno == ENOENT ? 0 : q_fail(s, errno, "purge", hex, err);
    *purged = 1;
    unlinkat(s->qfd, why, 0);
    fsync(s->qfd);
    return 0;
}

/* Quarantine, restore and purge of an id hold its stripe lock, as its
 * stores and removes do. */
static int rk_quarantine(void *st, const spool_id *id, const char *reason, const spool_deadline *dl,
                         spool_error *err)
{
    rk *s = st;
    stripe_set set;
    if (stripe_lock_one(s, id, &set, dl, err) != 0)
        return -1;
    int rc = quarantine_locked(s, id, reason, dl, err);
    stripes_unlock_all(s, &set);
    return rc;
}

static int rk_restore(void *st, const spool_id *id, const spool_deadline *dl, spool_error *err)
{
    rk *s = st;
    stripe_set set;
    if (stripe_lock_one(s, id, &set, dl, err) != 0)
        return -1;
    int rc = restore_locked(s, id, dl, err);
    stripes_unlock_all(s, &set);
    return rc;
}

static int rk_purge(void *st, const spool_id *id, const spool_deadline *dl, int *purged, spool_error *err)
{
    rk *s = st;
    stripe_set set;
    *purged = 0;
    if (stripe_lock_one(s, id, &set, dl, err) != 0)
        return -1;
    int rc = purge_locked(s, id, purged, err);
    stripes_unlock_all(s, &set);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The quarantine cursor: the names of quarantine/, sorted, read at open
 * (a quarantine is small), each entry read when it is reached. */
struct q_cursor {
    char **names;
    size_t n, i;
    char *data, *why;
    char error[256];
};

static q_cursor *q_cursor_new(void)
{
    return calloc(1, sizeof(q_cursor));
}

static void q_cursor_free(q_cursor *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->names[i]);
    free(q->names);
    free(q->data);
    free(q->why);
}

static int q_list(rk *s, q_cursor *q, spool_error *err)
{
    int fd = dup(s->qfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return q_fail(s, errno, "list", "entries", err);
    }
    rewinddir(d);
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != SPOOL_ID_TEXT)
            continue; /* ".", "..", the .why files, temporary files */
        if (q->n == cap) {
            cap = cap ? cap * 2 : 16;
            char **bigger = realloc(q->names, cap * sizeof *bigger);
            if (bigger == NULL)
                break;
            q->names = bigger;
        }
        if ((q->names[q->n] = strdup(de->d_name)) == NULL)
            break;
        q->n++;
    }
    closedir(d);
    if (q->n > 1)
        qsort(q->names, q->n, sizeof *q->names, by_name);
    return 0;
}

static int q_next(rk *s, q_cursor *q, spool_entry *e)
{
    free(q->data);
    free(q->why);
    q->data = q->why = NULL;
    if (q->i == q->n)
        return 0;
    const char *name = q->names[q->i++];
    memset(e, 0, sizeof *e);
    const char *why;
    e->id_valid = spool_id_parse(name, strlen(name), &e->id, &why) == 0;
    char wname[SPOOL_ID_TEXT + 8];
    snprintf(wname, sizeof wname, "%s.why", name);
    size_t wlen;
    if (spool_file_read(s->qfd, wname, &q->why, &wlen) == 0) {
        char *sp = strchr(q->why, ' ');
        e->time = strtod(q->why, NULL);
        e->reason = sp ? sp + 1 : "";
    } else {
        e->reason = "";
    }
    size_t len;
    if (spool_file_read(s->qfd, name, &q->data, &len) != 0) {
        snprintf(q->error, sizeof q->error, "cannot read quarantine/%s: %s", name, strerror(errno));
        e->corrupt = 1;
        e->error = q->error;
    } else {
        e->data = q->data;
        e->len = len;
    }
    return 1;
}

/* -------------------------------------------------------- maintenance */

/* An integer property of the database, or -1. */
static int64_t property(rk *s, const char *name)
{
    char *v = rocksdb_property_value(s->db, name);
    int64_t n = v != NULL ? strtoll(v, NULL, 10) : -1;
    rocksdb_free(v);
    return n;
}

/* Fails when RocksDB counts background errors (a compaction or flush
 * that failed: 7.8.3's compact_range reports none itself). */
static int background_errors(rk *s, const char *what, spool_error *err)
{
    int64_t n = property(s, "rocksdb.background-errors");
    if (n > 0) {
        spool_error_set(err, SPOOL_IO, "%s %s: RocksDB reports %lld background errors", what, s->dir, (long long)n);
        err->code_name = "IOError";
        return -1;
    }
    return 0;
}

/* The background slot: 1 with err when RocksDB counted background
 * errors since the last poll (a flush or compaction failing while
 * foreground writes may still succeed: KumoMTA's gate counts that
 * growth too), else 0.  Reads a property: no I/O. */
static int rk_background(void *st, spool_error *err)
{
    rk *s = st;
    int64_t n = property(s, "rocksdb.background-errors");
    long long before = atomic_exchange(&s->background_seen, (long long)n);
    if (n <= before)
        return 0;
    spool_error_set(err, SPOOL_IO,
                    "%s: RocksDB counted %lld new background errors (%lld in all): its flushes or compactions fail",
                    s->dir, (long long)(n - before), (long long)n);
    err->code_name = "IOError";
    return 1;
}

static int flush_memtables(rk *s, spool_error *err)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *msg = NULL;
    rocksdb_flush(s->db, fo, &msg);
    rocksdb_flushoptions_destroy(fo);
    return msg != NULL ? fail(s, msg, "flush", err) : 0;
}

static int64_t sst_bytes(rk *s)
{
    int64_t sst = property(s, "rocksdb.total-sst-files-size");
    int64_t wal = property(s, "rocksdb.cur-size-all-mem-tables");
    return (sst > 0 ? sst : 0) + (wal > 0 ? wal : 0);
}

/* compact: flush, then a full compaction down to the bottommost level. */
static int rk_compact(void *st, spool_compact_stats *stats, spool_error *err)
{
    rk *s = st;
    double t0 = spool_monotonic();
    stats->bytes_before = sst_bytes(s);
    if (flush_memtables(s, err) != 0)
        return -1;
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_bottommost_level_compaction(co, 2); /* kForce */
    rocksdb_compactoptions_set_exclusive_manual_compaction(co, 1);
    rocksdb_compact_range_opt(s->db, co, NULL, 0, NULL, 0);
    rocksdb_compactoptions_destroy(co);
    stats->steps = 1;
    stats->bytes_after = sst_bytes(s);
    stats->seconds = spool_monotonic() - t0;
    spool_metrics_set(&stats->backend, "sst_bytes", (double)property(s, "rocksdb.total-sst-files-size"));
    return background_errors(s, "compact", err);
}

static int rk_advise_low_memory(void *st, int64_t *released, spool_error *err)
{
    rk *s = st;
    int64_t before = property(s, "rocksdb.cur-size-all-mem-tables");
    if (flush_memtables(s, err) != 0)
        return -1;
    *released = before - property(s, "rocksdb.cur-size-all-mem-tables");
    return 0;
}

static int rk_stats(void *st, spool_stats *out, spool_error *err)
{
    rk *s = st;
    (void)err;
    out->entries = -1; /* RocksDB only estimates its keys: see backend.estimate_num_keys */
    q_cursor q = {0};
    spool_error ignored;
    if (q_list(s, &q, &ignored) == 0)
        out->quarantined = (int64_t)q.n;
    q_cursor_free(&q);
    out->bytes = sst_bytes(s);
    spool_metrics_set(&out->backend, "estimate_num_keys", (double)property(s, "rocksdb.estimate-num-keys"));
    spool_metrics_set(&out->backend, "sst_bytes", (double)property(s, "rocksdb.total-sst-files-size"));
    spool_metrics_set(&out->backend, "memtable_bytes", (double)property(s, "rocksdb.cur-size-all-mem-tables"));
    spool_metrics_set(&out->backend, "background_errors", (double)property(s, "rocksdb.background-errors"));
    spool_metrics_set(&out->backend, "stalled_writes", (double)atomic_load(&s->stalled_writes));
    spool_metrics_set(&out->backend, "removes_known", (double)atomic_load(&s->removes_known));
    return 0;
}

static void rk_health(void *st, spool_health *h)
{
    rk *s = st;
    spool_metrics_set(&h->backend, "background_errors", (double)property(s, "rocksdb.background-errors"));
}

/* leak = 1 in a forked child: the parent's database is the parent's. */
static void rk_close(void *st, int leak)
{
    if (!leak)
        rk_free(st);
}

/* ------------------------------------------------------------ options */

#define RK_OPT(f) offsetof(rk_tuning, f)
#define RK_MAX_INT 2147483647
#define RK_MAX_BYTES 9007199254740992LL

static const spool_option rk_options[] = {
    {"compression_type", SPOOL_OPT_ENUM, 0, 0, 0, "Snappy", RK_OPT(compression), "block compression",
     compression_names},
    {"increase_parallelism", SPOOL_OPT_INT, 1, 1024, 0, "not set", RK_OPT(increase_parallelism),
     "background threads (RocksDB's IncreaseParallelism)", NULL},
    {"optimize_level_style_compaction", SPOOL_OPT_INT64, 1, RK_MAX_BYTES, 0, "not set",
     RK_OPT(optimize_level_style_compaction), "memtable budget, bytes (OptimizeLevelStyleCompaction)", NULL},
    {"optimize_universal_style_compaction", SPOOL_OPT_INT64, 1, RK_MAX_BYTES, 0, "not set",
     RK_OPT(optimize_universal_style_compaction), "memtable budget, bytes (OptimizeUniversalStyleCompaction)",
     NULL},
    {"compaction_readahead_size", SPOOL_OPT_INT64, 1, RK_MAX_BYTES, 0, "RocksDB's", RK_OPT(compaction_readahead_size),
     "bytes read ahead by compactions", NULL},
    {"max_open_files", SPOOL_OPT_INT, -1, RK_MAX_INT, 0, "-1 (unlimited)", RK_OPT(max_open_files),
     "files RocksDB keeps open", NULL},
    {"write_buffer_size", SPOOL_OPT_INT64, 1, RK_MAX_BYTES, 0, "RocksDB's (64 MiB)", RK_OPT(write_buffer_size),
     "bytes of one memtable", NULL},
    {"level0_stop_writes_trigger", SPOOL_OPT_INT, 1, RK_MAX_INT, 0, "RocksDB's (36)",
     RK_OPT(level0_stop_writes_trigger), "level-0 files at which writes stop", NULL},
    {"memtable_huge_page_size", SPOOL_OPT_INT64, 0, RK_MAX_BYTES, 0, "0 (none)", RK_OPT(memtable_huge_page_size),
     "huge page size for memtables, bytes", NULL},
    {"paranoid_checks", SPOOL_OPT_BOOL, 0, 1, 0, "false", RK_OPT(paranoid_checks), "RocksDB's paranoid checks",
     NULL},
    {"level_compaction_dynamic_level_bytes", SPOOL_OPT_BOOL, 0, 1, 0, "false",
     RK_OPT(level_compaction_dynamic_level_bytes), "dynamic level sizes", NULL},
    {"log_level", SPOOL_OPT_ENUM, 0, 0, 0, "Info", RK_OPT(log_level), "RocksDB's own LOG file", log_level_names},
    {"log_file_time_to_roll", SPOOL_OPT_DURATION, 0, 1000000000, 0, "1 day", RK_OPT(log_file_time_to_roll),
     "age at which the LOG file is rolled", NULL},
    {"obsolete_files_period", SPOOL_OPT_DURATION, 0, 1000000000, 0, "6 hours", RK_OPT(obsolete_files_period),
     "how often obsolete files are deleted", NULL},
    {NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL},
};

const spool_backend spool_rocksdb_backend = {
    .version = 4,
    .enumerate_order = SPOOL_ORDER_ID_BYTES,
    .batch_commit = 0, /* each request its own write; only a sync is shared */
    .background = rk_background,
    .kind = "RocksDB",
    .probe = rk_probe,
    .options_key = "rocks_params",
    .options = rk_options,
    .params_size = sizeof(rk_tuning),
    .open = rk_open,
    .load = rk_load,
    .cursor_open = rk_cursor_open,
    .cursor_next = rk_cursor_next,
    .cursor_close = rk_cursor_close,
    .quarantine = rk_quarantine,
    .restore = rk_restore,
    .purge = rk_purge,
    .compact = rk_compact,
    .advise_low_memory = rk_advise_low_memory,
    .stats = rk_stats,
    .close = rk_close,
    .health = rk_health,
    .store = rk_store,
    .remove = rk_remove,
};
