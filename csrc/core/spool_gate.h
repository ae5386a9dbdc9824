/*
 * spool_gate.h: the health gate.  It latches at once on errors that mean
 * the storage is broken, after a sustained run of other errors, and while
 * free space or inodes are under their minimum; while it is latched,
 * stores fail fast.  Reading it takes no lock and does no I/O.
 */
#ifndef SPOOL_GATE_H
#define SPOOL_GATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "spool_error.h"

#define SPOOL_UNHEALTHY_REASON "the spool is not accepting writes"

typedef struct spool_gate {
    atomic_int error_latched;
    atomic_int space_low;
    atomic_llong latched_at_ns;   /* monotonic ns when latched */
    atomic_llong last_error_ns;   /* monotonic ns of the last counted error */
    atomic_llong streak_start_ns; /* first error of the current run; 0 = none */
    atomic_llong trouble_start_ns; /* first report of the backend's current run of
                                    * background trouble; 0 = none */
    int64_t latch_ns, unlatch_ns;
    int allow_unlatch;
    pthread_mutex_t lock; /* guards last_error only */
    spool_kind last_kind;
    char last_error[SPOOL_ERROR_MESSAGE_MAX];
} spool_gate;

void spool_gate_init(spool_gate *g, double latch_s, double unlatch_s, int allow_unlatch);
void spool_gate_destroy(spool_gate *g);

/* NULL when open, else SPOOL_UNHEALTHY_REASON.  Unlatches lazily when the
 * unlatch period has passed without errors.  Lock-free. */
const char *spool_gate_reason(spool_gate *g);

/* Feeds the outcome of an operation to the gate. */
void spool_gate_record_error(spool_gate *g, const spool_error *err);
void spool_gate_record_success(spool_gate *g);
/* Feeds a poll of the storage's own background work (RocksDB's flushes
 * and compactions): err when it reported new trouble since the last poll,
 * NULL when not.  Trouble reported at every poll for the latch duration
 * latches the gate, whatever the foreground operations do meanwhile; a
 * poll without new trouble ends the run. */
void spool_gate_record_background(spool_gate *g, const spool_error *err);
void spool_gate_set_space_low(spool_gate *g, int low);

/* Copies the last error (kind, message) for health reports. */
spool_kind spool_gate_last_error(spool_gate *g, char *buf, size_t size);

int64_t spool_monotonic_ns(void);

#endif
