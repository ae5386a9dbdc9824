/*
 * group_commit.c: stores and removes from many threads on one handle are
 * committed in groups, and each caller still gets exactly its own
 * result: every acknowledged store is there with its bytes, every
 * acknowledged remove is gone, and callers whose deadline passes while
 * another process holds the lock get their deadline error, each.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "tap.h"

#define THREADS 8
#define PER_THREAD 150

static spool *S;
static spool_id ids[THREADS][PER_THREAD];
static int stored[THREADS][PER_THREAD], removed[THREADS][PER_THREAD];
static int deadline_errors[THREADS];

static void *writer(void *arg)
{
    long t = (long)arg;
    char buf[128];
    for (int i = 0; i < PER_THREAD; i++) {
        spool_error err;
        spool_write_opts o = {.force_sync = i % 2};
        spool_id_new(&ids[t][i]);
        int n = snprintf(buf, sizeof buf, "thread %ld item %d", t, i);
        stored[t][i] = spool_store(S, &ids[t][i], buf, (size_t)n, &o, &err) == 0;
        if (i % 3 == 0 && stored[t][i]) {
            int was;
            removed[t][i] = spool_remove(S, &ids[t][i], NULL, &was, &err) == 0 && was;
        }
    }
    return NULL;
}

static void *late_writer(void *arg)
{
    long t = (long)arg;
    spool_error err;
    spool_id id;
    spool_write_opts o = {.deadline = spool_monotonic() + 0.3};
    spool_id_new(&id);
    if (spool_store(S, &id, "late", 4, &o, &err) != 0 && err.kind == SPOOL_CALLER_DEADLINE_EXCEEDED)
        deadline_errors[t] = 1;
    return NULL;
}

int main(void)
{
    char dir[] = "/tmp/spool-group-XXXXXX", path[128];
    if (mkdtemp(dir) == NULL)
        return 2;
    spool_params p;
    spool_error err;
    spool_params_init(&p);
    p.path = dir;
    ok(spool_open(&p, &S, &err) == 0, "open");

    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, writer, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    int acked = 0, present_ok = 0, gone_ok = 0, expected_present = 0, expected_gone = 0;
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            char want[128];
            void *data;
            size_t len;
            acked += stored[t][i];
            int n = snprintf(want, sizeof want, "thread %d item %d", t, i);
            int rc = spool_load(S, &ids[t][i], &data, &len, &err);
            if (removed[t][i]) {
                expected_gone++;
                gone_ok += rc != 0 && err.kind == SPOOL_NOT_FOUND;
            } else if (stored[t][i]) {
                expected_present++;
                present_ok += rc == 0 && len == (size_t)n && memcmp(data, want, len) == 0;
            }
            if (rc == 0)
                spool_free(data);
        }
    }
    ok(acked == THREADS * PER_THREAD, "%d threads: all %d stores acknowledged (%d)", THREADS,
       THREADS * PER_THREAD, acked);
    ok(present_ok == expected_present, "every acknowledged store loads with its own bytes (%d/%d)", present_ok,
       expected_present);
    ok(gone_ok == expected_gone && expected_gone > 0, "every acknowledged remove is gone (%d/%d)", gone_ok,
       expected_gone);

    /* Another connection holds the write lock: every queued store of
     * the batch gets its own caller-deadline error, and none is stored. */
    sqlite3 *other;
    snprintf(path, sizeof path, "%s/spool.db", dir);
    sqlite3_open(path, &other);
    ok(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK, "a second connection takes the write lock");
    spool_stats before, after;
    spool_get_stats(S, &before, &err);
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, late_writer, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    int late = 0;
    for (int t = 0; t < THREADS; t++)
        late += deadline_errors[t];
    ok(late == THREADS, "all %d waiting stores answer caller_deadline_exceeded (%d)", THREADS, late);
    sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(other);
    spool_get_stats(S, &after, &err);
    ok(after.entries == before.entries, "none of them was stored (%lld entries before and after)",
       (long long)after.entries);
    spool_id id;
    spool_id_new(&id);
    ok(spool_store(S, &id, "x", 1, NULL, &err) == 0, "once the lock is free, stores succeed");

    spool_close(S);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
