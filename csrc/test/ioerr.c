/*
 * ioerr.c: I/O errors at every point of a workload.  For each kind of
 * call (read, write, sync, truncate) and each N, the Nth call fails -
 * once, or from then on - while a workload stores (half with force_sync),
 * loads, removes, compacts and cleans up.  Checks:
 *   - every failed operation answers a typed error: `io` (or `unhealthy`
 *     once the gate latched, or `corrupt` for a read that failed inside
 *     SQLite's b-tree code); never a crash (ASan/valgrind runs cover
 *     leaks);
 *   - the gate latches after an `io` error;
 *   - after a reopen with a healthy disk, every acknowledged store (not
 *     removed) is there with its bytes, every failed store that was not
 *     flagged ambiguous is absent, and integrity_check passes.
 *
 *   LONG=1 build/luajit/test/ioerr     (every N; default: a sample)
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultvfs.h"
#include "spool.h"
#include "tap.h"

#define ENTRIES 12

static const char *op_names[FV_OPS] = {"read", "write", "sync", "truncate"};

typedef struct outcome {
    long faults, failures, untyped, latched_ok, latch_missed, lost, leaked_failed, ambiguous, integrity;
} outcome;

static int typed(spool_kind k)
{
    return k == SPOOL_IO || k == SPOOL_UNHEALTHY || k == SPOOL_CORRUPT || k == SPOOL_FULL;
}

/* Notes a failed call: it must be typed; an io error must latch. */
static void failed(spool *s, const spool_error *err, outcome *o, const char *what)
{
    o->failures++;
    if (!typed(err->kind)) {
        o->untyped++;
        printf("# %s answered %s: %s\n", what, spool_kind_name(err->kind), err->message);
    }
    if (err->kind == SPOOL_IO) {
        if (spool_unhealthy_reason(s) != NULL)
            o->latched_ok++;
        else
            o->latch_missed++;
    }
}

static int integrity_ok(const char *dir)
{
    char path[300];
    sqlite3 *db;
    sqlite3_stmt *st;
    int good = 0;
    snprintf(path, sizeof path, "%s/spool.db", dir);
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
        good = sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return good;
}

/* One run: the fault (op, nth, persistent) armed after a clean setup.
 * Returns the number of calls of `op` the faulty phase made. */
