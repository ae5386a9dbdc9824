/*
 * faultvfs.h: a test-only SQLite VFS over the default one, that
 *   - fails the Nth read / write / sync / truncate (once or from then on),
 *   - models a disk of limited capacity (writes that grow files fail
 *     with SQLITE_FULL beyond it),
 *   - keeps the pre-image of every write not yet synced, so that a power
 *     loss can be simulated by putting back all of them or a random subset.
 * Register it, then open spools with sqlite.vfs = "faultvfs".
 */
#ifndef SPOOL_FAULTVFS_H
#define SPOOL_FAULTVFS_H

#include <stdint.h>

enum { FV_READ, FV_WRITE, FV_SYNC, FV_TRUNCATE, FV_OPS };

int faultvfs_register(void);

/* Clears counters, failures, capacity and pre-images; revives. */
void faultvfs_reset(void);

/* Makes the nth call (1-based, counted from now) of op fail with
 * SQLITE_IOERR_*; persistent: every call from then on. */
void faultvfs_fail_at(int op, long nth, int persistent);

/* Calls of op since the last reset. */
long faultvfs_calls(int op);

/* Faults injected since the last reset. */
long faultvfs_faults(void);

/* Bytes the files opened through the VFS may grow to in all (their
 * sizes at open count); -1 = unlimited. */
void faultvfs_set_capacity(int64_t bytes);

/* Simulates a power loss: every write not yet followed by a sync of its
 * file is undone (random_subset = 0) or each one is undone with
 * probability 1/2 (random_subset = 1; a crude model of a disk that
 * reorders writes); files grown since their last sync shrink back when
 * all is undone.  Afterwards every operation through the VFS fails, as
 * if the machine were off, until faultvfs_reset.  Returns the number of
 * writes undone. */
long faultvfs_power_loss(int random_subset, unsigned seed);

/* The same power loss, triggered by the nth write call from now (that
 * write is lost too and fails), so that it strikes in the middle of a
 * commit or a checkpoint. */
void faultvfs_power_loss_at(long nth_write, int random_subset, unsigned seed);

/* Makes every sync take `seconds` longer (a slow disk); 0 = off.  Not
 * cleared by faultvfs_reset. */
void faultvfs_set_sync_delay(double seconds);

/* Whether a power loss happened since the last reset. */
int faultvfs_is_dead(void);

#endif
