/*
 * concurrency_threads.c: 8 threads store, load and remove on one spool
 * path at once, with short deadlines (timeout 0.05-0.2 s on nine writes
 * in ten, store_deadline 0.5 s on all, a latch duration of an hour so
 * that the gate never latches), for a few seconds; first all of them on
 * one handle (group commit), then on four handles of the same path (two
 * threads each: SQLite's own locking between connections).  Each thread keeps a ledger of its own ids.
 * Afterwards a fresh handle checks, for each phase:
 *   - 0 lost: every acknowledged store not removed loads with its bytes;
 *   - 0 duplicated: enumerate yields each id once, and exactly the live
 *     entries plus the ambiguous failures found present;
 *   - every acknowledged remove and every (unambiguously) failed store is
 *     absent;
 *   - every failure is a typed error (counted by kind);
 *   - PRAGMA integrity_check says ok.
 *
 *   build/luajit/rtest/concurrency_threads [SECONDS]   (default 3; SEED=n,
 *   TMPDIR=dir for the spools)
 *
 * Built and run by tools/reliability/concurrency.sh.
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spool.h"
#include "tap.h"

#define THREADS 8
#define MAX_HANDLES THREADS

enum { ST_LIVE, ST_GONE, ST_FAILED, ST_AMBIGUOUS };
enum { OP_STORE, OP_LOAD, OP_REMOVE, OP_ENUMERATE, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"store", "load", "remove", "enumerate"};

typedef struct rec {
    spool_id id;
    uint32_t len, seed;
    int st;
    int present; /* found by the final check */
} rec;

typedef struct worker {
    int index;
    spool *s;
    double stop;
    uint64_t rng;
    rec *recs;
    size_t n, cap;
    size_t *live, n_live, cap_live; /* indices into recs */
    size_t *gone, n_gone, cap_gone;
    unsigned char *buf;
    uint64_t op[OP_COUNT], okc[OP_COUNT];
    uint64_t fail[OP_COUNT][SPOOL_KIND_COUNT + 1]; /* [SPOOL_KIND_COUNT]: out of range */
    uint64_t untyped, ambiguous, lost_inflight, wrong_inflight, undone_inflight, corrupt_inflight;
    char notes[4][SPOOL_ERROR_MESSAGE_MAX + 128];
    int n_notes;
} worker;

#define MAX_LEN 65536

static uint64_t rnd(worker *w)
{
    /* xorshift64* */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ULL;
}

static double rnd01(worker *w)
{
    return (double)(rnd(w) >> 11) / 9007199254740992.0;
}

/* The bytes of an entry: Park-Miller from seed. */
static void derive(unsigned char *buf, size_t len, uint32_t seed)
{
    uint64_t x = seed;
    for (size_t i = 0; i < len; i++) {
        x = x * 16807 % 2147483647;
        buf[i] = (unsigned char)x;
    }
}

static void note(worker *w, const char *fmt, const char *a, const char *b)
{
    if (w->n_notes < 4)
        snprintf(w->notes[w->n_notes++], sizeof w->notes[0], fmt, a, b);
}

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * size);
    if (q == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    *cap = c;
    return q;
}

/* Counts a failure.  Returns 1 when it is a typed runtime error. */
static int failed(worker *w, int op, const spool_error *err)
{
    char id[16];
    if (err->kind > SPOOL_OK && err->kind < SPOOL_MISUSE) {
        w->fail[op][err->kind]++;
        if (err->ambiguous)
            w->ambiguous++;
        return 1;
    }
    w->fail[op][err->kind >= 0 && err->kind < SPOOL_KIND_COUNT ? err->kind : SPOOL_KIND_COUNT]++;
    w->untyped++;
    snprintf(id, sizeof id, "%d", (int)err->kind);
    note(w, "untyped failure (kind %s): %s", id, err->message);
    return 0;
}

static uint32_t pick_size(worker *w)
{
    if (rnd01(w) < 0.5)
        return 1 + (uint32_t)(rnd(w) % 16384);
    return (uint32_t)floor(pow(2, rnd01(w) * 16));
}

static void take_live(worker *w, size_t i)
{
    w->live[i] = w->live[--w->n_live];
}