static long run(const char *dir, int op, long nth, int persistent, outcome *o)
{
    spool_params p;
    spool_error err;
    spool *s;
    spool_id ids[2 * ENTRIES];
    int acked[2 * ENTRIES] = {0}, removed[2 * ENTRIES] = {0}, ambiguous[2 * ENTRIES] = {0};
    char buf[6000];
    spool_params_init(&p);
    p.path = dir;
    spool_params_tune_text(&p, "sqlite", "vfs", "faultvfs", NULL);
    spool_params_tune_number(&p, "sqlite", "wal_autocheckpoint", 8, NULL);
    spool_params_tune_number(&p, "sqlite", "vacuum_step_pages", 4, NULL);
    faultvfs_reset();
    if (spool_open(&p, &s, &err) != 0) {
        printf("# setup open failed: %s\n", err.message);
        o->untyped++;
        return 0;
    }
    for (int i = 0; i < ENTRIES; i++) {
        spool_id_new(&ids[i]);
        memset(buf, 'a' + i, sizeof buf);
        acked[i] = spool_store(s, &ids[i], buf, sizeof buf, NULL, &err) == 0;
    }
    long before = faultvfs_calls(op);
    if (nth > 0)
        faultvfs_fail_at(op, nth, persistent);

    /* The faulty phase. */
    for (int i = ENTRIES; i < 2 * ENTRIES; i++) {
        spool_write_opts w = {.force_sync = i % 2};
        spool_id_new(&ids[i]);
        memset(buf, 'a' + i % 26, sizeof buf);
        if (spool_store(s, &ids[i], buf, sizeof buf - i, &w, &err) == 0) {
            acked[i] = 1;
        } else {
            failed(s, &err, o, "store");
            ambiguous[i] = err.ambiguous;
            o->ambiguous += err.ambiguous;
        }
    }
    for (int i = 0; i < 2 * ENTRIES; i += 3) {
        void *data;
        size_t len;
        if (spool_load(s, &ids[i], &data, &len, &err) == 0)
            spool_free(data);
        else if (err.kind != SPOOL_NOT_FOUND)
            failed(s, &err, o, "load");
    }
    for (int i = 0; i < 2 * ENTRIES; i += 2) {
        int was;
        if (!acked[i])
            continue;
        if (spool_remove(s, &ids[i], NULL, &was, &err) == 0)
            removed[i] = 1;
        else
            failed(s, &err, o, "remove");
    }
    spool_compact_stats cs;
    if (spool_compact(s, &cs, &err) != 0)
        failed(s, &err, o, "compact");
    spool_cleanup_stats cl;
    if (spool_cleanup(s, &cl, &err) != 0)
        failed(s, &err, o, "cleanup");
    size_t visited;
    long calls = faultvfs_calls(op) - before;
    o->faults += faultvfs_faults();
    spool_close(s);

    /* A healthy disk again: nothing acknowledged may be missing. */
    faultvfs_reset();
    spool_params_init(&p);
    p.path = dir;
    if (spool_open(&p, &s, &err) != 0) {
        printf("# reopen failed: %s\n", err.message);
        o->lost++;
        return calls;
    }
    for (int i = 0; i < 2 * ENTRIES; i++) {
        void *data;
        size_t len;
        int present = spool_load(s, &ids[i], &data, &len, &err) == 0;
        if (present)
            spool_free(data);
        if (acked[i] && !removed[i] && !present) {
            o->lost++;
            printf("# %s fault %ld%s: acknowledged entry %d lost (%s)\n", op_names[op], nth,
                   persistent ? " (persistent)" : "", i, err.message);
        }
        if (!acked[i] && !ambiguous[i] && present) {
            o->leaked_failed++;
            printf("# %s fault %ld: a failed, unambiguous store is present (entry %d)\n", op_names[op], nth, i);
        }
    }
    (void)visited;
    spool_close(s);
    if (!integrity_ok(dir))
        o->integrity++;
    return calls;
}

int main(void)
{
    char dir[] = "/tmp/spool-ioerr-XXXXXX", cmd[128];
    int long_run = getenv("LONG") != NULL;
    if (mkdtemp(dir) == NULL || faultvfs_register() != SQLITE_OK)
        return 2;
    snprintf(cmd, sizeof cmd, "rm -rf %s/*", dir);
    for (int op = 0; op < FV_OPS; op++) {
        outcome o = {0};
        outcome dry = {0};
        long total = run(dir, op, 0, 0, &dry);
        if (system(cmd) != 0)
            return 2;
        /* Every N in a long run; otherwise up to 40 spread over the run. */
        long step = long_run || total <= 40 ? 1 : total / 40;
        long runs = 0;
        for (int persistent = 0; persistent <= 1; persistent++) {
            for (long n = 1; n <= total; n += step) {
                run(dir, op, n, persistent, &o);
                runs++;
                if (system(cmd) != 0)
                    return 2;
            }
        }
        ok(dry.failures == 0 && total > 0, "%s: %ld calls in the workload without faults", op_names[op], total);
        ok(o.untyped == 0, "%s: %ld runs, %ld faults, %ld failed operations, all typed errors", op_names[op], runs,
           o.faults, o.failures);
        ok(o.latch_missed == 0, "%s: every io error latched the gate (%ld)", op_names[op], o.latched_ok);
        ok(o.lost == 0, "%s: no acknowledged store lost", op_names[op]);
        ok(o.leaked_failed == 0, "%s: no failed store present unless flagged ambiguous (%ld ambiguous)",
           op_names[op], o.ambiguous);
        ok(o.integrity == 0, "%s: integrity_check passed after every run", op_names[op]);
    }
    rmdir(dir);
    return tap_done();
}
