/*
 * bench/bench.h: the C side of `make bench` (see bench/README.md).
 *
 * One program, spool-bench, measures the storage engines that the spool
 * is compared with, each through the same small interface, so that every
 * engine runs exactly the same workloads in the same order:
 *
 *   raw-sqlite  a plain SQLite C loop with the spool's pragmas: the floor
 *   spool-c     the spool through its C API (csrc/spool.h)
 *   spool-c-mmap  the same with sqlite.mmap_size = 1 GiB
 *   localdisk   one file per message in KumoMTA's LocalDisk layout
 *   rocksdb     RocksDB through rocksdb/c.h (when built with it)
 *
 * Every measured row is printed as one line of tab-separated values
 * (columns in BENCH_TSV_HEADER); bench/report.lua turns them into tables.
 */
#ifndef SPOOL_BENCH_H
#define SPOOL_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"

#define BENCH_TSV_HEADER                                                                      \
    "engine\tworkload\tsize\twriters\tops\tseconds\tops_s\tmb_s\tp50_us\tp99_us\t"           \
    "rss_peak_kib\trss_growth_kib\twbytes_per_op\tsize_bytes\tstatus\textra"

#define BENCH_MAX_WRITERS 8

/* A payload file holds size + BENCH_PAYLOAD_SLACK random bytes; message k
 * stores the size bytes at bench_payload_off(k): every message distinct
 * at every position (a benchmark whose entries are all equal flatters
 * LuaJIT, which interns one string for them).  bench/spool_bench.lua
 * computes the same offsets. */
#define BENCH_PAYLOAD_SLACK ((size_t)1 << 20)
static inline size_t bench_payload_off(size_t k)
{
    return (k * 8) % BENCH_PAYLOAD_SLACK;
}
/* Threads of one phase at most (bench_main.c: writers). */
#define BENCH_MAX_THREADS 32

/* ---------------------------------------------------------------- util */

double bench_now(void);
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void *bench_xmalloc(size_t n);

/* The Park-Miller "minimal standard" generator (x := 16807 x mod 2^31-1):
 * exact in integers and in doubles, so bench/spool_bench.lua reproduces
 * the same sequence. */
typedef struct bench_rng {
    uint32_t state;
} bench_rng;
void bench_rng_seed(bench_rng *r, uint32_t seed);
uint32_t bench_rng_next(bench_rng *r); /* 1 .. 2^31 - 2 */
/* A permutation of 0..n-1 (Fisher-Yates, j = next % (i + 1)). */
void bench_permutation(size_t *out, size_t n, uint32_t seed);

/* Process figures from /proc/self. */
long bench_status_kib(const char *field); /* "VmRSS", "VmHWM"; -1 if unknown */
void bench_hwm_reset(void);               /* peak RSS := current RSS */
uint64_t bench_write_bytes(void);         /* /proc/self/io write_bytes */
uint64_t bench_wchar(void);               /* /proc/self/io wchar: bytes handed to write calls */

/* Bytes the tree under path occupies on disk (st_blocks * 512, files and
 * directories), and the sum of regular files' st_size. */
void bench_du(const char *path, int64_t *disk_bytes, int64_t *file_bytes);

/* mkdir -p; returns 0 or -1 with errno. */
int bench_mkdir_p(const char *path);

/* One measured row. */
typedef struct bench_row {
    const char *engine, *workload;
    size_t size;
    int writers;
    size_t ops;
    double seconds;
    double bytes;        /* payload bytes moved, for MB/s */
    double *lat;         /* per-op seconds (sorted in place), or NULL */
    size_t nlat;
    long rss_peak_kib, rss_growth_kib;
    double wbytes;       /* write_bytes delta */
    double wchar;        /* wchar delta (logical bytes written); < 0: not measured */
    int64_t size_bytes;  /* -1: not measured */
    const char *status;  /* NULL: "ok" */
    char extra[256];
} bench_row;

/* Snapshot taken when a measured phase starts. */
typedef struct bench_meas {
    double t0;
    uint64_t wb0, wc0;
    long rss0;
} bench_meas;

void bench_meas_begin(bench_meas *m);
/* Fills seconds, rss and wbytes of r. */
void bench_meas_end(const bench_meas *m, bench_row *r);
/* Prints r as one TSV line on stdout (and flushes). */
void bench_row_print(bench_row *r);
/* A row that says why an engine was not measured. */
void bench_row_skip(const char *engine, const char *workload, size_t size, int writers,
                    const char *status);

/* -------------------------------------------------------------- engines */

typedef struct bench_engine bench_engine;

typedef struct bench_compact {
    double seconds;
    int64_t bytes_before, bytes_after; /* the engine's files, st_size */
    int64_t wal_max;                   /* largest WAL seen, -1 if n/a */
    int64_t pages_freed;               /* -1 if n/a */
    int steps;
} bench_compact;

struct bench_engine {
    const char *name;
    /* Opens the engine's store under dir; durable: sync every commit. */
    void *(*open)(const char *dir, int durable, int threads);
    void (*close)(void *e);
    /* Per-thread handle (thread t of `threads`); untimed. */
    void *(*thread_open)(void *e, int t);
    void (*thread_close)(void *e, void *th);
    int (*store)(void *th, const spool_id *id, const void *data, size_t len, int force_sync);
    /* Loads into a buffer the engine allocates and frees again; *len set. */
    int (*load)(void *th, const spool_id *id, size_t *len);
    int (*remove)(void *th, const spool_id *id);
    /* Reads every entry with its data; counts entries and bytes. */
    int (*enumerate)(void *e, size_t *count, uint64_t *bytes);
    int (*compact)(void *e, bench_compact *c);
    /* Optional: brings the engine to a settled state before a load phase
     * (RocksDB: memtables flushed, compactions done), so that loads do
     * not measure whatever the store phase left running. */
    void (*settle)(void *e);
    /* Last error text (static or per-engine buffer). */
    const char *(*error)(void *th);
};

extern const bench_engine bench_raw_sqlite, bench_spool_c, bench_spool_c_nowait, bench_spool_c_mmap, bench_localdisk, bench_spool_localdisk,
    bench_spool_rocksdb;
#ifdef HAVE_ROCKSDB
extern const bench_engine bench_rocksdb, bench_rocksdb_snappy;
#endif

/* Entries in the raw SQLite table and in the spool: the same layout. */
#define BENCH_RAW_SCHEMA \
    "CREATE TABLE IF NOT EXISTS e(rowid INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, data BLOB NOT NULL)"

#endif
