/*
 * spool_localdisk.c: the LocalDisk backend, file-compatible with KumoMTA's
 * LocalDisk spool (facts in ../shared/reference/FACTS.md):
 *
 *   <dir>/lock                    flock()ed by the one process using it, "<pid>\n"
 *   <dir>/new/.tmp??????          a store's bytes before they are renamed into place
 *   <dir>/data/aa/bb/cc/dd/<24 hex>   one file per entry: the raw bytes
 *
 * and, of this project's own (kumod never looks there):
 *
 *   <dir>/quarantine/<32 hex>     entries moved aside, with <32 hex>.why
 *                                 holding "<unix seconds> <reason>"
 *   <dir>/spool.name              the registry name recorded at first define
 *
 * Where KumoMTA is weaker this backend does more without changing the
 * format: a durable store also syncs the directories it renamed into or
 * created (a power loss cannot lose a renamed file), a remove prunes the
 * directories it emptied, and enumerate keeps one DIR handle per level, so
 * memory stays flat over millions of files.  The format has no checksum:
 * an unreadable file, or a name that is not an id, is reported as corrupt,
 * never deleted.  Every file and directory is opened relative to the
 * spool's directory without following links.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool_backend.h"
#include "spool_file.h"
#include "spool_fork.h"

#define LEVELS 4 /* aa/bb/cc/dd */
#define CLEANUP_STEP 256 /* directory entries looked at per cleanup() */

typedef struct ld {
    char *dir;
    int dirfd, datafd, newfd, qfd, lockfd;
    int flush;
    mode_t file_mode, dir_mode;
    /* cleanup()'s walk, resumed where the last call stopped */
    pthread_mutex_t cleanup_lock;
    DIR *walk[LEVELS];
    char walk_names[LEVELS][3];
    int walk_depth;
    atomic_llong quarantined;
    /* Creating a directory and renaming an entry into it (read side)
     * against removing empty directories (write side, only ever tried):
     * a directory a store just made is never pruned before its entry is
     * in it. */
    pthread_rwlock_t shape;
    struct ld *next_open; /* the list of open spools, for fork() */
} ld;

/* The open LocalDisk spools of this process.  A forked child closes its
 * copies of their lock files at once: flock() locks belong to the open
 * file, so a child that kept the copy would hold the parent's lock after
 * the parent closed its spool, and the parent could not open it again. */
static ld *open_spools;
static pthread_mutex_t open_spools_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void close_locks_in_child(void)
{
    /* One thread now, and the list was not being changed: its mutex was
     * held across the fork (spool_fork_hold). */
    for (ld *s = open_spools; s != NULL; s = s->next_open) {
        if (s->lockfd >= 0)
            close(s->lockfd);
        s->lockfd = -1;
    }
}

static void install_fork_handlers(void)
{
    spool_fork_hold_mutex(&open_spools_lock);
    pthread_atfork(NULL, NULL, close_locks_in_child);
}

static void remember_open(ld *s)
{
    pthread_once(&fork_once, install_fork_handlers);
    pthread_mutex_lock(&open_spools_lock);
    s->next_open = open_spools;
    open_spools = s;
    pthread_mutex_unlock(&open_spools_lock);
}

static void forget_open(ld *s)
{
    pthread_mutex_lock(&open_spools_lock);
    for (ld **p = &open_spools; *p != NULL; p = &(*p)->next_open) {
        if (*p == s) {
            *p = s->next_open;
            break;
        }
    }
    pthread_mutex_unlock(&open_spools_lock);
}


/* A new open file description of the subdirectory `name` (a dup() would
 * share the directory's read offset with every other reader).  Returns
 * the fd or -1 with errno. */
