/*
 * corruption.c: random byte flips in a spool's database and WAL files.
 * Each trial copies a live spool (database + WAL), flips a few random
 * bytes in the copy, opens it and loads, enumerates and compacts it.
 * Checks: never a crash, never wrong bytes returned for an entry (the
 * per-entry checksum), every failure a typed error, and the spool stays
 * usable (a new store loads back) whenever it opens at all.
 *
 *   TRIALS=5000 build/luajit/rtest/corruption
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "tap.h"

#define ENTRIES 60

static unsigned char expected[ENTRIES][3000];
static size_t expected_len[ENTRIES];
static spool_id ids[ENTRIES];

static int copy(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int rc = a && b ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, a)) > 0)
        if (fwrite(buf, 1, n, b) != n)
            rc = -1;
    if (a)
        fclose(a);
    if (b)
        fclose(b);
    return a == NULL ? 1 : rc; /* a missing source (no WAL) is fine */
}

static void flip(const char *path, unsigned *seed, int flips)
{
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size == 0)
        return;
    FILE *f = fopen(path, "r+b");
    if (!f)
        return;
    for (int i = 0; i < flips; i++) {
        long off = (long)(rand_r(seed) % (unsigned)st.st_size);
        fseek(f, off, SEEK_SET);
        int c = fgetc(f);
        fseek(f, off, SEEK_SET);
        fputc((c ^ (1 << (rand_r(seed) % 8))) & 0xff, f);
    }
    fclose(f);
}

static int typed(spool_kind k)
{
    return k == SPOOL_CORRUPT || k == SPOOL_IO || k == SPOOL_NOT_FOUND || k == SPOOL_UNHEALTHY ||
           k == SPOOL_INTERNAL;
}

typedef struct tally {
    long wrong, untyped, exact, errors, corrupt_reported, verify_found;
} tally;

static int check_entry(void *ud, const spool_entry *e)
{
    tally *t = ud;
    if (e->corrupt) {
        t->corrupt_reported++;
        return 0;
    }
    for (int i = 0; i < ENTRIES; i++)
        if (memcmp(e->id.b, ids[i].b, SPOOL_ID_BYTES) == 0) {
            if (e->len != expected_len[i] || memcmp(e->data, expected[i], e->len) != 0)
                t->wrong++;
            return 0;
        }
    return 0; /* an id we never stored: a flipped key whose checksum still matched is impossible */
}

int main(void)
{
    const char *env = getenv("TRIALS");
    int trials = env ? atoi(env) : 300;
    unsigned seed = (unsigned)getpid();
    char base[] = "/tmp/spool-corrupt-XXXXXX", live[64], trial[64], a[128], b[128], cmd[256];
    if (mkdtemp(base) == NULL)
        return 2;
    snprintf(live, sizeof live, "%s/live", base);
    snprintf(trial, sizeof trial, "%s/trial", base);

    /* A live spool: half its entries checkpointed into the database, the
     * rest only in the WAL. */
    spool_params p;
    spool_error err;
    spool *s;
    spool_params_init(&p);
    p.path = live;
    spool_params_tune_number(&p, "sqlite", "wal_autocheckpoint", 0, NULL); /* 0: disabled */
    if (spool_open(&p, &s, &err) != 0)
        return 2;
    for (int i = 0; i < ENTRIES; i++) {
        spool_id_new(&ids[i]);
        expected_len[i] = 100 + (size_t)(rand_r(&seed) % 2800);
        for (size_t j = 0; j < expected_len[i]; j++)
            expected[i][j] = (unsigned char)rand_r(&seed);
        spool_store(s, &ids[i], expected[i], expected_len[i], NULL, &err);
        if (i == ENTRIES / 2) {
            spool_compact_stats cs;
            spool_compact(s, &cs, &err); /* checkpoints */
        }
    }

    tally t = {0};
    long opened = 0, usable = 0, open_errors_untyped = 0, flips = 0;
    for (int k = 0; k < trials; k++) {
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", trial, trial);
        if (system(cmd) != 0)
            return 2;
        snprintf(a, sizeof a, "%s/spool.db", live);
        snprintf(b, sizeof b, "%s/spool.db", trial);
        copy(a, b);
        snprintf(a, sizeof a, "%s/spool.db-wal", live);
        snprintf(b, sizeof b, "%s/spool.db-wal", trial);
        copy(a, b);
        int n = 1 + rand_r(&seed) % 4;
        flips += n;
        snprintf(a, sizeof a, "%s/spool.db", trial);
        flip(rand_r(&seed) % 2 ? a : b, &seed, n);

        spool *c;
        spool_params q;
        spool_params_init(&q);
        q.path = trial;
        q.reserve_bytes = 0;
        if (spool_open(&q, &c, &err) != 0) {
            if (!typed(err.kind)) {
                open_errors_untyped++;
                printf("# trial %d: open answered %s: %s\n", k, spool_kind_name(err.kind), err.message);
            }
            continue;
        }
        opened++;
        for (int i = 0; i < ENTRIES; i++) {
            void *data;
            size_t len;
            if (spool_load(c, &ids[i], &data, &len, &err) == 0) {
                if (len != expected_len[i] || memcmp(data, expected[i], len) != 0)
                    t.wrong++;
                else
                    t.exact++;
                spool_free(data);
            } else {
                t.errors++;
                if (!typed(err.kind)) {
                    t.untyped++;
                    printf("# trial %d: load answered %s: %s\n", k, spool_kind_name(err.kind), err.message);
                }
            }
        }
        size_t visited;
        if (spool_enumerate(c, NULL, check_entry, &t, &visited, &err) != 0 && !typed(err.kind))
            t.untyped++;
        spool_verify_report vr;
        if (spool_verify(c, &vr, &err) != 0) {
            if (!typed(err.kind))
                t.untyped++;
        } else if (!vr.storage_ok || vr.corrupt > 0) {
            t.verify_found++;
        }
        spool_compact_stats cs;
        if (spool_compact(c, &cs, &err) != 0 && !typed(err.kind)) {
            t.untyped++;
            printf("# trial %d: compact answered %s: %s\n", k, spool_kind_name(err.kind), err.message);
        }
        /* Still usable?  A fresh handle, as an operator would restart. */
        spool_close(c);
        if (spool_open(&q, &c, &err) == 0) {
            spool_id id;
            void *data;
            size_t len;
            spool_id_new(&id);
            if (spool_store(c, &id, "new", 3, NULL, &err) == 0 && spool_load(c, &id, &data, &len, &err) == 0) {
                usable += len == 3 && memcmp(data, "new", 3) == 0;
                spool_free(data);
            }
            spool_close(c);
        }
    }
    spool_close(s);
    ok(t.wrong == 0, "%d trials, %ld flipped bytes: never wrong bytes returned (%ld exact loads)", trials, flips,
       t.exact);
    ok(t.untyped == 0 && open_errors_untyped == 0, "every failure a typed error (%ld load errors, %ld corrupt "
       "entries reported by enumerate)", t.errors, t.corrupt_reported);
    ok(opened > 0 && usable * 10 >= opened * 9, "the spool stays usable: a new store loads back in %ld of %ld "
       "trials that opened", usable, opened);
    printf("# corruption figures: trials=%d flips=%ld opened=%ld exact_loads=%ld load_errors=%ld "
           "enumerate_corrupt=%ld verify_found=%ld usable=%ld\n", trials, flips, opened, t.exact, t.errors,
           t.corrupt_reported, t.verify_found, usable);
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
