/*
 * bench/bench_engines.c: the engines spool-bench compares, behind one
 * interface (bench_engine in bench.h).
 *
 *   raw-sqlite  the floor: SQLite with the spool's pragmas and table
 *               shape, one autocommit INSERT OR REPLACE / SELECT / DELETE
 *               per operation, no checksum, no copy of loaded data, one
 *               connection per thread
 *   spool-c     csrc/spool.h, one handle shared by every thread
 *   localdisk   KumoMTA's LocalDisk layout: a temp file in new/,
 *               fdatasync when durable, mkdir -p and rename into
 *               data/aa/bb/cc/dd/<24 hex>
 *   rocksdb     rocksdb/c.h, one DB shared by every thread, WAL on,
 *               sync per write when durable, no compression (the
 *               payloads are random)
 *   rocksdb-snappy  the same with Snappy, KumoMTA's compression and the
 *               RocksDB backend's default (spool-rocksdb runs with none,
 *               as the rocksdb row, so that the ratio is its layer's)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif

#include "bench.h"

static int64_t fsize(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* ============================================================ raw SQLite */

typedef struct raw_conn {
    sqlite3 *db;
    sqlite3_stmt *ins, *sel, *del;
    char err[256];
} raw_conn;

typedef struct raw {
    char *dir, *path, *wal;
    int durable;
    raw_conn *conns[BENCH_MAX_WRITERS + 1]; /* [0] the main connection */
} raw;

