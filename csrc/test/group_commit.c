/*
 * group_commit.c: stores and removes from many threads on one handle are
 * committed in groups, and each caller still gets exactly its own
 * result: every acknowledged store is there with its bytes, every
 * acknowledged remove is gone, and callers whose deadline passes while
 * another process holds the lock get their deadline error, each.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Commits of the spool's connections, counted by a commit hook that an
 * auto-extension puts on every connection the process opens; the test's
 * own connection (`other`) is not counted. */
static atomic_long commits;
static sqlite3 *other;

static int count_commit(void *db)
{
    if (db != other)
        atomic_fetch_add(&commits, 1);
    return 0;
}

static int hook_commits(sqlite3 *db, char **errmsg, const struct sqlite3_api_routines *api)
{
    (void)errmsg;
    (void)api;
    sqlite3_commit_hook(db, count_commit, db);
    return SQLITE_OK;
}

/* A request of the shared batch: a store_many of two entries whose
 * second one the planted trigger refuses when `fails`. */
typedef struct planned {
    spool_id first, second;
    int fails;
    int rc;
    spool_error err;
} planned;

static void *planned_writer(void *arg)
{
    planned *r = arg;
    spool_item items[2] = {
        {.id = r->first, .data = "good", .len = 4},
        {.id = r->second, .data = r->fails ? "FAIL" : "good", .len = 4},
    };
    r->rc = spool_store_many(S, items, 2, NULL, &r->err);
    return NULL;
}

static int present(const spool_id *id)
{
    void *data;
    size_t len;
    spool_error err;
    if (spool_load(S, id, &data, &len, &err) != 0)
        return 0;
    spool_free(data);
    return 1;
}

/* Runs the requests as two batches: with the write lock held by
 * `other`, the first request's leader waits for it alone; the rest queue
 * behind it and, once the lock is free, form the second batch.  Returns
 * the number of commits the spool made. */
static long run_batches(planned *reqs, int n)
{
    double settle = getenv("SPOOL_SANITIZE") ? 1.0 : 0.2;
    pthread_t th[THREADS];
    for (int i = 0; i < n; i++) {
        spool_id_new(&reqs[i].first);
        spool_id_new(&reqs[i].second);
    }
    long before = atomic_load(&commits);
    sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    pthread_create(&th[0], NULL, planned_writer, &reqs[0]);
    usleep((useconds_t)(settle * 1e6));
    for (int i = 1; i < n; i++)
        pthread_create(&th[i], NULL, planned_writer, &reqs[i]);
    usleep((useconds_t)(settle * 1e6));
    sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    return atomic_load(&commits) - before;
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
    sqlite3_auto_extension((void (*)(void))hook_commits);
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
    spool_get_stats(S, &after, &err);
    ok(after.entries == before.entries, "none of them was stored (%lld entries before and after)",
       (long long)after.entries);

    /* One request of a shared batch fails (a trigger planted by the test
     * refuses its second entry): it leaves nothing, the others commit,
     * and the batch is one commit. */
    ok(sqlite3_exec(other,
                    "CREATE TRIGGER planted BEFORE INSERT ON entries WHEN NEW.data = X'4641494C' "
                    "BEGIN SELECT RAISE(ABORT, 'planted failure'); END",
                    NULL, NULL, NULL) == SQLITE_OK,
       "a trigger that refuses entries holding FAIL is planted");
    planned mixed[5] = {{.fails = 0}, {.fails = 0}, {.fails = 1}, {.fails = 0}, {.fails = 0}};
    long n_commits = run_batches(mixed, 5);
    ok(n_commits == 2, "the first request commits alone, the four queued behind it in one commit (%ld commits)",
       n_commits);
    ok(mixed[2].rc != 0 && strstr(mixed[2].err.message, "planted failure") != NULL,
       "the failing request answers its own error (%s)", mixed[2].rc ? mixed[2].err.message : "succeeded");
    ok(!present(&mixed[2].first) && !present(&mixed[2].second),
       "the failing request left nothing, not even its first entry");
    int kept = 0;
    for (int i = 0; i < 5; i++)
        if (i != 2)
            kept += mixed[i].rc == 0 && present(&mixed[i].first) && present(&mixed[i].second);
    ok(kept == 4, "the other four requests of the batch are acknowledged and kept (%d/4)", kept);

    /* Every request of a batch fails: nothing is committed. */
    planned failing[5] = {{.fails = 1}, {.fails = 1}, {.fails = 1}, {.fails = 1}, {.fails = 1}};
    spool_get_stats(S, &before, &err);
    n_commits = run_batches(failing, 5);
    int refused = 0, left = 0;
    for (int i = 0; i < 5; i++) {
        refused += failing[i].rc != 0;
        left += present(&failing[i].first);
    }
    ok(refused == 5 && left == 0, "when every request fails, each answers an error and none left an entry (%d, %d)",
       refused, left);
    ok(n_commits == 0, "a batch in which every request failed does not commit (%ld commits)", n_commits);
    spool_get_stats(S, &after, &err);
    ok(after.entries == before.entries, "the live entry count is unchanged (%lld)", (long long)after.entries);
    sqlite3_exec(other, "DROP TRIGGER planted", NULL, NULL, NULL);
    sqlite3_close(other);
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
