/*
 * fork.c: a spool across fork().  SQLite's lock bookkeeping is per
 * process and a child inherits it, so a child must never open a database
 * its parent had open at fork time (the parent's close would then delete
 * the WAL the child writes into); an inherited handle says it is closed;
 * a registered name is free again in the child; a spool shut down before
 * the fork opens in the child.  A LocalDisk spool's lock (flock) refuses
 * a child's open while the parent has it open.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spool.h"
#include "tap.h"

/* Runs fn in a child; returns its exit status (0 = the child's checks held). */
static int in_child(int (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(arg));
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

typedef struct ctx {
    spool *parent;
    const char *dir, *other;
} ctx;

/* The child opens the parent's path afresh: refused with misuse, naming
 * the fork, and nothing in the directory is touched. */
static int child_reopens(void *arg)
{
    ctx *c = arg;
    spool_params p;
    spool_error err;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = c->dir;
    if (spool_open(&p, &s, &err) == 0) {
        spool_close(s);
        return 1;
    }
    if (err.kind != SPOOL_MISUSE)
        return 2;
    if (strstr(err.message, "fork") == NULL || strstr(err.message, "parent") == NULL)
        return 3;
    return 0;
}

/* The inherited handle reports itself closed and unhealthy. */
static int child_inherited(void *arg)
{
    ctx *c = arg;
    char why[256];
    spool_health h;
    spool_error err;
    if (!spool_is_closed(c->parent))
        return 1;
    if (spool_unhealthy_reason(c->parent) == NULL)
        return 2;
    if (spool_closed_reason(c->parent, why, sizeof why) == NULL || strstr(why, "fork") == NULL)
        return 3;
    if (spool_get_health(c->parent, &h, &err) != -1 || err.kind != SPOOL_CLOSED)
        return 4;
    return 0;
}

/* The name "data" is free in the child: defining it on another
 * directory works, and a grandchild cannot reopen that one either. */
static int grandchild_reopens(void *arg)
{
    ctx *c = arg;
    ctx g = {NULL, c->other, NULL};
    return child_reopens(&g) == 0 ? 0 : 10;
}

static int child_redefines(void *arg)
{
    ctx *c = arg;
    spool_params p;
    spool_error err;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = c->other;
    if (spool_define("data", &p, &s, &err) != 0) {
        fprintf(stderr, "child define: %s\n", err.message);
        return 1;
    }
    spool_id id;
    spool_id_new(&id);
    if (spool_store(s, &id, "child", 5, NULL, &err) != 0)
        return 2;
    int rc = in_child(grandchild_reopens, c);
    spool_close(s);
    return rc == 0 ? 0 : 3;
}

/* After the parent shut its spool down before forking, the child may
 * open it: nothing of SQLite's survives to be inherited. */
static int child_opens_closed(void *arg)
{
    ctx *c = arg;
    spool_params p;
    spool_error err;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = c->dir;
    if (spool_open(&p, &s, &err) != 0) {
        fprintf(stderr, "child open: %s\n", err.message);
        return 1;
    }
    spool_id id;
    spool_id_new(&id);
    int rc = spool_store(s, &id, "after", 5, NULL, &err);
    spool_close(s);
    return rc == 0 ? 0 : 2;
}

/* Threads that keep the process-wide locks busy (the id generator's,
 * the registry's, the open-files list's) while the main thread forks:
 * a child inherits a lock in whatever state the fork found it. */
static atomic_int stop_busy;
static const char *busy_dir, *busy_other;

static void *busy_ids(void *arg)
{
    (void)arg;
    spool_id id;
    while (!atomic_load(&stop_busy))
        spool_id_new(&id);
    return NULL;
}

static void *busy_registry(void *arg)
{
    (void)arg;
    spool_params p;
    spool_error err;
    spool_params_init(&p);
    p.path = busy_dir;
    while (!atomic_load(&stop_busy)) {
        spool *s = NULL;
        if (spool_define("busy", &p, &s, &err) == 0)
            spool_close(s);
        spool *l = spool_lookup("nothing");
        if (l != NULL)
            spool_release(l);
    }
    return NULL;
}

static void *busy_open_files(void *arg)
{
    (void)arg;
    spool_params p;
    spool_error err;
    spool_params_init(&p);
    p.path = busy_other;
    spool_params_tune_number(&p, "sqlite", "exclusive", 1, NULL); /* refused at the open-files check: another handle has it */
    while (!atomic_load(&stop_busy)) {
        spool *s = NULL;
        if (spool_open(&p, &s, &err) == 0)
            spool_close(s);
    }
    return NULL;
}

/* A child forked while the other threads held the locks makes an id,
 * looks a name up and defines a spool of its own without hanging. */
static int child_after_busy_fork(void *arg)
{
    const char *dir = arg;
    alarm(getenv("SPOOL_SANITIZE") ? 60 : 10); /* a hang is a failure, not a stuck test */
    spool_id id;
    if (spool_id_new(&id) != 0)
        return 1;
    spool *l = spool_lookup("busy");
    if (l != NULL)
        return 2; /* inherited: closed in the child */
    spool_params p;
    spool_error err;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = dir;
    if (spool_define("mine", &p, &s, &err) != 0) {
        fprintf(stderr, "child define: %s\n", err.message);
        return 3;
    }
    spool_close(s);
    return 0;
}

/* Forks `rounds` times while three threads hold the locks; returns how
 * many children failed or hung. */
static int fork_while_busy(const char *root, int rounds)
{
    char dir[256], other[256];
    snprintf(dir, sizeof dir, "%s/busy", root);
    snprintf(other, sizeof other, "%s/other", root);
    busy_dir = dir;
    busy_other = other;
    spool_params p;
    spool_error err;
    spool *held = NULL;
    spool_params_init(&p);
    p.path = other;
    if (spool_open(&p, &held, &err) != 0)
        return rounds;
    pthread_t th[3];
    atomic_store(&stop_busy, 0);
    pthread_create(&th[0], NULL, busy_ids, NULL);
    pthread_create(&th[1], NULL, busy_registry, NULL);
    pthread_create(&th[2], NULL, busy_open_files, NULL);
    int bad = 0;
    for (int i = 0; i < rounds; i++) {
        char mine[256];
        snprintf(mine, sizeof mine, "%s/child-%d", root, i);
        usleep(1000);
        int rc = in_child(child_after_busy_fork, mine);
        if (rc != 0) {
            printf("# child %d: %s %d\n", i, rc >= 100 ? "killed by signal" : "failed check", rc >= 100 ? rc - 100 : rc);
            bad++;
        }
    }
    atomic_store(&stop_busy, 1);
    for (int t = 0; t < 3; t++)
        pthread_join(th[t], NULL);
    spool_close(held);
    return bad;
}

/* LocalDisk: the parent's lock refuses the child's open of the same
 * directory (busy, naming the parent's pid) and nothing is touched; the
 * inherited handle is closed in the child. */
static int child_localdisk(void *arg)
{
    ctx *c = arg;
    if (!spool_is_closed(c->parent))
        return 1;
    spool_params p;
    spool_error err;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = c->dir;
    if (spool_open(&p, &s, &err) == 0) {
        spool_close(s);
        return 2;
    }
    char pid[32];
    snprintf(pid, sizeof pid, "process %ld", (long)getppid());
    return err.kind == SPOOL_BUSY && strstr(err.message, pid) != NULL ? 0 : 3;
}

/* LocalDisk: once the parent has closed the spool, a child that was
 * forked while it was open can open it (the child dropped its copy of the
 * lock at fork), and so can the parent again afterwards. */
static int child_localdisk_after_close(void *arg)
{
    ctx *c = arg;
    /* Wait for the parent's close: the parent writes `other` after it. */
    for (int i = 0; i < 500 && access(c->other, F_OK) != 0; i++)
        usleep(10000);
    spool_params p;
    spool_error err;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = c->dir;
    if (spool_open(&p, &s, &err) != 0) {
        fprintf(stderr, "child open: %s\n", err.message);
        return 1;
    }
    spool_id id;
    spool_id_new(&id);
    int rc = spool_store(s, &id, "child", 5, NULL, &err) == 0 ? 0 : 2;
    spool_close(s);
    return rc;
}

/* Forks with a LocalDisk spool open.  Returns the number of failed
 * checks, reported as TAP. */
static void localdisk_fork(const char *root)
{
    char dir[256], flag[256];
    snprintf(dir, sizeof dir, "%s/localdisk", root);
    snprintf(flag, sizeof flag, "%s/parent-closed", root);
    spool_params p;
    spool_error err;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = dir;
    p.kind = "LocalDisk";
    ok(spool_open(&p, &s, &err) == 0, "the parent opens a LocalDisk spool");
    ctx c = {.parent = s, .dir = dir, .other = flag};
    ok(in_child(child_localdisk, &c) == 0,
       "a child's open of the parent's LocalDisk directory is refused as busy, naming the parent");
    spool_id id;
    spool_id_new(&id);
    ok(spool_store(s, &id, "parent", 6, NULL, &err) == 0, "the parent's handle still works after the child");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_localdisk_after_close(&c));
    spool_close(s);
    FILE *f = fopen(flag, "w");
    if (f)
        fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "a child forked while the spool was open opens it once the parent has closed it");
    s = NULL;
    ok(spool_open(&p, &s, &err) == 0, "and the parent opens it again afterwards (%s)", s ? "ok" : err.message);
    void *data;
    size_t len;
    ok(s != NULL && spool_load(s, &id, &data, &len, &err) == 0 && len == 6 && memcmp(data, "parent", 6) == 0,
       "the parent's entry survived");
    if (s != NULL && len == 6)
        spool_free(data);
    if (s != NULL)
        spool_close(s);
}

