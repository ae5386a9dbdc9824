/*
 * spool_fork.h: tells a forked child from its parent without a system
 * call.  A SQLite connection, an id generator's state or a lock must not
 * be used on both sides of a fork(); code that owns one records the
 * generation when it starts and compares on use.
 */
#ifndef SPOOL_FORK_H
#define SPOOL_FORK_H

/* The number of fork()s between the process start and this point of the
 * calling process's history: 0 in the original process, 1 in a child, 2
 * in a grandchild.  Cheap: an atomic load. */
unsigned spool_fork_generation(void);

#endif
