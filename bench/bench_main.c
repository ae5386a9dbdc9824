/*
 * bench/bench_main.c: spool-bench, the C half of `make bench`.
 *
 *   spool-bench version
 *   spool-bench payloads DIR                  random payloads, shared with Lua
 *   spool-bench run ENGINE SIZE N NDUR DIR PAYLOAD [main|durable]
 *                                             the workloads on one engine: the
 *                                             durable ones, the others, or all
 *   spool-bench disk-sync LABEL DIR NSYNC     the fdatasync probes alone
 *   spool-bench disk LABEL DIR NSYNC SEQ_MB   the disk's own limits
 *   spool-bench compact-scale DIR BASE        compact time vs freed pages
 *                                             (BASE, 2 BASE, 4 BASE entries)
 *   spool-bench fill DIR MB                   a spool of MB MiB (64 KiB entries)
 *   spool-bench enum-rss DIR                  RSS while enumerating it
 *
 * Rows go to stdout as TSV (bench.h); bench/run.sh drives the whole run
 * and bench/report.lua prints the tables.  The workload sequence of
 * `run` is mirrored step by step by bench/spool_bench.lua, so that the
 * spool through Lua does exactly what the C engines do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "spool_checksum.h"

#define SEED_PAYLOAD 12345u
#define SEED_ORDER 4242u

static const size_t payload_sizes[] = {4096, 65536, 1048576};

/* ------------------------------------------------------------ helpers */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        bench_die("cannot read %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = bench_xmalloc((size_t)n);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        bench_die("short read of %s", path);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* The payload file for size (size + BENCH_PAYLOAD_SLACK bytes, from
 * `spool-bench payloads`); dies when it has another length. */
static char *read_payload(const char *path, size_t size)
{
    size_t len;
    char *data = read_file(path, &len);
    if (len != size + BENCH_PAYLOAD_SLACK)
        bench_die("%s holds %zu bytes, expected %zu (spool-bench payloads writes it)", path, len,
                  size + BENCH_PAYLOAD_SLACK);
    return data;
}

static spool_id *new_ids(size_t n)
{
    spool_id *ids = bench_xmalloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        if (spool_id_new(&ids[i]) != 0)
            bench_die("spool_id_new failed");
    return ids;
}

static int64_t du_disk(const char *dir)
{
    int64_t d = 0;
    bench_du(dir, &d, NULL);
    return d;
}

/* ------------------------------------------------------------ phases */

enum { OP_STORE, OP_LOAD, OP_REMOVE, OP_LIFE };

typedef struct phase {
    const bench_engine *eng;
    void *e;
    int op, writers, force_sync;
    const spool_id *ids;
    const size_t *order; /* NULL: ids in order */
    size_t n;
    const void *data;
    size_t size;
    double *lat;
    pthread_barrier_t bar;
} phase;

typedef struct worker {
    phase *ph;
    int t;
    pthread_t tid;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    phase *ph = w->ph;
    const bench_engine *eng = ph->eng;
    void *th = eng->thread_open(ph->e, w->t);
    pthread_barrier_wait(&ph->bar);
    for (size_t k = (size_t)w->t; k < ph->n; k += (size_t)ph->writers) {
        size_t idx = ph->order ? ph->order[k] : k;
        const spool_id *id = &ph->ids[idx];
        const char *payload = (const char *)ph->data + bench_payload_off(idx);
        size_t len = 0;
        int rc = 0;
        double t0 = bench_now();
        switch (ph->op) {
        case OP_STORE:
            rc = eng->store(th, id, payload, ph->size, ph->force_sync);
            break;
        case OP_LOAD:
            rc = eng->load(th, id, &len);
            if (rc == 0 && len != ph->size)
                bench_die("%s: loaded %zu bytes, stored %zu", eng->name, len, ph->size);
            break;
        case OP_REMOVE:
            rc = eng->remove(th, id);
            break;
        case OP_LIFE:
            rc = eng->store(th, id, payload, ph->size, 0);
            if (rc == 0)
                rc = eng->load(th, id, &len);
            if (rc == 0)
                rc = eng->remove(th, id);
            break;
        }
        ph->lat[k] = bench_now() - t0;
        if (rc != 0)
            bench_die("%s: %s", eng->name, eng->error(th));
    }
    eng->thread_close(ph->e, th);
    return NULL;
}

