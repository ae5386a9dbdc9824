/*
 * spool_file.h: what the file-based backends (LocalDisk, and RocksDB for
 * the files it keeps beside its database) share: whole writes and reads
 * that never follow a link, errno turned into a spool_error, and the
 * spool.name record that keeps one spool per directory.  Internal.
 */
#ifndef SPOOL_FILE_H
#define SPOOL_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "spool_error.h"

/* Writes all of buf.  Returns 0 or -1 with errno. */
int spool_file_write_all(int fd, const void *buf, size_t len);

/* Reads the regular file `name` under the directory fd `at` (never
 * through a link) into a malloc'd buffer with a NUL after its bytes.
 * Returns 0, or -1 with errno (EINVAL: not a regular file). */
int spool_file_read(int at, const char *name, char **out, size_t *len);

/* Fills err from errno e for `what` on <dir>/<name>: full for ENOSPC and
 * EDQUOT, internal for ENOMEM, io otherwise; code and code_name are the
 * errno and its name.  Returns -1. */
int spool_file_fail(spool_error *err, int e, const char *what, const char *dir, const char *name);

/* At a define (name not NULL): records name in <at>/spool.name, or refuses
 * (misuse) a name other than the one recorded.  dir is for messages.
 * Returns 0 or -1 with err. */
int spool_file_record_name(int at, const char *dir, const char *name, mode_t mode, spool_error *err);

#endif
