/*
 * backend_table.c: the driver contract from the outside.  A minimal
 * in-memory backend with only the required slots is registered and used
 * through the public API; its NULL optional slots get the answers
 * spool_backend.h documents; an incomplete driver and a taken kind are
 * refused; the registered kind is listed after the built-in ones.  A
 * version 2 driver with apply_batch instead of store and remove gets its
 * writes in batches from several threads; a version 1 table's slot past
 * its end is never read.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "spool_backend.h"
#include "tap.h"

#define SLOTS 16

typedef struct mem {
    pthread_mutex_t lock;
    int used[SLOTS];
    spool_id ids[SLOTS];
    char *data[SLOTS];
    size_t len[SLOTS];
} mem;

typedef struct mem_cursor {
    mem *m;
    int next;
} mem_cursor;

static int find(mem *m, const spool_id *id)
{
    for (int i = 0; i < SLOTS; i++)
        if (m->used[i] && memcmp(&m->ids[i], id, sizeof *id) == 0)
            return i;
    return -1;
}

/* The "Tuned" variant's own parameters, as its open received them. */
typedef struct tuned_params {
    int count;
    int64_t bytes;
    int pow2;
    int flag;
    const char *label;
    int color;
    double period;
} tuned_params;
static tuned_params tuned_seen;
static int tuned_opens;

static int mem_open(const spool_params *p, const void *tuning, void **state, spool_error *err)
{
    (void)p;
    (void)err;
    if (tuning != NULL) {
        tuned_seen = *(const tuned_params *)tuning;
        tuned_opens++;
    }
    mem *m = calloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    *state = m;
    return 0;
}