/* Runs one measured phase and fills its row (lat: the caller frees). */
static void measure_phase(const bench_engine *eng, void *e, const char *dir, const char *workload, int op,
                          int writers, int force_sync, const spool_id *ids, const size_t *order, size_t n,
                          const void *data, size_t size, int want_size, bench_row *out)
{
    phase ph = {eng, e, op, writers, force_sync, ids, order, n, data, size, NULL, {{0}}};
    worker w[BENCH_MAX_THREADS];
    if (writers < 1 || writers > BENCH_MAX_THREADS)
        bench_die("%d writers: 1 to %d", writers, BENCH_MAX_THREADS);
    bench_row r = {.engine = eng->name, .workload = workload, .size = size, .writers = writers, .ops = n};
    bench_meas m;
    ph.lat = bench_xmalloc(n * sizeof *ph.lat);
    pthread_barrier_init(&ph.bar, NULL, (unsigned)writers + 1);
    for (int t = 0; t < writers; t++) {
        w[t].ph = &ph;
        w[t].t = t;
        if (pthread_create(&w[t].tid, NULL, work, &w[t]) != 0)
            bench_die("pthread_create failed");
    }
    bench_meas_begin(&m);
    pthread_barrier_wait(&ph.bar);
    for (int t = 0; t < writers; t++)
        pthread_join(w[t].tid, NULL);
    bench_meas_end(&m, &r);
    pthread_barrier_destroy(&ph.bar);
    r.bytes = (double)n * (double)size;
    r.lat = ph.lat;
    r.nlat = n;
    r.size_bytes = want_size ? du_disk(dir) : -1;
    *out = r;
}

/* Runs one measured phase and prints its row. */
static void run_phase(const bench_engine *eng, void *e, const char *dir, const char *workload, int op,
                      int writers, int force_sync, const spool_id *ids, const size_t *order, size_t n,
                      const void *data, size_t size, int want_size)
{
    bench_row r;
    measure_phase(eng, e, dir, workload, op, writers, force_sync, ids, order, n, data, size, want_size, &r);
    bench_row_print(&r);
    free(r.lat);
}

static void run_enumerate(const bench_engine *eng, void *e, size_t size, size_t expect)
{
    bench_row r = {.engine = eng->name, .workload = "enumerate", .size = size, .writers = 1, .size_bytes = -1};
    bench_meas m;
    size_t count = 0;
    uint64_t bytes = 0;
    bench_meas_begin(&m);
    eng->enumerate(e, &count, &bytes);
    bench_meas_end(&m, &r);
    if (count != expect || bytes != (uint64_t)expect * size)
        bench_die("%s: enumerate saw %zu entries (%llu bytes), expected %zu", eng->name, count,
                  (unsigned long long)bytes, expect);
    r.ops = count;
    r.bytes = (double)bytes;
    bench_row_print(&r);
}

static void run_compact(const bench_engine *eng, void *e, const char *dir, size_t size, size_t removed)
{
    bench_row r = {.engine = eng->name, .workload = "compact", .size = size, .writers = 1, .ops = removed};
    bench_meas m;
    bench_compact c = {0};
    if (eng->compact == NULL) {
        r.size_bytes = du_disk(dir);
        r.status = "n/a";
        snprintf(r.extra, sizeof r.extra, "no compaction: removed files are gone; empty directories stay");
        bench_row_print(&r);
        return;
    }
    bench_meas_begin(&m);
    eng->compact(e, &c);
    bench_meas_end(&m, &r);
    r.seconds = c.seconds;
    r.bytes = 0;
    r.size_bytes = du_disk(dir);
    snprintf(r.extra, sizeof r.extra, "before=%lld after=%lld wal_max=%lld pages=%lld steps=%d",
             (long long)c.bytes_before, (long long)c.bytes_after, (long long)c.wal_max, (long long)c.pages_freed,
             c.steps);
    bench_row_print(&r);
}

