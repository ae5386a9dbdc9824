/*
 * groupfail.c: group commit under failure.  8 threads store (half with
 * force_sync) and remove through one handle while faultvfs fails the
 * Nth write or sync - once, or from then on - for a spread of N.  Every
 * caller must get its own answer: after a reopen on a healthy disk,
 * every acknowledged store is there with its bytes, every acknowledged
 * remove is gone, every failed store that was not flagged ambiguous is
 * absent, and every failure is a typed error.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultvfs.h"
#include "spool.h"
#include "tap.h"

#define THREADS 8
#define PER_THREAD 40

typedef struct slot {
    spool_id id;
    int acked, ambiguous, removed;
    int remove_in_doubt; /* a remove of it failed with an ambiguous commit */
    spool_kind failed_kind;
} slot;

static spool *S;
static slot slots[THREADS][PER_THREAD];

static void body(char *buf, size_t *len, int t, int i)
{
    *len = (size_t)snprintf(buf, 64, "thread %d entry %d", t, i);
}

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    char buf[64];
    size_t len;
    for (int i = 0; i < PER_THREAD; i++) {
        slot *sl = &slots[t][i];
        spool_error err;
        spool_write_opts o = {.force_sync = i % 2};
        spool_id_new(&sl->id);
        body(buf, &len, t, i);
        if (spool_store(S, &sl->id, buf, len, &o, &err) == 0) {
            sl->acked = 1;
        } else {
            sl->failed_kind = err.kind;
            sl->ambiguous = err.ambiguous;
        }
        if (i % 4 == 3 && slots[t][i - 1].acked) {
            int was;
            if (spool_remove(S, &slots[t][i - 1].id, NULL, &was, &err) == 0)
                slots[t][i - 1].removed = was;
            else if (err.ambiguous)
                slots[t][i - 1].remove_in_doubt = 1; /* may or may not be gone */
        }
    }
    return NULL;
}

int main(void)
{
    char dir[] = "/tmp/spool-groupfail-XXXXXX", cmd[128];
    if (mkdtemp(dir) == NULL || faultvfs_register() != SQLITE_OK)
        return 2;
    snprintf(cmd, sizeof cmd, "rm -rf %s/*", dir);
    long runs = 0, acked = 0, lost = 0, resurrected = 0, leaked = 0, untyped = 0, failed = 0, ambiguous = 0;
    for (int op = FV_WRITE; op <= FV_SYNC; op++) {
        for (int persistent = 0; persistent <= 1; persistent++) {
            for (long nth = 5; nth <= 400; nth += 45) {
                spool_params p;
                spool_error err;
                spool_params_init(&p);
                p.path = dir;
                spool_params_tune_text(&p, "sqlite", "vfs", "faultvfs", NULL);
                faultvfs_reset();
                if (spool_open(&p, &S, &err) != 0)
                    return 2;
                memset(slots, 0, sizeof slots);
                faultvfs_fail_at(op, nth, persistent);
                pthread_t th[THREADS];
                for (long t = 0; t < THREADS; t++)
                    pthread_create(&th[t], NULL, worker, (void *)t);
                for (int t = 0; t < THREADS; t++)
                    pthread_join(th[t], NULL);
                spool_close(S);
                faultvfs_reset();
                spool_params_init(&p);
                p.path = dir;
                if (spool_open(&p, &S, &err) != 0)
                    return 2;
                for (int t = 0; t < THREADS; t++) {
                    for (int i = 0; i < PER_THREAD; i++) {
                        slot *sl = &slots[t][i];
                        char want[64];
                        size_t wlen, len;
                        void *data;
                        body(want, &wlen, t, i);
                        int present = spool_load(S, &sl->id, &data, &len, &err) == 0;
                        int exact = present && len == wlen && memcmp(data, want, len) == 0;
                        if (present)
                            spool_free(data);
                        if (sl->acked) {
                            acked++;
                            if (sl->removed && present)
                                resurrected++;
                            if (!sl->removed && !sl->remove_in_doubt && !exact) {
                                lost++;
                                printf("# %s fault %ld%s: thread %d entry %d acknowledged, %s\n",
                                       op == FV_WRITE ? "write" : "sync", nth, persistent ? " (persistent)" : "",
                                       t, i, present ? "wrong bytes" : "missing");
                            }
                        } else {
                            failed++;
                            ambiguous += sl->ambiguous;
                            if (sl->failed_kind != SPOOL_IO && sl->failed_kind != SPOOL_UNHEALTHY &&
                                sl->failed_kind != SPOOL_FULL)
                                untyped++;
                            if (present && !sl->ambiguous)
                                leaked++;
                        }
                    }
                }
                spool_close(S);
                if (system(cmd) != 0)
                    return 2;
                runs++;
            }
        }
    }
    ok(lost == 0, "%ld runs of 8 threads with a failing write or sync: %ld of %ld acknowledged stores lost", runs,
       lost, acked);
    ok(resurrected == 0, "no acknowledged remove undone");
    ok(leaked == 0, "%ld failed stores, none present unless flagged ambiguous (%ld ambiguous)", failed, ambiguous);
    ok(untyped == 0, "every failed store answered io (or unhealthy)");
    ok(failed > 0 && acked > 0, "the faults struck inside the batches (%ld failed, %ld acknowledged)", failed, acked);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
