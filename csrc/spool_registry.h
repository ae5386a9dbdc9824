/*
 * spool_registry.h: what spool.c and the registry tell each other.
 * Internal: not part of the public API.
 */
#ifndef SPOOL_REGISTRY_H
#define SPOOL_REGISTRY_H

#include "spool.h"

/* Takes a reference unless the count already fell to zero (the spool is
 * being closed).  Returns 1 when a reference was taken. */
int spool_try_retain(spool *s);

/* Removes s from the registry if it is there.  Idempotent. */
void spool_registry_forget(spool *s);

#endif
