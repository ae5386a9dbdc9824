/*
 * localdisk_syncs.c: durable LocalDisk stores from 8 threads share their
 * directory syncs.  Linked with -Wl,--wrap=fsync,--wrap=fdatasync (see
 * the Makefile), so that every sync the library makes is counted here;
 * a file sync takes 2 ms, as on a slow disk, so that stores queue up
 * behind each other as they do in production.  Each store still syncs
 * its own file (one fdatasync per entry).  Unbatched, each store also
 * syncs its leaf directory (the rename) and the parent of every
 * directory it created: stores + the directories made, in all (KumoMTA's
 * layout gives nearly every entry a leaf of its own: the leaf is the id's
 * 4th byte, 25.6 us of its clock).  A batch syncs each directory once,
 * so the parents that stores made close together share: there must be
 * fewer directory syncs than that.
 */
#define _XOPEN_SOURCE 700
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <time.h>

#include "spool.h"
#include "tap.h"

#define THREADS 8
#define PER_THREAD 20

int __real_fsync(int fd);
int __real_fdatasync(int fd);
int __wrap_fsync(int fd);
int __wrap_fdatasync(int fd);

static atomic_int n_fsync, n_fdatasync, counting;

int __wrap_fsync(int fd)
{
    if (atomic_load(&counting))
        atomic_fetch_add(&n_fsync, 1);
    return __real_fsync(fd);
}

int __wrap_fdatasync(int fd)
{
    if (atomic_load(&counting)) {
        atomic_fetch_add(&n_fdatasync, 1);
        struct timespec slow = {0, 2 * 1000 * 1000};
        nanosleep(&slow, NULL);
    }
    return __real_fdatasync(fd);
}

static int n_dirs;

static int count_dir(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)path;
    (void)st;
    n_dirs += flag == FTW_D && f->level > 0;
    return 0;
}

static spool *S;
static spool_id ids[THREADS][PER_THREAD];
static atomic_int failures;

static void *worker(void *arg)
{
    long t = (long)arg;
    spool_write_opts o = {.force_sync = 1};
    for (int i = 0; i < PER_THREAD; i++) {
        spool_id_new(&ids[t][i]);
        if (spool_store(S, &ids[t][i], &ids[t][i], sizeof ids[t][i], &o, NULL) != 0)
            atomic_fetch_add(&failures, 1);
    }
    return NULL;
}

int main(void)
{
    char dir[] = "/tmp/spool-ldsync-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 2;
    spool_params p;
    spool_params_init(&p);
    p.path = dir;
    p.kind = "LocalDisk";
    p.reserve_bytes = 0;
    spool_error err;
    ok(spool_open(&p, &S, &err) == 0, "a LocalDisk spool opens (%s)", err.message);
    atomic_store(&counting, 1);
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    atomic_store(&counting, 0);
    int stores = THREADS * PER_THREAD;
    ok(atomic_load(&failures) == 0, "%d durable stores from %d threads succeed", stores, THREADS);
    ok(atomic_load(&n_fdatasync) == stores, "each syncs its own file (%d file syncs)", atomic_load(&n_fdatasync));
    char data[64];
    snprintf(data, sizeof data, "%s/data", dir);
    nftw(data, count_dir, 16, FTW_PHYS);
    int unbatched = stores + n_dirs;
    ok(atomic_load(&n_fsync) < unbatched,
       "each directory is synced once per batch: %d directory syncs, where one store at a time makes %d "
       "(%d stores, %d directories made)",
       atomic_load(&n_fsync), unbatched, stores, n_dirs);
    int good = 0;
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++) {
            void *d;
            size_t len;
            if (spool_load(S, &ids[t][i], &d, &len, &err) == 0) {
                good += len == sizeof ids[t][i] && memcmp(d, &ids[t][i], len) == 0;
                spool_free(d);
            }
        }
    ok(good == stores, "every store loads with its bytes (%d/%d)", good, stores);
    spool_close(S);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
