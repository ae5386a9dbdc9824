/*
 * spool.c: the backend-independent spool API.  Everything every backend
 * needs once: fork and shutdown checks, the health gate, effective
 * deadlines, concurrency limits, free-space checks and counters.
 */
#define _GNU_SOURCE
#include "spool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "spool_backend.h"
#include "spool_fork.h"
#include "spool_gate.h"
#include "spool_handle.h"

/* How often a store re-reads the free space of the file system. */
#define SPACE_CHECK_NS 1000000000LL

/* A counting semaphore whose wait honours a monotonic deadline. */
typedef struct limit {
    unsigned max, used; /* max 0 = unlimited */
    pthread_mutex_t lock;
    pthread_cond_t cond;
} limit;

struct spool {
    const spool_backend *be;
    void *st;                /* backend state; NULL once shut down */
    pid_t pid;               /* the process that opened it */
    unsigned fork_gen;       /* its fork generation (spool_fork.h) */
    pthread_rwlock_t life;   /* operations read-lock, shutdown write-locks */
    atomic_int closed;
    atomic_int refs;         /* the handle + open cursors */
    char *path;
    spool_params params;
    spool_gate gate;
    limit stores, loads, removes;
    atomic_llong next_space_check_ns;
    atomic_llong next_background_ns; /* the driver's background slot, polled */
    int64_t background_every_ns;
    char *reserve_path;      /* <dir>/reserve */
    atomic_int reserve_held;
    pthread_mutex_t reserve_lock;
    atomic_ullong n_stores, n_loads, n_removes, n_errors;
    atomic_ullong n_overruns;  /* writes that succeeded after their deadline */
    atomic_ullong n_by_kind[SPOOL_KIND_COUNT];
    spool_close_hook on_close; /* set once, before the handle is shared */
    spool_apply_fn apply;      /* the driver's apply_batch, or NULL */
    spool_group group;         /* its queue, when apply is set */
};

struct spool_cursor {
    spool *s;
    void *cur;
};

void spool_free(void *p)
{
    free(p);
}

void spool_params_init(spool_params *p)
{
    memset(p, 0, sizeof *p);
    p->kind = NULL; /* the kind found in path; SQLite for a new directory */
    p->min_free_space.is_percent = 1;
    p->min_free_space.value = 10;
    p->min_free_inodes.is_percent = 1;
    p->min_free_inodes.value = 10;
    p->store_deadline = 30;
    p->error_latch_duration = 15;
    p->error_unlatch_duration = 300;
    p->allow_error_unlatch = 1;
    p->reserve_bytes = 8 << 20;
    p->commit_wait = 0.0002;
}

/* The disk-full reserve: a preallocated file in the spool directory.
 * When the disk fills up, SQLite refuses even a DELETE or a checkpoint
 * (they append to the WAL); releasing the reserve gives them room, so
 * that the spool can still remove entries and compact.  It is put back
 * when space returns. */
static void reserve_take(spool *s)
{
    if (s->params.reserve_bytes <= 0 || atomic_load(&s->reserve_held))
        return;
    pthread_mutex_lock(&s->reserve_lock);
    if (!atomic_load(&s->reserve_held)) {
        /* Never through a link planted in its place, and only a regular
         * file: its size is set and, on a full disk, cut to zero. */
        int fd = open(s->reserve_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                      s->params.group_access ? 0640 : 0600);
        struct stat st;
        if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
            close(fd);
            fd = -1;
        }
        if (fd >= 0) {
            if (posix_fallocate(fd, 0, (off_t)s->params.reserve_bytes) == 0 && fsync(fd) == 0)
                atomic_store(&s->reserve_held, 1);
            else
                (void)ftruncate(fd, 0); /* no room for it now: try again later */
            close(fd);
        }
    }
    pthread_mutex_unlock(&s->reserve_lock);
}

static void reserve_release(spool *s)
{
    pthread_mutex_lock(&s->reserve_lock);
    if (atomic_exchange(&s->reserve_held, 0))
        unlink(s->reserve_path);
    pthread_mutex_unlock(&s->reserve_lock);
}

static void limit_init(limit *l, unsigned max)
{
    pthread_condattr_t ca;
    l->max = max;
    l->used = 0;
    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
}

static void limit_destroy(limit *l)
{
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
}

/* Takes a slot, waiting no later than `at` (monotonic seconds).
 * Returns 0, or -1 when the deadline passed first. */
