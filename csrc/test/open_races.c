/*
 * open_races.c: a SQLite spool's -wal or -shm file that another
 * process's last connection deletes while this process opens the spool
 * is not a reason to refuse the open.  Two nginx workers opening one
 * spool at start hit it: one saw the -wal file, the other's connection
 * closed and removed it, and the first refused the open with "no read
 * access: No such file or directory".
 *
 * The window is made certain by wrapping faccessat (-Wl,--wrap): when
 * armed, the wrapper deletes the named file before checking it, as the
 * other process would have.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"
#include "tap.h"

int __real_faccessat(int dirfd, const char *path, int mode, int flags);

static const char *vanish_suffix; /* armed: the file whose check deletes it first */
static int vanished;

int __wrap_faccessat(int dirfd, const char *path, int mode, int flags)
{
    size_t n = strlen(path), k = vanish_suffix ? strlen(vanish_suffix) : 0;
    if (k && n >= k && strcmp(path + n - k, vanish_suffix) == 0 && unlink(path) == 0)
        vanished++;
    return __real_faccessat(dirfd, path, mode, flags);
}

/* Creates an empty file dir/name, as a connection of another process
 * leaves its -wal and -shm while it is open.  Returns 0 or -1. */
static int touch(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/spool-open-races-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 2;
    spool_params p;
    spool_error err = {0};
    spool *s = NULL;
    spool_params_init(&p);
    p.path = dir;
    spool_id id;
    spool_id_new(&id);
    ok(spool_open(&p, &s, &err) == 0, "open a new spool (%s)", err.message);
    ok(s && spool_store(s, &id, "kept", 4, NULL, &err) == 0, "store an entry");
    spool_close(s);
    s = NULL;

    static const char *const suffixes[] = {"spool.db-wal", "spool.db-shm"};
    for (int i = 0; i < 2; i++) {
        ok(touch(dir, "spool.db-wal") == 0 && touch(dir, "spool.db-shm") == 0,
           "another connection's empty -wal and -shm files are there");
        vanish_suffix = suffixes[i];
        vanished = 0;
        int rc = spool_open(&p, &s, &err);
        vanish_suffix = NULL;
        ok(vanished == 1, "%s was deleted between its lstat and its access check", suffixes[i]);
        ok(rc == 0, "the open succeeds all the same (%s)", rc == 0 ? "ok" : err.message);
        void *data = NULL;
        size_t len = 0;
        ok(rc == 0 && spool_load(s, &id, &data, &len, &err) == 0 && len == 4 && memcmp(data, "kept", 4) == 0,
           "the stored entry loads");
        spool_free(data);
        spool_close(s);
        s = NULL;
    }

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
