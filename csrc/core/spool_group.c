/*
 * spool_group.c: group commit (spool_group.h).
 */
#include "spool_group.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

enum { REQ_QUEUED, REQ_TAKEN, REQ_DONE };

int spool_group_init(spool_group *g, double wait_max, int batch_all)
{
    g->head = g->tail = NULL;
    g->leader_active = 0;
    g->wait_max = wait_max > 0 ? wait_max : 0;
    g->batch_all = batch_all;
    g->queued = 0;
    g->inflight = 0;
    g->writers = 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    g->cpus = cpus > 0 ? (unsigned)cpus : 1;
    g->commit_s = 0;
    g->want = 0;
    g->gathers = g->joins = 0;
    if (pthread_mutex_init(&g->lock, NULL) != 0)
        return -1;
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    int made = 0;
    if (rc == 0) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        rc = pthread_cond_init(&g->cond, &ca);
        if (rc == 0) {
            made = 1;
            rc = pthread_cond_init(&g->joined, &ca);
        }
        pthread_condattr_destroy(&ca);
    }
    if (rc != 0) {
        if (made)
            pthread_cond_destroy(&g->cond);
        pthread_mutex_destroy(&g->lock);
        return -1;
    }
    return 0;
}

void spool_group_destroy(spool_group *g)
{
    pthread_cond_destroy(&g->joined);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

/* Before the leader takes its batch: waits, at most the bound in
 * spool_group.h, for the recently concurrent writers to queue.  A wait
 * that ends with fewer lowers the estimate to what came (by one at most
 * per wait: a writer between two requests is not gone).  Lock held;
 * released while waiting. */
static void gather(spool_group *g)
{
    size_t want = (size_t)(g->writers + 0.5);
    if (want > SPOOL_GROUP_MAX)
        want = SPOOL_GROUP_MAX;
    if (g->wait_max <= 0 || want <= 1 || g->queued >= want)
        return;
    double until_dl = 0;
    int durable = 0;
    for (spool_write_req *q = g->head; q != NULL; q = q->next) {
        durable |= q->durable;
        if (until_dl == 0 || q->dl->at < until_dl)
            until_dl = q->dl->at;
    }
    if (!durable && (!g->batch_all || want <= g->cpus))
        return;
    double wait = g->commit_s > 0 && g->commit_s / 2 < g->wait_max ? g->commit_s / 2 : g->wait_max;
    double until = spool_monotonic() + wait;
    if (until > until_dl)
        until = until_dl;
    size_t before = g->queued;
    g->want = want;
    g->gathers++;
    struct timespec ts = spool_deadline_timespec(until);
    while (g->queued < want && g->head != NULL && spool_monotonic() < until)
        if (pthread_cond_timedwait(&g->joined, &g->lock, &ts) == ETIMEDOUT)
            break;
    g->want = 0;
    if (g->queued > before)
        g->joins++;
    if (g->queued < want) {
        double lower = g->writers - 1;
        g->writers = lower > (double)g->queued ? lower : (double)g->queued;
        if (g->writers < 1)
            g->writers = 1;
    }
}

/* The data a request brings to a batch, roughly. */
static size_t req_bytes(const spool_write_req *r)
{
    size_t b = 0;
    if (r->op == SPOOL_WRITE_STORE)
        for (size_t i = 0; i < r->n; i++)
            b += r->items[i].len + 64;
    else
        b = r->n * 64;
    return b;
}

void spool_group_fail(spool_write_req *r, const spool_error *err)
{
    r->rc = -1;
    r->err = *err;
}

void spool_group_fail_pending(spool_write_req **reqs, size_t n, const spool_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (reqs[i]->rc == 0)
            spool_group_fail(reqs[i], err);
}

spool_write_req *spool_group_earliest(spool_write_req **reqs, size_t n)
{
    spool_write_req *e = NULL;
    for (size_t i = 0; i < n; i++)
        if (reqs[i]->rc == 0 && (e == NULL || reqs[i]->dl->at < e->dl->at))
            e = reqs[i];
    return e;
}

size_t spool_group_expire(spool_write_req **reqs, size_t n)
{
    double now = spool_monotonic();
    size_t pending = 0;
    for (size_t i = 0; i < n; i++) {
        if (reqs[i]->rc != 0)
            continue;
        if (reqs[i]->dl->at <= now) {
            spool_deadline_error(reqs[i]->dl, &reqs[i]->err);
            reqs[i]->rc = -1;
        } else {
            pending++;
        }
    }
    return pending;
}

/* Takes r off the queue (it is there).  Lock held. */
static void unlink_req(spool_group *g, spool_write_req *r)
{
    spool_write_req **p = &g->head, *prev = NULL;
    while (*p != r) {
        prev = *p;
        p = &(*p)->next;
    }
    *p = r->next;
    if (g->tail == r)
        g->tail = prev;
    g->queued--;
}

int spool_group_submit(spool_group *g, spool_write_req *r, spool_apply_fn apply, void *st, spool_error *err)
{
    r->state = REQ_QUEUED;
    r->rc = 0;
    r->removed = 0;
    r->next = NULL;
    spool_error_clear(&r->err);
    pthread_mutex_lock(&g->lock);
    if (g->tail)
        g->tail->next = r;
    else
        g->head = r;
    g->tail = r;
    g->queued++;
    if (++g->inflight > g->writers)
        g->writers = g->inflight;
    if (g->want != 0 && g->queued >= g->want)
        pthread_cond_signal(&g->joined);
    while (r->state != REQ_DONE) {
        if (!g->leader_active) {
            spool_write_req *batch[SPOOL_GROUP_MAX];
            size_t n = 0, bytes = 0;
            int durable = 0;
            g->leader_active = 1;
            gather(g); /* r stays queued: only its own caller unlinks it */
            while (g->head != NULL && n < SPOOL_GROUP_MAX && (n == 0 || bytes < SPOOL_GROUP_BYTES)) {
                spool_write_req *q = g->head;
                g->head = q->next;
                q->state = REQ_TAKEN;
                batch[n++] = q;
                bytes += req_bytes(q);
                durable |= q->durable;
            }
            g->queued -= n;
            if (g->head == NULL)
                g->tail = NULL;
            pthread_mutex_unlock(&g->lock);
            double t0 = spool_monotonic();
            apply(st, batch, n, durable);
            double took = spool_monotonic() - t0;
            pthread_mutex_lock(&g->lock);
            g->commit_s = g->commit_s > 0 ? 0.8 * g->commit_s + 0.2 * took : took;
            for (size_t i = 0; i < n; i++)
                batch[i]->state = REQ_DONE;
            g->leader_active = 0;
            pthread_cond_broadcast(&g->cond);
            continue;
        }
        if (r->state == REQ_QUEUED) {
            struct timespec ts = spool_deadline_timespec(r->dl->at);
            if (pthread_cond_timedwait(&g->cond, &g->lock, &ts) == ETIMEDOUT && r->state == REQ_QUEUED) {
                /* Still queued at its deadline: leave the queue. */
                unlink_req(g, r);
                spool_deadline_error(r->dl, &r->err);
                r->rc = -1;
                r->state = REQ_DONE;
            }
        } else {
            pthread_cond_wait(&g->cond, &g->lock); /* taken: the backend decides */
        }
    }
    g->inflight--;
    pthread_mutex_unlock(&g->lock);
    if (r->rc != 0 && err != NULL)
        *err = r->err;
    return r->rc;
}