static int count_corrupt(void *ud, const spool_entry *e)
{
    if (e->corrupt)
        ++*(uint64_t *)ud;
    return 0;
}

static void *work(void *arg)
{
    worker *w = arg;
    while (spool_monotonic() < w->stop) {
        double r = rnd01(w);
        spool_error err;
        /* Mostly a caller's timeout of 0.05-0.2 s; one write in ten has
         * only store_deadline (0.5 s), whose expiry is backpressure. */
        spool_write_opts o = {.deadline = rnd01(w) < 0.9 ? spool_monotonic() + 0.05 + rnd01(w) * 0.15 : 0};
        if (r < 0.45 || w->n_live == 0) {
            w->op[OP_STORE]++;
            w->recs = grow(w->recs, &w->cap, w->n + 1, sizeof *w->recs);
            rec *x = &w->recs[w->n++];
            memset(x, 0, sizeof *x);
            spool_id_new(&x->id);
            x->len = pick_size(w);
            x->seed = 1 + (uint32_t)(rnd(w) % 2147483646);
            derive(w->buf, x->len, x->seed);
            o.force_sync = rnd01(w) < 0.5;
            if (spool_store(w->s, &x->id, w->buf, x->len, &o, &err) == 0) {
                w->okc[OP_STORE]++;
                x->st = ST_LIVE;
                w->live = grow(w->live, &w->cap_live, w->n_live + 1, sizeof *w->live);
                w->live[w->n_live++] = w->n - 1;
            } else {
                failed(w, OP_STORE, &err);
                x->st = err.ambiguous ? ST_AMBIGUOUS : ST_FAILED;
            }
        } else if (r < 0.75) {
            w->op[OP_LOAD]++;
            rec *x;
            if (w->n_gone > 0 && rnd01(w) < 0.1)
                x = &w->recs[w->gone[rnd(w) % w->n_gone]];
            else
                x = &w->recs[w->live[rnd(w) % w->n_live]];
            void *data;
            size_t len;
            if (spool_load(w->s, &x->id, &data, &len, &err) == 0) {
                w->okc[OP_LOAD]++;
                char text[SPOOL_ID_TEXT + 1];
                spool_id_format(&x->id, text);
                if (x->st == ST_GONE) {
                    w->undone_inflight++;
                    note(w, "load of removed %s gave bytes%s", text, "");
                } else {
                    derive(w->buf, x->len, x->seed);
                    if (len != x->len || memcmp(data, w->buf, len) != 0) {
                        w->wrong_inflight++;
                        note(w, "load of %s gave other bytes%s", text, "");
                    }
                }
                spool_free(data);
            } else if (x->st == ST_GONE && err.kind == SPOOL_NOT_FOUND) {
                w->okc[OP_LOAD]++;
            } else {
                failed(w, OP_LOAD, &err);
                if (err.kind == SPOOL_NOT_FOUND) {
                    char text[SPOOL_ID_TEXT + 1];
                    spool_id_format(&x->id, text);
                    w->lost_inflight++;
                    note(w, "load of live %s: %s", text, err.message);
                }
            }
        } else if (r < 0.99) {
            w->op[OP_REMOVE]++;
            size_t i = rnd(w) % w->n_live, k = w->live[i];
            rec *x = &w->recs[k];
            int removed;
            if (spool_remove(w->s, &x->id, &o, &removed, &err) == 0) {
                take_live(w, i);
                x->st = ST_GONE;
                if (removed) {
                    w->okc[OP_REMOVE]++;
                    w->gone = grow(w->gone, &w->cap_gone, w->n_gone + 1, sizeof *w->gone);
                    w->gone[w->n_gone++] = k;
                } else {
                    char text[SPOOL_ID_TEXT + 1];
                    spool_id_format(&x->id, text);
                    w->lost_inflight++;
                    note(w, "remove of live %s found nothing%s", text, "");
                }
            } else {
                failed(w, OP_REMOVE, &err);
                if (err.ambiguous) {
                    take_live(w, i);
                    x->st = ST_AMBIGUOUS;
                }
            }
        } else {
            w->op[OP_ENUMERATE]++;
            spool_enum_opts eo = {.include_data = 0};
            uint64_t corrupt = 0;
            size_t visited;
            if (spool_enumerate(w->s, &eo, count_corrupt, &corrupt, &visited, &err) == 0)
                w->okc[OP_ENUMERATE]++;
            else
                failed(w, OP_ENUMERATE, &err);
            w->corrupt_inflight += corrupt;
        }
    }
    return NULL;
}

