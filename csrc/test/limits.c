/*
 * limits.c: an entry larger than the largest a spool holds is refused
 * before anything is written: a misuse error naming its size and the
 * limit, not SQLite's "NOT NULL constraint failed" from inside a batch,
 * and it does not count toward the health gate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "spool.h"
#include "tap.h"

int main(void)
{
    char dir[] = "/tmp/spool-limits-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 2;
    spool_params p;
    spool_error err;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = dir;
    p.error_latch_duration = 0; /* any counted error would latch at once */
    ok(spool_open(&p, &s, &err) == 0, "open");
    /* 1.1 GB of address space never touched: the size check comes first. */
    size_t big = 1100u * 1000u * 1000u;
    void *buf = mmap(NULL, big, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ok(buf != MAP_FAILED, "map %zu bytes", big);
    spool_id id;
    spool_id_new(&id);
    int rc = spool_store(s, &id, buf, big, NULL, &err);
    ok(rc == -1 && err.kind == SPOOL_MISUSE, "an entry over the limit is misuse (kind %d: %s)", err.kind, err.message);
    ok(strstr(err.message, "1100000000") != NULL && strstr(err.message, "999999936") != NULL,
       "the error names the size and the limit: %s", err.message);
    spool_item items[2] = {{id, "small", 5}, {id, buf, big}};
    spool_id_new(&items[0].id);
    ok(spool_store_many(s, items, 2, NULL, &err) == -1 && err.kind == SPOOL_MISUSE,
       "store_many with one entry over the limit is refused whole");
    void *data;
    size_t len;
    ok(spool_load(s, &items[0].id, &data, &len, &err) == -1 && err.kind == SPOOL_NOT_FOUND,
       "nothing of the refused store_many was written");
    ok(spool_unhealthy_reason(s) == NULL, "the refusals did not latch the gate");
    ok(spool_store(s, &id, "fits", 4, NULL, &err) == 0, "a store that fits still works");
    munmap(buf, big);
    spool_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