static int reopen_dir(ld *s, const char *name)
{
    return openat(s->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}


/* Opens (creating with mode) the directory `name` under `at`, never
 * through a link.  Returns the fd, or -1 with errno. */
static int open_dir_at(int at, const char *name, mode_t mode, int create)
{
    if (create && mkdirat(at, name, mode) != 0 && errno != EEXIST)
        return -1;
    return openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The four directory names and the file name of id. */
static void id_parts(const spool_id *id, char dirs[LEVELS][3], char file[25])
{
    char hex[SPOOL_ID_TEXT + 1];
    spool_id_format(id, hex);
    for (int i = 0; i < LEVELS; i++) {
        dirs[i][0] = hex[2 * i];
        dirs[i][1] = hex[2 * i + 1];
        dirs[i][2] = '\0';
    }
    memcpy(file, hex + 2 * LEVELS, 24);
    file[24] = '\0';
}

/* Opens the leaf directory of id under data/, creating the missing levels
 * when `create`; *created = how many levels were made.  Returns the fd or
 * -1 with errno. */
static int open_leaf(ld *s, const char dirs[LEVELS][3], int create, int *created)
{
    int fd = s->datafd, made = 0;
    for (int i = 0; i < LEVELS; i++) {
        int next = -1, mk = create ? mkdirat(fd, dirs[i], s->dir_mode) : -1;
        if (mk == 0)
            made++;
        if (!create || mk == 0 || errno == EEXIST)
            next = openat(fd, dirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        if (fd != s->datafd)
            close(fd);
        if (next < 0) {
            errno = e;
            return -1;
        }
        fd = next;
    }
    if (created)
        *created = made;
    return fd;
}

/* The data/ path of id, for messages. */
static void entry_name(const spool_id *id, char out[8 + SPOOL_ID_PATH_SUFFIX + 1])
{
    char suffix[SPOOL_ID_PATH_SUFFIX + 1];
    spool_id_path_suffix(id, suffix);
    snprintf(out, 8 + SPOOL_ID_PATH_SUFFIX + 1, "data%s", suffix);
}

/* Removes the empty directories of id's path, deepest first, stopping at
 * the first that is not empty.  Errors are ignored: a directory left
 * behind is pruned later. */
static void prune_path(ld *s, const char dirs[LEVELS][3])
{
    if (pthread_rwlock_trywrlock(&s->shape) != 0)
        return; /* a store is making directories: prune later */
    char path[LEVELS * 3];
    for (int depth = LEVELS; depth > 0; depth--) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            n += (size_t)snprintf(path + n, sizeof path - n, i ? "/%s" : "%s", dirs[i]);
        if (unlinkat(s->datafd, path, AT_REMOVEDIR) != 0)
            break;
    }
    pthread_rwlock_unlock(&s->shape);
}

/* Removes the directory `name` under `at` if it is empty and no store is
 * making directories.  Returns 1 when it was removed. */
static int prune_dir(ld *s, int at, const char *name)
{
    if (pthread_rwlock_trywrlock(&s->shape) != 0)
        return 0;
    int removed = unlinkat(at, name, AT_REMOVEDIR) == 0;
    pthread_rwlock_unlock(&s->shape);
    return removed;
}

/* ---------------------------------------------------------------- open */

/* Takes the lock file the way KumoMTA does (flock, "<pid>\n", sticky
 * bit).  Returns 0, or -1 with err naming the holder. */
static int take_lock(ld *s, spool_error *err)
{
    s->lockfd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, s->file_mode);
    if (s->lockfd < 0)
        return spool_file_fail(err, errno, "open lock file", s->dir, "lock");
    struct stat st;
    if (fstat(s->lockfd, &st) != 0 || !S_ISREG(st.st_mode))
        return spool_error_set(err, SPOOL_IO, "%s/lock is not a regular file", s->dir);
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t r = pread(s->lockfd, pid, sizeof pid - 1, 0);
        pid[r > 0 ? r : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            return spool_error_set(err, SPOOL_BUSY,
                                   "%s is in use by process %s (its lock file is held): a LocalDisk spool "
                                   "is used by one process at a time",
                                   s->dir, pid[0] ? pid : "(unknown)");
        return spool_file_fail(err, e, "lock", s->dir, "lock");
    }
    char line[32];
    int n = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(s->lockfd, 0) != 0 || pwrite(s->lockfd, line, (size_t)n, 0) != n)
        return spool_file_fail(err, errno, "write lock file", s->dir, "lock");
    fchmod(s->lockfd, (st.st_mode & 07777) | S_ISVTX); /* so that tmpwatch leaves it */
    return 0;
}


/* Deletes what a crash left in new/ (no store of this process is under
 * way: the lock was just taken). */
static void purge_new(ld *s)
{
    int fd = reopen_dir(s, "new");
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
            unlinkat(s->newfd, e->d_name, 0);
    closedir(d);
}

static void ld_free(ld *s, int leak)
{
    forget_open(s);
    for (int i = 0; i < LEVELS; i++)
        if (s->walk[i] != NULL)
            closedir(s->walk[i]);
    int fds[] = {s->qfd, s->newfd, s->datafd, s->dirfd, s->lockfd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]); /* in a child, the parent's flock stays: it is the parent's description */
    (void)leak;
    pthread_mutex_destroy(&s->cleanup_lock);
    pthread_rwlock_destroy(&s->shape);
    free(s->dir);
    free(s);
}

/* Counts the entries in quarantine/ (at open: a short, flat directory). */
static long long count_quarantined(ld *s)
{
    int fd = reopen_dir(s, "quarantine");
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    long long n = 0;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strlen(e->d_name) == SPOOL_ID_TEXT;
    closedir(d);
    return n;
}