int main(void)
{
    char dir[] = "/tmp/spool-fork-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 2;
    char a[64], b[64];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    spool_params p;
    spool_error err;
    spool *s = NULL;
    spool_params_init(&p);
    p.path = a;
    ok(spool_define("data", &p, &s, &err) == 0, "the parent defines 'data' on %s", a);
    spool_id id;
    spool_id_new(&id);
    ok(spool_store(s, &id, "parent", 6, NULL, &err) == 0, "the parent stores");
    ctx c = {s, a, b};
    ok(in_child(child_reopens, &c) == 0,
       "a child opening the database its parent has open gets a misuse error naming the fork");
    ok(in_child(child_inherited, &c) == 0, "in a child the inherited handle is closed and unhealthy, and says why");
    ok(in_child(child_redefines, &c) == 0, "a child can define the inherited name on another directory");
    ok(spool_is_closed(s) == 0 && spool_store(s, &id, "parent", 6, NULL, &err) == 0,
       "the parent's handle is untouched by its children");
    spool_close(s);
    ok(in_child(child_opens_closed, &c) == 0, "a spool shut down before fork() opens in the child");
    s = NULL;
    p.path = a;
    ok(spool_open(&p, &s, &err) == 0, "the parent reopens");
    void *data = NULL;
    size_t len = 0;
    ok(s && spool_load(s, &id, &data, &len, &err) == 0 && len == 6 && memcmp(data, "parent", 6) == 0,
       "the parent's entry survived");
    spool_free(data);
    spool_close(s);
    localdisk_fork(dir);
    const char *sanitizer = getenv("SPOOL_SANITIZE");
    if (sanitizer != NULL && strcmp(sanitizer, "valgrind") == 0) {
        /* What the other threads were allocating when the process forked
         * cannot be freed in a child (those threads do not exist there),
         * and valgrind's leak check at the child's exit counts it.  This
         * round runs in make test, make asan and make tsan. */
        printf("ok %d - # SKIP under valgrind: a child inherits other threads' half-done allocations\n", ++tap_n);
    } else if (sanitizer != NULL && strcmp(sanitizer, "asan") == 0) {
        /* gcc 12's AddressSanitizer does not hold its allocator's locks
         * across fork(): a child forked while another thread was inside
         * malloc can block forever in its own first malloc (seen in CI:
         * a child hung in asan_calloc from sq_open, the ASan allocator's
         * mutex inherited held).  The round runs in make test and make
         * tsan, whose runtimes are fork-safe. */
        printf("ok %d - # SKIP under asan: gcc 12's ASan allocator is not fork-safe while other threads allocate\n",
               ++tap_n);
    } else {
        int rounds = sanitizer ? 10 : 40;
        ok(fork_while_busy(dir, rounds) == 0,
           "%d children forked while threads held the id, registry and open-files locks neither hung nor failed",
           rounds);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
