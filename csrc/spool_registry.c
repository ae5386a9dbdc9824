/*
 * spool_registry.c: named spools, shared by every thread and Lua state of
 * the process (OpenResty runs ngx.run_worker_thread jobs in Lua states of
 * their own; a C host may run several).  A short list under one mutex:
 * processes define a handful of spools.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "spool_registry.h"

#define NAME_MAX_LEN 256

typedef struct entry {
    char *name;
    spool *s;
    struct entry *next;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *entries;

static entry **find(const char *name)
{
    entry **e = &entries;
    while (*e != NULL && strcmp((*e)->name, name) != 0)
        e = &(*e)->next;
    return e;
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
    pthread_mutex_lock(&lock);
    entry **slot = find(name);
    if (*slot != NULL) {
        pthread_mutex_unlock(&lock);
        return spool_error_set(err, SPOOL_MISUSE, "spool '%s' is already defined in this process", name);
    }
    entry *e = calloc(1, sizeof *e);
    if (e == NULL || (e->name = strdup(name)) == NULL) {
        free(e);
        pthread_mutex_unlock(&lock);
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory defining spool '%s'", name);
    }
    spool *s;
    if (spool_open(params, &s, err) != 0) {
        free(e->name);
        free(e);
        pthread_mutex_unlock(&lock);
        return -1;
    }
    e->s = s;
    e->next = NULL;
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
