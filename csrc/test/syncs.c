/*
 * syncs.c: flush and force_sync really select a durable commit, seen
 * without a power cut as syncs counted by the test VFS: under the
 * default durability a commit in WAL mode syncs nothing; with force_sync
 * that commit syncs; with flush every commit does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultvfs.h"
#include "spool.h"
#include "tap.h"

/* Syncs made by n stores with the given options. */
static long syncs_for(spool *s, int n, int force_sync)
{
    spool_write_opts o = {force_sync, 0};
    spool_error err;
    long before = faultvfs_calls(FV_SYNC);
    for (int i = 0; i < n; i++) {
        spool_id id;
        spool_id_new(&id);
        if (spool_store(s, &id, "x", 1, &o, &err) != 0)
            return -1;
    }
    return faultvfs_calls(FV_SYNC) - before;
}

int main(void)
{
    char dir[] = "/tmp/spool-syncs-XXXXXX";
    if (mkdtemp(dir) == NULL || faultvfs_register() != 0)
        return 2;
    spool_params p;
    spool_error err;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = dir;
    spool_params_tune_text(&p, "sqlite", "vfs", "faultvfs", NULL);
    ok(spool_open(&p, &s, &err) == 0, "open without flush");
    faultvfs_reset();
    syncs_for(s, 1, 0); /* the first write of a WAL syncs its header */
    long plain = syncs_for(s, 20, 0), forced = syncs_for(s, 20, 1);
    ok(plain == 0, "20 default stores sync nothing (%ld)", plain);
    ok(forced >= 20, "20 force_sync stores sync at least once each (%ld)", forced);
    spool_close(s);
    p.flush = 1;
    ok(spool_open(&p, &s, &err) == 0, "open with flush");
    faultvfs_reset();
    long flushed = syncs_for(s, 20, 0);
    ok(flushed >= 20, "with flush, 20 stores sync at least once each (%ld)", flushed);
    spool_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
