/*
 * faultvfs.c: see faultvfs.h.  Test-only: not part of the module.
 */
#include "faultvfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

typedef struct preimage {
    int64_t off;
    int len;
    int existed; /* bytes that existed before the write (rest was past EOF) */
    unsigned char *old;
    struct preimage *next;
} preimage;

/* One file on the modelled disk, shared by every handle open on it: a
 * sync through any handle makes the file's writes durable, as fsync does. */
typedef struct fnode {
    char *name;
    int refs;
    int64_t synced_size;    /* size at the last sync */
    int64_t size;           /* tracked size */
    preimage *undo;         /* unsynced writes, newest first */
    sqlite3_file *real;     /* a handle to write pre-images back through */
    struct fnode *next;
} fnode;

typedef struct ffile {
    sqlite3_file base;      /* must be first */
    sqlite3_file *real;     /* the default VFS's file, allocated after us */
    fnode *node;            /* NULL for files without a name (temp files) */
    struct ffile *next_open;
} ffile;

static sqlite3_vfs *base_vfs;
static sqlite3_vfs fvfs;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long calls[FV_OPS], fail_nth[FV_OPS], faults;
static int fail_persistent[FV_OPS], dead;
static int64_t capacity = -1, used;
static ffile *open_files;
static fnode *nodes;
static long loss_at_write; /* 0 = none */
static int loss_subset;
static unsigned loss_seed;

static long power_loss_locked(int random_subset, unsigned seed);

/* Decides whether this call of op fails.  Called with lock held. */
static int should_fail(int op)
{
    calls[op]++;
    if (dead)
        return 1;
    if (fail_nth[op] > 0 && (calls[op] == fail_nth[op] || (fail_persistent[op] && calls[op] > fail_nth[op]))) {
        faults++;
        return 1;
    }
    return 0;
}

static void drop_undo(fnode *f)
{
    while (f->undo) {
        preimage *p = f->undo;
        f->undo = p->next;
        free(p->old);
        free(p);
    }
}

/* The node of a named file, created on first open.  Lock held. */
static fnode *node_get(const char *name, sqlite3_file *real)
{
    for (fnode *n = nodes; n; n = n->next)
        if (strcmp(n->name, name) == 0) {
            n->refs++;
            return n;
        }
    fnode *n = calloc(1, sizeof *n);
    if (n == NULL || (n->name = strdup(name)) == NULL) {
        free(n);
        return NULL;
    }
    sqlite3_int64 size = 0;
    real->pMethods->xFileSize(real, &size);
    n->size = n->synced_size = size;
    n->refs = 1;
    n->real = real;
    n->next = nodes;
    nodes = n;
    used += size;
    return n;
}

/* Drops a handle's reference; the last one forgets the file.  When the
 * handle that writes pre-images back goes, another handle takes over. */
static void node_put(fnode *n, sqlite3_file *real)
{
    if (--n->refs > 0) {
        if (n->real == real)
            for (ffile *f = open_files; f; f = f->next_open)
                if (f->node == n && f->real != real) {
                    n->real = f->real;
                    break;
                }
        return;
    }
    for (fnode **p = &nodes; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            break;
        }
    used -= n->size;
    drop_undo(n);
    free(n->name);
    free(n);
}

static int f_close(sqlite3_file *file)
{
    ffile *f = (ffile *)file;
    pthread_mutex_lock(&lock);
    for (ffile **p = &open_files; *p; p = &(*p)->next_open)
        if (*p == f) {
            *p = f->next_open;
            break;
        }
    if (f->node)
        node_put(f->node, f->real);
    pthread_mutex_unlock(&lock);
    int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    return rc;
}

