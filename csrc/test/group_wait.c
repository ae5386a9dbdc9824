/*
 * group_wait.c: the group commit's wait for concurrent writers
 * (spool_group.h), on the queue itself with a stand-in apply_batch: a
 * single writer never waits; a backend that does not commit batches as
 * one waits only for durable requests; with several writers the leader
 * does wait and every caller still gets its own answer; a wait never
 * outlasts the earliest deadline queued.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "spool_group.h"
#include "tap.h"

#define THREADS 8
#define PER_THREAD 200

static atomic_long applied, batches;
static double apply_seconds = 0.0002;

/* Stands in for a backend: answers each request with its index in the
 * batch's caller (rc 0), after a commit's worth of time. */
static void fake_apply(void *st, spool_write_req **reqs, size_t n, int durable)
{
    (void)st;
    (void)durable;
    struct timespec ts = {0, (long)(apply_seconds * 1e9)};
    nanosleep(&ts, NULL);
    for (size_t i = 0; i < n; i++)
        reqs[i]->removed = reqs[i]->n; /* its own answer: what it asked for */
    atomic_fetch_add(&applied, (long)n);
    atomic_fetch_add(&batches, 1);
}

typedef struct run {
    spool_group *g;
    int durable;
    long t;
    int wrong;
} run;

static void *writer(void *arg)
{
    run *r = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        spool_deadline dl = {.at = spool_monotonic() + 30};
        spool_id ids[1];
        memset(ids, 0, sizeof ids);
        spool_write_req q = {.op = SPOOL_WRITE_REMOVE, .ids = ids, .n = (size_t)(r->t * 1000 + i + 1),
                             .durable = r->durable, .dl = &dl};
        spool_error err;
        if (spool_group_submit(r->g, &q, fake_apply, NULL, &err) != 0 || q.removed != q.n)
            r->wrong++;
    }
    return NULL;
}

/* Runs `threads` writers on a fresh group; returns how many answers were
 * wrong, and the group's counters through *g. */
static int run_writers(spool_group *g, double wait_max, int batch_all, int threads, int durable)
{
    spool_group_init(g, wait_max, batch_all);
    g->cpus = 1; /* fewer cores than writers, whatever this machine has (cases with more set it) */
    pthread_t th[THREADS];
    run r[THREADS];
    for (int t = 0; t < threads; t++) {
        r[t] = (run){g, durable, t, 0};
        pthread_create(&th[t], NULL, writer, &r[t]);
    }
    int wrong = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        wrong += r[t].wrong;
    }
    return wrong;
}

