/*
 * core_api.c: the spool's C API used without Lua: a round trip, one
 * handle shared by several threads, refusal after fork(), and use after
 * shutdown.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spool.h"
#include "tap.h"

#define THREADS 4
#define PER_THREAD 200

static spool *S;

static void *writer(void *arg)
{
    long t = (long)arg;
    char buf[64];
    for (int i = 0; i < PER_THREAD; i++) {
        spool_id id;
        spool_error err;
        void *back;
        size_t len;
        spool_id_new(&id);
        int n = snprintf(buf, sizeof buf, "thread %ld entry %d", t, i);
        if (spool_store(S, &id, buf, (size_t)n, NULL, &err) != 0)
            return (void *)1;
        if (spool_load(S, &id, &back, &len, &err) != 0)
            return (void *)2;
        int same = len == (size_t)n && memcmp(back, buf, len) == 0;
        spool_free(back);
        if (!same)
            return (void *)3;
    }
    return NULL;
}

static int count_entry(void *ud, const spool_entry *e)
{
    size_t *n = ud;
    if (!e->corrupt)
        ++*n;
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/spool-core-api-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 2;
    spool_params p;
    spool_error err;
    spool_params_init(&p);
    p.path = dir;
    ok(spool_open(&p, &S, &err) == 0, "open %s (%s)", dir, err.message);

    spool_id id;
    void *data;
    size_t len;
    int removed;
    spool_id_new(&id);
    ok(spool_store(S, &id, "abc", 3, NULL, &err) == 0, "store");
    ok(spool_load(S, &id, &data, &len, &err) == 0 && len == 3 && memcmp(data, "abc", 3) == 0, "load");
    spool_free(data);
    ok(spool_remove(S, &id, NULL, &removed, &err) == 0 && removed == 1, "remove");
    ok(spool_load(S, &id, &data, &len, &err) == -1 && err.kind == SPOOL_NOT_FOUND, "load after remove: not_found");

    pthread_t th[THREADS];
    int bad = 0;
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, writer, (void *)t);
    for (int t = 0; t < THREADS; t++) {
        void *r;
        pthread_join(th[t], &r);
        bad += r != NULL;
    }
    ok(bad == 0, "%d threads store and load through one handle", THREADS);
    size_t visited = 0, good = 0;
    ok(spool_enumerate(S, NULL, count_entry, &good, &visited, &err) == 0 && good == THREADS * PER_THREAD,
       "enumerate finds all %d entries (%zu)", THREADS * PER_THREAD, good);

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        spool_error e2;
        int rc = spool_load(S, &id, &data, &len, &e2);
        spool_close(S); /* must not touch the parent's files */
        _exit(rc == -1 && e2.kind == SPOOL_CLOSED && strstr(e2.message, "fork") ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a forked child gets a clear 'closed' error");
    ok(spool_store(S, &id, "x", 1, NULL, &err) == 0, "the parent's handle still works after the child exits");

    ok(spool_shutdown(S, &err) == 0 && spool_shutdown(S, &err) == 0, "shutdown is idempotent");
    ok(spool_store(S, &id, "x", 1, NULL, &err) == -1 && err.kind == SPOOL_CLOSED, "store after shutdown: closed");
    spool_close(S);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
