/*
 * bench/layout.c: chooses the SQLite table layout of the spool by
 * measurement.  Runs the same workload, in one process on the same disk,
 * against three layouts:
 *   rowid+time  rowid table, UNIQUE index on the time-ordered key (spool's)
 *   rowid+uuid  rowid table, UNIQUE index on the raw UUID bytes
 *   norowid     WITHOUT ROWID table keyed by the time-ordered key
 * and prints ops/s per phase with the ratio to the first layout.
 *
 *   make bench-layout            (N=20000 4 KiB entries; N=... to change)
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool_id.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die(db, sql);
}

typedef struct layout {
    const char *name, *schema;
    int time_key;
} layout;

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    size_t size = 4096;
    static const layout layouts[] = {
        {"rowid+time", "CREATE TABLE e(rowid INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, sum INTEGER, data BLOB)", 1},
        {"rowid+uuid", "CREATE TABLE e(rowid INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, sum INTEGER, data BLOB)", 0},
        {"norowid", "CREATE TABLE e(key BLOB PRIMARY KEY, sum INTEGER, data BLOB) WITHOUT ROWID", 1},
    };
    enum { STORE, LOAD, SCAN, REMOVE, PHASES };
    static const char *phase[PHASES] = {"store (1/commit)", "load (random)", "enumerate", "remove (1/commit)"};
    double rate[3][PHASES];
    spool_id *ids = malloc((size_t)n * sizeof *ids);
    int *order = malloc((size_t)n * sizeof *order);
    char *data = malloc(size);
    memset(data, 'x', size);
    for (int i = 0; i < n; i++) {
        spool_id_new(&ids[i]);
        order[i] = i;
    }
    srand(42);
    for (int i = n - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int l = 0; l < 3; l++) {
        char path[512];
        snprintf(path, sizeof path, "%s/spool-layout-%d.db", dir, getpid());
        unlink(path);
        sqlite3 *db;
        if (sqlite3_open(path, &db) != SQLITE_OK)
            die(db, "open");
        exec(db, "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "PRAGMA secure_delete=OFF");
        exec(db, layouts[l].schema);
        sqlite3_stmt *ins, *sel, *scan, *del;
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO e(key, sum, data) VALUES (?1, 0, ?2)", -1, &ins, NULL);
        sqlite3_prepare_v2(db, "SELECT data FROM e WHERE key = ?1", -1, &sel, NULL);
        sqlite3_prepare_v2(db, "SELECT key, data FROM e ORDER BY key", -1, &scan, NULL);
        sqlite3_prepare_v2(db, "DELETE FROM e WHERE key = ?1", -1, &del, NULL);
        uint8_t key[16];
        double t = now();
        for (int i = 0; i < n; i++) {
            if (layouts[l].time_key)
                spool_id_to_key(&ids[i], key);
            else
                memcpy(key, ids[i].b, 16);
            sqlite3_bind_blob(ins, 1, key, 16, SQLITE_STATIC);
            sqlite3_bind_blob(ins, 2, data, (int)size, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE)
                die(db, "insert");
            sqlite3_reset(ins);
        }
        rate[l][STORE] = n / (now() - t);
        t = now();
        for (int i = 0; i < n; i++) {
            const spool_id *id = &ids[order[i]];
            if (layouts[l].time_key)
                spool_id_to_key(id, key);
            else
                memcpy(key, id->b, 16);
            sqlite3_bind_blob(sel, 1, key, 16, SQLITE_STATIC);
            if (sqlite3_step(sel) != SQLITE_ROW)
                die(db, "select");
            sqlite3_reset(sel);
        }
        rate[l][LOAD] = n / (now() - t);
        t = now();
        int rows = 0;
        while (sqlite3_step(scan) == SQLITE_ROW)
            rows += sqlite3_column_bytes(scan, 1) > 0;
        sqlite3_reset(scan);
        rate[l][SCAN] = rows / (now() - t);
        t = now();
        for (int i = 0; i < n; i++) {
            if (layouts[l].time_key)
                spool_id_to_key(&ids[i], key);
            else
                memcpy(key, ids[i].b, 16);
            sqlite3_bind_blob(del, 1, key, 16, SQLITE_STATIC);
            if (sqlite3_step(del) != SQLITE_DONE)
                die(db, "delete");
            sqlite3_reset(del);
        }
        rate[l][REMOVE] = n / (now() - t);
        sqlite3_finalize(ins);
        sqlite3_finalize(sel);
        sqlite3_finalize(scan);
        sqlite3_finalize(del);
        sqlite3_close(db);
        unlink(path);
        char wal[600];
        snprintf(wal, sizeof wal, "%s-wal", path);
        unlink(wal);
        snprintf(wal, sizeof wal, "%s-shm", path);
        unlink(wal);
    }
    printf("SQLite %s, %d entries of %zu bytes in %s (ops/s; ratio to rowid+time)\n", sqlite3_libversion(), n,
           size, dir);
    printf("%-20s %14s %20s %20s\n", "phase", layouts[0].name, layouts[1].name, layouts[2].name);
    for (int p = 0; p < PHASES; p++)
        printf("%-20s %14.0f %12.0f (%4.2fx) %12.0f (%4.2fx)\n", phase[p], rate[0][p], rate[1][p],
               rate[1][p] / rate[0][p], rate[2][p], rate[2][p] / rate[0][p]);
    free(ids);
    free(order);
    free(data);
    return 0;
}
