/*
 * slowcommit.c: store_deadline on a slow disk.  The deadline bounds the
 * wait for the spool to accept a write; a commit that has begun runs to
 * its end (abandoning it would make its outcome unknown).  With every
 * sync taking longer than the deadline, each durable store still
 * succeeds and keeps its bytes, but it is counted as an overrun, and a
 * run of them latches the gate, so that a server sheds load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultvfs.h"
#include "spool.h"
#include "tap.h"

int main(void)
{
    char dir[] = "/tmp/spool-slow-XXXXXX";
    if (mkdtemp(dir) == NULL || faultvfs_register() != 0)
        return 2;
    spool_params p;
    spool_error err;
    spool_stats st;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = dir;
    p.flush = 1;
    p.store_deadline = 0.2;
    p.error_latch_duration = 0.5;
    spool_params_tune_text(&p, "sqlite", "vfs", "faultvfs", NULL);
    ok(spool_open(&p, &s, &err) == 0, "open through faultvfs");
    spool_id id;
    spool_id_new(&id);
    ok(spool_store(s, &id, "fast", 4, NULL, &err) == 0, "a store on a fast disk");
    spool_get_stats(s, &st, &err);
    ok(st.overruns == 0, "no overrun on a fast disk");

    faultvfs_set_sync_delay(0.4);
    double t0 = spool_monotonic();
    spool_id slow;
    spool_id_new(&slow);
    int rc = spool_store(s, &slow, "slow", 4, NULL, &err);
    double took = spool_monotonic() - t0;
    ok(rc == 0 && took >= 0.4, "a commit that began finishes, past the deadline (%.2f s)", took);
    spool_get_stats(s, &st, &err);
    ok(st.overruns == 1, "it is counted as an overrun (%llu)", (unsigned long long)st.overruns);
    void *data = NULL;
    size_t len = 0;
    ok(spool_load(s, &slow, &data, &len, &err) == 0 && len == 4 && memcmp(data, "slow", 4) == 0,
       "its bytes are kept");
    spool_free(data);

    int stores = 0;
    for (; stores < 10 && spool_unhealthy_reason(s) == NULL; stores++) {
        spool_id_new(&id);
        spool_store(s, &id, "more", 4, NULL, &err);
    }
    ok(spool_unhealthy_reason(s) != NULL, "a run of overruns latches the gate (after %d more stores)", stores);
    spool_health h;
    spool_get_health(s, &h, &err);
    ok(h.last_error_kind != NULL && strstr(h.last_error, "after its deadline") != NULL,
       "health names the overrun: %s", h.last_error);
    faultvfs_set_sync_delay(0);
    spool_id_new(&id);
    ok(spool_store(s, &id, "shed", 4, NULL, &err) == -1 && err.kind == SPOOL_UNHEALTHY,
       "while latched, stores fail fast with unhealthy");
    spool_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