/* All records of a phase, sorted by id, for the enumerate check. */
typedef struct check {
    rec **all;
    size_t n;
    unsigned char *buf;
    uint64_t seen, dup, stray, corrupt, wrong;
    unsigned char *seen_flags;
} check;

static int cmp_rec(const void *a, const void *b)
{
    return memcmp((*(rec *const *)a)->id.b, (*(rec *const *)b)->id.b, SPOOL_ID_BYTES);
}

static int check_entry(void *ud, const spool_entry *e)
{
    check *c = ud;
    c->seen++;
    if (e->corrupt)
        c->corrupt++;
    if (!e->id_valid)
        return 0;
    rec key, *kp = &key;
    key.id = e->id;
    rec **hit = bsearch(&kp, c->all, c->n, sizeof *c->all, cmp_rec);
    if (hit == NULL) {
        c->stray++;
        return 0;
    }
    size_t i = (size_t)(hit - c->all);
    if (c->seen_flags[i]++)
        c->dup++;
    rec *x = *hit;
    if (!(x->st == ST_LIVE || (x->st == ST_AMBIGUOUS && x->present))) {
        c->stray++;
        return 0;
    }
    if (!e->corrupt) {
        derive(c->buf, x->len, x->seed);
        if (e->len != x->len || memcmp(e->data, c->buf, e->len) != 0)
            c->wrong++;
    }
    return 0;
}

static int integrity_ok(const char *dir, char *out, size_t size)
{
    char path[512];
    sqlite3 *db;
    sqlite3_stmt *st;
    int ok_ = 0;
    snprintf(path, sizeof path, "%s/spool.db", dir);
    snprintf(out, size, "cannot run");
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
            ok_ = strcmp(out, "ok") == 0;
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ok_;
}

static void set_params(spool_params *p, const char *dir)
{
    spool_params_init(p);
    p->path = dir;
    p->min_free_space.value = 0;
    p->min_free_inodes.value = 0;
    p->store_deadline = 0.5;
    p->error_latch_duration = 3600;
}