static const bench_engine *engine_named(const char *name)
{
    if (strcmp(name, "raw-sqlite") == 0)
        return &bench_raw_sqlite;
    if (strcmp(name, "spool-c") == 0)
        return &bench_spool_c;
    if (strcmp(name, "spool-c-mmap") == 0)
        return &bench_spool_c_mmap;
    if (strcmp(name, "spool-c-nowait") == 0)
        return &bench_spool_c_nowait;
    if (strcmp(name, "localdisk") == 0)
        return &bench_localdisk;
    if (strcmp(name, "spool-localdisk") == 0)
        return &bench_spool_localdisk;
#ifdef HAVE_ROCKSDB
    if (strcmp(name, "rocksdb") == 0)
        return &bench_rocksdb;
    if (strcmp(name, "spool-rocksdb") == 0)
        return &bench_spool_rocksdb;
    if (strcmp(name, "rocksdb-snappy") == 0)
        return &bench_rocksdb_snappy;
#else
    if (strcmp(name, "rocksdb") == 0 || strcmp(name, "spool-rocksdb") == 0 || strcmp(name, "rocksdb-snappy") == 0)
        return NULL;
#endif
    bench_die("unknown engine %s", name);
}

/* The workload sequence; bench/spool_bench.lua runs the same one.  It
 * comes in two sections, so that the driver can run every engine's
 * durable section close together in time (the disk's sync rate drifts):
 *   durable  store-durable (1 and 8 writers), store-force_sync
 *   main     store, load, enumerate, remove, compact, lifecycle (1 writer);
 *            store, load, lifecycle (8 writers) */
static int cmd_run(const char *name, size_t size, size_t n, size_t ndur, const char *dir, const char *payload,
                   const char *section)
{
    const bench_engine *eng = engine_named(name);
    int main_part = strcmp(section, "durable") != 0, durable_part = strcmp(section, "main") != 0;
    if (eng == NULL) {
        static const char *const skip = "skipped (librocksdb-dev not installed)";
        static const char *const w[] = {"store", "load", "enumerate", "remove", "compact", "lifecycle"};
        for (size_t i = 0; main_part && i < sizeof w / sizeof *w; i++)
            bench_row_skip(name, w[i], size, 1, skip);
        if (main_part) {
            bench_row_skip(name, "store", size, 8, skip);
            bench_row_skip(name, "load", size, 8, skip);
            bench_row_skip(name, "lifecycle", size, 8, skip);
        }
        if (durable_part) {
            bench_row_skip(name, "store-durable", size, 1, skip);
            bench_row_skip(name, "store-durable", size, 8, skip);
            bench_row_skip(name, "store-force_sync", size, 1, skip);
        }
        return 0;
    }
    char *data = read_payload(payload, size);
    size_t *perm = bench_xmalloc(n * sizeof *perm);
    bench_permutation(perm, n, SEED_ORDER);

    void *e;
    spool_id *a;
    if (durable_part) {
        /* Every commit synced (spool flush=true, SQLite FULL, RocksDB
         * sync, LocalDisk fdatasync), 1 then 8 writers; then one synced
         * store among unsynced ones (the spool's force_sync). */
        e = eng->open(dir, 1, BENCH_MAX_WRITERS);
        a = new_ids(ndur);
        run_phase(eng, e, dir, "store-durable", OP_STORE, 1, 0, a, NULL, ndur, data, size, 0);
        free(a);
        a = new_ids(ndur);
        run_phase(eng, e, dir, "store-durable", OP_STORE, BENCH_MAX_WRITERS, 0, a, NULL, ndur, data, size, 0);
        free(a);
        eng->close(e);
        e = eng->open(dir, 0, 1);
        if (eng == &bench_raw_sqlite) {
            bench_row_skip(name, "store-force_sync", size, 1, "n/a (no per-store sync; see store-durable)");
        } else {
            a = new_ids(ndur);
            run_phase(eng, e, dir, "store-force_sync", OP_STORE, 1, 1, a, NULL, ndur, data, size, 0);
            free(a);
        }
        eng->close(e);
    }
    if (main_part) {
        /* 1 writer: store, random load, enumerate, random-order remove,
         * compact, lifecycle; then 8 writers: store, load, lifecycle. */
        e = eng->open(dir, 0, BENCH_MAX_WRITERS);
        a = new_ids(n);
        run_phase(eng, e, dir, "store", OP_STORE, 1, 0, a, NULL, n, data, size, 1);
        if (eng->settle)
            eng->settle(e);
        run_phase(eng, e, dir, "load", OP_LOAD, 1, 0, a, perm, n, data, size, 0);
        run_enumerate(eng, e, size, n);
        run_phase(eng, e, dir, "remove", OP_REMOVE, 1, 0, a, perm, n, data, size, 0);
        run_compact(eng, e, dir, size, n);
        free(a);
        a = new_ids(n);
        run_phase(eng, e, dir, "lifecycle", OP_LIFE, 1, 0, a, NULL, n, data, size, 0);
        free(a);
        a = new_ids(n);
        run_phase(eng, e, dir, "store", OP_STORE, BENCH_MAX_WRITERS, 0, a, NULL, n, data, size, 0);
        if (eng->settle)
            eng->settle(e);
        run_phase(eng, e, dir, "load", OP_LOAD, BENCH_MAX_WRITERS, 0, a, perm, n, data, size, 0);
        free(a);
        a = new_ids(n);
        run_phase(eng, e, dir, "lifecycle", OP_LIFE, BENCH_MAX_WRITERS, 0, a, NULL, n, data, size, 0);
        free(a);
        eng->close(e);
    }
    free(perm);
    free(data);
    return 0;
}