static int mem_store(void *st, const spool_item *items, size_t n, int force_sync, const spool_deadline *dl,
                     spool_error *err)
{
    (void)force_sync;
    (void)dl;
    mem *m = st;
    pthread_mutex_lock(&m->lock);
    for (size_t k = 0; k < n; k++) {
        int i = find(m, &items[k].id);
        for (int j = 0; i < 0 && j < SLOTS; j++)
            if (!m->used[j])
                i = j;
        if (i < 0) {
            pthread_mutex_unlock(&m->lock);
            return spool_error_set(err, SPOOL_FULL, "the memory backend is full");
        }
        free(m->data[i]);
        m->data[i] = malloc(items[k].len ? items[k].len : 1);
        memcpy(m->data[i], items[k].data, items[k].len);
        m->len[i] = items[k].len;
        m->ids[i] = items[k].id;
        m->used[i] = 1;
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static int mem_load(void *st, const spool_id *id, spool_blob_fn fn, void *ud, const spool_deadline *dl,
                    spool_error *err)
{
    (void)dl;
    mem *m = st;
    pthread_mutex_lock(&m->lock);
    int i = find(m, id), rc = 0;
    if (i < 0)
        rc = spool_error_set(err, SPOOL_NOT_FOUND, "no such entry");
    else if (fn(ud, m->data[i], m->len[i]) != 0)
        rc = spool_error_set(err, SPOOL_INTERNAL, "out of memory");
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_remove(void *st, const spool_id *ids, size_t n, int force_sync, const spool_deadline *dl,
                      size_t *removed, spool_error *err)
{
    (void)force_sync;
    (void)dl;
    (void)err;
    mem *m = st;
    *removed = 0;
    pthread_mutex_lock(&m->lock);
    for (size_t k = 0; k < n; k++) {
        int i = find(m, &ids[k]);
        if (i >= 0) {
            m->used[i] = 0;
            free(m->data[i]);
            m->data[i] = NULL;
            ++*removed;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return 0;
}

static int mem_cursor_open(void *st, const spool_enum_opts *o, void **cur, spool_error *err)
{
    (void)o;
    (void)err;
    mem_cursor *c = calloc(1, sizeof *c);
    c->m = st;
    *cur = c;
    return 0;
}

static int mem_cursor_next(void *cur, spool_entry *e, spool_error *err)
{
    (void)err;
    mem_cursor *c = cur;
    while (c->next < SLOTS && !c->m->used[c->next])
        c->next++;
    if (c->next == SLOTS)
        return 0;
    memset(e, 0, sizeof *e);
    e->id = c->m->ids[c->next];
    e->id_valid = 1;
    e->data = c->m->data[c->next];
    e->len = c->m->len[c->next];
    c->next++;
    return 1;
}

static void mem_cursor_close(void *cur)
{
    free(cur);
}

static int mem_stats(void *st, spool_stats *out, spool_error *err)
{
    (void)err;
    mem *m = st;
    out->entries = 0;
    for (int i = 0; i < SLOTS; i++)
        out->entries += m->used[i];
    return 0;
}

static void mem_close(void *st, int leak)
{
    (void)leak;
    mem *m = st;
    for (int i = 0; i < SLOTS; i++)
        free(m->data[i]);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Only the required slots: every optional one is NULL. */
static const spool_backend memory_backend = {
    .version = SPOOL_BACKEND_VERSION,
    .kind = "Memory",
    .open = mem_open,
    .store = mem_store,
    .load = mem_load,
    .remove = mem_remove,
    .cursor_open = mem_cursor_open,
    .cursor_next = mem_cursor_next,
    .cursor_close = mem_cursor_close,
    .stats = mem_stats,
    .close = mem_close,
};

/* ------------------------------------------- the batching variant */

static atomic_int batches, requests, largest;

static void mem_apply(void *st, spool_write_req **reqs, size_t n, int durable)
{
    (void)durable;
    struct timespec pause = {0, 5 * 1000 * 1000};
    nanosleep(&pause, NULL); /* lets the other threads queue behind */
    atomic_fetch_add(&batches, 1);
    atomic_fetch_add(&requests, (int)n);
    if ((int)n > atomic_load(&largest))
        atomic_store(&largest, (int)n);
    for (size_t i = 0; i < n; i++) {
        spool_write_req *r = reqs[i];
        r->rc = r->op == SPOOL_WRITE_STORE ? mem_store(st, r->items, r->n, r->durable, r->dl, &r->err)
                                           : mem_remove(st, r->ids, r->n, r->durable, r->dl, &r->removed, &r->err);
    }
}

static void never_called(void *st, spool_write_req **reqs, size_t n, int durable)
{
    (void)st;
    (void)reqs;
    (void)n;
    (void)durable;
    abort();
}

static spool *shared;
static spool_id thread_ids[4][3];

static void *store_three(void *arg)
{
    long t = (long)arg;
    for (int i = 0; i < 3; i++) {
        spool_id_new(&thread_ids[t][i]);
        if (spool_store(shared, &thread_ids[t][i], "b", 1, NULL, NULL) != 0)
            abort();
    }
    return NULL;
}

/* Opens kind in dir. */
static spool *open_kind(const char *dir, const char *kind)
{
    spool_params p;
    spool_params_init(&p);
    p.path = dir;
    p.kind = kind;
    p.reserve_bytes = 0;
    spool *s = NULL;
    spool_error err;
    return spool_open(&p, &s, &err) == 0 ? s : NULL;
}

static void batching(const char *dir)
{
    spool_error err;
    spool_backend batched = memory_backend;
    batched.kind = "Batched";
    batched.store = NULL;
    batched.remove = NULL;
    batched.apply_batch = mem_apply;
    spool_backend neither = batched;
    neither.kind = "Neither";
    neither.apply_batch = NULL;
    ok(spool_backend_register(&neither, &err) != 0 && err.kind == SPOOL_MISUSE,
       "a driver with neither store and remove nor apply_batch is refused");
    static spool_backend batched_static, v1_static;
    batched_static = batched;
    ok(spool_backend_register(&batched_static, &err) == 0, "a driver with apply_batch instead of store and remove registers");
    shared = open_kind(dir, "Batched");
    pthread_t th[4];
    for (long t = 0; t < 4; t++)
        pthread_create(&th[t], NULL, store_three, (void *)t);
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    int found = 0;
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 3; i++) {
            void *d;
            size_t len;
            if (spool_load(shared, &thread_ids[t][i], &d, &len, &err) == 0) {
                found++;
                spool_free(d);
            }
        }
    ok(found == 12 && atomic_load(&requests) == 12, "12 stores from 4 threads go through apply_batch (%d loaded)", found);
    ok(atomic_load(&batches) < 12 && atomic_load(&largest) > 1,
       "the core batches them: %d calls, up to %d requests in one", atomic_load(&batches), atomic_load(&largest));
    size_t removed = 0;
    ok(spool_remove_many(shared, thread_ids[0], 3, NULL, &removed, &err) == 0 && removed == 3,
       "a remove through apply_batch reports what it removed (%zu)", removed);
    spool_close(shared);

    v1_static = memory_backend;
    v1_static.kind = "VersionOne";
    v1_static.version = 1;
    v1_static.apply_batch = never_called; /* past a version 1 table's end: must not be read */
    v1_static.enumerate_order = SPOOL_ORDER_CREATED; /* likewise */
    ok(spool_backend_register(&v1_static, &err) == 0, "a version 1 driver registers");
    ok(spool_backend_order(&v1_static) == SPOOL_ORDER_UNKNOWN, "it promises no enumerate order (a version 3 slot)");
    ok(spool_backend_order(spool_backend_get(0)) == SPOOL_ORDER_CREATED &&
           spool_backend_order(spool_backend_get(1)) == SPOOL_ORDER_ID_BYTES,
       "SQLite enumerates by creation time, LocalDisk by id bytes, as their tables say");
    spool *s = open_kind(dir, "VersionOne");
    spool_id id;
    spool_id_new(&id);
    ok(s != NULL && spool_store(s, &id, "x", 1, NULL, &err) == 0, "its stores go to its store slot, not past its end");
    spool_close(s);
}

#define TP(f) offsetof(tuned_params, f)
static const spool_option tuned_options[] = {
    {"count", SPOOL_OPT_INT, 1, 100, 0, "10", TP(count), "a count", NULL},
    {"bytes", SPOOL_OPT_INT64, 0, 1LL << 40, -1, "0", TP(bytes), "bytes; 0 means none (stored as -1)", NULL},
    {"pow2", SPOOL_OPT_POW2, 512, 65536, 0, "4096", TP(pow2), "a power of two", NULL},
    {"flag", SPOOL_OPT_BOOL, 0, 1, 0, "false", TP(flag), "a flag", NULL},
    {"label", SPOOL_OPT_STRING, 0, 0, 0, "none", TP(label), "a name", NULL},
    {"color", SPOOL_OPT_ENUM, 0, 0, 0, "Red", TP(color), "a color", "Red,Green,Blue"},
    {"period", SPOOL_OPT_DURATION, 0, 3600, 0, "1 minute", TP(period), "a duration", NULL},
    {NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL},
};

/* Opens "Tuned" in dir with p's tuning; 0 or -1 with err. */
static int open_tuned(spool_params *p, const char *dir, spool_error *err)
{
    spool *s = NULL;
    p->path = dir;
    p->kind = "Tuned";
    p->reserve_bytes = 0;
    int rc = spool_open(p, &s, err);
    if (s != NULL)
        spool_close(s);
    return rc;
}

/* The core reads a backend's options by its table into its own struct. */
static void tuning(const char *dir)
{
    static spool_backend tuned;
    spool_error err;
    tuned = memory_backend;
    tuned.kind = "Tuned";
    tuned.options_key = "tuned";
    tuned.options = tuned_options;
    tuned.params_size = sizeof(tuned_params);
    ok(spool_backend_register(&tuned, &err) == 0, "a driver with options registers");

    spool_params p;
    spool_params_init(&p);
    ok(open_tuned(&p, dir, &err) == 0 && tuned_opens == 1 && tuned_seen.count == 0 && tuned_seen.label == NULL,
       "no tuning: the driver gets its struct zeroed (0 = its defaults)");
    char label[] = "mine";
    spool_params_init(&p);
    int set = spool_params_tune_number(&p, "tuned", "count", 7, &err) == 0 &&
              spool_params_tune_number(&p, "tuned", "count", 42, &err) == 0 &&
              spool_params_tune_number(&p, "tuned", "bytes", 0, &err) == 0 &&
              spool_params_tune_number(&p, "tuned", "pow2", 8192, &err) == 0 &&
              spool_params_tune_number(&p, "tuned", "flag", 1, &err) == 0 &&
              spool_params_tune_text(&p, "tuned", "label", label, &err) == 0 &&
              spool_params_tune_text(&p, "tuned", "color", "blue", &err) == 0 &&
              spool_params_tune_number(&p, "tuned", "period", 1.5, &err) == 0 &&
              spool_params_tune_number(&p, "sqlite", "cache_kib", 4096, &err) == 0;
    ok(set && p.ntuning == 8, "tuning rows are recorded, a second value of an option replaces the first");
    ok(open_tuned(&p, dir, &err) == 0 && tuned_seen.count == 42 && tuned_seen.bytes == -1 &&
           tuned_seen.pow2 == 8192 && tuned_seen.flag == 1 && tuned_seen.label == label && tuned_seen.color == 3 &&
           tuned_seen.period == 1.5,
       "each row lands in its field by the table: integers, zero_is, booleans, text, enums (any case), durations");

    struct {
        const char *name;
        double number;
        const char *text;
        const char *says;
    } bad[] = {
        {"count", 0, NULL, "tuned.count: expected an integer in [1, 100], got 0"},
        {"count", 2.5, NULL, "tuned.count: expected an integer in [1, 100], got 2.5"},
        {"count", 0, "ten", "tuned.count: expected an integer in [1, 100], got \"ten\""},
        {"pow2", 1000, NULL, "tuned.pow2: expected a power of two in [512, 65536], got 1000"},
        {"flag", 2, NULL, "tuned.flag: expected a boolean (0 or 1), got 2"},
        {"color", 0, "Purple", "tuned.color: expected one of Red,Green,Blue, got \"Purple\""},
        {"period", 7200, NULL, "tuned.period: expected seconds in [0, 3600], got 7200"},
        {"label", 3, NULL, "tuned.label: expected a string, got 3"},
        {"colour", 1, NULL, "tuned.colour: the Tuned backend has no such option (known: count, bytes, pow2, flag, "
                            "label, color, period)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spool_params_init(&p);
        if (bad[i].text != NULL)
            spool_params_tune_text(&p, "tuned", bad[i].name, bad[i].text, &err);
        else
            spool_params_tune_number(&p, "tuned", bad[i].name, bad[i].number, &err);
        int opens = tuned_opens;
        ok(open_tuned(&p, dir, &err) != 0 && err.kind == SPOOL_MISUSE && strcmp(err.message, bad[i].says) == 0 &&
               tuned_opens == opens,
           "refused before the driver opens: %s", err.message);
    }
    spool_params_init(&p);
    spool_params_tune_number(&p, "nobody", "x", 1, &err);
    ok(open_tuned(&p, dir, &err) != 0 && strstr(err.message, "nobody.x: no backend of this build reads nobody") != NULL,
       "a table no backend declares is refused (%s)", err.message);
    spool_params_init(&p);
    ok(spool_params_tune_number(&p, "", "x", 1, &err) != 0 && err.kind == SPOOL_MISUSE,
       "an empty key is refused when set");
    ok(spool_params_tune_text(&p, "tuned", "label", NULL, &err) != 0 && err.kind == SPOOL_MISUSE,
       "a NULL text is refused when set");
    char names[SPOOL_TUNING_MAX + 1][16];
    int filled = 1;
    for (int i = 0; i < SPOOL_TUNING_MAX; i++) {
        snprintf(names[i], sizeof names[i], "o%d", i);
        filled = filled && spool_params_tune_number(&p, "tuned", names[i], 1, &err) == 0;
    }
    ok(filled && spool_params_tune_number(&p, "tuned", "one_more", 1, &err) != 0 &&
           strstr(err.message, "at most 32 tuning options") != NULL,
       "past SPOOL_TUNING_MAX rows: misuse, naming the limit");
}

/* The "Troubled" variant's background slot: trouble while `troubled`. */
static atomic_int troubled, polls;
static int mem_background(void *st, spool_error *err)
{
    (void)st;
    atomic_fetch_add(&polls, 1);
    if (!atomic_load(&troubled))
        return 0;
    spool_error_set(err, SPOOL_IO, "the test's background work fails");
    return 1;
}

static void pause_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Stores (replaces) one entry; 0 or the error's kind. */
static int store_one(spool *s)
{
    static spool_id id;
    static int made;
    spool_error err;
    if (!made++)
        spool_id_new(&id);
    return spool_store(s, &id, "x", 1, NULL, &err) == 0 ? 0 : (int)err.kind;
}

/* Background trouble reported by the driver latches the gate once it has
 * lasted error_latch_duration, whatever the foreground writes do. */
static void background(const char *dir)
{
    static spool_backend troubled_be, old_be;
    spool_error err;
    troubled_be = memory_backend;
    troubled_be.kind = "Troubled";
    troubled_be.background = mem_background;
    ok(spool_backend_register(&troubled_be, &err) == 0, "a driver with a background slot registers");
    spool_params p;
    spool_params_init(&p);
    p.path = dir;
    p.kind = "Troubled";
    p.reserve_bytes = 0;
    p.error_latch_duration = 0.3; /* polls every 0.1 s */
    p.error_unlatch_duration = 0.4;
    spool *s = NULL;
    ok(spool_open(&p, &s, &err) == 0, "it opens");
    int failed = 0;
    for (int i = 0; i < 10; i++) {
        failed += store_one(s) != 0;
        pause_s(0.05);
    }
    ok(failed == 0 && atomic_load(&polls) >= 2 && spool_unhealthy_reason(s) == NULL,
       "no trouble: stores go on, polled %d times, the gate stays open", atomic_load(&polls));

    atomic_store(&troubled, 1);
    double t0 = spool_monotonic(), latched_after = -1;
    while (spool_monotonic() - t0 < 3) {
        if (store_one(s) == SPOOL_UNHEALTHY) {
            latched_after = spool_monotonic() - t0;
            break;
        }
        pause_s(0.02);
    }
    ok(latched_after >= 0.3 && latched_after < 1.5, "sustained trouble latches the gate after the latch duration, "
       "though every store until then succeeded (%.2fs)", latched_after);
    spool_health h;
    ok(spool_get_health(s, &h, &err) == 0 && h.error_latched && strstr(h.last_error, "background work fails") != NULL,
       "health names the trouble: %s", h.last_error);
    pause_s(0.6);
    ok(store_one(s) == SPOOL_UNHEALTHY, "while the trouble goes on, the gate does not unlatch");
    atomic_store(&troubled, 0);
    pause_s(0.15);
    store_one(s); /* a poll that finds no new trouble */
    pause_s(0.5);
    ok(store_one(s) == 0, "once it stopped, the gate unlatches after error_unlatch_duration");

    /* Trouble that comes and goes in runs shorter than the latch. */
    int kinds = 0;
    for (int round = 0; round < 4; round++) {
        atomic_store(&troubled, 1);
        for (int i = 0; i < 3; i++) {
            kinds |= store_one(s);
            pause_s(0.03);
        }
        atomic_store(&troubled, 0);
        for (int i = 0; i < 5; i++) {
            kinds |= store_one(s);
            pause_s(0.03);
        }
    }
    ok(kinds == 0, "runs of trouble shorter than the latch duration never latch it");
    spool_close(s);

    old_be = troubled_be;
    old_be.kind = "TroubledV2";
    old_be.version = 2; /* `background` lies past a version 2 table's end */
    ok(spool_backend_register(&old_be, &err) == 0, "a version 2 driver registers");
    p.kind = "TroubledV2";
    atomic_store(&troubled, 1);
    int before = atomic_load(&polls);
    ok(spool_open(&p, &s, &err) == 0, "it opens");
    for (int i = 0; i < 10; i++) {
        store_one(s);
        pause_s(0.05);
    }
    ok(atomic_load(&polls) == before && spool_unhealthy_reason(s) == NULL, "its background slot is never read");
    atomic_store(&troubled, 0);
    spool_close(s);
}

int main(void)
{
    spool_error err;
    spool_backend incomplete = memory_backend;
    incomplete.kind = "Incomplete";
    incomplete.load = NULL;
    ok(spool_backend_register(&incomplete, &err) != 0 && err.kind == SPOOL_MISUSE &&
           strstr(err.message, "lacks a required method") != NULL,
       "a driver without a required slot is refused (%s)", err.message);
    ok(spool_backend_register(&memory_backend, &err) == 0, "a complete driver registers");
    ok(spool_backend_register(&memory_backend, &err) != 0 && strstr(err.message, "already registered") != NULL,
       "a kind is registered once (%s)", err.message);
    int listed = 0;
    for (size_t i = 0; spool_backend_kind(i) != NULL; i++)
        listed += strcmp(spool_backend_kind(i), "Memory") == 0 && i >= 2;
    ok(listed == 1 && strcmp(spool_backend_kind(0), "SQLite") == 0,
       "the registered kind is listed after the built-in ones; SQLite stays the default");

    char dir[] = "/tmp/spool-backend-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 2;
    spool_params p;
    spool_params_init(&p);
    p.path = dir;
    p.kind = "Memory";
    p.reserve_bytes = 0;
    spool *s = NULL;
    ok(spool_open(&p, &s, &err) == 0 && strcmp(spool_get_kind(s), "Memory") == 0, "a spool opens by that kind");
    spool_id id;
    spool_id_new(&id);
    void *data = NULL;
    size_t len = 0;
    ok(spool_store(s, &id, "bytes", 5, NULL, &err) == 0 && spool_load(s, &id, &data, &len, &err) == 0 && len == 5 &&
           memcmp(data, "bytes", 5) == 0,
       "store and load go through the driver");
    spool_free(data);

    spool_compact_stats cs;
    ok(spool_compact(s, &cs, &err) == 0 && cs.backend.n == 0 && cs.steps == 0, "no compact slot: success, nothing reclaimed");
    spool_cleanup_stats cl;
    ok(spool_cleanup(s, &cl, &err) == 0, "no cleanup slot: success");
    int64_t released = -1;
    ok(spool_advise_low_memory(s, &released, &err) == 0 && released == 0,
       "no advise_low_memory slot: 0 bytes released");
    ok(spool_quarantine(s, &id, "why", &err) != 0 && err.kind == SPOOL_MISUSE &&
           strstr(err.message, "Memory backend keeps no quarantine") != NULL,
       "no quarantine slot: misuse, naming the backend (%s)", err.message);
    int purged = 1;
    ok(spool_restore(s, &id, &err) != 0 && err.kind == SPOOL_MISUSE &&
           spool_purge_quarantined(s, &id, &purged, &err) != 0 && err.kind == SPOOL_MISUSE,
       "no restore or purge either");
    spool_verify_report r;
    ok(spool_verify(s, &r, &err) == 0 && r.storage_ok && strstr(r.storage, "no structural check") != NULL &&
           r.entries == 1 && r.corrupt == 0,
       "no check slot: verify's structural part says so, and every entry is still read (%s)", r.storage);
    spool_health h;
    ok(spool_get_health(s, &h, &err) == 0 && h.healthy, "no health slot: the core's health alone");
    spool_close(s);
    batching(dir);

    p.kind = "Nothing";
    ok(spool_open(&p, &s, &err) != 0 && strstr(err.message, "available: SQLite, LocalDisk") != NULL &&
           strstr(err.message, "Memory, Batched, VersionOne)") != NULL, /* RocksDB between, when built */
       "an unknown kind lists every available one (%s)", err.message);
    tuning(dir);
    background(dir);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
