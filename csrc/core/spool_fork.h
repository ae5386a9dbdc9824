/*
 * spool_fork.h: tells a forked child from its parent without a system
 * call, and keeps process-wide locks consistent across fork().  A SQLite
 * connection, an id generator's state or a lock must not be used on both
 * sides of a fork(); code that owns one records the generation when it
 * starts and compares on use.
 */
#ifndef SPOOL_FORK_H
#define SPOOL_FORK_H

#include <pthread.h>

/* The number of fork()s between the process start and this point of the
 * calling process's history: 0 in the original process, 1 in a child, 2
 * in a grandchild.  Cheap: an atomic load. */
unsigned spool_fork_generation(void);

/* Asks that `lock(arg)` be called just before every fork() and
 * `unlock(arg)` just after it, in the parent and in the child, so that a
 * child never inherits a process-wide lock held by a thread it does not
 * have.  Locks are taken in the order they were registered and released
 * in the reverse order: register an outer lock before the locks taken
 * while it is held.  At most 16 registrations.  Returns 0, or -1 when
 * the table is full (the lock is then not protected).  Never raises. */
int spool_fork_hold(void (*lock)(void *), void (*unlock)(void *), void *arg);

/* spool_fork_hold() for a pthread mutex. */
int spool_fork_hold_mutex(pthread_mutex_t *m);

#endif