/* ------------------------------------------------------------ payloads */

static int cmd_payloads(const char *dir)
{
    bench_rng r;
    bench_rng_seed(&r, SEED_PAYLOAD);
    for (size_t i = 0; i < sizeof payload_sizes / sizeof *payload_sizes; i++) {
        size_t n = payload_sizes[i] + BENCH_PAYLOAD_SLACK;
        unsigned char *buf = bench_xmalloc(n);
        char path[4096];
        for (size_t k = 0; k < n; k++)
            buf[k] = (unsigned char)(bench_rng_next(&r) >> 7);
        snprintf(path, sizeof path, "%s/payload-%zu.bin", dir, payload_sizes[i]);
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(buf, 1, n, f) != n || fclose(f) != 0)
            bench_die("cannot write %s", path);
        free(buf);
    }
    return 0;
}

/* ------------------------------------------------------------ disk */

static void disk_sync_loop(const char *label, const char *workload, int fd, int n, int append)
{
    char buf[4096];
    bench_rng r;
    bench_row row = {.engine = label, .workload = workload, .size = 4096, .writers = 1, .ops = (size_t)n,
                     .size_bytes = -1};
    bench_meas m;
    double *lat = bench_xmalloc((size_t)n * sizeof *lat);
    bench_rng_seed(&r, SEED_PAYLOAD);
    for (size_t k = 0; k < sizeof buf; k++)
        buf[k] = (char)bench_rng_next(&r);
    bench_meas_begin(&m);
    for (int i = 0; i < n; i++) {
        double t0 = bench_now();
        off_t off = append ? (off_t)i * 4096 : (off_t)(i % 256) * 4096;
        if (pwrite(fd, buf, sizeof buf, off) != (ssize_t)sizeof buf || fdatasync(fd) != 0)
            bench_die("disk: write/fdatasync: %s", strerror(errno));
        lat[i] = bench_now() - t0;
    }
    bench_meas_end(&m, &row);
    row.bytes = (double)n * 4096;
    row.lat = lat;
    row.nlat = (size_t)n;
    bench_row_print(&row);
    free(lat);
}