int main(void)
{
    spool_group g;
    int wrong = run_writers(&g, 0.001, 1, 1, 0);
    ok(wrong == 0 && g.gathers == 0, "a single writer never waits (%u waits, %d wrong answers)", g.gathers, wrong);
    spool_group_destroy(&g);

    wrong = run_writers(&g, 0.001, 0, THREADS, 0);
    ok(wrong == 0 && g.gathers == 0,
       "%d writers on a backend that commits each request alone, none durable: no wait (%u waits)", THREADS,
       g.gathers);
    spool_group_destroy(&g);

    atomic_store(&applied, 0);
    atomic_store(&batches, 0);
    wrong = run_writers(&g, 0.001, 0, THREADS, 1);
    ok(wrong == 0 && g.gathers > 0, "the same with durable requests: the leaders wait (%u waits, %u joined)",
       g.gathers, g.joins);
    ok(atomic_load(&applied) == THREADS * PER_THREAD, "every request was applied once (%ld)", atomic_load(&applied));
    spool_group_destroy(&g);

    atomic_store(&applied, 0);
    atomic_store(&batches, 0);
    wrong = run_writers(&g, 0.001, 1, THREADS, 0);
    ok(wrong == 0, "%d writers, batches committed as one: every caller gets its own answer (%d wrong)", THREADS,
       wrong);
    ok(g.gathers > 0 && g.joins > 0, "the leaders waited, and writers joined them (%u waits, %u joined, %.1f per batch)",
       g.gathers, g.joins, (double)atomic_load(&applied) / (double)atomic_load(&batches));
    ok(g.queued == 0 && g.inflight == 0, "the queue is empty afterwards (%zu queued, %u inside)", g.queued,
       g.inflight);
    spool_group_destroy(&g);

    /* As many writers as cores (2 and 2): each has one and comes back by
     * itself, so a leader waits only for a durable batch (measured: the
     * wait cost 2 writers 21-26 % at 4 KiB, bench/RESULTS.md). */
    for (int durable = 0; durable <= 1; durable++) {
        spool_group_init(&g, 0.001, 1);
        g.cpus = 2;
        g.writers = 2; /* as if 2 had just been writing at once */
        spool_deadline dl2 = {.at = spool_monotonic() + 5};
        spool_id one[1];
        memset(one, 0, sizeof one);
        spool_write_req q2 = {.op = SPOOL_WRITE_REMOVE, .ids = one, .n = 1, .dl = &dl2, .durable = durable};
        spool_error e2;
        int rc2 = spool_group_submit(&g, &q2, fake_apply, NULL, &e2);
        ok(rc2 == 0 && g.gathers == (unsigned)durable,
           "2 writers on 2 cores, %s: the leader %s (%u waits)", durable ? "a durable request" : "nothing durable",
           durable ? "waits for the other" : "does not wait", g.gathers);
        spool_group_destroy(&g);
    }

    /* A leader that expects company waits at most until the earliest
     * deadline queued: with a 1 s bound and a commit as slow, a store
     * with a 20 ms deadline is answered long before 1 s. */
    apply_seconds = 0.002;
    spool_group_init(&g, 1.0, 1);
    g.cpus = 2;
    g.writers = THREADS; /* as if 8 had just been writing at once */
    g.commit_s = 2.0;    /* and commits were slow: half of one is over the bound */
    spool_deadline dl = {.at = spool_monotonic() + 0.02};
    spool_id ids[1];
    memset(ids, 0, sizeof ids);
    spool_write_req q = {.op = SPOOL_WRITE_REMOVE, .ids = ids, .n = 1, .dl = &dl};
    spool_error err;
    double t0 = spool_monotonic();
    unsigned waits = g.gathers;
    int rc = spool_group_submit(&g, &q, fake_apply, NULL, &err);
    double took = spool_monotonic() - t0;
    ok(g.gathers == waits + 1, "alone after 8 writers, the leader waits for them");
    ok(g.writers < THREADS, "nobody came: it expects fewer writers next time (%.0f)", g.writers);
    ok(rc == 0 && took < 0.5, "its wait ends at the request's 20 ms deadline, not at the 1 s bound (%.3f s)", took);
    spool_group_destroy(&g);

    /* a C caller's store_deadline of INFINITY or 1e300 must mean "far
     * away", not a cast that lands in the past */
    struct timespec inf = spool_deadline_timespec(INFINITY), huge = spool_deadline_timespec(1e300);
    struct timespec nan_ts = spool_deadline_timespec(NAN), mid = spool_deadline_timespec(2.25);
    double now = spool_monotonic();
    ok(inf.tv_sec > now + 1e9 && inf.tv_nsec == 0, "an infinite deadline is far in the future (%lld s)",
       (long long)inf.tv_sec);
    ok(huge.tv_sec > now + 1e9 && huge.tv_nsec == 0, "a 1e300 s deadline is far in the future (%lld s)",
       (long long)huge.tv_sec);
    ok(nan_ts.tv_sec == 0 && nan_ts.tv_nsec == 0, "a NaN deadline is already past");
    ok(mid.tv_sec == 2 && mid.tv_nsec == 250000000, "2.25 s is 2 s and 250000000 ns (%lld, %ld)",
       (long long)mid.tv_sec, mid.tv_nsec);
    return tap_done();
}
