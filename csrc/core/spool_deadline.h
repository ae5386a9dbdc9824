/*
 * spool_deadline.h: the effective deadline of one operation, as the core
 * computes it and every backend receives it (in the manner of luasocket's
 * timeouts: each driver call takes it, and the error it answers on expiry
 * says whose deadline it was).  Internal: not part of the public API.
 */
#ifndef SPOOL_DEADLINE_H
#define SPOOL_DEADLINE_H

#include <time.h>

#include "spool_error.h"

typedef struct spool_deadline {
    double at;             /* spool_monotonic() seconds */
    int caller_first;      /* 1: the caller's deadline is the earlier */
    double store_deadline; /* the configured bound, for the message */
} spool_deadline;

/* Seconds on the clock that deadlines use (CLOCK_MONOTONIC).  Never fails. */
double spool_monotonic(void);

/* at (spool_monotonic() seconds) as the absolute CLOCK_MONOTONIC time
 * that pthread's timed waits take, saturated: NaN or negative gives 0,
 * at or past 4e18 (INFINITY too) 4e18 s. */
struct timespec spool_deadline_timespec(double at);

/* The effective deadline: the earlier of the caller's (absolute
 * spool_monotonic() seconds; 0 for none) and now + store_deadline. */
void spool_deadline_make(double caller, double store_deadline, spool_deadline *dl);

/* Sets the error that an expired deadline answers: the caller's or the
 * spool's own, whichever was the effective one.  Returns -1. */
int spool_deadline_error(const spool_deadline *dl, spool_error *err);

#endif