static void raw_check(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        bench_die("raw-sqlite: %s: %s", what, sqlite3_errmsg(db));
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    raw_check(db, sqlite3_exec(db, sql, NULL, NULL, NULL), sql);
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    raw_check(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static raw_conn *raw_conn_open(raw *r)
{
    raw_conn *c = calloc(1, sizeof *c);
    char sql[256];
    if (c == NULL)
        bench_die("out of memory");
    int rc = sqlite3_open_v2(r->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    raw_check(c->db, rc, "open");
    sqlite3_busy_timeout(c->db, 30000);
    /* The spool's per-connection settings (csrc/spool_sqlite.c). */
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous=%s; PRAGMA cache_size=-2048; PRAGMA secure_delete=OFF;"
             "PRAGMA wal_autocheckpoint=1000;",
             r->durable ? "FULL" : "NORMAL");
    raw_exec(c->db, sql);
    raw_check(c->db, sqlite3_prepare_v3(c->db, "INSERT OR REPLACE INTO e(key, data) VALUES (?1, ?2)", -1,
                                        SQLITE_PREPARE_PERSISTENT, &c->ins, NULL), "prepare");
    raw_check(c->db, sqlite3_prepare_v3(c->db, "SELECT data FROM e WHERE key = ?1", -1,
                                        SQLITE_PREPARE_PERSISTENT, &c->sel, NULL), "prepare");
    raw_check(c->db, sqlite3_prepare_v3(c->db, "DELETE FROM e WHERE key = ?1", -1, SQLITE_PREPARE_PERSISTENT,
                                        &c->del, NULL), "prepare");
    return c;
}

static void raw_conn_close(raw_conn *c)
{
    if (c == NULL)
        return;
    sqlite3_finalize(c->ins);
    sqlite3_finalize(c->sel);
    sqlite3_finalize(c->del);
    sqlite3_close_v2(c->db);
    free(c);
}

static void *raw_open(const char *dir, int durable, int threads)
{
    (void)threads;
    raw *r = calloc(1, sizeof *r);
    if (r == NULL || bench_mkdir_p(dir) != 0)
        bench_die("raw-sqlite: cannot create %s", dir);
    r->dir = strdup(dir);
    if (asprintf(&r->path, "%s/raw.db", dir) < 0 || asprintf(&r->wal, "%s/raw.db-wal", dir) < 0)
        bench_die("out of memory");
    r->durable = durable;
    sqlite3 *db;
    raw_check(NULL, sqlite3_open(r->path, &db), "create");
    /* As the spool creates its file: page size and auto_vacuum before
     * the first table, then WAL. */
    raw_exec(db, "PRAGMA page_size=4096; PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;");
    raw_exec(db, BENCH_RAW_SCHEMA);
    sqlite3_close(db);
    r->conns[0] = raw_conn_open(r);
    return r;
}

static void raw_close(void *e)
{
    raw *r = e;
    for (int i = 0; i <= BENCH_MAX_WRITERS; i++)
        raw_conn_close(r->conns[i]);
    free(r->dir);
    free(r->path);
    free(r->wal);
    free(r);
}

/* Thread t uses connection t + 1, opened once and kept (warm cache), as
 * the spool keeps its reader pool. */
static void *raw_thread_open(void *e, int t)
{
    raw *r = e;
    if (r->conns[t + 1] == NULL)
        r->conns[t + 1] = raw_conn_open(r);
    return r->conns[t + 1];
}

static void raw_thread_close(void *e, void *th)
{
    (void)e;
    (void)th;
}

static int raw_fail(raw_conn *c, const char *what)
{
    snprintf(c->err, sizeof c->err, "%s: %s", what, sqlite3_errmsg(c->db));
    return -1;
}

static int raw_step(raw_conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : raw_fail(c, what);
}

static int raw_store(void *th, const spool_id *id, const void *data, size_t len, int force_sync)
{
    raw_conn *c = th;
    uint8_t key[SPOOL_ID_BYTES];
    (void)force_sync;
    spool_id_to_key(id, key);
    sqlite3_bind_blob(c->ins, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(c->ins, 2, data, (int)len, SQLITE_STATIC);
    return raw_step(c, c->ins, "insert");
}

static int raw_load(void *th, const spool_id *id, size_t *len)
{
    raw_conn *c = th;
    uint8_t key[SPOOL_ID_BYTES];
    spool_id_to_key(id, key);
    sqlite3_bind_blob(c->sel, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(c->sel), ret = 0;
    if (rc == SQLITE_ROW) {
        const volatile unsigned char *p = sqlite3_column_blob(c->sel, 0);
        *len = (size_t)sqlite3_column_bytes(c->sel, 0);
        if (p != NULL && *len > 0)
            (void)p[*len - 1];
    } else {
        ret = rc == SQLITE_DONE ? (snprintf(c->err, sizeof c->err, "not found"), -1) : raw_fail(c, "select");
    }
    sqlite3_reset(c->sel);
    return ret;
}

static int raw_remove(void *th, const spool_id *id)
{
    raw_conn *c = th;
    uint8_t key[SPOOL_ID_BYTES];
    spool_id_to_key(id, key);
    sqlite3_bind_blob(c->del, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
    return raw_step(c, c->del, "delete");
}

static int raw_enumerate(void *e, size_t *count, uint64_t *bytes)
{
    raw *r = e;
    sqlite3 *db = r->conns[0]->db;
    sqlite3_stmt *st;
    raw_check(db, sqlite3_prepare_v2(db, "SELECT key, data FROM e ORDER BY key", -1, &st, NULL), "prepare");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        (void)sqlite3_column_blob(st, 0);
        (void)sqlite3_column_blob(st, 1);
        ++*count;
        *bytes += (uint64_t)sqlite3_column_bytes(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : raw_fail(r->conns[0], "enumerate");
}

/* The unbounded way: checkpoint, one incremental_vacuum over every free
 * page, checkpoint again.  The WAL grows by the whole moved region. */
static int raw_compact(void *e, bench_compact *out)
{
    raw *r = e;
    sqlite3 *db = r->conns[0]->db;
    out->bytes_before = fsize(r->path) + fsize(r->wal);
    double t0 = bench_now();
    out->pages_freed = raw_int(db, "PRAGMA freelist_count");
    raw_check(db, sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL), "checkpoint");
    raw_exec(db, "PRAGMA incremental_vacuum");
    out->wal_max = fsize(r->wal);
    raw_check(db, sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL), "checkpoint");
    out->seconds = bench_now() - t0;
    out->steps = 1;
    out->bytes_after = fsize(r->path) + fsize(r->wal);
    return 0;
}

static const char *raw_error(void *th)
{
    return ((raw_conn *)th)->err;
}

const bench_engine bench_raw_sqlite = {
    .name = "raw-sqlite",
    .open = raw_open,
    .close = raw_close,
    .thread_open = raw_thread_open,
    .thread_close = raw_thread_close,
    .store = raw_store,
    .load = raw_load,
    .remove = raw_remove,
    .enumerate = raw_enumerate,
    .compact = raw_compact,
    .error = raw_error,
};

/* ============================================================ spool C API */

typedef struct sp_thread {
    spool *s;
    spool_error err;
} sp_thread;

static spool *sp_open_kind(const char *dir, const char *kind, int durable, int64_t mmap_size, double commit_wait)
{
    spool_params p;
    spool_error err;
    spool *s;
    spool_params_init(&p);
    p.path = dir;
    p.kind = kind;
    p.flush = durable;
    if (commit_wait >= 0)
        p.commit_wait = commit_wait;
    spool_params_tune_number(&p, "sqlite", "mmap_size", (double)mmap_size, NULL);
    if (spool_open(&p, &s, &err) != 0)
        bench_die("spool-c: open %s: %s", dir, err.message);
    return s;
}

static spool *sp_open_with(const char *dir, int durable, int64_t mmap_size)
{
    return sp_open_kind(dir, "SQLite", durable, mmap_size, -1);
}

static void *sp_open(const char *dir, int durable, int threads)
{
    (void)threads;
    return sp_open_with(dir, durable, 0);
}

/* The spool with commit_wait = 0: its group commit as it was before the
 * leader's wait for concurrent writers, beside spool-c in the same run. */
static void *sp_open_nowait(const char *dir, int durable, int threads)
{
    (void)threads;
    return sp_open_kind(dir, "SQLite", durable, 0, 0);
}

/* The spool's LocalDisk backend through the same API: beside the
 * hand-written `localdisk` loop, the cost of the spool's layer. */
static void *sp_open_localdisk(const char *dir, int durable, int threads)
{
    (void)threads;
    return sp_open_kind(dir, "LocalDisk", durable, 0, -1);
}

/* The spool's RocksDB backend: beside the raw `rocksdb` loop, the cost of
 * the spool's layer over RocksDB, so with the raw loop's compression
 * (none) instead of the backend's default (Snappy, KumoMTA's), whose
 * cost the raw `rocksdb-snappy` row shows. */
static void *sp_open_rocksdb(const char *dir, int durable, int threads)
{
    (void)threads;
    spool_params p;
    spool_error err;
    spool *s;
    spool_params_init(&p);
    p.path = dir;
    p.kind = "RocksDB";
    p.flush = durable;
    if (spool_params_tune_text(&p, "rocks_params", "compression_type", "None", &err) != 0 ||
        spool_open(&p, &s, &err) != 0)
        bench_die("spool-rocksdb: open %s: %s", dir, err.message);
    return s;
}

/* The same with sqlite.mmap_size = 1 GiB: reads come from the mapped
 * file instead of one pread per page. */
static void *sp_open_mmap(const char *dir, int durable, int threads)
{
    (void)threads;
    return sp_open_with(dir, durable, (int64_t)1 << 30);
}

static void sp_close(void *e)
{
    spool_close(e);
}

static void *sp_thread_open(void *e, int t)
{
    (void)t;
    sp_thread *th = calloc(1, sizeof *th);
    if (th == NULL)
        bench_die("out of memory");
    th->s = e;
    return th;
}

static void sp_thread_close(void *e, void *th)
{
    (void)e;
    free(th);
}

static int sp_store(void *t, const spool_id *id, const void *data, size_t len, int force_sync)
{
    sp_thread *th = t;
    spool_write_opts o = {force_sync, 0};
    return spool_store(th->s, id, data, len, force_sync ? &o : NULL, &th->err);
}

/* Loads take the copy-free path (the bytes handed to a callback), as
 * the raw loops read without a copy. */
static int sp_took(void *ud, const void *data, size_t len)
{
    (void)data;
    *(size_t *)ud = len;
    return 0;
}

static int sp_load(void *t, const spool_id *id, size_t *len)
{
    sp_thread *th = t;
    return spool_load_with(th->s, id, sp_took, len, &th->err);
}

static int sp_remove(void *t, const spool_id *id)
{
    sp_thread *th = t;
    int removed;
    if (spool_remove(th->s, id, NULL, &removed, &th->err) != 0)
        return -1;
    if (!removed) {
        snprintf(th->err.message, sizeof th->err.message, "remove: no such entry");
        return -1;
    }
    return 0;
}

static int sp_enumerate(void *e, size_t *count, uint64_t *bytes)
{
    spool_enum_opts o = {.which = SPOOL_ENTRIES, .include_data = 1};
    spool_cursor *c;
    spool_entry en;
    spool_error err;
    int rc;
    if (spool_cursor_open(e, &o, &c, &err) != 0)
        bench_die("spool-c: cursor: %s", err.message);
    while ((rc = spool_cursor_next(c, &en, &err)) == 1) {
        if (en.corrupt)
            bench_die("spool-c: corrupt entry: %s", en.error);
        ++*count;
        *bytes += en.len;
    }
    spool_cursor_close(c);
    if (rc < 0)
        bench_die("spool-c: enumerate: %s", err.message);
    return 0;
}

static int sp_compact(void *e, bench_compact *out)
{
    spool_compact_stats st;
    spool_error err;
    if (spool_compact(e, &st, &err) != 0)
        bench_die("spool-c: compact: %s", err.message);
    out->seconds = st.seconds;
    out->bytes_before = st.bytes_before;
    out->bytes_after = st.bytes_after;
    out->wal_max = (int64_t)spool_metrics_get(&st.backend, "wal_bytes_max", -1);
    out->pages_freed = (int64_t)spool_metrics_get(&st.backend, "pages_freed", -1);
    out->steps = st.steps;
    return 0;
}

static const char *sp_error(void *t)
{
    return ((sp_thread *)t)->err.message;
}

/* spool-rocksdb before a load phase: flush + full compaction, as the raw
 * rocksdb row gets (rk_settle). */
static void sp_settle(void *e)
{
    spool_compact_stats st;
    spool_error err;
    if (spool_compact(e, &st, &err) != 0)
        bench_die("spool-rocksdb: compact: %s", err.message);
}

/* The spool's engines differ only in how they open it. */
#define SPOOL_ENGINE_SETTLED(var, engine_name, open_fn, settle_fn)                               \
    const bench_engine var = {                                                                \
        .name = engine_name,                                                                  \
        .open = open_fn,                                                                      \
        .close = sp_close,                                                                    \
        .thread_open = sp_thread_open,                                                        \
        .thread_close = sp_thread_close,                                                      \
        .store = sp_store,                                                                    \
        .load = sp_load,                                                                      \
        .remove = sp_remove,                                                                  \
        .enumerate = sp_enumerate,                                                            \
        .compact = sp_compact,                                                                \
        .error = sp_error,                                                                    \
        .settle = settle_fn,                                                                  \
    }
#define SPOOL_ENGINE(var, engine_name, open_fn) SPOOL_ENGINE_SETTLED(var, engine_name, open_fn, NULL)

SPOOL_ENGINE(bench_spool_c, "spool-c", sp_open);
SPOOL_ENGINE(bench_spool_c_nowait, "spool-c-nowait", sp_open_nowait);
SPOOL_ENGINE(bench_spool_localdisk, "spool-localdisk", sp_open_localdisk);
SPOOL_ENGINE_SETTLED(bench_spool_rocksdb, "spool-rocksdb", sp_open_rocksdb, sp_settle);
SPOOL_ENGINE(bench_spool_c_mmap, "spool-c-mmap", sp_open_mmap);

/* ============================================================ LocalDisk */

typedef struct ld {
    char *dir;
    int durable;
} ld;

typedef struct ld_thread {
    ld *l;
    char err[512];
} ld_thread;

static void *ld_open(const char *dir, int durable, int threads)
{
    (void)threads;
    ld *l = calloc(1, sizeof *l);
    char path[4096];
    if (l == NULL || (l->dir = strdup(dir)) == NULL)
        bench_die("out of memory");
    l->durable = durable;
    snprintf(path, sizeof path, "%s/new", dir);
    if (bench_mkdir_p(path) != 0)
        bench_die("localdisk: mkdir %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/data", dir);
    if (bench_mkdir_p(path) != 0)
        bench_die("localdisk: mkdir %s: %s", path, strerror(errno));
    return l;
}

static void ld_close(void *e)
{
    ld *l = e;
    free(l->dir);
    free(l);
}

static void *ld_thread_open(void *e, int t)
{
    (void)t;
    ld_thread *th = calloc(1, sizeof *th);
    if (th == NULL)
        bench_die("out of memory");
    th->l = e;
    return th;
}

static void ld_thread_close(void *e, void *th)
{
    (void)e;
    free(th);
}

static int ld_fail(ld_thread *th, const char *what, const char *path)
{
    snprintf(th->err, sizeof th->err, "%s %.300s: %s", what, path, strerror(errno));
    return -1;
}

static void ld_path(const ld *l, const spool_id *id, char *out, size_t size)
{
    char suffix[SPOOL_ID_PATH_SUFFIX + 1];
    spool_id_path_suffix(id, suffix);
    snprintf(out, size, "%s/data%s", l->dir, suffix);
}

static int ld_store(void *t, const spool_id *id, const void *data, size_t len, int force_sync)
{
    ld_thread *th = t;
    char tmp[4096], dst[4096], hex[SPOOL_ID_TEXT + 1];
    spool_id_format(id, hex);
    snprintf(tmp, sizeof tmp, "%s/new/%s", th->l->dir, hex);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return ld_fail(th, "create", tmp);
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ld_fail(th, "write", tmp);
            close(fd);
            unlink(tmp);
            return -1;
        }
        p += n;
        left -= (size_t)n;
    }
    if ((th->l->durable || force_sync) && fdatasync(fd) != 0) {
        ld_fail(th, "fdatasync", tmp);
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0)
        return ld_fail(th, "close", tmp);
    ld_path(th->l, id, dst, sizeof dst);
    char *slash = strrchr(dst, '/');
    *slash = '\0';
    int rc = bench_mkdir_p(dst);
    *slash = '/';
    if (rc != 0)
        return ld_fail(th, "mkdir -p", dst);
    if (rename(tmp, dst) != 0)
        return ld_fail(th, "rename", dst);
    return 0;
}

static int ld_read_file(int at, const char *name, size_t *len, char *err, size_t errsize)
{
    int fd = openat(at, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errsize, "open %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = bench_xmalloc(size);
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errsize, "read %s: %s", name, n < 0 ? strerror(errno) : "short file");
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    free(buf);
    *len = size;
    return 0;
}

static int ld_load(void *t, const spool_id *id, size_t *len)
{
    ld_thread *th = t;
    char path[4096];
    ld_path(th->l, id, path, sizeof path);
    return ld_read_file(AT_FDCWD, path, len, th->err, sizeof th->err);
}

static int ld_remove(void *t, const spool_id *id)
{
    ld_thread *th = t;
    char path[4096];
    ld_path(th->l, id, path, sizeof path);
    return unlink(path) == 0 ? 0 : ld_fail(th, "unlink", path);
}

static int ld_walk(int at, const char *name, size_t *count, uint64_t *bytes)
{
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        bench_die("localdisk: opendir %s: %s", name, strerror(errno));
    DIR *d = fdopendir(fd);
    struct dirent *de;
    char err[512];
    if (d == NULL)
        bench_die("localdisk: fdopendir: %s", strerror(errno));
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (de->d_type == DT_DIR) {
            ld_walk(dirfd(d), de->d_name, count, bytes);
        } else {
            size_t len;
            if (ld_read_file(dirfd(d), de->d_name, &len, err, sizeof err) != 0)
                bench_die("localdisk: %s", err);
            ++*count;
            *bytes += len;
        }
    }
    closedir(d);
    return 0;
}

static int ld_enumerate(void *e, size_t *count, uint64_t *bytes)
{
    ld *l = e;
    char path[4096];
    snprintf(path, sizeof path, "%s/data", l->dir);
    return ld_walk(AT_FDCWD, path, count, bytes);
}

static const char *ld_error(void *t)
{
    return ((ld_thread *)t)->err;
}

const bench_engine bench_localdisk = {
    .name = "localdisk",
    .open = ld_open,
    .close = ld_close,
    .thread_open = ld_thread_open,
    .thread_close = ld_thread_close,
    .store = ld_store,
    .load = ld_load,
    .remove = ld_remove,
    .enumerate = ld_enumerate,
    .compact = NULL, /* nothing to compact: removed files are gone */
    .error = ld_error,
};

/* ============================================================ RocksDB */

#ifdef HAVE_ROCKSDB
typedef struct rk {
    char *dir;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
    rocksdb_t *db;
} rk;

/* The sum of the files' sizes under the DB directory. */
static int64_t files_bytes(const char *dir)
{
    int64_t f = 0;
    bench_du(dir, NULL, &f);
    return f;
}

typedef struct rk_thread {
    rk *r;
    rocksdb_writeoptions_t *wo_sync;
    char err[512];
} rk_thread;

/* One DB at dir with RocksDB's defaults but the block compression. */
static void *rk_open_with(const char *dir, int durable, int compression)
{
    rk *r = calloc(1, sizeof *r);
    char *err = NULL;
    if (r == NULL || (r->dir = strdup(dir)) == NULL)
        bench_die("out of memory");
    r->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(r->opts, 1);
    rocksdb_options_set_compression(r->opts, compression);
    r->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(r->wo, (unsigned char)durable);
    r->ro = rocksdb_readoptions_create();
    r->db = rocksdb_open(r->opts, dir, &err);
    if (err != NULL)
        bench_die("rocksdb: open %s: %s", dir, err);
    return r;
}

static void *rk_open(const char *dir, int durable, int threads)
{
    (void)threads;
    return rk_open_with(dir, durable, rocksdb_no_compression);
}

/* KumoMTA's compression (Snappy), as the spool's RocksDB backend has by
 * default. */
static void *rk_open_snappy(const char *dir, int durable, int threads)
{
    (void)threads;
    return rk_open_with(dir, durable, rocksdb_snappy_compression);
}

static void rk_close(void *e)
{
    rk *r = e;
    rocksdb_close(r->db);
    rocksdb_writeoptions_destroy(r->wo);
    rocksdb_readoptions_destroy(r->ro);
    rocksdb_options_destroy(r->opts);
    free(r->dir);
    free(r);
}

static void *rk_thread_open(void *e, int t)
{
    (void)t;
    rk_thread *th = calloc(1, sizeof *th);
    if (th == NULL)
        bench_die("out of memory");
    th->r = e;
    th->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(th->wo_sync, 1);
    return th;
}

static void rk_thread_close(void *e, void *t)
{
    rk_thread *th = t;
    (void)e;
    rocksdb_writeoptions_destroy(th->wo_sync);
    free(th);
}

static int rk_fail(rk_thread *th, const char *what, char *err)
{
    snprintf(th->err, sizeof th->err, "%s: %s", what, err);
    rocksdb_free(err);
    return -1;
}

static int rk_store(void *t, const spool_id *id, const void *data, size_t len, int force_sync)
{
    rk_thread *th = t;
    uint8_t key[SPOOL_ID_BYTES];
    char *err = NULL;
    spool_id_to_key(id, key);
    rocksdb_put(th->r->db, force_sync ? th->wo_sync : th->r->wo, (const char *)key, SPOOL_ID_BYTES, data, len,
                &err);
    return err ? rk_fail(th, "put", err) : 0;
}

static int rk_load(void *t, const spool_id *id, size_t *len)
{
    rk_thread *th = t;
    uint8_t key[SPOOL_ID_BYTES];
    char *err = NULL;
    spool_id_to_key(id, key);
    /* pinned: the value is read where it lies, without a copy */
    rocksdb_pinnableslice_t *v = rocksdb_get_pinned(th->r->db, th->r->ro, (const char *)key, SPOOL_ID_BYTES, &err);
    if (err)
        return rk_fail(th, "get", err);
    if (v == NULL) {
        snprintf(th->err, sizeof th->err, "get: not found");
        return -1;
    }
    (void)rocksdb_pinnableslice_value(v, len);
    rocksdb_pinnableslice_destroy(v);
    return 0;
}

static int rk_remove(void *t, const spool_id *id)
{
    rk_thread *th = t;
    uint8_t key[SPOOL_ID_BYTES];
    char *err = NULL;
    spool_id_to_key(id, key);
    rocksdb_delete(th->r->db, th->r->wo, (const char *)key, SPOOL_ID_BYTES, &err);
    return err ? rk_fail(th, "delete", err) : 0;
}

static int rk_enumerate(void *e, size_t *count, uint64_t *bytes)
{
    rk *r = e;
    char *err = NULL;
    rocksdb_iterator_t *it = rocksdb_create_iterator(r->db, r->ro);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        (void)rocksdb_iter_key(it, &klen);
        (void)rocksdb_iter_value(it, &vlen);
        ++*count;
        *bytes += vlen;
    }
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err)
        bench_die("rocksdb: iterate: %s", err);
    return 0;
}