static int limit_acquire(limit *l, double at)
{
    if (l->max == 0)
        return 0;
    struct timespec ts = spool_deadline_timespec(at);
    pthread_mutex_lock(&l->lock);
    while (l->used >= l->max) {
        /* any error, not just ETIMEDOUT, ends the wait: an EINVAL
         * returned at once would spin here holding the lock */
        if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) != 0 && l->used >= l->max) {
            pthread_mutex_unlock(&l->lock);
            return -1;
        }
    }
    l->used++;
    pthread_mutex_unlock(&l->lock);
    return 0;
}

static void limit_release(limit *l)
{
    if (l->max == 0)
        return;
    pthread_mutex_lock(&l->lock);
    l->used--;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

/* The effective deadline: min(caller's, now + store_deadline). */
static void make_deadline(spool *s, const spool_write_opts *o, spool_deadline *dl)
{
    spool_deadline_make(o != NULL ? o->deadline : 0, s->params.store_deadline, dl);
}

static int below(const spool_threshold *t, uint64_t avail, uint64_t total)
{
    if (total == 0)
        return 0; /* e.g. btrfs reports no inode count: never "below" */
    if (t->is_percent)
        return (double)avail < (double)total * t->value / 100.0;
    return (double)avail < t->value;
}

/* Re-reads free space and inodes and sets the gate's space flag.
 * Failure to read them is not a reason to refuse mail: it leaves the
 * flag as it was. */
static void check_space(spool *s, spool_health *h)
{
    struct statvfs v;
    if (statvfs(s->path, &v) != 0)
        return;
    uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize, total = (uint64_t)v.f_blocks * v.f_frsize;
    uint64_t iavail = v.f_favail, itotal = v.f_files;
    int low = below(&s->params.min_free_space, avail, total) ||
              below(&s->params.min_free_inodes, iavail, itotal);
    spool_gate_set_space_low(&s->gate, low);
    /* Put the reserve back once there is room for it twice over. */
    if (!low && !atomic_load(&s->reserve_held) && s->params.reserve_bytes > 0 &&
        avail > 2 * (uint64_t)s->params.reserve_bytes)
        reserve_take(s);
    if (h != NULL) {
        h->free_bytes = avail;
        h->total_bytes = total;
        h->free_inodes = iavail;
        h->total_inodes = itotal;
    }
}

/* Polls the driver's background slot when it has one and a poll is
 * due, feeding the answer to the gate. */
static void maybe_poll_background(spool *s)
{
    if (s->be->version < 3 || s->be->background == NULL)
        return;
    long long now = spool_monotonic_ns();
    long long next = atomic_load_explicit(&s->next_background_ns, memory_order_relaxed);
    if (now < next || !atomic_compare_exchange_strong(&s->next_background_ns, &next, now + s->background_every_ns))
        return;
    spool_error trouble;
    spool_error_clear(&trouble);
    spool_gate_record_background(&s->gate, s->be->background(s->st, &trouble) > 0 ? &trouble : NULL);
}

static void maybe_check_space(spool *s)
{
    long long now = spool_monotonic_ns();
    long long next = atomic_load_explicit(&s->next_space_check_ns, memory_order_relaxed);
    if (now < next)
        return;
    if (atomic_compare_exchange_strong(&s->next_space_check_ns, &next, now + SPACE_CHECK_NS))
        check_space(s, NULL);
}

/* Enters an operation: refuses in a forked child and after shutdown.
 * On success the caller holds the life lock and must call leave(). */
static int enter(spool *s, spool_error *err)
{
    spool_error_clear(err);
    if (s == NULL)
        return spool_error_set(err, SPOOL_MISUSE, "spool handle is NULL");
    if (spool_fork_generation() != s->fork_gen)
        return spool_error_set(err, SPOOL_CLOSED,
                               "spool %s was opened by process %ld and cannot be used after fork() "
                               "in process %ld",
                               s->path, (long)s->pid, (long)getpid());
    pthread_rwlock_rdlock(&s->life);
    if (atomic_load(&s->closed)) {
        pthread_rwlock_unlock(&s->life);
        return spool_error_set(err, SPOOL_CLOSED, "spool %s is shut down", s->path);
    }
    return 0;
}

static void leave(spool *s)
{
    pthread_rwlock_unlock(&s->life);
}

/* Whether a write that succeeded finished after its deadline.
 *
 * The deadline bounds the wait for the spool to accept a write (the
 * queue, the write lock); a commit that has begun runs to its end, since
 * abandoning it would leave its outcome unknown.  A disk whose syncs take
 * longer than the deadline is then visible: the write is counted as
 * overrun and fed to the gate as a sustained error would be (and not as
 * a success), so that a slow disk latches it and load shedding starts. */
static int overran(spool *s, const spool_deadline *dl)
{
    double late = spool_monotonic() - dl->at;
    if (late <= 0)
        return 0;
    atomic_fetch_add(&s->n_overruns, 1);
    spool_error slow;
    spool_error_clear(&slow);
    spool_error_set(&slow, SPOOL_BACKPRESSURE_TIMEOUT, "a commit finished %.3fs after its deadline in %s", late,
                    s->path);
    spool_gate_record_error(&s->gate, &slow);
    return 1;
}

/* Counts the outcome and feeds it to the gate.  rc 1: a success that
 * overran its deadline (overran() fed the gate already).  Returns rc. */
static int account(spool *s, int rc, spool_error *err)
{
    if (rc == 1)
        return 1;
    if (rc == 0) {
        spool_gate_record_success(&s->gate);
        return 0;
    }
    if (err->kind > SPOOL_OK && err->kind < SPOOL_KIND_COUNT) {
        atomic_fetch_add(&s->n_by_kind[err->kind], 1);
        if (err->kind != SPOOL_NOT_FOUND && err->kind != SPOOL_MISUSE)
            atomic_fetch_add(&s->n_errors, 1);
    }
    if (err->kind == SPOOL_FULL)
        reserve_release(s);
    spool_gate_record_error(&s->gate, err);
    return rc;
}


/* Backends a C program registered (spool_backend_register), after the
 * built-in ones.  Appended under a mutex; readers see an entry once the
 * count (released after it) covers it. */
#define MAX_REGISTERED 8
static const spool_backend *registered[MAX_REGISTERED];
static atomic_size_t n_registered;
static pthread_mutex_t register_lock = PTHREAD_MUTEX_INITIALIZER;

/* The i-th backend, or NULL past the last. */
static const spool_backend *backend_at(size_t i)
{
    if (i < spool_builtin_backend_count)
        return spool_builtin_backends[i];
    i -= spool_builtin_backend_count;
    return i < atomic_load_explicit(&n_registered, memory_order_acquire) ? registered[i] : NULL;
}

/* The driver's apply_batch: read only from a version 2 table (an older
 * table ends before the slot). */
static spool_apply_fn backend_apply(const spool_backend *b)
{
    return b->version >= 2 ? b->apply_batch : NULL;
}

/* Whether the driver commits a batch as one unit (version 4). */
static int backend_batch_commit(const spool_backend *b)
{
    return b->version >= 4 && b->batch_commit;
}

int spool_backend_order(const spool_backend *b)
{
    return b->version >= 3 ? b->enumerate_order : SPOOL_ORDER_UNKNOWN;
}

/* Whether a driver has every required slot (spool_backend.h). */
static int backend_complete(const spool_backend *b)
{
    return b->version >= 1 && b->kind != NULL && b->kind[0] != '\0' && b->open != NULL &&
           ((b->store != NULL && b->remove != NULL) || backend_apply(b) != NULL) && b->load != NULL &&
           b->cursor_open != NULL && b->cursor_next != NULL && b->cursor_close != NULL && b->stats != NULL &&
           b->close != NULL;
}

/* The backend named kind, or NULL. */
static const spool_backend *backend_named(const char *kind)
{
    const spool_backend *b;
    for (size_t i = 0; (b = backend_at(i)) != NULL; i++)
        if (strcmp(b->kind, kind) == 0)
            return b;
    return NULL;
}

int spool_backend_register(const spool_backend *b, spool_error *err)
{
    spool_error ignored;
    if (err == NULL)
        err = &ignored;
    if (b == NULL || !backend_complete(b))
        return spool_error_set(err, SPOOL_MISUSE, "backend %s: the driver lacks a required method (spool_backend.h)",
                               b && b->kind ? b->kind : "(unnamed)");
    pthread_mutex_lock(&register_lock);
    int rc = 0;
    size_t n = atomic_load_explicit(&n_registered, memory_order_relaxed);
    if (backend_named(b->kind) != NULL)
        rc = spool_error_set(err, SPOOL_MISUSE, "backend %s: a backend of that kind is already registered", b->kind);
    else if (n == MAX_REGISTERED)
        rc = spool_error_set(err, SPOOL_MISUSE, "backend %s: at most %d backends can be registered", b->kind,
                             MAX_REGISTERED);
    else {
        registered[n] = b;
        atomic_store_explicit(&n_registered, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&register_lock);
    return rc;
}

/* The backend for params: the one whose data the directory holds, or
 * the named one, or the default for a new directory.  Returns NULL with
 * err when the kind is unknown or disagrees with what is there. */
static const spool_backend *backend_for(const spool_params *params, spool_error *err)
{
    const spool_backend *named = NULL, *found = NULL, *b;
    if (params->kind != NULL && (named = backend_named(params->kind)) == NULL) {
        char list[128] = "";
        for (size_t i = 0; (b = backend_at(i)) != NULL; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", b->kind);
        spool_error_set(err, SPOOL_MISUSE, "kind: the %s backend is not built into this spool (available: %s)",
                        params->kind, list);
        return NULL;
    }
    for (size_t i = 0; (b = backend_at(i)) != NULL; i++) {
        if (b->probe == NULL || !b->probe(params->path))
            continue;
        if (found != NULL) {
            spool_error_set(err, SPOOL_MISUSE, "%s holds both a %s and a %s spool: refusing to choose",
                            params->path, found->kind, b->kind);
            return NULL;
        }
        found = b;
    }
    if (named != NULL && found != NULL && named != found) {
        spool_error_set(err, SPOOL_MISUSE,
                        "kind: %s holds a %s spool, not a %s one (leave kind out to open what is there)",
                        params->path, found->kind, named->kind);
        return NULL;
    }
    return found ? found : named ? named : spool_builtin_backends[0];
}

/* The tuning struct of backend b for params: NULL when b declares none,
 * else b->params_size bytes (the caller frees them) filled from the rows
 * with b's key.  Refuses a row whose key no backend declares, or a bad
 * value.  Returns 0 or -1 with err. */
static int backend_tuning(const spool_backend *b, const spool_params *params, void **out, spool_error *err)
{
    *out = NULL;
    for (size_t i = 0; i < params->ntuning; i++) {
        const spool_backend *o;
        size_t j = 0;
        while ((o = backend_at(j)) != NULL &&
               (o->options_key == NULL || strcmp(o->options_key, params->tuning[i].key) != 0))
            j++;
        if (o == NULL)
            return spool_error_set(err, SPOOL_MISUSE, "%s.%s: no backend of this build reads %s options",
                                   params->tuning[i].key, params->tuning[i].name, params->tuning[i].key);
    }
    if (b->params_size == 0)
        return 0;
    if ((*out = calloc(1, b->params_size)) == NULL)
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory reading the %s options", b->kind);
    if (spool_options_apply(b, params, *out, err) != 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* A store or remove through the group commit when the driver batches,
 * else straight to its slot.  Returns 0 or -1 with err. */
static int backend_write(spool *s, spool_write_op op, const spool_item *items, const spool_id *ids, size_t n,
                         int force_sync, const spool_deadline *dl, size_t *removed, spool_error *err)
{
    if (s->apply == NULL)
        return op == SPOOL_WRITE_STORE ? s->be->store(s->st, items, n, force_sync, dl, err)
                                       : s->be->remove(s->st, ids, n, force_sync, dl, removed, err);
    spool_write_req r = {.op = op, .items = items, .ids = ids, .n = n, .durable = force_sync, .dl = dl};
    int rc = spool_group_submit(&s->group, &r, s->apply, s->st, err);
    if (rc == 0 && removed != NULL)
        *removed = r.removed;
    return rc;
}

int spool_open(const spool_params *params, spool **out, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    spool_error_clear(err);
    *out = NULL;
    if (params == NULL || params->path == NULL || params->path[0] == '\0')
        return spool_error_set(err, SPOOL_MISUSE, "path: a directory path is required");
    const spool_backend *be = backend_for(params, err);
    if (be == NULL)
        return -1;
    if (!(params->store_deadline > 0) || params->error_latch_duration < 0 ||
        params->error_unlatch_duration < 0)
        return spool_error_set(err, SPOOL_MISUSE,
                               "store_deadline must be > 0 and the latch durations >= 0");
    if (params->allow_error_unlatch && params->error_unlatch_duration == 0)
        return spool_error_set(err, SPOOL_MISUSE,
                               "error_unlatch_duration: 0 with allow_error_unlatch would unlatch the gate at once");
    void *tuning;
    if (backend_tuning(be, params, &tuning, err) != 0)
        return -1;
    spool *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(params->path)) == NULL) {
        free(s);
        free(tuning);
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening spool %s", params->path);
    }
    s->params = *params;
    s->params.path = s->path;
    s->params.ntuning = 0; /* the caller's strings; the backend has its own copy */
    s->params.kind = be->kind;
    s->be = be;
    s->apply = backend_apply(be);
    if (s->apply != NULL && spool_group_init(&s->group, s->params.commit_wait, backend_batch_commit(be)) != 0) {
        free(s->path);
        free(s);
        free(tuning);
        return spool_error_set(err, SPOOL_INTERNAL, "cannot create the write queue of spool %s", params->path);
    }
    int opened = be->open(&s->params, tuning, &s->st, err);
    free(tuning);
    if (opened != 0) {
        if (s->apply != NULL)
            spool_group_destroy(&s->group);
        free(s->path);
        free(s);
        return -1;
    }
    s->params.name = NULL; /* the caller's string: the backend recorded it */
    s->pid = getpid();
    s->fork_gen = spool_fork_generation();
    pthread_rwlock_init(&s->life, NULL);
    atomic_init(&s->closed, 0);
    atomic_init(&s->refs, 1);
    spool_gate_init(&s->gate, params->error_latch_duration, params->error_unlatch_duration,
                    params->allow_error_unlatch);
    pthread_mutex_init(&s->reserve_lock, NULL);
    atomic_init(&s->reserve_held, 0);
    s->reserve_path = malloc(strlen(s->path) + sizeof "/reserve");
    if (s->reserve_path != NULL) {
        sprintf(s->reserve_path, "%s/reserve", s->path);
        struct stat st;
        /* A reserve left by an earlier run counts if it is whole. */
        if (lstat(s->reserve_path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= params->reserve_bytes &&
            params->reserve_bytes > 0)
            atomic_store(&s->reserve_held, 1);
    } else {
        s->params.reserve_bytes = 0;
    }
    limit_init(&s->stores, params->limit_concurrent_stores);
    limit_init(&s->loads, params->limit_concurrent_loads);
    limit_init(&s->removes, params->limit_concurrent_removes);
    check_space(s, NULL);
    reserve_take(s);
    atomic_init(&s->next_space_check_ns, spool_monotonic_ns() + SPACE_CHECK_NS);
    /* KumoMTA checks every 5 s; a shorter latch needs several polls in it. */
    double every = params->error_latch_duration / 3 < 5 ? params->error_latch_duration / 3 : 5;
    s->background_every_ns = (int64_t)((every > 0.01 ? every : 0.01) * 1e9);
    atomic_init(&s->next_background_ns, 0);
    *out = s;
    return 0;
}

int spool_store_many(spool *s, const spool_item *items, size_t n, const spool_write_opts *opts,
                     spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    if (enter(s, err) != 0)
        return -1;
    maybe_check_space(s);
    maybe_poll_background(s);
    int rc;
    spool_deadline dl;
    if (spool_gate_reason(&s->gate) != NULL) {
        rc = spool_error_set(err, SPOOL_UNHEALTHY, NULL);
        atomic_fetch_add(&s->n_by_kind[SPOOL_UNHEALTHY], 1);
        atomic_fetch_add(&s->n_errors, 1);
        leave(s);
        return rc;
    }
    make_deadline(s, opts, &dl);
    if (limit_acquire(&s->stores, dl.at) != 0) {
        rc = spool_deadline_error(&dl, err);
    } else {
        rc = backend_write(s, SPOOL_WRITE_STORE, items, NULL, n, opts != NULL && opts->force_sync, &dl, NULL, err);
        limit_release(&s->stores);
    }
    if (rc == 0) {
        atomic_fetch_add(&s->n_stores, n);
        if (overran(s, &dl))
            rc = 1;
    }
    account(s, rc, err);
    leave(s);
    return rc < 0 ? -1 : 0;
}

int spool_store(spool *s, const spool_id *id, const void *data, size_t len,
                const spool_write_opts *opts, spool_error *err)
{
    spool_item item = {*id, data, len};
    return spool_store_many(s, &item, 1, opts, err);
}

int spool_load_with(spool *s, const spool_id *id, spool_blob_fn fn, void *ud, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    if (enter(s, err) != 0)
        return -1;
    int rc;
    spool_deadline dl;
    make_deadline(s, NULL, &dl);
    if (limit_acquire(&s->loads, dl.at) != 0) {
        rc = spool_deadline_error(&dl, err);
    } else {
        rc = s->be->load(s->st, id, fn, ud, &dl, err);
        limit_release(&s->loads);
    }
    if (rc == 0)
        atomic_fetch_add(&s->n_loads, 1);
    account(s, rc, err);
    leave(s);
    return rc;
}

typedef struct copy_out {
    void *data;
    size_t len;
} copy_out;

/* spool_load's consumer: a malloc'd copy. */
static int copy_blob(void *ud, const void *data, size_t len)
{
    copy_out *o = ud;
    if ((o->data = malloc(len ? len : 1)) == NULL)
        return -1;
    if (len > 0)
        memcpy(o->data, data, len);
    o->len = len;
    return 0;
}

int spool_load(spool *s, const spool_id *id, void **data, size_t *len, spool_error *err)
{
    copy_out o = {NULL, 0};
    *data = NULL;
    *len = 0;
    if (spool_load_with(s, id, copy_blob, &o, err) != 0) {
        free(o.data);
        return -1;
    }
    *data = o.data;
    *len = o.len;
    return 0;
}

int spool_remove_many(spool *s, const spool_id *ids, size_t n, const spool_write_opts *opts,
                      size_t *removed, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    *removed = 0;
    if (enter(s, err) != 0)
        return -1;
    int rc;
    spool_deadline dl;
    make_deadline(s, opts, &dl);
    if (limit_acquire(&s->removes, dl.at) != 0) {
        rc = spool_deadline_error(&dl, err);
    } else {
        rc = backend_write(s, SPOOL_WRITE_REMOVE, NULL, ids, n, opts != NULL && opts->force_sync, &dl, removed, err);
        limit_release(&s->removes);
    }
    if (rc == 0) {
        atomic_fetch_add(&s->n_removes, *removed);
        if (overran(s, &dl))
            rc = 1;
    }
    account(s, rc, err);
    leave(s);
    return rc < 0 ? -1 : 0;
}

int spool_remove(spool *s, const spool_id *id, const spool_write_opts *opts, int *removed,
                 spool_error *err)
{
    size_t n = 0;
    int rc = spool_remove_many(s, id, 1, opts, &n, err);
    *removed = n > 0;
    return rc;
}

void spool_retain(spool *s)
{
    atomic_fetch_add(&s->refs, 1);
}

int spool_try_retain(spool *s)
{
    int r = atomic_load(&s->refs);
    while (r > 0 && !atomic_compare_exchange_weak(&s->refs, &r, r + 1))
        ;
    return r > 0;
}

void spool_set_close_hook(spool *s, spool_close_hook hook)
{
    s->on_close = hook;
}

void spool_release(spool *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->on_close != NULL)
        s->on_close(s);
    spool_shutdown(s, NULL);
    if (s->apply != NULL)
        spool_group_destroy(&s->group);
    limit_destroy(&s->stores);
    limit_destroy(&s->loads);
    limit_destroy(&s->removes);
    spool_gate_destroy(&s->gate);
    pthread_rwlock_destroy(&s->life);
    pthread_mutex_destroy(&s->reserve_lock);
    free(s->reserve_path);
    free(s->path);
    free(s);
}

int spool_cursor_open(spool *s, const spool_enum_opts *opts, spool_cursor **out, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    *out = NULL;
    if (enter(s, err) != 0)
        return -1;
    spool_cursor *c = calloc(1, sizeof *c);
    int rc;
    if (c == NULL) {
        rc = spool_error_set(err, SPOOL_INTERNAL, "out of memory opening a cursor");
    } else if ((rc = s->be->cursor_open(s->st, opts, &c->cur, err)) != 0) {
        free(c);
    } else {
        c->s = s;
        atomic_fetch_add(&s->refs, 1);
        *out = c;
    }
    account(s, rc, err);
    leave(s);
    return rc;
}

int spool_cursor_next(spool_cursor *c, spool_entry *entry, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    if (c->cur == NULL) {
        spool_error_clear(err);
        return spool_error_set(err, SPOOL_CLOSED, "the cursor is closed");
    }
    if (enter(c->s, err) != 0)
        return -1;
    int rc = c->s->be->cursor_next(c->cur, entry, err);
    account(c->s, rc < 0 ? -1 : 0, err);
    leave(c->s);
    return rc;
}

void spool_cursor_close(spool_cursor *c)
{
    if (c == NULL)
        return;
    if (c->cur != NULL)
        c->s->be->cursor_close(c->cur);
    spool_release(c->s);
    free(c);
}

int spool_enumerate(spool *s, const spool_enum_opts *opts, spool_enum_fn fn, void *ud,
                    size_t *visited, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    spool_cursor *c;
    spool_entry e;
    *visited = 0;
    if (spool_cursor_open(s, opts, &c, err) != 0)
        return -1;
    int rc;
    while ((rc = spool_cursor_next(c, &e, err)) == 1) {
        ++*visited;
        int r = fn(ud, &e);
        if (r != 0) {
            rc = r < 0 ? -1 : 0;
            break;
        }
    }
    spool_cursor_close(c);
    return rc < 0 ? -1 : 0;
}

/* The answer of a backend without quarantine (a NULL slot). */
static int no_quarantine(spool *s, spool_error *err)
{
    return spool_error_set(err, SPOOL_MISUSE, "the %s backend keeps no quarantine", s->be->kind);
}

int spool_quarantine(spool *s, const spool_id *id, const char *reason, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    if (enter(s, err) != 0)
        return -1;
    spool_deadline dl;
    make_deadline(s, NULL, &dl);
    int rc = s->be->quarantine == NULL ? no_quarantine(s, err)
                                       : account(s, s->be->quarantine(s->st, id, reason ? reason : "", &dl, err), err);
    leave(s);
    return rc;
}

int spool_restore(spool *s, const spool_id *id, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    if (enter(s, err) != 0)
        return -1;
    spool_deadline dl;
    make_deadline(s, NULL, &dl);
    int rc = s->be->restore == NULL ? no_quarantine(s, err) : account(s, s->be->restore(s->st, id, &dl, err), err);
    leave(s);
    return rc;
}

int spool_purge_quarantined(spool *s, const spool_id *id, int *purged, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    *purged = 0;
    if (enter(s, err) != 0)
        return -1;
    spool_deadline dl;
    make_deadline(s, NULL, &dl);
    int rc = s->be->purge == NULL ? no_quarantine(s, err) : account(s, s->be->purge(s->st, id, &dl, purged, err), err);
    leave(s);
    return rc;
}

int spool_compact(spool *s, spool_compact_stats *stats, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    memset(stats, 0, sizeof *stats);
    stats->bytes_before = stats->bytes_after = -1; /* until the backend measures them */
    if (enter(s, err) != 0)
        return -1;
    /* NULL: nothing to reclaim, and that is a success. */
    int rc = s->be->compact == NULL ? 0 : account(s, s->be->compact(s->st, stats, err), err);
    leave(s);
    return rc;
}

static int verify_entry(void *ud, const spool_entry *e)
{
    spool_verify_report *r = ud;
    r->entries++;
    r->corrupt += e->corrupt;
    return 0;
}

int spool_verify(spool *s, spool_verify_report *r, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    memset(r, 0, sizeof *r);
    if (enter(s, err) != 0)
        return -1;
    int rc = 0;
    if (s->be->check != NULL) {
        rc = s->be->check(s->st, &r->storage_ok, r->storage, sizeof r->storage, err);
    } else {
        r->storage_ok = 1;
        snprintf(r->storage, sizeof r->storage, "ok (the %s backend has no structural check)", s->be->kind);
    }
    if (!r->storage_ok && rc == 0) {
        spool_error found;
        spool_error_clear(&found);
        spool_error_set(&found, SPOOL_CORRUPT, "verify: %s", r->storage);
        spool_gate_record_error(&s->gate, &found);
    }
    leave(s);
    if (rc != 0)
        return account(s, rc, err);
    /* Every entry, every checksum; a far-future start_time includes all. */
    spool_enum_opts o = {.which = SPOOL_ENTRIES, .has_start = 1, .start_100ns = INT64_MAX / 2, .include_data = 0};
    size_t visited;
    if (spool_enumerate(s, &o, verify_entry, r, &visited, err) != 0)
        return -1;
    if (r->corrupt > 0) {
        spool_error found;
        spool_error_clear(&found);
        spool_error_set(&found, SPOOL_CORRUPT, "verify: %lld corrupt entries", (long long)r->corrupt);
        spool_gate_record_error(&s->gate, &found);
    }
    return 0;
}

int spool_cleanup(spool *s, spool_cleanup_stats *stats, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    memset(stats, 0, sizeof *stats);
    if (enter(s, err) != 0)
        return -1;
    check_space(s, NULL);
    maybe_poll_background(s);
    int rc = s->be->cleanup == NULL ? 0 : account(s, s->be->cleanup(s->st, stats, err), err);
    spool_gate_reason(&s->gate); /* lets a due unlatch happen now */
    leave(s);
    return rc;
}

int spool_advise_low_memory(spool *s, int64_t *released, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    *released = 0;
    if (enter(s, err) != 0)
        return -1;
    int rc = s->be->advise_low_memory == NULL ? 0 : s->be->advise_low_memory(s->st, released, err);
    leave(s);
    return rc;
}

/* Whether s was opened by an ancestor of this process (inherited across
 * fork()): unusable here, whatever its state in the parent. */
static int inherited(spool *s)
{
    return spool_fork_generation() != s->fork_gen;
}

const char *spool_unhealthy_reason(spool *s)
{
    if (atomic_load_explicit(&s->closed, memory_order_relaxed) || inherited(s))
        return SPOOL_UNHEALTHY_REASON;
    return spool_gate_reason(&s->gate);
}

const char *spool_closed_reason(spool *s, char *buf, size_t size)
{
    if (inherited(s))
        snprintf(buf, size,
                 "spool %s was opened by process %ld and cannot be used after fork() in process %ld",
                 s->path, (long)s->pid, (long)getpid());
    else if (atomic_load(&s->closed))
        snprintf(buf, size, "spool %s is shut down", s->path);
    else
        return NULL;
    return buf;
}

int spool_get_health(spool *s, spool_health *h, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    memset(h, 0, sizeof *h);
    if (enter(s, err) != 0)
        return -1;
    check_space(s, h);
    maybe_poll_background(s);
    h->reason = spool_gate_reason(&s->gate);
    h->healthy = h->reason == NULL;
    h->error_latched = atomic_load(&s->gate.error_latched);
    h->reserve_held = atomic_load(&s->reserve_held);
    h->space_low = atomic_load(&s->gate.space_low);
    if (h->error_latched)
        h->latched_for = (double)(spool_monotonic_ns() - atomic_load(&s->gate.latched_at_ns)) / 1e9;
    spool_kind k = spool_gate_last_error(&s->gate, h->last_error, sizeof h->last_error);
    h->last_error_kind = k == SPOOL_OK ? NULL : spool_kind_name(k);
    if (s->be->health != NULL)
        s->be->health(s->st, h);
    leave(s);
    return 0;
}

int spool_get_stats(spool *s, spool_stats *out, spool_error *err)
{
    spool_error ignored;
    if (err == NULL) /* spool.h: callers may pass NULL */
        err = &ignored;
    memset(out, 0, sizeof *out);
    out->bytes = -1; /* until the backend measures it */
    if (enter(s, err) != 0)
        return -1;
    int rc = s->be->stats(s->st, out, err);
    out->stores = atomic_load(&s->n_stores);
    out->loads = atomic_load(&s->n_loads);
    out->removes = atomic_load(&s->n_removes);
    out->errors = atomic_load(&s->n_errors);
    out->overruns = atomic_load(&s->n_overruns);
    for (int k = 0; k < SPOOL_KIND_COUNT; k++)
        out->errors_by_kind[k] = atomic_load(&s->n_by_kind[k]);
    leave(s);
    return rc;
}

const char *spool_get_path(spool *s)
{
    return s->path;
}

const char *spool_get_kind(spool *s)
{
    return s->be->kind;
}

const spool_backend *spool_backend_get(size_t i)
{
    return backend_at(i);
}

const char *spool_backend_kind(size_t i)
{
    const spool_backend *b = backend_at(i);
    return b ? b->kind : NULL;
}

int spool_is_closed(spool *s)
{
    return atomic_load(&s->closed) || inherited(s);
}

int spool_shutdown(spool *s, spool_error *err)
{
    spool_error_clear(err);
    if (s == NULL || atomic_load(&s->closed))
        return 0;
    /* Refuse new operations first, then wait for the running ones: with
     * threads entering all the time, waiting first could wait forever
     * (readers keep the rwlock). */
    if (atomic_exchange(&s->closed, 1))
        return 0;
    int leak = spool_fork_generation() != s->fork_gen;
    if (!leak)
        pthread_rwlock_wrlock(&s->life);
    if (s->on_close != NULL)
        s->on_close(s);
    s->be->close(s->st, leak);
    s->st = NULL;
    if (!leak)
        pthread_rwlock_unlock(&s->life);
    return 0;
}

void spool_close(spool *s)
{
    if (s == NULL)
        return;
    spool_shutdown(s, NULL);
    spool_release(s);
}
