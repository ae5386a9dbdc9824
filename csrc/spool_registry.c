/*
 * spool_registry.c: named spools, shared by every thread and Lua state of
 * the process (OpenResty runs ngx.run_worker_thread jobs in Lua states of
 * their own; a C host may run several).  A short list under one mutex:
 * processes define a handful of spools.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "spool_registry.h"

#define NAME_MAX_LEN 256

typedef struct entry {
    char *name;
    spool *s;
    dev_t dev; /* the directory, compared by identity, not by spelling */
    ino_t ino;
    struct entry *next;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *entries;

/* Drops the entries of spools that can no longer be used: in a forked
 * child every inherited spool is closed there (spool_is_closed), and its
 * name must be free for the child's own define.  The spools themselves
 * are not touched: they belong to the parent's files.  Lock held. */
static void prune(void)
{
    entry **e = &entries;
    while (*e != NULL) {
        if (spool_is_closed((*e)->s)) {
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
        if (e->dev == dev && e->ino == ino && strcmp(e->name, name) != 0)
            return e;
    return NULL;
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
    /* Opening happens under the lock, so two threads defining one name
     * cannot both open it. */
    if (params == NULL)
        return spool_error_set(err, SPOOL_MISUSE, "spool '%s': parameters are required", name);
    pthread_mutex_lock(&lock);
    prune();
    entry **slot = find(name);
    if (*slot != NULL) {
        pthread_mutex_unlock(&lock);
        return spool_error_set(err, SPOOL_MISUSE, "spool '%s' is already defined in this process", name);
    }
    struct stat dir;
    entry *other;
    if (params->path != NULL && stat(params->path, &dir) == 0 &&
        (other = same_directory(name, dir.st_dev, dir.st_ino)) != NULL) {
        pthread_mutex_unlock(&lock);
        return spool_error_set(err, SPOOL_MISUSE,
                               "cannot define spool '%s' on %s: that directory already holds spool '%s' "
                               "in this process (a directory holds one spool)",
                               name, params->path, other->name);
    }
    entry *e = calloc(1, sizeof *e);
    if (e == NULL || (e->name = strdup(name)) == NULL) {
        free(e);
        pthread_mutex_unlock(&lock);
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory defining spool '%s'", name);
    }
    spool *s;
    spool_params named = *params;
    named.name = name;
    if (spool_open(&named, &s, err) != 0) {
        free(e->name);
        free(e);
        pthread_mutex_unlock(&lock);
        return -1;
    }
    e->s = s;
    e->next = NULL;
    if (stat(spool_get_path(s), &dir) == 0) {
        e->dev = dir.st_dev;
        e->ino = dir.st_ino;
    }
    *slot = e;
    pthread_mutex_unlock(&lock);
    *out = s;
    return 0;
}

spool *spool_lookup(const char *name)
{
    spool *s = NULL;
    pthread_mutex_lock(&lock);
    entry *e = *find(name);
    if (e != NULL && !spool_is_closed(e->s) && spool_try_retain(e->s))
        s = e->s;
    pthread_mutex_unlock(&lock);
    return s;
}

void spool_registry_forget(spool *s)
{
    pthread_mutex_lock(&lock);
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
