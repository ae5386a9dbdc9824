/*
 * tsan_clocklock.c: linked only into the ThreadSanitizer builds of the C
 * tests (make tsan).  The TSan runtimes of gcc 12 and clang 14 do not
 * intercept pthread_mutex_clocklock, so a mutex taken through it looks
 * unlocked to TSan and its unlock is reported as "unlock of an unlocked
 * mutex".  This definition, which the static link prefers to glibc's,
 * waits through pthread_mutex_timedlock (which TSan does model) with
 * the same deadline converted to CLOCK_REALTIME.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <time.h>

/* pthread_mutex_clocklock for CLOCK_MONOTONIC and CLOCK_REALTIME
 * deadlines.  Returns 0, ETIMEDOUT, or another error number; EINVAL for
 * another clock. */
int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clock, const struct timespec *abstime)
{
    if (clock == CLOCK_REALTIME)
        return pthread_mutex_timedlock(m, abstime);
    if (clock != CLOCK_MONOTONIC)
        return EINVAL;
    struct timespec mono, real, at;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    long long left = (long long)(abstime->tv_sec - mono.tv_sec) * 1000000000LL + (abstime->tv_nsec - mono.tv_nsec);
    if (left < 0)
        left = 0;
    long long ns = (long long)real.tv_nsec + left % 1000000000LL;
    at.tv_sec = real.tv_sec + (time_t)(left / 1000000000LL) + (time_t)(ns / 1000000000LL);
    at.tv_nsec = (long)(ns % 1000000000LL);
    return pthread_mutex_timedlock(m, &at);
}
