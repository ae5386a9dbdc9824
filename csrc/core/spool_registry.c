/*
 * spool_registry.c: named spools, shared by every thread and Lua state of
 * the process (OpenResty runs ngx.run_worker_thread jobs in Lua states of
 * their own; a C host may run several).  A short list under one mutex:
 * processes define a handful of spools.  The mutex is never held while a
 * spool opens (that can take store_deadline), and is held across fork()
 * so that a child never inherits it locked.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "spool_fork.h"
#include "spool_handle.h"

#define NAME_MAX_LEN 256

typedef struct entry {
    char *name;
    spool *s;  /* NULL while the spool opens: the name is taken meanwhile */
    int has_dir;
    dev_t dev; /* the directory, compared by identity, not by spelling */
    ino_t ino;
    unsigned gen; /* fork generation of the define */
    struct entry *next;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *entries;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void install_fork_hold(void)
{
    spool_fork_hold_mutex(&lock);
}

/* Takes the registry's mutex. */
static void registry_lock(void)
{
    pthread_once(&fork_once, install_fork_hold);
    pthread_mutex_lock(&lock);
}

/* Drops the entries of spools that can no longer be used: in a forked
 * child every inherited spool is closed there (spool_is_closed), and its
 * name must be free for the child's own define; so is a name that a
 * thread of the parent was defining when the process forked.  The spools
 * themselves are not touched: they belong to the parent's files.  Lock
 * held. */
static void prune(void)
{
    unsigned gen = spool_fork_generation();
    entry **e = &entries;
    while (*e != NULL) {
        if ((*e)->gen != gen || ((*e)->s != NULL && spool_is_closed((*e)->s))) {
            entry *dead = *e;
            *e = dead->next;
            free(dead->name);
            free(dead);
        } else {
            e = &(*e)->next;
        }
    }
}

static entry **find(const char *name)
{
    entry **e = &entries;
    while (*e != NULL && strcmp((*e)->name, name) != 0)
        e = &(*e)->next;
    return e;
}

/* The entry of another name whose directory is (dev, ino), or NULL. */
static entry *same_directory(const char *name, dev_t dev, ino_t ino)
{
    for (entry *e = entries; e != NULL; e = e->next)
        if (e->has_dir && e->dev == dev && e->ino == ino && strcmp(e->name, name) != 0)
            return e;
    return NULL;
}

/* The close hook of every defined spool: removes it from the registry
 * if it is there.  Idempotent. */
static void forget(spool *s)
{
    registry_lock();
    for (entry **e = &entries; *e != NULL; e = &(*e)->next) {
        if ((*e)->s == s) {
            entry *dead = *e;
            *e = dead->next;
            free(dead->name);
            free(dead);
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}


int spool_define(const char *name, const spool_params *params, spool **out, spool_error *err)
{
    spool_error ignored;
    if (err == NULL)
        err = &ignored;
    *out = NULL;
    spool_error_clear(err);
    if (name == NULL || name[0] == '\0' || strlen(name) > NAME_MAX_LEN)
        return spool_error_set(err, SPOOL_MISUSE, "name: a spool name of 1 to %d bytes is required",
                               NAME_MAX_LEN);
    if (params == NULL)
        return spool_error_set(err, SPOOL_MISUSE, "spool '%s': parameters are required", name);
    entry *e = calloc(1, sizeof *e);
    if (e == NULL || (e->name = strdup(name)) == NULL) {
        free(e);
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory defining spool '%s'", name);
    }
    struct stat dir;
    if (params->path != NULL && stat(params->path, &dir) == 0) {
        e->has_dir = 1;
        e->dev = dir.st_dev;
        e->ino = dir.st_ino;
    }
    e->gen = spool_fork_generation();
    /* The entry takes the name (s still NULL) before the spool opens, so
     * that two threads defining one name cannot both open it, and the
     * mutex is free while the open waits. */
    registry_lock();
    prune();
    entry **slot = find(name);
    entry *other = e->has_dir ? same_directory(name, e->dev, e->ino) : NULL;
    if (*slot != NULL || other != NULL) {
        pthread_mutex_unlock(&lock);
        if (other != NULL)
            spool_error_set(err, SPOOL_MISUSE,
                            "cannot define spool '%s' on %s: that directory already holds spool '%s' "
                            "in this process (a directory holds one spool)",
                            name, params->path, other->name);
        else
            spool_error_set(err, SPOOL_MISUSE, "spool '%s' is already defined in this process", name);
        free(e->name);
        free(e);
        return -1;
    }
    *slot = e;
    pthread_mutex_unlock(&lock);

    spool *s;
    spool_params named = *params;
    named.name = name;
    int rc = spool_open(&named, &s, err);
    if (rc == 0)
        spool_set_close_hook(s, forget);
    int has_dir = rc == 0 && stat(spool_get_path(s), &dir) == 0;

    registry_lock();
    entry **at = &entries;
    while (*at != NULL && *at != e)
        at = &(*at)->next;
    if (rc != 0) {
        if (*at != NULL)
            *at = e->next;
        pthread_mutex_unlock(&lock);
        free(e->name);
        free(e);
        return -1;
    }
    /* The directory exists now, and this is its identity. */
    if (has_dir) {
        e->has_dir = 1;
        e->dev = dir.st_dev;
        e->ino = dir.st_ino;
    }
    e->s = s;
    pthread_mutex_unlock(&lock);
    *out = s;
    return 0;
}

spool *spool_lookup(const char *name)
{
    spool *s = NULL;
    registry_lock();
    entry *e = *find(name);
    if (e != NULL && e->s != NULL && !spool_is_closed(e->s) && spool_try_retain(e->s))
        s = e->s;
    pthread_mutex_unlock(&lock);
    return s;
}
