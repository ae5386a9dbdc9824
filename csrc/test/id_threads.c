/*
 * id_threads.c: SpoolId uniqueness from several threads at once, across
 * clock steps, and after fork().
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spool_id.h"
#include "tap.h"

#define THREADS 4
#define PER_THREAD 250000

static spool_id ids[THREADS * PER_THREAD];

static void *worker(void *arg)
{
    spool_id *out = arg;
    for (int i = 0; i < PER_THREAD; i++)
        if (spool_id_new(&out[i]) != 0)
            return (void *)1;
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    return memcmp(a, b, SPOOL_ID_BYTES);
}

static size_t duplicates(spool_id *v, size_t n)
{
    size_t d = 0;
    qsort(v, n, sizeof *v, cmp);
    for (size_t i = 1; i < n; i++)
        d += memcmp(&v[i - 1], &v[i], SPOOL_ID_BYTES) == 0;
    return d;
}

int main(void)
{
    pthread_t th[THREADS];
    int failed = 0;
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, worker, &ids[t * PER_THREAD]);
    for (int t = 0; t < THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        failed += r != NULL;
    }
    ok(failed == 0, "%d threads generated %d ids each", THREADS, PER_THREAD);
    ok(duplicates(ids, THREADS * PER_THREAD) == 0, "all %d ids from %d threads are distinct",
       THREADS * PER_THREAD, THREADS);

    /* The clock stands still, steps back a little, then far. */
    int64_t t0 = spool_id_now_unix_100ns() + 36000000000LL; /* an hour ahead of everything above */
    static spool_id steps[40000];
    size_t n = 0;
    for (int i = 0; i < 10000; i++)
        spool_id_new_at(&steps[n++], t0); /* same tick 10,000 times */
    for (int i = 0; i < 10000; i++)
        spool_id_new_at(&steps[n++], t0 - 5000 + i % 7); /* 0.5 ms back */
    for (int i = 0; i < 10000; i++)
        spool_id_new_at(&steps[n++], t0 - 600000000LL); /* 60 s back */
    for (int i = 0; i < 10000; i++)
        spool_id_new_at(&steps[n++], t0); /* and forward again */
    spool_id far_back = steps[20000];
    double created = spool_id_created(&far_back);
    double expected = (double)(t0 - 600000000LL) / 1e7;
    ok(created >= expected - 0.001 && created <= expected + 0.01,
       "after a 60 s step back, created() follows the clock (%.4f vs %.4f)", created, expected);
    ok(duplicates(steps, n) == 0, "ids stay distinct when the clock stalls and steps back");

    /* A forked child must not repeat the parent's sequence. */
    int fd[2];
    if (pipe(fd) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            spool_id c;
            spool_id_new(&c);
            ssize_t w = write(fd[1], &c, sizeof c);
            _exit(w == sizeof c ? 0 : 1);
        }
        spool_id child, parent;
        ssize_t r = read(fd[0], &child, sizeof child);
        spool_id_new(&parent);
        waitpid(pid, NULL, 0);
        ok(r == sizeof child && memcmp(child.b + 8, parent.b + 8, 8) != 0,
           "a forked child has its own node id and clock sequence");
        close(fd[0]);
        close(fd[1]);
    }

    spool_id a, d1, d2;
    spool_id_new(&a);
    spool_id_derive_cloned_timestamp(&a, &d1);
    spool_id_derive_cloned_timestamp(&a, &d2);
    ok(spool_id_timestamp(&a) == spool_id_timestamp(&d1) && memcmp(&a, &d1, 16) != 0 &&
           memcmp(&d1, &d2, 16) != 0,
       "derived ids keep the timestamp and differ from the source and each other");
    return tap_done();
}
