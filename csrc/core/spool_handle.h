/*
 * spool_handle.h: what the handle (spool.c) offers the layers above it
 * inside the core, the registry first.  The handle calls nothing above
 * it: the registry learns of a close through the hook it sets.
 * Internal: not part of the public API.
 */
#ifndef SPOOL_HANDLE_H
#define SPOOL_HANDLE_H

#include "spool.h"

/* Takes a reference unless the count already fell to zero (the spool is
 * being closed).  Returns 1 when a reference was taken. */
int spool_try_retain(spool *s);

/* Called once when s shuts down (and again, harmlessly, when its last
 * reference goes): must be idempotent, must not raise or call back into
 * s.  Set before the handle is shared with another thread. */
typedef void (*spool_close_hook)(spool *s);
void spool_set_close_hook(spool *s, spool_close_hook hook);

#endif
