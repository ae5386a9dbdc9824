/*
 * spool_fork.c: a fork generation counter kept by a pthread_atfork child
 * handler (glibc unregisters it if the module is unloaded), and the
 * process-wide locks held across fork().
 */
#include "spool_fork.h"

#include <stdatomic.h>

#define HOLD_MAX 16

typedef struct {
    void (*lock)(void *);
    void (*unlock)(void *);
    void *arg;
} hold;

static atomic_uint generation;
static pthread_once_t once = PTHREAD_ONCE_INIT;
/* Registrations are appended under holds_lock, which the prepare handler
 * takes first: the table cannot change while a fork is under way. */
static pthread_mutex_t holds_lock = PTHREAD_MUTEX_INITIALIZER;
static hold holds[HOLD_MAX];
static int n_holds;

static void before_fork(void)
{
    pthread_mutex_lock(&holds_lock);
    for (int i = 0; i < n_holds; i++)
        holds[i].lock(holds[i].arg);
}

static void release_holds(void)
{
    for (int i = n_holds - 1; i >= 0; i--)
        holds[i].unlock(holds[i].arg);
    pthread_mutex_unlock(&holds_lock);
}

static void in_child(void)
{
    atomic_fetch_add(&generation, 1);
    release_holds();
}

static void install(void)
{
    pthread_atfork(before_fork, release_holds, in_child);
}

unsigned spool_fork_generation(void)
{
    pthread_once(&once, install);
    return atomic_load_explicit(&generation, memory_order_relaxed);
}

int spool_fork_hold(void (*lock)(void *), void (*unlock)(void *), void *arg)
{
    pthread_once(&once, install);
    pthread_mutex_lock(&holds_lock);
    int rc = -1;
    if (n_holds < HOLD_MAX) {
        holds[n_holds++] = (hold){lock, unlock, arg};
        rc = 0;
    }
    pthread_mutex_unlock(&holds_lock);
    return rc;
}

static void mutex_lock(void *m)
{
    pthread_mutex_lock(m);
}

static void mutex_unlock(void *m)
{
    pthread_mutex_unlock(m);
}

int spool_fork_hold_mutex(pthread_mutex_t *m)
{
    return spool_fork_hold(mutex_lock, mutex_unlock, m);
}
