/*
 * bench/bench_util.c: clocks, the shared random sequence, /proc figures,
 * disk usage and the TSV row format of spool-bench.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("spool-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void *bench_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        bench_die("out of memory (%zu bytes)", n);
    return p;
}

void bench_rng_seed(bench_rng *r, uint32_t seed)
{
    r->state = seed % 2147483646u + 1u;
}

uint32_t bench_rng_next(bench_rng *r)
{
    r->state = (uint32_t)((uint64_t)r->state * 16807u % 2147483647u);
    return r->state;
}

void bench_permutation(size_t *out, size_t n, uint32_t seed)
{
    bench_rng r;
    bench_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        out[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = bench_rng_next(&r) % i, t = out[i - 1];
        out[i - 1] = out[j];
        out[j] = t;
    }
}

long bench_status_kib(const char *field)
{
    char line[256];
    size_t n = strlen(field);
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

void bench_hwm_reset(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (write(fd, "5", 1) != 1) {
        /* an old kernel: the peak then covers the whole process */
    }
    close(fd);
}

/* The value of field `name` ("write_bytes:") in /proc/self/io, or 0. */
static uint64_t proc_io(const char *name)
{
    char line[128];
    uint64_t v = 0;
    size_t len = strlen(name);
    FILE *f = fopen("/proc/self/io", "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, name, len) == 0) {
            v = strtoull(line + len, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

uint64_t bench_write_bytes(void)
{
    return proc_io("write_bytes:");
}

uint64_t bench_wchar(void)
{
    return proc_io("wchar:");
}

static void du_at(int at, const char *name, int64_t *disk, int64_t *files)
{
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;
    *disk += (int64_t)st.st_blocks * 512;
    if (S_ISREG(st.st_mode))
        *files += (int64_t)st.st_size;
    if (!S_ISDIR(st.st_mode))
        return;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        du_at(dirfd(d), de->d_name, disk, files);
    }
    closedir(d);
}

void bench_du(const char *path, int64_t *disk_bytes, int64_t *file_bytes)
{
    int64_t d = 0, f = 0;
    du_at(AT_FDCWD, path, &d, &f);
    if (disk_bytes)
        *disk_bytes = d;
    if (file_bytes)
        *file_bytes = f;
}

int bench_mkdir_p(const char *path)
{
    if (mkdir(path, 0750) == 0 || errno == EEXIST)
        return 0;
    if (errno != ENOENT)
        return -1;
    char *parent = strdup(path);
    if (parent == NULL)
        return -1;
    char *slash = strrchr(parent, '/');
    int rc = -1;
    if (slash != NULL && slash != parent) {
        *slash = '\0';
        rc = bench_mkdir_p(parent);
    }
    free(parent);
    if (rc != 0)
        return -1;
    return mkdir(path, 0750) == 0 || errno == EEXIST ? 0 : -1;
}

void bench_meas_begin(bench_meas *m)
{
    bench_hwm_reset();
    m->rss0 = bench_status_kib("VmRSS");
    m->wb0 = bench_write_bytes();
    m->wc0 = bench_wchar();
    m->t0 = bench_now();
}

void bench_meas_end(const bench_meas *m, bench_row *r)
{
    r->seconds = bench_now() - m->t0;
    r->wbytes = (double)(bench_write_bytes() - m->wb0);
    r->wchar = (double)(bench_wchar() - m->wc0);
    r->rss_peak_kib = bench_status_kib("VmHWM");
    r->rss_growth_kib = r->rss_peak_kib >= 0 && m->rss0 >= 0 ? r->rss_peak_kib - m->rss0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static double pct(const double *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

void bench_row_print(bench_row *r)
{
    char p50[32] = "NA", p99[32] = "NA", ops_s[32] = "NA", mb_s[32] = "NA", wb[32] = "NA",
         sz[32] = "NA";
    if (r->lat != NULL && r->nlat > 0) {
        qsort(r->lat, r->nlat, sizeof *r->lat, cmp_double);
        snprintf(p50, sizeof p50, "%.1f", pct(r->lat, r->nlat, 50) * 1e6);
        snprintf(p99, sizeof p99, "%.1f", pct(r->lat, r->nlat, 99) * 1e6);
    }
    if (r->seconds > 0 && r->ops > 0) {
        snprintf(ops_s, sizeof ops_s, "%.1f", (double)r->ops / r->seconds);
        snprintf(mb_s, sizeof mb_s, "%.2f", r->bytes / r->seconds / 1e6);
    }
    if (r->ops > 0)
        snprintf(wb, sizeof wb, "%.0f", r->wbytes / (double)r->ops);
    if (r->size_bytes >= 0)
        snprintf(sz, sizeof sz, "%lld", (long long)r->size_bytes);
    if (r->ops > 0 && r->wchar > 0) { /* logical bytes written per op, beside the device's */
        size_t at = strlen(r->extra);
        snprintf(r->extra + at, sizeof r->extra - at, "%swchar=%.0f", at ? " " : "", r->wchar / (double)r->ops);
    }
    printf("%s\t%s\t%zu\t%d\t%zu\t%.6f\t%s\t%s\t%s\t%s\t%ld\t%ld\t%s\t%s\t%s\t%s\n", r->engine, r->workload,
           r->size, r->writers, r->ops, r->seconds, ops_s, mb_s, p50, p99, r->rss_peak_kib, r->rss_growth_kib,
           wb, sz, r->status ? r->status : "ok", r->extra[0] ? r->extra : "-");
    fflush(stdout);
}

void bench_row_skip(const char *engine, const char *workload, size_t size, int writers, const char *status)
{
    printf("%s\t%s\t%zu\t%d\t0\t0\tNA\tNA\tNA\tNA\t-1\t-1\tNA\tNA\t%s\t-\n", engine, workload, size, writers,
           status);
    fflush(stdout);
}