static void run_phase(const char *dir, int handles, double seconds, uint64_t seed)
{
    static worker w[THREADS];
    spool *h[MAX_HANDLES];
    spool_params p;
    spool_error err;
    char label[64];
    snprintf(label, sizeof label, "%d threads on %d handle%s", THREADS, handles, handles > 1 ? "s" : "");
    set_params(&p, dir);
    int opened = 0;
    for (int i = 0; i < handles; i++)
        opened += spool_open(&p, &h[i], &err) == 0;
    ok(opened == handles, "%s: open %d handles on %s (%s)", label, handles, dir, opened == handles ? "ok" : err.message);
    if (opened != handles)
        exit(tap_done());

    memset(w, 0, sizeof w);
    double stop = spool_monotonic() + seconds;
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t].index = t;
        w[t].s = h[t % handles];
        w[t].stop = stop;
        w[t].rng = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)t * 7919 + 1;
        w[t].buf = malloc(MAX_LEN);
        if (w[t].buf == NULL)
            exit(2);
        pthread_create(&th[t], NULL, work, &w[t]);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    for (int i = 0; i < handles; i++)
        spool_close(h[i]);

    /* The check, through a fresh handle. */
    spool *s;
    ok(spool_open(&p, &s, &err) == 0, "%s: the spool reopens after the run", label);
    uint64_t n_live = 0, lost = 0, amb = 0, amb_present = 0, amb_wrong = 0, gone_present = 0,
             failed_present = 0, load_errors = 0;
    size_t total = 0;
    unsigned char *buf = malloc(MAX_LEN);
    for (int t = 0; t < THREADS; t++) {
        total += w[t].n;
        for (size_t i = 0; i < w[t].n; i++) {
            rec *x = &w[t].recs[i];
            void *data = NULL;
            size_t len = 0;
            int rc = -1;
            for (int attempt = 0; attempt < 20; attempt++) {
                rc = spool_load(s, &x->id, &data, &len, &err);
                if (rc == 0 || err.kind == SPOOL_NOT_FOUND)
                    break;
            }
            if (rc != 0 && err.kind != SPOOL_NOT_FOUND)
                load_errors++;
            x->present = rc == 0;
            int exact = 0;
            if (rc == 0) {
                derive(buf, x->len, x->seed);
                exact = len == x->len && memcmp(data, buf, len) == 0;
                spool_free(data);
            }
            char text[SPOOL_ID_TEXT + 1];
            spool_id_format(&x->id, text);
            switch (x->st) {
            case ST_LIVE:
                n_live++;
                if (!exact) {
                    lost++;
                    printf("# acknowledged store %s: %s\n", text, rc == 0 ? "wrong bytes" : err.message);
                }
                break;
            case ST_AMBIGUOUS:
                amb++;
                amb_present += rc == 0;
                if (rc == 0 && !exact)
                    amb_wrong++;
                break;
            case ST_GONE:
                if (rc == 0) {
                    gone_present++;
                    printf("# acknowledged remove of %s undone\n", text);
                }
                break;
            default:
                if (rc == 0) {
                    failed_present++;
                    printf("# store of %s failed (not ambiguous), yet it is there\n", text);
                }
            }
        }
    }
    check c = {0};
    c.all = malloc((total ? total : 1) * sizeof *c.all);
    c.seen_flags = calloc(total ? total : 1, 1);
    c.buf = buf;
    for (int t = 0; t < THREADS; t++)
        for (size_t i = 0; i < w[t].n; i++)
            c.all[c.n++] = &w[t].recs[i];
    qsort(c.all, c.n, sizeof *c.all, cmp_rec);
    spool_enum_opts eo = {.include_data = 1};
    size_t visited = 0;
    int enum_rc = spool_enumerate(s, &eo, check_entry, &c, &visited, &err);
    if (enum_rc != 0)
        printf("# enumerate failed: %s\n", err.message);
    spool_close(s);

    uint64_t ops = 0, oks[OP_COUNT] = {0}, att[OP_COUNT] = {0}, by_kind[SPOOL_KIND_COUNT + 1] = {0};
    uint64_t untyped = 0, unexpected = 0, fails = 0, lost_if = 0, wrong_if = 0, undone_if = 0, corrupt_if = 0;
    for (int t = 0; t < THREADS; t++) {
        for (int o = 0; o < OP_COUNT; o++) {
            ops += w[t].op[o];
            att[o] += w[t].op[o];
            oks[o] += w[t].okc[o];
            for (int k = 0; k <= SPOOL_KIND_COUNT; k++) {
                by_kind[k] += w[t].fail[o][k];
                fails += w[t].fail[o][k];
                if (w[t].fail[o][k] && k != SPOOL_CALLER_DEADLINE_EXCEEDED && k != SPOOL_BACKPRESSURE_TIMEOUT &&
                    k != SPOOL_BUSY && !(o == OP_LOAD && k == SPOOL_NOT_FOUND)) {
                    unexpected += w[t].fail[o][k];
                    printf("# thread %d: %s failed %llu times with %s\n", t, op_names[o],
                           (unsigned long long)w[t].fail[o][k],
                           k < SPOOL_KIND_COUNT && spool_kind_name((spool_kind)k) ? spool_kind_name((spool_kind)k)
                                                                                    : "an out-of-range kind");
                }
            }
        }
        untyped += w[t].untyped;
        lost_if += w[t].lost_inflight;
        wrong_if += w[t].wrong_inflight;
        undone_if += w[t].undone_inflight;
        corrupt_if += w[t].corrupt_inflight;
        for (int i = 0; i < w[t].n_notes; i++)
            printf("# thread %d: %s\n", t, w[t].notes[i]);
    }
    char kinds[512] = "";
    size_t kl = 0;
    for (int k = 1; k <= SPOOL_KIND_COUNT; k++)
        if (by_kind[k] && kl < sizeof kinds)
            kl += (size_t)snprintf(kinds + kl, sizeof kinds - kl, "%s%s=%llu", kl ? " " : "",
                                   k < SPOOL_KIND_COUNT ? spool_kind_name((spool_kind)k) : "out_of_range",
                                   (unsigned long long)by_kind[k]);
    if (kl == 0)
        snprintf(kinds, sizeof kinds, "none");

    ok(lost == 0 && lost_if == 0 && wrong_if == 0 && load_errors == 0,
       "%s x %gs: 0 lost: %llu acknowledged stores not removed load with their exact bytes (%llu lost; in flight: "
       "%llu lost, %llu wrong bytes; %llu load errors)",
       label, seconds, (unsigned long long)n_live, (unsigned long long)lost, (unsigned long long)lost_if,
       (unsigned long long)wrong_if, (unsigned long long)load_errors);
    ok(enum_rc == 0 && c.dup == 0 && c.stray == 0 && c.corrupt == 0 && c.wrong == 0 && c.seen == n_live + amb_present,
       "%s: 0 duplicated: enumerate yields each id once, %llu entries = %llu live + %llu of %llu ambiguous failures "
       "present (%llu twice, %llu stray, %llu corrupt, %llu wrong bytes)",
       label, (unsigned long long)c.seen, (unsigned long long)n_live, (unsigned long long)amb_present,
       (unsigned long long)amb, (unsigned long long)c.dup, (unsigned long long)c.stray, (unsigned long long)c.corrupt,
       (unsigned long long)c.wrong);
    ok(gone_present == 0 && undone_if == 0 && failed_present == 0 && amb_wrong == 0 && corrupt_if == 0,
       "%s: acknowledged removes stay removed (%llu undone), failed stores left nothing (%llu present), ambiguous "
       "ones exact (%llu wrong), no corrupt entry in flight (%llu)",
       label, (unsigned long long)(gone_present + undone_if), (unsigned long long)failed_present,
       (unsigned long long)amb_wrong, (unsigned long long)corrupt_if);
    ok(untyped == 0 && unexpected == 0, "%s: 0 untyped failures (%llu), 0 of unexpected kinds (%llu); %llu failures: %s",
       label, (unsigned long long)untyped, (unsigned long long)unexpected, (unsigned long long)fails, kinds);
    char integrity[256];
    ok(integrity_ok(dir, integrity, sizeof integrity), "%s: PRAGMA integrity_check: %s", label, integrity);
    printf("# concurrency figures (threads, %d handle%s): threads=%d seconds=%g ops=%llu (%.0f/s) store=%llu/%llu "
           "load=%llu/%llu remove=%llu/%llu enumerate=%llu/%llu (ok/attempted) live=%llu ambiguous=%llu failures: %s\n",
           handles, handles > 1 ? "s" : "", THREADS, seconds, (unsigned long long)ops, (double)ops / seconds,
           (unsigned long long)oks[OP_STORE], (unsigned long long)att[OP_STORE], (unsigned long long)oks[OP_LOAD],
           (unsigned long long)att[OP_LOAD], (unsigned long long)oks[OP_REMOVE], (unsigned long long)att[OP_REMOVE],
           (unsigned long long)oks[OP_ENUMERATE], (unsigned long long)att[OP_ENUMERATE], (unsigned long long)n_live,
           (unsigned long long)amb, kinds);
    fflush(stdout);

    for (int t = 0; t < THREADS; t++) {
        free(w[t].recs);
        free(w[t].live);
        free(w[t].gone);
        free(w[t].buf);
    }
    free(c.all);
    free(c.seen_flags);
    free(buf);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3;
    const char *env_seed = getenv("SEED");
    uint64_t seed = env_seed ? strtoull(env_seed, NULL, 10) : (uint64_t)time(NULL);
    const char *tmp = getenv("TMPDIR");
    char root[256], dir[320];
    snprintf(root, sizeof root, "%s/spool-concurrency-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!(seconds > 0) || mkdtemp(root) == NULL)
        return 2;
    printf("# concurrency_threads: %d threads, %g s per phase, seed %llu\n", THREADS, seconds,
           (unsigned long long)seed);
    snprintf(dir, sizeof dir, "%s/one-handle", root);
    run_phase(dir, 1, seconds, seed);
    snprintf(dir, sizeof dir, "%s/four-handles", root);
    run_phase(dir, 4, seconds, seed + 1);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
