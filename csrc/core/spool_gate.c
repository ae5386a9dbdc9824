/*
 * spool_gate.c: the health gate's state machine, on atomics so that the
 * hot load-shedding check never waits for an operation.
 */
#include "spool_gate.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t spool_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void spool_gate_init(spool_gate *g, double latch_s, double unlatch_s, int allow_unlatch)
{
    atomic_init(&g->error_latched, 0);
    atomic_init(&g->space_low, 0);
    atomic_init(&g->latched_at_ns, 0);
    atomic_init(&g->last_error_ns, 0);
    atomic_init(&g->streak_start_ns, 0);
    atomic_init(&g->trouble_start_ns, 0);
    g->latch_ns = (int64_t)(latch_s * 1e9);
    g->unlatch_ns = (int64_t)(unlatch_s * 1e9);
    g->allow_unlatch = allow_unlatch;
    pthread_mutex_init(&g->lock, NULL);
    g->last_kind = SPOOL_OK;
    g->last_error[0] = '\0';
}

void spool_gate_destroy(spool_gate *g)
{
    pthread_mutex_destroy(&g->lock);
}

const char *spool_gate_reason(spool_gate *g)
{
    if (atomic_load_explicit(&g->error_latched, memory_order_acquire)) {
        int64_t now = spool_monotonic_ns();
        int64_t last = atomic_load_explicit(&g->last_error_ns, memory_order_acquire);
        int expected = 1;
        if (!g->allow_unlatch || now - last < g->unlatch_ns ||
            !atomic_compare_exchange_strong(&g->error_latched, &expected, 0))
            return SPOOL_UNHEALTHY_REASON;
        atomic_store(&g->streak_start_ns, 0);
        atomic_store(&g->trouble_start_ns, 0);
    }
    if (atomic_load_explicit(&g->space_low, memory_order_acquire))
        return SPOOL_UNHEALTHY_REASON;
    return NULL;
}

/* Errors that mean the storage itself is broken latch at once. */
static int latches_at_once(spool_kind k)
{
    return k == SPOOL_CORRUPT || k == SPOOL_IO || k == SPOOL_FULL;
}

/* Errors that say the spool is struggling; a sustained run latches. */
static int counts_toward_streak(spool_kind k)
{
    return k == SPOOL_BUSY || k == SPOOL_CALLER_DEADLINE_EXCEEDED ||
           k == SPOOL_BACKPRESSURE_TIMEOUT || k == SPOOL_INTERNAL;
}

void spool_gate_record_error(spool_gate *g, const spool_error *err)
{
    spool_kind k = err->kind;
    if (!latches_at_once(k) && !counts_toward_streak(k))
        return;
    int64_t now = spool_monotonic_ns();
    int64_t last = atomic_exchange(&g->last_error_ns, now);
    pthread_mutex_lock(&g->lock);
    g->last_kind = k;
    snprintf(g->last_error, sizeof g->last_error, "%s", err->message);
    pthread_mutex_unlock(&g->lock);
    if (latches_at_once(k)) {
        atomic_store(&g->latched_at_ns, now);
        atomic_store_explicit(&g->error_latched, 1, memory_order_release);
        return;
    }
    /* A run is "sustained" while errors come with no success between
     * them, however far apart: each failure may itself take longer than
     * the latch duration (a store waiting out its deadline). */
    (void)last;
    int64_t start = atomic_load(&g->streak_start_ns);
    if (start == 0) {
        atomic_store(&g->streak_start_ns, now);
        start = now;
    }
    if (now - start >= g->latch_ns && !atomic_load(&g->error_latched)) {
        atomic_store(&g->latched_at_ns, now);
        atomic_store_explicit(&g->error_latched, 1, memory_order_release);
    }
}

void spool_gate_record_success(spool_gate *g)
{
    if (atomic_load_explicit(&g->streak_start_ns, memory_order_relaxed) != 0)
        atomic_store(&g->streak_start_ns, 0);
}

void spool_gate_record_background(spool_gate *g, const spool_error *err)
{
    if (err == NULL) {
        if (atomic_load_explicit(&g->trouble_start_ns, memory_order_relaxed) != 0)
            atomic_store(&g->trouble_start_ns, 0);
        return;
    }
    int64_t now = spool_monotonic_ns();
    atomic_store(&g->last_error_ns, now); /* no unlatch while it goes on */
    pthread_mutex_lock(&g->lock);
    g->last_kind = err->kind;
    snprintf(g->last_error, sizeof g->last_error, "%s", err->message);
    pthread_mutex_unlock(&g->lock);
    long long start = 0;
    if (atomic_compare_exchange_strong(&g->trouble_start_ns, &start, now))
        start = now; /* the run begins; otherwise start holds its first report */
    if (now - start >= g->latch_ns && !atomic_load(&g->error_latched)) {
        atomic_store(&g->latched_at_ns, now);
        atomic_store_explicit(&g->error_latched, 1, memory_order_release);
    }
}

void spool_gate_set_space_low(spool_gate *g, int low)
{
    atomic_store_explicit(&g->space_low, low ? 1 : 0, memory_order_release);
}

spool_kind spool_gate_last_error(spool_gate *g, char *buf, size_t size)
{
    pthread_mutex_lock(&g->lock);
    spool_kind k = g->last_kind;
    snprintf(buf, size, "%s", g->last_error);
    pthread_mutex_unlock(&g->lock);
    return k;
}
