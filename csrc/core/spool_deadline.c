/*
 * spool_deadline.c: effective deadlines (spool_deadline.h).
 */
#include "spool_deadline.h"

#include <math.h>
#include <time.h>

double spool_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timespec spool_deadline_timespec(double at)
{
    struct timespec ts;
    /* saturate: a C caller may give store_deadline = INFINITY or 1e300,
     * whose cast to time_t is undefined (and came out in the past) */
    if (!(at >= 0)) {
        ts.tv_sec = 0;
        ts.tv_nsec = 0;
        return ts;
    }
    if (at >= 4e18) {
        ts.tv_sec = (time_t)4000000000000000000LL;
        ts.tv_nsec = 0;
        return ts;
    }
    double whole = floor(at);
    ts.tv_sec = (time_t)whole;
    ts.tv_nsec = (long)((at - whole) * 1e9);
    if (ts.tv_nsec > 999999999)
        ts.tv_nsec = 999999999;
    return ts;
}

void spool_deadline_make(double caller, double store_deadline, spool_deadline *dl)
{
    double own = spool_monotonic() + store_deadline;
    dl->store_deadline = store_deadline;
    if (caller > 0 && caller <= own) {
        dl->at = caller;
        dl->caller_first = 1;
    } else {
        dl->at = own;
        dl->caller_first = 0;
    }
}

int spool_deadline_error(const spool_deadline *dl, spool_error *err)
{
    if (dl->caller_first)
        return spool_error_set(err, SPOOL_CALLER_DEADLINE_EXCEEDED, NULL);
    return spool_error_backpressure(err, dl->store_deadline);
}