static int ld_open(const spool_params *p, const void *tuning, void **state, spool_error *err)
{
    (void)tuning; /* LocalDisk has no tuning */
    ld *s = calloc(1, sizeof *s);
    if (s == NULL)
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening %s", p->path);
    s->dirfd = s->datafd = s->newfd = s->qfd = s->lockfd = -1;
    pthread_mutex_init(&s->cleanup_lock, NULL);
    pthread_rwlock_init(&s->shape, NULL);
    s->flush = p->flush;
    s->dir_mode = p->group_access ? 0750 : 0700;
    s->file_mode = p->group_access ? 0640 : 0600;
    if ((s->dir = strdup(p->path)) == NULL) {
        ld_free(s, 0);
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening %s", p->path);
    }
    /* The directory itself may be reached through the operator's links. */
    if ((mkdir(s->dir, s->dir_mode) != 0 && errno != EEXIST) ||
        (s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int e = errno;
        ld_free(s, 0);
        spool_error_set(err, SPOOL_IO, "path: cannot create or use the directory %s: %s", p->path,
                        e == ENOTDIR ? "not a directory" : strerror(e));
        err->sys_errno = err->code = e;
        err->code_name = spool_errno_name(e);
        return -1;
    }
    if (faccessat(s->dirfd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        int e = errno;
        ld_free(s, 0);
        spool_error_set(err, SPOOL_IO, "open %s: the directory is not writable by this user (%s)", p->path,
                        strerror(e));
        err->sys_errno = err->code = e;
        err->code_name = spool_errno_name(e);
        return -1;
    }
    if (take_lock(s, err) != 0 || spool_file_record_name(s->dirfd, s->dir, p->name, s->file_mode, err) != 0) {
        ld_free(s, 0);
        return -1;
    }
    const char *sub[] = {"new", "data", "quarantine"};
    int *fds[] = {&s->newfd, &s->datafd, &s->qfd};
    for (int i = 0; i < 3; i++) {
        if ((*fds[i] = open_dir_at(s->dirfd, sub[i], s->dir_mode, 1)) < 0) {
            int e = errno;
            ld_free(s, 0);
            return spool_file_fail(err, e, "open directory", p->path, sub[i]);
        }
    }
    purge_new(s);
    atomic_init(&s->quarantined, count_quarantined(s));
    remember_open(s);
    *state = s;
    return 0;
}

/* ---------------------------------------------------------------- store */

/* A store's file in new/, written but not yet renamed. */
typedef struct pending {
    char tmp[16];
    char dirs[LEVELS][3];
    char file[25];
    int leaf;  /* fd of the leaf directory, once open */
    int created;
    int replaced;
    int renamed;
} pending;

/* Writes one item into a new temporary file.  Returns 0 or -1 with err. */
static int write_tmp(ld *s, const spool_item *it, int durable, pending *pd, spool_error *err)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned char rnd[6];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            return spool_file_fail(err, errno, "random name in", s->dir, "new");
        memcpy(pd->tmp, ".tmp", 4);
        for (int i = 0; i < 6; i++)
            pd->tmp[4 + i] = alnum[rnd[i] % (sizeof alnum - 1)];
        pd->tmp[10] = '\0';
        int fd = openat(s->newfd, pd->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, s->file_mode);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return spool_file_fail(err, errno, "create", s->dir, "new/.tmp");
        int rc = spool_file_write_all(fd, it->len ? it->data : "", it->len);
        if (rc == 0 && durable)
            rc = fdatasync(fd);
        int e = errno;
        if (close(fd) != 0 && rc == 0) {
            rc = -1;
            e = errno;
        }
        if (rc != 0) {
            unlinkat(s->newfd, pd->tmp, 0);
            pd->tmp[0] = '\0';
            return spool_file_fail(err, e, "write", s->dir, "new/.tmp");
        }
        return 0;
    }
    return spool_error_set(err, SPOOL_INTERNAL, "no free temporary name in %s/new", s->dir);
}

/* Undoes a failed store_many: temporary files go, entries renamed that
 * did not replace one go; a replaced entry cannot be put back (the error
 * is then marked ambiguous). */
static void undo(ld *s, pending *pd, size_t n, spool_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (pd[i].renamed) {
            if (pd[i].replaced)
                err->ambiguous = 1;
            else
                unlinkat(pd[i].leaf, pd[i].file, 0);
        } else if (pd[i].tmp[0]) {
            unlinkat(s->newfd, pd[i].tmp, 0);
        }
    }
}

/* Closes the leaf directories of pd and frees it; with rc != 0 first
 * undoes what it did. */
static void store_finish(ld *s, pending *pd, size_t n, int rc, spool_error *err)
{
    if (rc != 0)
        undo(s, pd, n, err);
    for (size_t i = 0; i < n; i++)
        if (pd[i].leaf >= 0)
            close(pd[i].leaf);
    free(pd);
}

/* The first part of a store: every item written to new/ (synced when
 * durable), then renamed into place.  Returns 0 with *out the pending
 * records for the directory syncs and store_finish, or -1 with err and
 * nothing left behind. */
static int store_prepare(ld *s, const spool_item *items, size_t n, int durable, const spool_deadline *dl,
                         pending **out, spool_error *err)
{
    /* No wait here, so no deadline to keep: a store whose deadline has
     * passed is made (the core counts it as an overrun), as on SQLite
     * when its lock is free. */
    (void)dl;
    *out = NULL;
    pending *pd = calloc(n ? n : 1, sizeof *pd);
    if (pd == NULL)
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory storing %zu entries", n);
    int rc = 0;
    size_t i;
    for (i = 0; i < n; i++)
        pd[i].leaf = -1;
    /* Every item's bytes are written before any is renamed into place:
     * a write failure (a full disk) leaves nothing. */
    for (i = 0; i < n && rc == 0; i++) {
        id_parts(&items[i].id, pd[i].dirs, pd[i].file);
        rc = write_tmp(s, &items[i], durable, &pd[i], err);
    }
    /* Then the directories, then the renames, with no pruning between. */
    pthread_rwlock_rdlock(&s->shape);
    for (i = 0; i < n && rc == 0; i++) {
        /* A remove or cleanup may prune a directory between its
         * creation here and the rename: make it again. */
        int attempt = 0;
        for (;;) {
            if (pd[i].leaf < 0 && (pd[i].leaf = open_leaf(s, pd[i].dirs, 1, &pd[i].created)) < 0) {
                if (errno == ENOENT && ++attempt < 5)
                    continue;
                rc = spool_file_fail(err, errno, "create directory for", s->dir, pd[i].file);
                break;
            }
            struct stat old;
            pd[i].replaced = fstatat(pd[i].leaf, pd[i].file, &old, AT_SYMLINK_NOFOLLOW) == 0;
            if (renameat(s->newfd, pd[i].tmp, pd[i].leaf, pd[i].file) == 0) {
                pd[i].renamed = 1;
                break;
            }
            int e = errno;
            if (e == ENOENT && ++attempt < 5) {
                close(pd[i].leaf);
                pd[i].leaf = -1;
                continue;
            }
            rc = spool_file_fail(err, e, "rename into", s->dir, pd[i].file);
            break;
        }
    }
    pthread_rwlock_unlock(&s->shape);
    if (rc != 0) {
        store_finish(s, pd, n, rc, err);
        return -1;
    }
    *out = pd;
    return 0;
}