static int f_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
    ffile *f = (ffile *)file;
    pthread_mutex_lock(&lock);
    int fail = should_fail(FV_READ);
    pthread_mutex_unlock(&lock);
    if (fail)
        return SQLITE_IOERR_READ;
    return f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int f_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
    ffile *f = (ffile *)file;
    pthread_mutex_lock(&lock);
    if (should_fail(FV_WRITE)) {
        pthread_mutex_unlock(&lock);
        return SQLITE_IOERR_WRITE;
    }
    if (loss_at_write > 0 && calls[FV_WRITE] >= loss_at_write) {
        power_loss_locked(loss_subset, loss_seed);
        pthread_mutex_unlock(&lock);
        return SQLITE_IOERR_WRITE;
    }
    fnode *nd = f->node;
    if (nd == NULL) {
        pthread_mutex_unlock(&lock);
        return f->real->pMethods->xWrite(f->real, buf, amt, off);
    }
    int64_t end = off + amt, growth = end > nd->size ? end - nd->size : 0;
    if (capacity >= 0 && growth > 0 && used + growth > capacity) {
        pthread_mutex_unlock(&lock);
        return SQLITE_FULL;
    }
    /* Keep what this write overwrites, until the file is synced. */
    preimage *p = calloc(1, sizeof *p);
    int existed = off >= nd->size ? 0 : (int)((end < nd->size ? end : nd->size) - off);
    if (p != NULL && (p->old = malloc(existed ? (size_t)existed : 1)) != NULL) {
        p->off = off;
        p->len = amt;
        p->existed = existed;
        if (existed > 0 && f->real->pMethods->xRead(f->real, p->old, existed, off) != SQLITE_OK)
            memset(p->old, 0, (size_t)existed);
        p->next = nd->undo;
        nd->undo = p;
    } else {
        free(p);
    }
    used += growth;
    if (end > nd->size)
        nd->size = end;
    pthread_mutex_unlock(&lock);
    return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int f_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    ffile *f = (ffile *)file;
    pthread_mutex_lock(&lock);
    if (should_fail(FV_TRUNCATE)) {
        pthread_mutex_unlock(&lock);
        return SQLITE_IOERR_TRUNCATE;
    }
    if (f->node && size < f->node->size) {
        used -= f->node->size - size;
        f->node->size = size;
    }
    pthread_mutex_unlock(&lock);
    return f->real->pMethods->xTruncate(f->real, size);
}

/* Seconds every sync takes on top of the real one (faultvfs_set_sync_delay). */
static double sync_delay;

static int f_sync(sqlite3_file *file, int flags)
{
    ffile *f = (ffile *)file;
    pthread_mutex_lock(&lock);
    if (should_fail(FV_SYNC)) {
        pthread_mutex_unlock(&lock);
        return SQLITE_IOERR_FSYNC;
    }
    if (f->node) {
        drop_undo(f->node);
        f->node->synced_size = f->node->size;
    }
    double delay = sync_delay;
    pthread_mutex_unlock(&lock);
    if (delay > 0) {
        struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return f->real->pMethods->xSync(f->real, flags);
}

static int f_size(sqlite3_file *file, sqlite3_int64 *size)
{
    ffile *f = (ffile *)file;
    if (dead)
        return SQLITE_IOERR_FSTAT;
    return f->real->pMethods->xFileSize(f->real, size);
}

#define PASS(name, sig, args)                                                                      \
    static int f_##name sig                                                                        \
    {                                                                                              \
        ffile *f = (ffile *)file;                                                                  \
        return f->real->pMethods->x##name args;                                                    \
    }
PASS(Lock, (sqlite3_file * file, int l), (f->real, l))
PASS(Unlock, (sqlite3_file * file, int l), (f->real, l))
PASS(CheckReservedLock, (sqlite3_file * file, int *r), (f->real, r))
PASS(FileControl, (sqlite3_file * file, int op, void *arg), (f->real, op, arg))
PASS(SectorSize, (sqlite3_file * file), (f->real))
PASS(DeviceCharacteristics, (sqlite3_file * file), (f->real))
PASS(ShmMap, (sqlite3_file * file, int pg, int sz, int ext, void volatile **pp), (f->real, pg, sz, ext, pp))
PASS(ShmLock, (sqlite3_file * file, int off, int n, int flags), (f->real, off, n, flags))
PASS(ShmUnmap, (sqlite3_file * file, int del), (f->real, del))

static void f_ShmBarrier(sqlite3_file *file)
{
    ffile *f = (ffile *)file;
    f->real->pMethods->xShmBarrier(f->real);
}

static const sqlite3_io_methods f_methods = {
    2, f_close, f_read, f_write, f_truncate, f_sync, f_size, f_Lock, f_Unlock, f_CheckReservedLock,
    f_FileControl, f_SectorSize, f_DeviceCharacteristics, f_ShmMap, f_ShmLock, f_ShmBarrier, f_ShmUnmap,
    NULL, NULL,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    (void)vfs;
    ffile *f = (ffile *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        f->real->pMethods = NULL;
        return rc;
    }
    file->pMethods = &f_methods;
    pthread_mutex_lock(&lock);
    f->node = name ? node_get(name, f->real) : NULL;
    f->next_open = open_files;
    open_files = f;
    pthread_mutex_unlock(&lock);
    return SQLITE_OK;
}

/* A machine that is off deletes nothing (SQLite removes the WAL when the
 * last connection closes). */
static int v_delete(sqlite3_vfs *v, const char *n, int s)
{
    (void)v;
    return dead ? SQLITE_IOERR_DELETE : base_vfs->xDelete(base_vfs, n, s);
}
static int v_access(sqlite3_vfs *v, const char *n, int f, int *r) { (void)v; return base_vfs->xAccess(base_vfs, n, f, r); }
static int v_full(sqlite3_vfs *v, const char *n, int sz, char *out) { (void)v; return base_vfs->xFullPathname(base_vfs, n, sz, out); }
static void *v_dlopen(sqlite3_vfs *v, const char *n) { (void)v; return base_vfs->xDlOpen(base_vfs, n); }
static void v_dlerror(sqlite3_vfs *v, int n, char *m) { (void)v; base_vfs->xDlError(base_vfs, n, m); }
static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return base_vfs->xDlSym(base_vfs, h, s); }
static void v_dlclose(sqlite3_vfs *v, void *h) { (void)v; base_vfs->xDlClose(base_vfs, h); }
static int v_random(sqlite3_vfs *v, int n, char *out) { (void)v; return base_vfs->xRandomness(base_vfs, n, out); }
static int v_sleep(sqlite3_vfs *v, int us) { (void)v; return base_vfs->xSleep(base_vfs, us); }
static int v_time(sqlite3_vfs *v, double *t) { (void)v; return base_vfs->xCurrentTime(base_vfs, t); }
static int v_lasterr(sqlite3_vfs *v, int n, char *m) { (void)v; return base_vfs->xGetLastError(base_vfs, n, m); }
static int v_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return base_vfs->xCurrentTimeInt64(base_vfs, t); }

