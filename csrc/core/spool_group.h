/*
 * spool_group.h: group commit, for every backend that can commit several
 * writes together (a driver with apply_batch, spool_backend.h).
 *
 * Each store or remove is a request on a queue; the first caller that
 * finds no leader becomes the leader, takes the queued requests (up to
 * SPOOL_GROUP_MAX of them and about SPOOL_GROUP_BYTES of data), hands
 * them to the backend's apply_batch in one call, and wakes the others
 * with their own results.  Requests that queue up meanwhile form the next
 * batch.  When fewer requests are queued than callers were recently
 * writing at once, and a batch would share its commit (or its sync), the
 * leader first waits a little for the others to join: with more writers
 * than cores, the ones just answered are still on their way back, and a
 * leader that commits at once commits alone.  With no more writers than
 * cores each has one and comes back by itself: the leader then waits only
 * for a batch holding a durable request (its sync is shared).  The wait is bounded by
 * wait_max, half a batch's recent commit time and the earliest deadline
 * queued; it ends as soon as the others have queued, and it never
 * happens for a single writer.  A request still queued when its deadline passes leaves the
 * queue with its deadline's error; once taken it waits for the backend's
 * answer, so that no caller hears "failed" about data that was
 * committed, nor "stored" before it was.  Internal to the core and its
 * backends.
 */
#ifndef SPOOL_GROUP_H
#define SPOOL_GROUP_H

#include <pthread.h>

#include "spool.h"
#include "spool_deadline.h"

#define SPOOL_GROUP_MAX 512
/* A batch stops growing past this many bytes of data: one commit much
 * larger than SQLite's autocheckpoint size (4 MiB by default) would be
 * checkpointed whole at once, and a batch's memory is the callers' own
 * data, held until the last of them is answered. */
#define SPOOL_GROUP_BYTES (2u << 20)

typedef enum { SPOOL_WRITE_STORE, SPOOL_WRITE_REMOVE } spool_write_op;

/* One caller's store or remove, as apply_batch receives it. */
typedef struct spool_write_req {
    spool_write_op op;
    const spool_item *items; /* SPOOL_WRITE_STORE */
    const spool_id *ids;     /* SPOOL_WRITE_REMOVE */
    size_t n;
    int durable;             /* force_sync */
    const spool_deadline *dl;
    /* Answers, set by apply_batch: rc 0, or -1 with err; removed. */
    int rc;
    spool_error err;
    size_t removed;
    /* The group's own. */
    int state;
    struct spool_write_req *next;
} spool_write_req;

/* Applies a batch: each request all or nothing, one request's failure
 * its own where the storage allows; durable = some request asked for
 * force_sync.  Arrives with every rc 0; must set rc (and err) of each. */
typedef void (*spool_apply_fn)(void *st, spool_write_req **reqs, size_t n, int durable);

typedef struct spool_group {
    pthread_mutex_t lock;
    pthread_cond_t cond;   /* on CLOCK_MONOTONIC */
    pthread_cond_t joined; /* a gathering leader's: enough requests queued */
    spool_write_req *head, *tail;
    int leader_active;
    /* The leader's wait for concurrent writers (spool_group_init). */
    double wait_max;     /* seconds; 0: never waits */
    int batch_all;       /* the backend commits a batch as one: worth waiting for any request */
    size_t queued;       /* requests on the queue */
    unsigned inflight;   /* callers inside spool_group_submit */
    double writers;      /* recently concurrent callers: their peak, lowered by waits nobody joined */
    unsigned cpus;       /* CPUs online at init: no more writers than this, nothing durable: no wait */
    double commit_s;     /* a batch's apply, moving average */
    size_t want;         /* while a leader gathers: the queue length it waits for, else 0 */
    unsigned gathers, joins; /* waits begun, and those that got more requests (stats, tests) */
} spool_group;

/* Initialises g.  wait_max: the longest a leader waits for concurrent
 * writers to join its batch (seconds; 0: never); batch_all: the backend
 * commits a batch as one unit, so that any request is cheaper in it
 * (else only durable ones are, sharing a sync).  Returns 0, or -1 when
 * the system refuses a mutex. */
int spool_group_init(spool_group *g, double wait_max, int batch_all);
void spool_group_destroy(spool_group *g);

/* Queues r and returns when it is answered, as the leader of a batch
 * (calling apply(st, ...)) or as a follower woken by one.  Returns r's rc
 * (-1 with *err set).  Never raises; the callers hold no lock of g. */
int spool_group_submit(spool_group *g, spool_write_req *r, spool_apply_fn apply, void *st, spool_error *err);

/* For apply_batch: the pending request (rc 0) with the earliest
 * deadline, or NULL when none is pending. */
spool_write_req *spool_group_earliest(spool_write_req **reqs, size_t n);

/* For apply_batch: fails every pending request whose deadline has passed
 * with its deadline's error.  Returns how many are still pending. */
size_t spool_group_expire(spool_write_req **reqs, size_t n);

/* Fails r with a copy of err. */
void spool_group_fail(spool_write_req *r, const spool_error *err);

/* Fails every request still pending with a copy of err. */
void spool_group_fail_pending(spool_write_req **reqs, size_t n, const spool_error *err);

#endif
