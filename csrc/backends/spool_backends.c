/*
 * spool_backends.c: the backends built into this library, one line each
 * (csrc/core/spool_backend.h).  The first is the default for a new,
 * empty directory; the others are chosen by `kind` or detected by their
 * probe.
 */
#include "spool_backend.h"

extern const spool_backend spool_sqlite_backend;
extern const spool_backend spool_localdisk_backend;
#ifdef SPOOL_HAVE_ROCKSDB
extern const spool_backend spool_rocksdb_backend;
#endif

const spool_backend *const spool_builtin_backends[] = {
    &spool_sqlite_backend,
    &spool_localdisk_backend,
#ifdef SPOOL_HAVE_ROCKSDB
    &spool_rocksdb_backend, /* ROCKSDB=1, the default when librocksdb-dev is installed */
#endif
};
const size_t spool_builtin_backend_count = sizeof spool_builtin_backends / sizeof spool_builtin_backends[0];
