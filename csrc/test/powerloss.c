/*
 * powerloss.c: simulated power losses through faultvfs.  Each round
 * opens a fresh spool (flush on in a third of the rounds), runs random
 * stores (half with force_sync) and removes, and cuts the power at a
 * random write call - in the middle of a commit or a checkpoint - undoing
 * every write not yet synced, all of them or a random subset.  Then it
 * reopens the spool as after a reboot and checks:
 *   - every store acknowledged as durable (flush or force_sync), and not
 *     removed later, is there with its exact bytes (0 lost);
 *   - the database passes integrity_check and no entry is corrupt;
 * and counts what the default setting lost, for docs/RELIABILITY.md.
 *
 *   ROUNDS=1000 build/luajit/test/powerloss
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultvfs.h"
#include "spool.h"
#include "tap.h"

#define MAX_OPS 240

typedef struct rec {
    spool_id id;
    int durable;  /* acknowledged as durable */
    int acked;    /* acknowledged at all */
    int removed;  /* a remove of it was acknowledged */
    size_t len;
    unsigned seed; /* the bytes are a function of (seed, len) */
} rec;

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
}

static int integrity_ok(const char *db_path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int ok_ = 0;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            ok_ = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ok_;
}

static int count_corrupt(void *ud, const spool_entry *e)
{
    int *n = ud;
    *n += e->corrupt;
    return 0;
}

int main(void)
{
    const char *env = getenv("ROUNDS");
    int rounds = env ? atoi(env) : 60;
    unsigned seed = (unsigned)getpid();
    char base[] = "/tmp/spool-powerloss-XXXXXX", dir[256], path[300], cmd[300];
    if (mkdtemp(base) == NULL || faultvfs_register() != SQLITE_OK)
        return 2;
    static rec recs[MAX_OPS];
    static unsigned char buf[32768], back[32768];
    long durable_acked = 0, durable_lost = 0, default_acked = 0, default_lost = 0, undone_writes = 0;
    int integrity_failures = 0, corrupt_entries = 0, reopen_failures = 0, subset_rounds = 0;

    for (int round = 0; round < rounds; round++) {
        snprintf(dir, sizeof dir, "%s/r%d", base, round);
        faultvfs_reset();
        spool_params p;
        spool_error err;
        spool *s;
        spool_params_init(&p);
        p.path = dir;
        p.flush = round % 3 == 0;
        spool_params_tune_text(&p, "sqlite", "vfs", "faultvfs", NULL);
        spool_params_tune_number(&p, "sqlite", "wal_autocheckpoint", 16 + rand_r(&seed) % 200, NULL); /* checkpoints happen mid-run too */
        p.error_latch_duration = 1e6;
        if (spool_open(&p, &s, &err) != 0) {
            printf("# open failed: %s\n", err.message);
            reopen_failures++;
            continue;
        }
        int random_subset = rand_r(&seed) % 2;
        subset_rounds += random_subset;
        /* Cut the power somewhere in the run's writes. */
        faultvfs_power_loss_at(1 + rand_r(&seed) % 1500, random_subset, rand_r(&seed));
        int n = 0;
        for (int op = 0; op < MAX_OPS && !faultvfs_is_dead(); op++) {
            if (n > 4 && rand_r(&seed) % 5 == 0) {
                rec *r = &recs[rand_r(&seed) % n];
                int was;
                if (r->acked && !r->removed && spool_remove(s, &r->id, NULL, &was, &err) == 0)
                    r->removed = 1;
                continue;
            }
            rec *r = &recs[n++];
            memset(r, 0, sizeof *r);
            spool_id_new(&r->id);
            r->len = 1 + rand_r(&seed) % sizeof buf;
            r->seed = rand_r(&seed);
            fill(buf, r->len, r->seed);
            spool_write_opts o = {.force_sync = rand_r(&seed) % 2};
            if (spool_store(s, &r->id, buf, r->len, &o, &err) == 0) {
                r->acked = 1;
                r->durable = o.force_sync || p.flush;
            }
        }
        if (!faultvfs_is_dead())
            undone_writes += faultvfs_power_loss(random_subset, rand_r(&seed));
        spool_close(s); /* everything fails: the machine is off */
        snprintf(path, sizeof path, "%s/spool.db-shm", dir);
        unlink(path);
        faultvfs_reset();

        /* Reboot: open with the plain VFS and check. */
        spool_params_init(&p);
        p.path = dir;
        if (spool_open(&p, &s, &err) != 0) {
            printf("# round %d: reopen failed: %s\n", round, err.message);
            reopen_failures++;
            continue;
        }
        for (int i = 0; i < n; i++) {
            rec *r = &recs[i];
            if (!r->acked || r->removed)
                continue;
            void *data;
            size_t len;
            int present = spool_load(s, &r->id, &data, &len, &err) == 0;
            fill(back, r->len, r->seed);
            int exact = present && len == r->len && memcmp(data, back, len) == 0;
            if (present)
                spool_free(data);
            if (present && !exact)
                corrupt_entries++;
            if (r->durable) {
                durable_acked++;
                if (!exact) {
                    durable_lost++;
                    printf("# round %d: durable store %d lost (%s)\n", round, i, present ? "wrong bytes" : err.message);
                }
            } else {
                default_acked++;
                default_lost += !exact;
            }
        }
        int corrupt = 0;
        size_t visited;
        if (spool_enumerate(s, NULL, count_corrupt, &corrupt, &visited, &err) != 0)
            corrupt++;
        corrupt_entries += corrupt;
        spool_close(s);
        snprintf(path, sizeof path, "%s/spool.db", dir);
        if (!integrity_ok(path)) {
            integrity_failures++;
            printf("# round %d: integrity_check failed\n", round);
        }
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            return 2;
    }
    ok(reopen_failures == 0, "%d power losses: the spool reopened after every one", rounds);
    ok(durable_lost == 0, "0 of %ld durable (flush or force_sync) acknowledged stores lost", durable_acked);
    ok(integrity_failures == 0, "integrity_check passed after all %d losses", rounds);
    ok(corrupt_entries == 0, "no entry corrupt or with wrong bytes (%d)", corrupt_entries);
    printf("# power loss figures: rounds=%d (random subset in %d) durable_acked=%ld durable_lost=%ld "
           "default_acked=%ld default_lost=%ld\n",
           rounds, subset_rounds, durable_acked, durable_lost, default_acked, default_lost);
    (void)undone_writes;
    rmdir(base);
    return tap_done();
}
