/*
 * localdisk_threads.c: one LocalDisk handle used by 8 threads that store
 * and remove at once, with cleanup() pruning beside them.  Removes prune
 * the directories they empty while other stores make directories in the
 * same branches: no store may fail for it, and every acknowledged store
 * that was not removed is there with its bytes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "tap.h"

#define THREADS 8

static spool *S;
static int per_thread;
static atomic_int failures, stop;
static spool_id *ids[THREADS];
static int *kept[THREADS];
static char first_error[SPOOL_ERROR_MESSAGE_MAX + 16];

static void *worker(void *arg)
{
    long t = (long)arg;
    static _Thread_local char buf[4096];
    for (int i = 0; i < per_thread; i++) {
        spool_error err;
        spool_id_new(&ids[t][i]);
        memset(buf, 'x', sizeof buf);
        int n = snprintf(buf, 64, "thread %ld entry %d", t, i);
        buf[n] = 'x';
        spool_write_opts o = {.force_sync = i % 8 == 0};
        if (spool_store(S, &ids[t][i], buf, sizeof buf, &o, &err) != 0) {
            if (atomic_fetch_add(&failures, 1) == 0)
                snprintf(first_error, sizeof first_error, "%s", err.message);
            continue;
        }
        kept[t][i] = 1;
        if (i % 16 != 0) { /* most: leaf directories empty often */
            int was = 0;
            if (spool_remove(S, &ids[t][i], NULL, &was, &err) != 0 || !was) {
                if (atomic_fetch_add(&failures, 1) == 0)
                    snprintf(first_error, sizeof first_error, "remove: %s", err.message);
            } else {
                kept[t][i] = 0;
            }
        }
    }
    return NULL;
}

static void *cleaner(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        spool_cleanup_stats st;
        spool_cleanup(S, &st, NULL);
    }
    return NULL;
}

int main(void)
{
    per_thread = getenv("SPOOL_SANITIZE") ? 150 : 1500;
    char dir[] = "/tmp/spool-ldthreads-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 2;
    spool_params p;
    spool_error err;
    spool_params_init(&p);
    p.path = dir;
    p.kind = "LocalDisk";
    p.reserve_bytes = 0;
    ok(spool_open(&p, &S, &err) == 0, "open a LocalDisk spool");
    for (int t = 0; t < THREADS; t++) {
        ids[t] = calloc((size_t)per_thread, sizeof *ids[t]);
        kept[t] = calloc((size_t)per_thread, sizeof *kept[t]);
    }
    pthread_t th[THREADS], cl;
    pthread_create(&cl, NULL, cleaner, NULL);
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    atomic_store(&stop, 1);
    pthread_join(cl, NULL);
    ok(atomic_load(&failures) == 0, "%d threads x %d stores and removes beside cleanup(): no failure (%d; first: %s)",
       THREADS, per_thread, atomic_load(&failures), first_error);
    int want = 0, good = 0;
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < per_thread; i++) {
            if (!kept[t][i])
                continue;
            want++;
            char buf[4096];
            memset(buf, 'x', sizeof buf);
            int n = snprintf(buf, 64, "thread %d entry %d", t, i);
            buf[n] = 'x';
            void *data;
            size_t len;
            if (spool_load(S, &ids[t][i], &data, &len, &err) == 0) {
                good += len == sizeof buf && memcmp(data, buf, len) == 0;
                spool_free(data);
            }
        }
    }
    ok(good == want && want > 0, "every kept entry loads with its bytes (%d/%d)", good, want);
    spool_compact_stats cs;
    ok(spool_compact(S, &cs, &err) == 0, "compact prunes what is left");
    spool_close(S);
    for (int t = 0; t < THREADS; t++) {
        free(ids[t]);
        free(kept[t]);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
