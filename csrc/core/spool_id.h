/*
 * spool_id.h: SpoolId, a UUID version 1 that carries its creation time.
 *
 * The 16 bytes are in RFC 4122 field order (time_low, time_mid,
 * time_hi_and_version, clock_seq_hi_and_reserved, clock_seq_low, node),
 * the layout KumoMTA stores.  No Lua here: usable from C, benchmarks and
 * fuzzers.
 */
#ifndef SPOOL_ID_H
#define SPOOL_ID_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_ID_BYTES 16
#define SPOOL_ID_TEXT 32        /* simple form, without the NUL */
#define SPOOL_ID_PATH_SUFFIX 37 /* "/aa/bb/cc/dd/" + 24 hex, without NUL */

/* 100-ns intervals between 1582-10-15 and 1970-01-01. */
#define SPOOL_ID_GREGORIAN_OFFSET 0x01B21DD213814000ULL

typedef struct spool_id {
    uint8_t b[SPOOL_ID_BYTES];
} spool_id;

/* Makes a new id stamped with the current time.  Two ids made in one
 * process are never equal, whatever the threads or the clock do.
 * Returns 0, or -1 when the system gave no randomness for the node id. */
int spool_id_new(spool_id *out);

/* spool_id_new as if the wall clock read `unix_100ns`: lets tests step
 * the clock back.  Same guarantees, same return values. */
int spool_id_new_at(spool_id *out, int64_t unix_100ns);

/* A new id with the same timestamp as `src` but this process's clock
 * sequence and node, never equal to `src`.  Returns 0 or -1 as above. */
int spool_id_derive_cloned_timestamp(const spool_id *src, spool_id *out);

/* Writes the 32 lowercase hex digits and a NUL into `out` (33 bytes). */
void spool_id_format(const spool_id *id, char out[SPOOL_ID_TEXT + 1]);

/* Writes the hyphenated 8-4-4-4-12 form and a NUL (37 bytes). */
void spool_id_format_hyphenated(const spool_id *id, char out[37]);

/* Parses the simple or hyphenated form, case-insensitively, from exactly
 * `len` bytes.  Returns 0, or -1 with a static message in *why. */
int spool_id_parse(const char *s, size_t len, spool_id *out, const char **why);

/* Checks that 16 raw bytes are a version 1, RFC 4122 variant UUID.
 * Returns 0, or -1 with a static message in *why. */
int spool_id_from_bytes(const void *b, size_t len, spool_id *out, const char **why);

/* The 60-bit UUID timestamp (100 ns since 1582-10-15). */
uint64_t spool_id_timestamp(const spool_id *id);

/* 100-ns intervals since the Unix epoch (negative before 1970). */
int64_t spool_id_unix_100ns(const spool_id *id);

/* Creation time, seconds since the Unix epoch. */
double spool_id_created(const spool_id *id);

/* The first 100 ns tick whose created() (as seconds in a double) is at
 * or after `seconds`: the bound of an enumeration's start_time, so that
 * an id whose created() equals start_time is never visited.  A double
 * near today's time resolves ~240 ns, coarser than a tick, so a plain
 * seconds * 1e7 can land a tick past the id. */
int64_t spool_id_unix_100ns_from_seconds(double seconds);

/* Writes the LocalDisk suffix "/aa/bb/cc/dd/<24 hex>" and a NUL (38 bytes). */
void spool_id_path_suffix(const spool_id *id, char out[SPOOL_ID_PATH_SUFFIX + 1]);

/* Inverse of the path: joins the last five components of `path`.
 * Returns 0, or -1 with a static message in *why. */
int spool_id_from_path(const char *path, size_t len, spool_id *out, const char **why);

/* The time-ordered 16-byte key: timestamp big-endian first, then clock
 * sequence and node, so byte order is creation order. */
void spool_id_to_key(const spool_id *id, uint8_t key[SPOOL_ID_BYTES]);
int spool_id_from_key(const uint8_t *key, size_t len, spool_id *out, const char **why);

/* The smallest key of any id created at `unix_100ns` or later. */
void spool_id_key_floor(int64_t unix_100ns, uint8_t key[SPOOL_ID_BYTES]);

/* Orders by creation time, then bytes: <0, 0, >0. */
int spool_id_compare(const spool_id *a, const spool_id *b);

/* Wall clock as 100-ns intervals since the Unix epoch. */
int64_t spool_id_now_unix_100ns(void);

#endif