/* The directories a durable store must sync: the leaf of each item (the
 * rename) and, for each level the store created, that level's parent;
 * as paths under data/ ("" for data/ itself).  Calls fn(ud, path) for
 * each, stopping at the first nonzero answer, which it returns. */
static int store_dirs(const pending *pd, size_t n, int (*fn)(void *ud, const char *path), void *ud)
{
    for (size_t i = 0; i < n; i++) {
        for (int up = -1; up < pd[i].created; up++) {
            char path[LEVELS * 3] = "";
            size_t len = 0;
            int depth = LEVELS - 1 - up; /* up = -1: the leaf itself */
            for (int d = 0; d < depth; d++)
                len += (size_t)snprintf(path + len, sizeof path - len, d ? "/%s" : "%s", pd[i].dirs[d]);
            int rc = fn(ud, path);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* Syncs the directory data/<path>.  Returns 0, or errno. */
static int sync_dir(ld *s, const char *path)
{
    int fd = path[0] == '\0' ? dup(s->datafd)
                              : openat(s->datafd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = fd < 0 || fsync(fd) != 0 ? errno : 0;
    if (fd >= 0)
        close(fd);
    return e;
}

typedef struct sync_one_args {
    ld *s;
    int e;
    char path[5 + LEVELS * 3]; /* the one that failed, under data/ */
} sync_one_args;

static int sync_one(void *ud, const char *path)
{
    sync_one_args *a = ud;
    snprintf(a->path, sizeof a->path, "data%s%s", path[0] ? "/" : "", path);
    return (a->e = sync_dir(a->s, path));
}

/* ---------------------------------------------------------- batches */

static int ld_remove(void *st, const spool_id *ids, size_t n, int force_sync, const spool_deadline *dl,
                     size_t *removed, spool_error *err);

/* The directories a batch must sync, each once. */
typedef struct dir_set {
    size_t n;
    struct {
        char path[LEVELS * 3];
        int e; /* its fsync's errno, once synced */
    } d[SPOOL_GROUP_MAX * 2];
} dir_set;

static int dir_add(void *ud, const char *path)
{
    dir_set *set = ud;
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->d[i].path, path) == 0)
            return 0;
    if (set->n == sizeof set->d / sizeof set->d[0])
        return 1; /* full: the caller syncs the rest on its own */
    snprintf(set->d[set->n].path, sizeof set->d[set->n].path, "%s", path);
    set->d[set->n++].e = 0;
    return 0;
}

typedef struct dir_check_args {
    const dir_set *set;
    int e;
    char path[5 + LEVELS * 3];
} dir_check_args;

/* Whether path's sync failed (1, with its errno and name kept). */
static int dir_failed(void *ud, const char *path)
{
    dir_check_args *a = ud;
    for (size_t i = 0; i < a->set->n; i++) {
        if (strcmp(a->set->d[i].path, path) == 0 && a->set->d[i].e != 0) {
            a->e = a->set->d[i].e;
            snprintf(a->path, sizeof a->path, "data%s%s", path[0] ? "/" : "", path);
            return 1;
        }
    }
    return 0;
}

/* The driver's apply_batch (spool_group.h): each store is written and
 * renamed into place as ld_store does it, but the directory syncs of the
 * batch's durable stores are made once per directory, after all of
 * them: stores made close together share their leaf, so a batch of
 * durable stores costs one file sync each and one directory sync in all,
 * not one of each per store.  A store whose directory sync failed is
 * undone and fails alone.  Removes run as ld_remove runs them. */
static void ld_apply_batch(void *st, spool_write_req **reqs, size_t n, int durable)
{
    (void)durable;
    ld *s = st;
    pending *pd[SPOOL_GROUP_MAX];
    dir_set *set = malloc(sizeof *set);
    int overflow = set == NULL;
    if (set != NULL)
        set->n = 0;
    for (size_t i = 0; i < n; i++) {
        spool_write_req *r = reqs[i];
        pd[i] = NULL;
        if (r->op == SPOOL_WRITE_REMOVE) {
            r->rc = ld_remove(s, r->ids, r->n, r->durable, r->dl, &r->removed, &r->err);
            continue;
        }
        int sync = r->durable || s->flush;
        r->rc = store_prepare(s, r->items, r->n, sync, r->dl, &pd[i], &r->err);
        if (r->rc == 0 && sync && !overflow && store_dirs(pd[i], r->n, dir_add, set) != 0)
            overflow = 1;
    }
    for (size_t k = 0; set != NULL && k < set->n; k++)
        set->d[k].e = sync_dir(s, set->d[k].path);
    for (size_t i = 0; i < n; i++) {
        spool_write_req *r = reqs[i];
        if (pd[i] == NULL)
            continue;
        int rc = 0;
        if (r->durable || s->flush) {
            if (overflow) {
                /* No room to share: this store syncs its own. */
                sync_one_args a = {s, 0, ""};
                if (store_dirs(pd[i], r->n, sync_one, &a) != 0)
                    rc = spool_file_fail(&r->err, a.e, "sync directory", s->dir, a.path);
            } else {
                dir_check_args a = {set, 0, ""};
                if (store_dirs(pd[i], r->n, dir_failed, &a) != 0)
                    rc = spool_file_fail(&r->err, a.e, "sync directory", s->dir, a.path);
            }
        }
        r->rc = rc;
        store_finish(s, pd[i], r->n, rc, &r->err);
    }
    free(set);
}

/* ---------------------------------------------------------------- load */


static int ld_load(void *st, const spool_id *id, spool_blob_fn fn, void *ud, const spool_deadline *dl,
                   spool_error *err)
{
    (void)dl;
    ld *s = st;
    char dirs[LEVELS][3], file[25], name[8 + SPOOL_ID_PATH_SUFFIX + 1];
    id_parts(id, dirs, file);
    entry_name(id, name);
    int leaf = open_leaf(s, dirs, 0, NULL);
    char *buf = NULL;
    size_t len = 0;
    int rc = leaf < 0 ? -1 : spool_file_read(leaf, file, &buf, &len);
    int e = errno;
    if (leaf >= 0)
        close(leaf);
    if (rc != 0) {
        char hex[SPOOL_ID_TEXT + 1];
        spool_id_format(id, hex);
        if (e == ENOENT || e == ENOTDIR)
            return spool_error_set(err, SPOOL_NOT_FOUND, "no entry %s in %s", hex, s->dir);
        if (e == EINVAL || e == ELOOP)
            return spool_error_set(err, SPOOL_CORRUPT, "%s/%s is not a regular file", s->dir, name);
        return spool_file_fail(err, e, "read", s->dir, name);
    }
    rc = fn(ud, buf, len);
    free(buf);
    if (rc != 0)
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory loading %zu bytes", len);
    return 0;
}

/* ---------------------------------------------------------------- remove */

static int ld_remove(void *st, const spool_id *ids, size_t n, int force_sync, const spool_deadline *dl,
                     size_t *removed, spool_error *err)
{
    ld *s = st;
    int durable = force_sync || s->flush;
    *removed = 0;
    (void)dl; /* nothing to wait for: see store_prepare */
    for (size_t i = 0; i < n; i++) {
        char dirs[LEVELS][3], file[25], name[8 + SPOOL_ID_PATH_SUFFIX + 1];
        id_parts(&ids[i], dirs, file);
        entry_name(&ids[i], name);
        int leaf = open_leaf(s, dirs, 0, NULL);
        if (leaf < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                continue;
            return spool_file_fail(err, errno, "remove", s->dir, name);
        }
        if (unlinkat(leaf, file, 0) != 0) {
            int e = errno;
            close(leaf);
            if (e == ENOENT)
                continue;
            return spool_file_fail(err, e, "remove", s->dir, name);
        }
        (*removed)++;
        int rc = durable ? fsync(leaf) : 0;
        int e = errno;
        close(leaf);
        if (rc != 0)
            return spool_file_fail(err, e, "sync directory of", s->dir, name);
        prune_path(s, dirs);
    }
    return 0;
}

/* ---------------------------------------------------------------- cursor */

/* One directory of the walk: its names, read at once and sorted, so that
 * entries come in the order of their ids' bytes (the order of their hex
 * text) - the same order in every LocalDisk spool, whatever the file
 * system's.  A directory level holds at most 256 names; a leaf, the few
 * ids that share its 32 bits. */
typedef struct level {
    int fd;
    char **names;
    size_t n, i;
} level;

typedef struct ld_cursor {
    ld *s;
    spool_enum_opts o;
    int64_t start;
    level lv[LEVELS + 1];
    int depth; /* levels open: 0 at the end */
    char *buf;
    char path[320];
    char error[SPOOL_ERROR_MESSAGE_MAX];
    char reason[SPOOL_ERROR_MESSAGE_MAX];
} ld_cursor;

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void level_free(level *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    if (l->fd >= 0)
        close(l->fd);
    memset(l, 0, sizeof *l);
    l->fd = -1;
}

/* Reads and sorts the names of the directory fd (taken).  Returns 0, or
 * -1 with errno (fd closed). */
static int level_read(level *l, int fd)
{
    memset(l, 0, sizeof *l);
    l->fd = fd;
    int rfd = dup(fd); /* closedir closes it; fd stays for openat */
    DIR *d = rfd < 0 ? NULL : fdopendir(rfd);
    if (d == NULL) {
        int e = errno;
        if (rfd >= 0)
            close(rfd);
        level_free(l);
        errno = e;
        return -1;
    }
    rewinddir(d);
    size_t cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (l->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **bigger = realloc(l->names, ncap * sizeof *bigger);
            if (bigger == NULL)
                goto nomem;
            l->names = bigger;
            cap = ncap;
        }
        if ((l->names[l->n] = strdup(de->d_name)) == NULL)
            goto nomem;
        l->n++;
        errno = 0;
    }
    int e = errno;
    closedir(d);
    if (e != 0) {
        level_free(l);
        errno = e;
        return -1;
    }
    if (l->n > 1)
        qsort(l->names, l->n, sizeof *l->names, by_name);
    return 0;
nomem:
    closedir(d);
    level_free(l);
    errno = ENOMEM;
    return -1;
}

static int ld_cursor_open(void *st, const spool_enum_opts *o, void **out, spool_error *err)
{
    ld *s = st;
    ld_cursor *c = calloc(1, sizeof *c);
    if (c == NULL)
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening a cursor");
    for (int i = 0; i <= LEVELS; i++)
        c->lv[i].fd = -1;
    c->s = s;
    c->o = *o;
    c->start = o->has_start ? o->start_100ns : spool_id_now_unix_100ns();
    const char *top = o->which == SPOOL_QUARANTINE ? "quarantine" : "data";
    int fd = reopen_dir(s, top);
    if (fd < 0 || level_read(&c->lv[0], fd) != 0) {
        int e = errno;
        free(c);
        return spool_file_fail(err, e, "read directory", s->dir, top);
    }
    c->depth = 1;
    *out = c;
    return 0;
}

/* Whether s names a two-digit lowercase hex directory level. */
static int is_hex_level(const char *n)
{
    return strlen(n) == 2 && strspn(n, "0123456789abcdef") == 2;
}

/* Reads the reason file of a quarantined entry. */
static void read_reason(ld_cursor *c, const char *hex, spool_entry *e)
{
    char why[SPOOL_ID_TEXT + 8], *buf = NULL;
    size_t len = 0;
    snprintf(why, sizeof why, "%s.why", hex);
    e->reason = "";
    e->time = 0;
    if (spool_file_read(c->s->qfd, why, &buf, &len) != 0)
        return;
    char *space = memchr(buf, ' ', len);
    size_t rlen = space ? len - (size_t)(space + 1 - buf) : 0;
    if (rlen >= sizeof c->reason)
        rlen = sizeof c->reason - 1;
    if (space)
        memcpy(c->reason, space + 1, rlen);
    c->reason[rlen] = '\0';
    e->time = strtod(buf, NULL);
    e->reason = c->reason;
    free(buf);
}

/* The path of name under the current levels, relative to the spool. */
static void cursor_path(ld_cursor *c, const char *name)
{
    size_t n = (size_t)snprintf(c->path, sizeof c->path, "%s",
                                c->o.which == SPOOL_QUARANTINE ? "quarantine" : "data");
    for (int i = 0; i + 1 < c->depth && n < sizeof c->path; i++)
        n += (size_t)snprintf(c->path + n, sizeof c->path - n, "/%s", c->lv[i].names[c->lv[i].i - 1]);
    if (n < sizeof c->path)
        snprintf(c->path + n, sizeof c->path - n, "/%s", name);
}

/* Fills e from the file `name` of the current leaf (fd at).  Returns 1
 * to yield it, 0 to skip it. */
static int visit(ld_cursor *c, int at, const char *name, spool_entry *e)
{
    memset(e, 0, sizeof *e);
    int quarantine = c->o.which == SPOOL_QUARANTINE;
    const char *why = NULL;
    cursor_path(c, name);
    if (quarantine) {
        if (strlen(name) != SPOOL_ID_TEXT)
            return 0; /* a reason file, or not ours */
        e->id_valid = spool_id_parse(name, SPOOL_ID_TEXT, &e->id, &why) == 0;
    } else {
        e->id_valid = spool_id_from_path(c->path, strlen(c->path), &e->id, &why) == 0;
    }
    if (!e->id_valid) {
        e->corrupt = 1;
        snprintf(c->error, sizeof c->error, "%s/%s is not a spool entry (its path is not an id: %s)", c->s->dir,
                 c->path, why ? why : "bad name");
        e->error = c->error;
        return 1;
    }
    if (!quarantine && spool_id_unix_100ns(&e->id) >= c->start)
        return 0;
    if (quarantine)
        read_reason(c, name, e);
    if (c->o.ids_only)
        return 1;
    free(c->buf);
    c->buf = NULL;
    size_t len = 0;
    if (spool_file_read(at, name, &c->buf, &len) != 0) {
        int err = errno;
        if (err == ENOENT)
            return 0; /* removed since the directory was read */
        e->corrupt = 1;
        snprintf(c->error, sizeof c->error, "%s/%s cannot be read: %s", c->s->dir, c->path,
                 err == EINVAL ? "not a regular file" : strerror(err));
        e->error = c->error;
        return 1;
    }
    if (c->o.include_data) {
        e->data = c->buf;
        e->len = len;
    }
    return 1;
}

static int ld_cursor_next(void *cur, spool_entry *e, spool_error *err)
{
    ld_cursor *c = cur;
    int leaf_depth = c->o.which == SPOOL_QUARANTINE ? 1 : LEVELS + 1;
    while (c->depth > 0) {
        level *l = &c->lv[c->depth - 1];
        if (l->i == l->n) {
            level_free(l);
            c->depth--;
            if (c->depth > 0) {
                /* That directory is finished: prune it when empty, as
                 * KumoMTA's enumerate does. */
                level *up = &c->lv[c->depth - 1];
                prune_dir(c->s, up->fd, up->names[up->i - 1]);
            }
            continue;
        }
        const char *name = l->names[l->i++];
        if (c->depth == leaf_depth) {
            if (visit(c, l->fd, name, e))
                return 1;
            continue;
        }
        if (!is_hex_level(name)) {
            /* Not part of the layout: reported, never deleted. */
            cursor_path(c, name);
            memset(e, 0, sizeof *e);
            e->corrupt = 1;
            snprintf(c->error, sizeof c->error, "%s/%s is not part of a spool's layout", c->s->dir, c->path);
            e->error = c->error;
            return 1;
        }
        int fd = openat(l->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
            continue; /* pruned since it was listed */
        if (fd < 0 || level_read(&c->lv[c->depth], fd) != 0) {
            int e2 = errno;
            cursor_path(c, name);
            if (fd < 0 && e2 == ENOTDIR) {
                memset(e, 0, sizeof *e);
                e->corrupt = 1;
                snprintf(c->error, sizeof c->error, "%s/%s is not part of a spool's layout", c->s->dir, c->path);
                e->error = c->error;
                return 1;
            }
            return spool_file_fail(err, e2, "read directory", c->s->dir, c->path);
        }
        c->depth++;
    }
    return 0;
}

static void ld_cursor_close(void *cur)
{
    ld_cursor *c = cur;
    for (int i = 0; i <= LEVELS; i++)
        if (c->lv[i].names != NULL || c->lv[i].fd >= 0)
            level_free(&c->lv[i]);
    free(c->buf);
    free(c);
}

/* ---------------------------------------------------------------- quarantine */

static int ld_quarantine(void *st, const spool_id *id, const char *reason, const spool_deadline *dl,
                         spool_error *err)
{
    (void)dl;
    ld *s = st;
    char dirs[LEVELS][3], file[25], hex[SPOOL_ID_TEXT + 1], why[SPOOL_ID_TEXT + 8];
    id_parts(id, dirs, file);
    spool_id_format(id, hex);
    snprintf(why, sizeof why, "%s.why", hex);
    struct stat st_q;
    if (fstatat(s->qfd, hex, &st_q, AT_SYMLINK_NOFOLLOW) == 0)
        return spool_error_set(err, SPOOL_CONFLICT,
                               "cannot quarantine %s: an entry with this id is already in quarantine in %s "
                               "(restore or purge it first)",
                               hex, s->dir);
    int leaf = open_leaf(s, dirs, 0, NULL);
    struct stat st_e;
    if (leaf < 0 || fstatat(leaf, file, &st_e, AT_SYMLINK_NOFOLLOW) != 0) {
        if (leaf >= 0)
            close(leaf);
        return spool_error_set(err, SPOOL_NOT_FOUND, "no entry %s in %s to quarantine", hex, s->dir);
    }
    /* The reason first, so that a quarantined entry always has one. */
    char line[SPOOL_ERROR_MESSAGE_MAX + 32];
    int n = snprintf(line, sizeof line, "%.3f %s", (double)time(NULL), reason);
    if (n >= (int)sizeof line)
        n = (int)sizeof line - 1;
    int fd = openat(s->qfd, why, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, s->file_mode);
    int rc = fd < 0 || spool_file_write_all(fd, line, (size_t)n) != 0 || fdatasync(fd) != 0 ? -1 : 0;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (rc == 0 && renameat(leaf, file, s->qfd, hex) != 0) {
        rc = -1;
        e = errno;
        unlinkat(s->qfd, why, 0);
    }
    if (rc == 0 && (fsync(s->qfd) != 0 || fsync(leaf) != 0)) {
        rc = -1;
        e = errno;
    }
    close(leaf);
    if (rc != 0)
        return spool_file_fail(err, e, "quarantine", s->dir, hex);
    atomic_fetch_add(&s->quarantined, 1);
    prune_path(s, dirs);
    return 0;
}

static int ld_restore(void *st, const spool_id *id, const spool_deadline *dl, spool_error *err)
{
    (void)dl;
    ld *s = st;
    char dirs[LEVELS][3], file[25], hex[SPOOL_ID_TEXT + 1], why[SPOOL_ID_TEXT + 8];
    id_parts(id, dirs, file);
    spool_id_format(id, hex);
    snprintf(why, sizeof why, "%s.why", hex);
    struct stat st_q;
    if (fstatat(s->qfd, hex, &st_q, AT_SYMLINK_NOFOLLOW) != 0)
        return spool_error_set(err, SPOOL_NOT_FOUND, "no quarantined entry %s in %s", hex, s->dir);
    pthread_rwlock_rdlock(&s->shape);
    int leaf = open_leaf(s, dirs, 1, NULL);
    if (leaf < 0) {
        int e = errno;
        pthread_rwlock_unlock(&s->shape);
        return spool_file_fail(err, e, "restore", s->dir, hex);
    }
    struct stat st_e;
    if (fstatat(leaf, file, &st_e, AT_SYMLINK_NOFOLLOW) == 0) {
        pthread_rwlock_unlock(&s->shape);
        close(leaf);
        return spool_error_set(err, SPOOL_CONFLICT,
                               "cannot restore %s: a live entry with this id exists in %s (remove it first)", hex,
                               s->dir);
    }
    int rc = renameat(s->qfd, hex, leaf, file);
    int e = errno;
    pthread_rwlock_unlock(&s->shape);
    if (rc == 0 && (fsync(leaf) != 0 || fsync(s->qfd) != 0)) {
        rc = -1;
        e = errno;
    }
    close(leaf);
    if (rc != 0)
        return spool_file_fail(err, e, "restore", s->dir, hex);
    unlinkat(s->qfd, why, 0);
    atomic_fetch_sub(&s->quarantined, 1);
    return 0;
}

static int ld_purge(void *st, const spool_id *id, const spool_deadline *dl, int *purged, spool_error *err)
{
    (void)dl;
    ld *s = st;
    char hex[SPOOL_ID_TEXT + 1], why[SPOOL_ID_TEXT + 8];
    spool_id_format(id, hex);
    snprintf(why, sizeof why, "%s.why", hex);
    *purged = 0;
    if (unlinkat(s->qfd, hex, 0) != 0) {
        if (errno == ENOENT)
            return 0;
        return spool_file_fail(err, errno, "purge", s->dir, hex);
    }
    *purged = 1;
    unlinkat(s->qfd, why, 0);
    atomic_fetch_sub(&s->quarantined, 1);
    return 0;
}

/* ---------------------------------------------------------------- maintenance */

/* One step of the directory walk that prunes empty directories under
 * data/: looks at up to `budget` directory entries (all when budget < 0)
 * and rmdirs the empty directories it finishes.  Returns the number
 * removed.  cleanup_lock held. */
static int64_t prune_step(ld *s, long budget, int *finished)
{
    int64_t removed = 0;
    *finished = 0;
    if (s->walk_depth == 0) {
        int fd = reopen_dir(s, "data");
        if (fd < 0 || (s->walk[0] = fdopendir(fd)) == NULL) {
            if (fd >= 0)
                close(fd);
            return 0;
        }
        s->walk_depth = 1;
    }
    while (s->walk_depth > 0 && budget != 0) {
        DIR *d = s->walk[s->walk_depth - 1];
        struct dirent *de = readdir(d);
        if (budget > 0)
            budget--;
        if (de == NULL) {
            closedir(d);
            s->walk[--s->walk_depth] = NULL;
            if (s->walk_depth > 0 && prune_dir(s, dirfd(s->walk[s->walk_depth - 1]), s->walk_names[s->walk_depth - 1]))
                removed++;
            continue;
        }
        if (!is_hex_level(de->d_name))
            continue; /* what is not ours */
        if (s->walk_depth == LEVELS) {
            /* A leaf directory: removed when it holds no entry. */
            if (prune_dir(s, dirfd(d), de->d_name))
                removed++;
            continue;
        }
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *sub = fd < 0 ? NULL : fdopendir(fd);
        if (sub == NULL) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        memcpy(s->walk_names[s->walk_depth - 1], de->d_name, 3);
        s->walk[s->walk_depth++] = sub;
    }
    *finished = s->walk_depth == 0;
    return removed;
}

/* compact: reclaims nothing (files are freed by their removal) and
 * prunes every empty directory. */
static int ld_compact(void *st, spool_compact_stats *stats, spool_error *err)
{
    (void)err;
    ld *s = st;
    double t0 = spool_monotonic();
    int finished = 0;
    int64_t removed = 0;
    pthread_mutex_lock(&s->cleanup_lock);
    /* A walk that cleanup() left half-way is finished, then one whole
     * walk is made. */
    for (int round = 0; round < 2; round++) {
        do {
            removed += prune_step(s, -1, &finished);
        } while (!finished);
        stats->steps++;
    }
    pthread_mutex_unlock(&s->cleanup_lock);
    stats->seconds = spool_monotonic() - t0;
    spool_metrics_set(&stats->backend, "directories_removed", (double)removed);
    return 0;
}

static int ld_cleanup(void *st, spool_cleanup_stats *stats, spool_error *err)
{
    (void)err;
    ld *s = st;
    double t0 = spool_monotonic();
    int finished;
    pthread_mutex_lock(&s->cleanup_lock);
    int64_t removed = prune_step(s, CLEANUP_STEP, &finished);
    pthread_mutex_unlock(&s->cleanup_lock);
    stats->seconds = spool_monotonic() - t0;
    spool_metrics_set(&stats->backend, "directories_removed", (double)removed);
    return 0;
}

static int ld_advise_low_memory(void *st, int64_t *released, spool_error *err)
{
    (void)st;
    (void)err;
    *released = 0; /* nothing cached */
    return 0;
}

static int ld_check(void *st, int *ok, char *report, size_t size, spool_error *err)
{
    (void)err;
    ld *s = st;
    struct stat a, b, c;
    *ok = fstat(s->datafd, &a) == 0 && fstat(s->newfd, &b) == 0 && fstat(s->qfd, &c) == 0 && S_ISDIR(a.st_mode) &&
          S_ISDIR(b.st_mode) && S_ISDIR(c.st_mode);
    snprintf(report, size, *ok ? "ok (LocalDisk keeps no checksums: unreadable and misnamed files are reported)"
                               : "the data/, new/ or quarantine/ directory is missing");
    return 0;
}

static int ld_stats(void *st, spool_stats *out, spool_error *err)
{
    (void)err;
    ld *s = st;
    out->entries = -1; /* not counted: that would be a walk of every file */
    out->quarantined = atomic_load(&s->quarantined);
    return 0;
}

static void ld_close(void *st, int leak)
{
    ld_free(st, leak);
}

/* A directory holds a LocalDisk spool when it has data/ and a lock file. */
static int ld_probe(const char *path)
{
    char buf[4096];
    struct stat st;
    snprintf(buf, sizeof buf, "%s/data", path);
    if (lstat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    snprintf(buf, sizeof buf, "%s/lock", path);
    return lstat(buf, &st) == 0;
}

const spool_backend spool_localdisk_backend = {
    .version = 4,
    .enumerate_order = SPOOL_ORDER_ID_BYTES,
    .batch_commit = 0, /* each request its own write; only a sync is shared */
    .kind = "LocalDisk",
    .probe = ld_probe,
    .open = ld_open,
    .load = ld_load,
    .cursor_open = ld_cursor_open,
    .cursor_next = ld_cursor_next,
    .cursor_close = ld_cursor_close,
    .quarantine = ld_quarantine,
    .restore = ld_restore,
    .purge = ld_purge,
    .compact = ld_compact,
    .cleanup = ld_cleanup,
    .advise_low_memory = ld_advise_low_memory,
    .check = ld_check,
    .stats = ld_stats,
    .close = ld_close,
    .apply_batch = ld_apply_batch,
};
