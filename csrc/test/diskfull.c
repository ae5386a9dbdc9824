/*
 * diskfull.c: a full disk, through faultvfs's capacity model.  Stores
 * until the disk is full, then checks: the store answers `full`, the gate
 * latches (stores then fail fast with `unhealthy`), everything stored
 * earlier still loads; with the room a released reserve gives, removes
 * and compact work; once space is back the gate unlatches and stores
 * succeed.  (The real-disk version, on a tmpfs with the spool's own
 * reserve file, is tools/reliability/diskfull_tmpfs.lua.)
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faultvfs.h"
#include "spool.h"
#include "tap.h"

#define MAXN 4096

int main(void)
{
    char dir[] = "/tmp/spool-diskfull-XXXXXX", cmd[128];
    if (mkdtemp(dir) == NULL || faultvfs_register() != SQLITE_OK)
        return 2;
    spool_params p;
    spool_error err;
    spool *s;
    spool_params_init(&p);
    p.path = dir;
    spool_params_tune_text(&p, "sqlite", "vfs", "faultvfs", NULL);
    p.min_free_space.value = 0;
    p.min_free_inodes.value = 0;
    p.reserve_bytes = 0; /* the VFS models the disk: room comes back below */
    p.error_unlatch_duration = 0.3;
    faultvfs_reset();
    ok(spool_open(&p, &s, &err) == 0, "open (%s)", err.message);
    static spool_id ids[MAXN];
    static char buf[16384];
    memset(buf, 'f', sizeof buf);
    faultvfs_set_capacity(2 << 20); /* about 2 MiB of files in all */
    int n = 0, kind = SPOOL_OK;
    for (; n < MAXN; n++) {
        spool_id_new(&ids[n]);
        if (spool_store(s, &ids[n], buf, sizeof buf, NULL, &err) != 0) {
            kind = err.kind;
            break;
        }
    }
    ok(kind == SPOOL_FULL, "after %d stores the next answers full (%s: %s)", n, spool_kind_name(kind), err.message);
    ok(strcmp(err.message, "") != 0 && err.code != 0 && err.code_name != NULL &&
       strncmp(err.code_name, "SQLITE_", 7) == 0, "with SQLite's code (%s)", err.code_name ? err.code_name : "none");
    ok(spool_unhealthy_reason(s) != NULL, "the gate latched");
    spool_id extra;
    spool_id_new(&extra);
    ok(spool_store(s, &extra, "x", 1, NULL, &err) != 0 && err.kind == SPOOL_UNHEALTHY,
       "a store now fails fast with unhealthy");
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        void *data;
        size_t len;
        if (spool_load(s, &ids[i], &data, &len, &err) == 0) {
            loaded += len == sizeof buf && memcmp(data, buf, len) == 0;
            spool_free(data);
        }
    }
    ok(loaded == n, "all %d entries stored before still load (%d)", n, loaded);

    /* The reserve's worth of room: removes and compact work. */
    faultvfs_set_capacity((2 << 20) + (2 << 20));
    int removed_ok = 1;
    for (int i = 0; i < n; i += 2) {
        int was;
        removed_ok &= spool_remove(s, &ids[i], NULL, &was, &err) == 0 && was;
    }
    ok(removed_ok, "removes succeed on the full disk (%s)", removed_ok ? "" : err.message);
    spool_compact_stats cs;
    ok(spool_compact(s, &cs, &err) == 0 && spool_metrics_get(&cs.backend, "pages_freed", 0) > 0,
       "compact succeeds and frees %.0f pages", spool_metrics_get(&cs.backend, "pages_freed", 0));

    /* Space is back: the gate unlatches after the unlatch period. */
    faultvfs_set_capacity(-1);
    struct timespec ts = {0, 400000000};
    nanosleep(&ts, NULL);
    ok(spool_unhealthy_reason(s) == NULL, "after the unlatch period without errors the gate is open");
    ok(spool_store(s, &extra, "back", 4, NULL, &err) == 0, "stores succeed again (%s)", err.message);
    spool_close(s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