/* seq_mb = 0: the fdatasync probes alone. */
static int cmd_disk(const char *label, const char *dir, int nsync, int seq_mb)
{
    char path[4096];
    if (bench_mkdir_p(dir) != 0)
        bench_die("mkdir %s: %s", dir, strerror(errno));
    /* 4 KiB overwrite + fdatasync in a preallocated, synced 1 MiB file:
     * no metadata to journal, the device's own round trip. */
    snprintf(path, sizeof path, "%s/sync-overwrite", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        bench_die("open %s: %s", path, strerror(errno));
    char *zero = calloc(1, 1 << 20);
    if (zero == NULL || pwrite(fd, zero, 1 << 20, 0) != 1 << 20 || fsync(fd) != 0)
        bench_die("preallocate %s", path);
    free(zero);
    disk_sync_loop(label, "fdatasync-4k-overwrite", fd, nsync, 0);
    close(fd);
    unlink(path);
    /* 4 KiB append + fdatasync: the size changes, so the journal commits. */
    snprintf(path, sizeof path, "%s/sync-append", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        bench_die("open %s: %s", path, strerror(errno));
    disk_sync_loop(label, "fdatasync-4k-append", fd, nsync, 1);
    close(fd);
    unlink(path);
    if (seq_mb <= 0)
        return 0;
    /* Sequential write in 1 MiB chunks, then one fdatasync. */
    snprintf(path, sizeof path, "%s/seq", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        bench_die("open %s: %s", path, strerror(errno));
    size_t chunk = 1 << 20;
    unsigned char *buf = bench_xmalloc(chunk);
    bench_rng r;
    bench_rng_seed(&r, SEED_PAYLOAD);
    for (size_t k = 0; k < chunk; k++)
        buf[k] = (unsigned char)bench_rng_next(&r);
    bench_row row = {.engine = label, .workload = "seq-write", .size = chunk, .writers = 1,
                     .ops = (size_t)seq_mb, .size_bytes = -1};
    bench_meas m;
    bench_meas_begin(&m);
    for (int i = 0; i < seq_mb; i++) {
        buf[0] = (unsigned char)i;
        if (write(fd, buf, chunk) != (ssize_t)chunk)
            bench_die("write %s: %s", path, strerror(errno));
    }
    if (fdatasync(fd) != 0)
        bench_die("fdatasync %s: %s", path, strerror(errno));
    bench_meas_end(&m, &row);
    row.bytes = (double)seq_mb * (double)chunk;
    snprintf(row.extra, sizeof row.extra, "%d MiB then one fdatasync", seq_mb);
    bench_row_print(&row);
    close(fd);
    unlink(path);
    free(buf);
    return 0;
}

/* ------------------------------------------------------------ compact scaling */

#define BATCH 256

static void raw_sql(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        bench_die("raw-sqlite: %s: %s", sql, sqlite3_errmsg(db));
}

/* Fills n 4 KiB entries and removes them all, oldest first (fifo) or in
 * random order, in transactions of BATCH, then compacts; one row per
 * engine, order and n. */
static void scale_one(const char *engine, const char *dir, size_t n, const char *data, int fifo)
{
    spool_id *ids = new_ids(n);
    size_t *perm = bench_xmalloc(n * sizeof *perm);
    bench_compact c = {0};
    bench_row r = {.engine = engine, .workload = fifo ? "compact-scale-fifo" : "compact-scale-random",
                   .size = 4096, .writers = 1, .ops = n};
    bench_meas m;
    bench_permutation(perm, n, SEED_ORDER);
    if (fifo)
        for (size_t i = 0; i < n; i++)
            perm[i] = i;
    rm_rf(dir);
    if (strcmp(engine, "spool-c") == 0) {
        spool *s = bench_spool_c.open(dir, 0, 1);
        spool_error err;
        spool_item items[BATCH];
        spool_id del[BATCH];
        size_t removed;
        for (size_t i = 0; i < n; i += BATCH) {
            size_t k = n - i < BATCH ? n - i : BATCH;
            for (size_t j = 0; j < k; j++)
                items[j] = (spool_item){ids[i + j], data, 4096};
            if (spool_store_many(s, items, k, NULL, &err) != 0)
                bench_die("spool-c: store_many: %s", err.message);
        }
        for (size_t i = 0; i < n; i += BATCH) {
            size_t k = n - i < BATCH ? n - i : BATCH;
            for (size_t j = 0; j < k; j++)
                del[j] = ids[perm[i + j]];
            if (spool_remove_many(s, del, k, NULL, &removed, &err) != 0 || removed != k)
                bench_die("spool-c: remove_many: %s", err.message);
        }
        bench_meas_begin(&m);
        bench_spool_c.compact(s, &c);
        bench_meas_end(&m, &r);
        bench_spool_c.close(s);
    } else {
        void *e = bench_raw_sqlite.open(dir, 0, 1);
        char *path;
        sqlite3 *db;
        sqlite3_stmt *ins, *del;
        if (asprintf(&path, "%s/raw.db", dir) < 0)
            bench_die("out of memory");
        if (sqlite3_open(path, &db) != SQLITE_OK)
            bench_die("raw-sqlite: open %s", path);
        free(path);
        raw_sql(db, "PRAGMA synchronous=NORMAL; PRAGMA secure_delete=OFF;");
        if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO e(key, data) VALUES (?1, ?2)", -1, &ins, NULL) ||
            sqlite3_prepare_v2(db, "DELETE FROM e WHERE key = ?1", -1, &del, NULL))
            bench_die("raw-sqlite: prepare: %s", sqlite3_errmsg(db));
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < n; i += BATCH) {
                size_t k = n - i < BATCH ? n - i : BATCH;
                raw_sql(db, "BEGIN IMMEDIATE");
                for (size_t j = 0; j < k; j++) {
                    uint8_t key[SPOOL_ID_BYTES];
                    sqlite3_stmt *st = pass == 0 ? ins : del;
                    spool_id_to_key(&ids[pass == 0 ? i + j : perm[i + j]], key);
                    sqlite3_bind_blob(st, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
                    if (pass == 0)
                        sqlite3_bind_blob(st, 2, data, 4096, SQLITE_STATIC);
                    if (sqlite3_step(st) != SQLITE_DONE)
                        bench_die("raw-sqlite: %s", sqlite3_errmsg(db));
                    sqlite3_reset(st);
                }
                raw_sql(db, "COMMIT");
            }
        sqlite3_finalize(ins);
        sqlite3_finalize(del);
        sqlite3_close(db);
        bench_meas_begin(&m);
        bench_raw_sqlite.compact(e, &c);
        bench_meas_end(&m, &r);
        bench_raw_sqlite.close(e);
    }
    r.seconds = c.seconds;
    r.size_bytes = du_disk(dir);
    snprintf(r.extra, sizeof r.extra, "before=%lld after=%lld wal_max=%lld pages=%lld steps=%d us_per_page=%.2f",
             (long long)c.bytes_before, (long long)c.bytes_after, (long long)c.wal_max, (long long)c.pages_freed,
             c.steps, c.pages_freed > 0 ? c.seconds * 1e6 / (double)c.pages_freed : 0.0);
    bench_row_print(&r);
    rm_rf(dir);
    free(ids);
    free(perm);
}

static int cmd_compact_scale(const char *dir, size_t base)
{
    char *data = bench_xmalloc(4096);
    char sub[4096];
    bench_rng r;
    bench_rng_seed(&r, SEED_PAYLOAD);
    for (size_t k = 0; k < 4096; k++)
        data[k] = (char)bench_rng_next(&r);
    static const struct {
        const char *engine;
        int fifo;
    } series[] = {{"spool-c", 0}, {"raw-sqlite", 0}, {"spool-c", 1}};
    for (size_t e = 0; e < sizeof series / sizeof *series; e++)
        for (size_t mult = 1; mult <= 4; mult *= 2) {
            snprintf(sub, sizeof sub, "%s/%s-%zu", dir, series[e].engine, mult);
            scale_one(series[e].engine, sub, base * mult, data, series[e].fifo);
        }
    free(data);
    return 0;
}

/* ------------------------------------------------------------ enumerate RSS */

static int cmd_fill(const char *dir, size_t mb)
{
    size_t size = 65536, n = mb * 16, batch = 64;
    char *data = bench_xmalloc(size);
    bench_rng r;
    spool_error err;
    spool_item items[64];
    bench_rng_seed(&r, SEED_PAYLOAD);
    for (size_t k = 0; k < size; k++)
        data[k] = (char)bench_rng_next(&r);
    spool *s = bench_spool_c.open(dir, 0, 1);
    double t0 = bench_now();
    for (size_t i = 0; i < n; i += batch) {
        size_t k = n - i < batch ? n - i : batch;
        for (size_t j = 0; j < k; j++) {
            if (spool_id_new(&items[j].id) != 0)
                bench_die("spool_id_new failed");
            items[j].data = data;
            items[j].len = size;
        }
        if (spool_store_many(s, items, k, NULL, &err) != 0)
            bench_die("spool-c: store_many: %s", err.message);
    }
    spool_compact_stats cs;
    if (spool_compact(s, &cs, &err) != 0) /* leaves the WAL empty */
        bench_die("spool-c: compact: %s", err.message);
    fprintf(stderr, "filled %zu MiB (%zu entries of 64 KiB) in %.1f s\n", mb, n, bench_now() - t0);
    bench_spool_c.close(s);
    free(data);
    return 0;
}

static int cmd_enum_rss(const char *dir)
{
    spool *s = bench_spool_c.open(dir, 0, 1);
    bench_row r = {.engine = "spool-c", .workload = "enumerate-rss", .size = 65536, .writers = 1};
    bench_meas m;
    size_t count = 0;
    uint64_t bytes = 0;
    bench_meas_begin(&m);
    bench_spool_c.enumerate(s, &count, &bytes);
    bench_meas_end(&m, &r);
    r.ops = count;
    r.bytes = (double)bytes;
    r.size_bytes = du_disk(dir);
    snprintf(r.extra, sizeof r.extra, "spool_mib=%.0f rss_before_kib=%ld", (double)bytes / 1048576.0,
             r.rss_peak_kib - r.rss_growth_kib);
    bench_row_print(&r);
    bench_spool_c.close(s);
    return 0;
}

/* CRC-32C: the one-stream crc32 instruction loop against the three
 * streams spool_crc32c uses (and slicing-by-8), over 4 KiB, 64 KiB and
 * 1 MiB buffers, in alternating rounds; one row per implementation and
 * size with the median round's MB/s. */
static int cmd_checksum(void)
{
    static const size_t sizes[] = {4096, 65536, 1048576};
    static const struct {
        int variant;
        const char *engine;
    } impl[] = {{SPOOL_CRC_HW1, "crc-1-stream"}, {SPOOL_CRC_HW3, "crc-3-streams"}, {SPOOL_CRC_SW, "crc-sw"}};
    enum { ROUNDS = 5, NIMPL = 3 };
    const size_t total = 256u << 20; /* bytes summed per round */
    uint8_t *buf = bench_xmalloc(1048576);
    bench_rng rng;
    bench_rng_seed(&rng, 7);
    for (size_t i = 0; i < 1048576; i++)
        buf[i] = (uint8_t)bench_rng_next(&rng);
    volatile uint32_t sink = 0;
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        double mbs[NIMPL][ROUNDS];
        for (int round = 0; round < ROUNDS; round++)
            for (int k = 0; k < NIMPL; k++) {
                int i = round % 2 ? NIMPL - 1 - k : k;
                if (!spool_crc32c_has(impl[i].variant)) {
                    mbs[i][round] = 0;
                    continue;
                }
                size_t n = total / sizes[z] / (impl[i].variant == SPOOL_CRC_SW ? 8 : 1);
                double t0 = bench_now();
                for (size_t j = 0; j < n; j++)
                    sink ^= spool_crc32c_variant(impl[i].variant, 0, buf, sizes[z]);
                mbs[i][round] = (double)n * (double)sizes[z] / 1e6 / (bench_now() - t0);
            }
        for (int i = 0; i < NIMPL; i++) {
            for (int a = 0; a < ROUNDS; a++) /* sort the rounds: the median is the middle */
                for (int b = a + 1; b < ROUNDS; b++)
                    if (mbs[i][b] < mbs[i][a]) {
                        double t = mbs[i][a];
                        mbs[i][a] = mbs[i][b];
                        mbs[i][b] = t;
                    }
            bench_row r = {.engine = impl[i].engine, .workload = "checksum", .size = sizes[z], .writers = 1,
                           .size_bytes = -1};
            r.seconds = 1;
            r.bytes = mbs[i][ROUNDS / 2] * 1e6;
            r.ops = (size_t)(r.bytes / (double)sizes[z]);
            if (mbs[i][ROUNDS / 2] == 0)
                r.status = "not on this CPU";
            snprintf(r.extra, sizeof r.extra, "rounds=%d", ROUNDS);
            bench_row_print(&r);
        }
    }
    free(buf);
    (void)sink;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* writers A B SIZE N DIR PAYLOAD: store and lifecycle (default
 * durability) at 1, 2, 8 and 32 writers, engine A against engine B (e.g.
 * spool-c against spool-c-nowait: the commit wait against none), each
 * phase on a fresh spool after a sync() (so that one phase's dirty pages
 * are not written during the next), the engines in alternating order
 * over 4 rounds (each first as often).  Prints a table of the median
 * ops/s (the mean of the middle two rounds) and A / B. */
static int cmd_writers(const char *name_a, const char *name_b, size_t size, size_t n, const char *dir,
                       const char *payload)
{
    enum { ROUNDS = 4 };
    static const int counts[] = {1, 2, 8, 32};
    static const struct {
        const char *name;
        int op;
    } workloads[] = {{"store", OP_STORE}, {"lifecycle", OP_LIFE}};
    const bench_engine *eng[2] = {engine_named(name_a), engine_named(name_b)};
    for (int k = 0; k < 2; k++)
        if (eng[k] == NULL || strcmp(eng[k]->name, "raw-sqlite") == 0)
            bench_die("writers: %s cannot run here (one handle shared by up to %d threads needed)",
                      k ? name_b : name_a, BENCH_MAX_THREADS);
    char *data = read_payload(payload, size);
    printf("# %zu-byte payloads, %zu operations per phase, medians of %d rounds (ops/s)\n", size, n, ROUNDS);
    printf("# %-10s %7s %12s %12s %7s\n", "workload", "writers", name_a, name_b, "ratio");
    for (size_t w = 0; w < sizeof workloads / sizeof *workloads; w++)
        for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
            double ops[2][ROUNDS];
            for (int round = 0; round < ROUNDS; round++)
                for (int j = 0; j < 2; j++) {
                    int k = round % 2 ? 1 - j : j;
                    char sub[4096];
                    snprintf(sub, sizeof sub, "%s/w%d-%zu-%d", dir, k, c, round);
                    sync();
                    void *e = eng[k]->open(sub, 0, counts[c]);
                    spool_id *ids = new_ids(n);
                    bench_row r;
                    measure_phase(eng[k], e, sub, workloads[w].name, workloads[w].op, counts[c], 0, ids, NULL, n,
                                  data, size, 0, &r);
                    ops[k][round] = r.seconds > 0 ? (double)n / r.seconds : 0;
                    free(r.lat);
                    free(ids);
                    eng[k]->close(e);
                    char cmd[4200];
                    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sub);
                    if (system(cmd) != 0)
                        bench_die("cannot remove %s", sub);
                }
            qsort(ops[0], ROUNDS, sizeof(double), cmp_double);
            qsort(ops[1], ROUNDS, sizeof(double), cmp_double);
            double a = (ops[0][1] + ops[0][2]) / 2, b = (ops[1][1] + ops[1][2]) / 2;
            printf("  %-10s %7d %12.0f %12.0f %6.2fx\n", workloads[w].name, counts[c], a, b, b > 0 ? a / b : 0);
            fflush(stdout);
        }
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
#ifdef HAVE_ROCKSDB
        printf("sqlite %s, rocksdb built in\n", sqlite3_libversion());
#else
        printf("sqlite %s, rocksdb not built in\n", sqlite3_libversion());
#endif
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "header") == 0) {
        puts(BENCH_TSV_HEADER);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "payloads") == 0)
        return cmd_payloads(argv[2]);
    if ((argc == 8 || argc == 9) && strcmp(argv[1], "run") == 0)
        return cmd_run(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
                       strtoul(argv[5], NULL, 10), argv[6], argv[7], argc == 9 ? argv[8] : "all");
    if (argc == 5 && strcmp(argv[1], "disk-sync") == 0)
        return cmd_disk(argv[2], argv[3], atoi(argv[4]), 0);
    if (argc == 6 && strcmp(argv[1], "disk") == 0)
        return cmd_disk(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (argc == 4 && strcmp(argv[1], "compact-scale") == 0)
        return cmd_compact_scale(argv[2], strtoul(argv[3], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "fill") == 0)
        return cmd_fill(argv[2], strtoul(argv[3], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "enum-rss") == 0)
        return cmd_enum_rss(argv[2]);
    if (argc == 2 && strcmp(argv[1], "checksum") == 0)
        return cmd_checksum();
    if (argc == 8 && strcmp(argv[1], "writers") == 0)
        return cmd_writers(argv[2], argv[3], strtoul(argv[4], NULL, 10), strtoul(argv[5], NULL, 10), argv[6],
                           argv[7]);
    fprintf(stderr,
            "usage: spool-bench version | header | payloads DIR |\n"
            "       run ENGINE SIZE N NDUR DIR PAYLOAD [main|durable] |\n"
            "       disk LABEL DIR NSYNC SEQ_MB | disk-sync LABEL DIR NSYNC |\n"
            "       compact-scale DIR BASE | fill DIR MB | enum-rss DIR | checksum |\n"
            "       writers ENGINE_A ENGINE_B SIZE N DIR PAYLOAD\n");
    return 2;
}