static int rk_compact(void *e, bench_compact *out)
{
    rk *r = e;
    out->bytes_before = files_bytes(r->dir);
    double t0 = bench_now();
    rocksdb_compact_range(r->db, NULL, 0, NULL, 0);
    out->seconds = bench_now() - t0;
    out->bytes_after = files_bytes(r->dir);
    out->wal_max = -1;
    out->pages_freed = -1;
    out->steps = 1;
    return 0;
}

static const char *rk_error(void *t)
{
    return ((rk_thread *)t)->err;
}

/* Before a load phase: the memtable flushed and everything compacted
 * (CompactRange flushes first), so that loads read settled tables. */
static void rk_settle(void *e)
{
    rk *r = e;
    rocksdb_compact_range(r->db, NULL, 0, NULL, 0);
}

#define RK_ENGINE(var, engine_name, open_fn)                                                      \
    const bench_engine var = {                                                                 \
        .name = engine_name,                                                                   \
        .open = open_fn,                                                                       \
        .close = rk_close,                                                                     \
        .thread_open = rk_thread_open,                                                         \
        .thread_close = rk_thread_close,                                                       \
        .store = rk_store,                                                                     \
        .load = rk_load,                                                                       \
        .remove = rk_remove,                                                                   \
        .enumerate = rk_enumerate,                                                             \
        .compact = rk_compact,                                                                 \
        .error = rk_error,                                                                     \
        .settle = rk_settle,                                                                   \
    }

RK_ENGINE(bench_rocksdb, "rocksdb", rk_open);
RK_ENGINE(bench_rocksdb_snappy, "rocksdb-snappy", rk_open_snappy);
#endif