int faultvfs_register(void)
{
    if (base_vfs != NULL)
        return SQLITE_OK;
    base_vfs = sqlite3_vfs_find(NULL);
    fvfs = (sqlite3_vfs){
        2, (int)sizeof(ffile) + base_vfs->szOsFile, base_vfs->mxPathname, NULL, "faultvfs", NULL,
        v_open, v_delete, v_access, v_full, v_dlopen, v_dlerror, v_dlsym, v_dlclose,
        v_random, v_sleep, v_time, v_lasterr, v_time64, NULL, NULL, NULL,
    };
    return sqlite3_vfs_register(&fvfs, 0);
}

void faultvfs_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(calls, 0, sizeof calls);
    memset(fail_nth, 0, sizeof fail_nth);
    memset(fail_persistent, 0, sizeof fail_persistent);
    faults = 0;
    dead = 0;
    loss_at_write = 0;
    capacity = -1;
    for (fnode *n = nodes; n; n = n->next) {
        drop_undo(n);
        n->synced_size = n->size;
    }
    pthread_mutex_unlock(&lock);
}

void faultvfs_fail_at(int op, long nth, int persistent)
{
    pthread_mutex_lock(&lock);
    fail_nth[op] = calls[op] + nth;
    fail_persistent[op] = persistent;
    pthread_mutex_unlock(&lock);
}

long faultvfs_calls(int op)
{
    pthread_mutex_lock(&lock);
    long n = calls[op];
    pthread_mutex_unlock(&lock);
    return n;
}

long faultvfs_faults(void)
{
    pthread_mutex_lock(&lock);
    long n = faults;
    pthread_mutex_unlock(&lock);
    return n;
}

void faultvfs_set_capacity(int64_t bytes)
{
    pthread_mutex_lock(&lock);
    capacity = bytes;
    pthread_mutex_unlock(&lock);
}

long faultvfs_power_loss(int random_subset, unsigned seed)
{
    pthread_mutex_lock(&lock);
    long undone = power_loss_locked(random_subset, seed);
    pthread_mutex_unlock(&lock);
    return undone;
}

void faultvfs_power_loss_at(long nth_write, int random_subset, unsigned seed)
{
    pthread_mutex_lock(&lock);
    loss_at_write = calls[FV_WRITE] + nth_write;
    loss_subset = random_subset;
    loss_seed = seed;
    pthread_mutex_unlock(&lock);
}

int faultvfs_is_dead(void)
{
    pthread_mutex_lock(&lock);
    int d = dead;
    pthread_mutex_unlock(&lock);
    return d;
}

static long power_loss_locked(int random_subset, unsigned seed)
{
    long undone = 0;
    for (fnode *f = nodes; f; f = f->next) {
        /* Newest first, so that older pre-images win where writes overlap. */
        for (preimage *p = f->undo; p; p = p->next) {
            if (random_subset && (rand_r(&seed) & 1))
                continue;
            if (p->existed > 0)
                f->real->pMethods->xWrite(f->real, p->old, p->existed, p->off);
            if (p->len > p->existed) {
                /* Bytes written past the old end: lost as zeros. */
                int n = p->len - p->existed;
                unsigned char *z = calloc(1, (size_t)n);
                if (z) {
                    f->real->pMethods->xWrite(f->real, z, n, p->off + p->existed);
                    free(z);
                }
            }
            undone++;
        }
        if (!random_subset && f->size > f->synced_size)
            f->real->pMethods->xTruncate(f->real, f->synced_size);
        drop_undo(f);
    }
    dead = 1;
    loss_at_write = 0;
    return undone;
}

void faultvfs_set_sync_delay(double seconds)
{
    pthread_mutex_lock(&lock);
    sync_delay = seconds;
    pthread_mutex_unlock(&lock);
}
