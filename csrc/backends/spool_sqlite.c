/*
 * spool_sqlite.c: the SQLite backend.
 *
 * One database file, <dir>/spool.db, in WAL mode with incremental
 * auto-vacuum.  Entries live in a rowid table with a unique index on a
 * time-ordered 16-byte key (see docs/FORMAT.md for why), each row with a
 * CRC-32C over key and data.  One writer connection, serialised by a
 * mutex; reader connections come from a pool, one per concurrent reader.
 * Every connection is used by one thread at a time, so SQLite runs with
 * SQLITE_OPEN_NOMUTEX.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool_backend.h"
#include "spool_checksum.h"
#include "spool_fork.h"

#define APPLICATION_ID 0x53504f4c /* "SPOL" */
/* 1: entries + quarantine; 2: + info (the spool's name).  A version-1
 * spool is upgraded in place at open. */
#define FORMAT_VERSION 2
/* Every connection: no symlink in the database's name, extended codes. */
#define OPEN_FLAGS (SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOFOLLOW)
/* SQLite's lock bytes in the database file (os_unix.c): a write lock on
 * the shared range is an EXCLUSIVE lock, which in WAL mode only
 * locking_mode=EXCLUSIVE holds for long. */
#define LOCK_PENDING_BYTE 0x40000000
#define LOCK_SHARED_FIRST (LOCK_PENDING_BYTE + 2)
#define LOCK_SHARED_SIZE 510
#define DB_NAME "spool.db"

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT,
    ST_DELETE,
    ST_SELECT,
    ST_CHUNK,
    ST_QCHUNK,
    ST_KEYCHUNK,
    ST_QINSERT,
    ST_QRESTORE,
    ST_QDELETE,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_COUNT_ADD,
    ST_COUNT_GET,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    /* An upsert, so that a new entry can be told from a replaced one (the
     * live count): only an insert sets the last insert rowid. */
    [ST_INSERT] = "INSERT INTO entries(key, sum, data) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT(key) DO UPDATE SET sum = excluded.sum, data = excluded.data",
    [ST_DELETE] = "DELETE FROM entries WHERE key = ?1",
    [ST_SELECT] = "SELECT sum, data FROM entries WHERE key = ?1",
    [ST_CHUNK] = "SELECT key, sum, data FROM entries WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3",
    [ST_KEYCHUNK] = "SELECT key FROM entries WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3",
    [ST_QCHUNK] = "SELECT key, sum, data, reason, time FROM quarantine WHERE key > ?1 ORDER BY key LIMIT ?2",
    /* Plain INSERTs: quarantine and restore never overwrite an entry
     * (a conflict answers misuse, and both copies stay). */
    [ST_QINSERT] = "INSERT INTO quarantine(key, sum, data, reason, time) "
                   "SELECT key, sum, data, ?2, ?3 FROM entries WHERE key = ?1",
    [ST_QRESTORE] = "INSERT INTO entries(key, sum, data) "
                    "SELECT key, sum, data FROM quarantine WHERE key = ?1",
    [ST_QDELETE] = "DELETE FROM quarantine WHERE key = ?1",
    /* Per request of a group commit: prepared once rather than parsed
     * each time.  (Not PRAGMA synchronous: SQLite applies that pragma
     * when it is prepared, so a prepared "synchronous=NORMAL" would reset
     * the connection at once.) */
    [ST_SAVEPOINT] = "SAVEPOINT req",
    [ST_RELEASE] = "RELEASE req",
    [ST_ROLLBACK_TO] = "ROLLBACK TO req",
    /* The live entry count, kept in the transaction that changes it, so
     * that stats() and /metrics need no count(*) over the table. */
    [ST_COUNT_ADD] = "UPDATE info SET value = value + ?1 WHERE key = 'entries'",
    [ST_COUNT_GET] = "SELECT value FROM info WHERE key = 'entries'",

};

static const char info_sql[] =
    "CREATE TABLE IF NOT EXISTS info("
    " key TEXT PRIMARY KEY,"
    " value NOT NULL) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO info(key, value) SELECT 'entries', count(*) FROM entries;";

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS entries("
    " rowid INTEGER PRIMARY KEY,"
    " key BLOB NOT NULL UNIQUE,"
    " sum INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS quarantine("
    " key BLOB PRIMARY KEY,"
    " sum INTEGER NOT NULL,"
    " data BLOB NOT NULL,"
    " reason TEXT NOT NULL,"
    " time REAL NOT NULL);";

/* The `sqlite` options (sq_options below): 0 in a field means its
 * default. */
typedef struct sq_tuning {
    int page_size;                 /* bytes; default 4096 */
    int64_t cache_kib;             /* page cache per connection; default 2048 */
    int64_t mmap_size;             /* bytes; default 0 */
    int wal_autocheckpoint;        /* pages; 0 = the default (1000); -1 disables */
    int64_t checkpoint_wal_bytes;  /* cleanup checkpoints over this; default 64 MiB */
    int vacuum_step_pages;         /* pages per compact step; default 1024 */
    int cleanup_vacuum_pages;      /* pages reclaimed per cleanup; default 256 */
    int enumerate_chunk_rows;      /* rows per enumerate chunk; default 256 */
    int64_t enumerate_chunk_bytes; /* bytes per chunk; default 4 MiB */
    int exclusive;                 /* 1: locking_mode=EXCLUSIVE (one process) */
    int secure_delete;             /* 1: zero freed pages */
    const char *vfs;               /* SQLite VFS name; NULL = the default (tests) */
} sq_tuning;

typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    const spool_deadline *dl; /* of the operation using it; NULL = none */
    struct conn *next;        /* in the idle pool */
} conn;

typedef struct sq {
    char *dir, *db_path, *wal_path;
    char *vfs; /* NULL: SQLite's default */
    spool_params p;
    sq_tuning t;
    int64_t max_entry; /* bytes: SQLite's length limit less the row's own */
    double wal_over_since; /* Unix seconds; 0 = the WAL is within bounds (pool_lock) */
    int registered;    /* in open_files */
    int sync_full; /* flush=true */
    pthread_mutex_t write_lock;
    conn *writer;
    pthread_mutex_t pool_lock;
    conn *idle;
    struct sq *next_abandoned;
} sq;

/* States abandoned in a forked child: still referenced, so the memory is
 * accounted for, but never closed (closing would act on the parent's
 * WAL and locks). */
static sq *abandoned;
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;

/* One buffered row of an enumerate chunk. */
/* One buffered row of an enumerate chunk; its bytes are in the cursor's
 * arena, at these offsets. */
typedef struct row {
    size_t key_off, key_len;
    int64_t sum;
    size_t data_off, len;
    size_t reason_off; /* quarantine only: a NUL-terminated string */
    double time;
} row;

typedef struct cursor {
    sq *s;
    int which, include_data, ids_only;
    uint8_t floor[SPOOL_ID_BYTES];
    uint8_t *last; /* key of the last row fetched, resumed after */
    size_t last_len;
    row *rows;
    int nrows, pos, cap, done;
    uint8_t *arena; /* every row's bytes, one allocation reused by each chunk */
    size_t arena_used, arena_cap;
    char error[160];
} cursor;

/* Maps a SQLite failure to a spool error kind. */
static spool_kind kind_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
        return SPOOL_CORRUPT;
    case SQLITE_FULL:
        return SPOOL_FULL;
    case SQLITE_IOERR:
        return rc == SQLITE_IOERR_NOMEM ? SPOOL_INTERNAL : SPOOL_IO;
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return SPOOL_IO;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return SPOOL_BUSY;
    case SQLITE_TOOBIG:
        return SPOOL_MISUSE;
    default:
        return SPOOL_INTERNAL;
    }
}

/* The name of a SQLite result code ("SQLITE_FULL", "SQLITE_IOERR_WRITE"):
 * the `code` of this backend's errors. */
static const char *sqlite_code_name(int code)
{
    static const struct {
        int code;
        const char *name;
    } names[] = {
        {0, "SQLITE_OK"}, {1, "SQLITE_ERROR"}, {2, "SQLITE_INTERNAL"}, {3, "SQLITE_PERM"},
        {4, "SQLITE_ABORT"}, {5, "SQLITE_BUSY"}, {6, "SQLITE_LOCKED"}, {7, "SQLITE_NOMEM"},
        {8, "SQLITE_READONLY"}, {9, "SQLITE_INTERRUPT"}, {10, "SQLITE_IOERR"},
        {11, "SQLITE_CORRUPT"}, {12, "SQLITE_NOTFOUND"}, {13, "SQLITE_FULL"},
        {14, "SQLITE_CANTOPEN"}, {15, "SQLITE_PROTOCOL"}, {16, "SQLITE_EMPTY"},
        {17, "SQLITE_SCHEMA"}, {18, "SQLITE_TOOBIG"}, {19, "SQLITE_CONSTRAINT"},
        {20, "SQLITE_MISMATCH"}, {21, "SQLITE_MISUSE"}, {22, "SQLITE_NOLFS"},
        {23, "SQLITE_AUTH"}, {24, "SQLITE_FORMAT"}, {25, "SQLITE_RANGE"}, {26, "SQLITE_NOTADB"},
        {27, "SQLITE_NOTICE"}, {28, "SQLITE_WARNING"},
        {10 | (1 << 8), "SQLITE_IOERR_READ"}, {10 | (2 << 8), "SQLITE_IOERR_SHORT_READ"},
        {10 | (3 << 8), "SQLITE_IOERR_WRITE"}, {10 | (4 << 8), "SQLITE_IOERR_FSYNC"},
        {10 | (5 << 8), "SQLITE_IOERR_DIR_FSYNC"}, {10 | (6 << 8), "SQLITE_IOERR_TRUNCATE"},
        {10 | (7 << 8), "SQLITE_IOERR_FSTAT"}, {10 | (8 << 8), "SQLITE_IOERR_UNLOCK"},
        {10 | (9 << 8), "SQLITE_IOERR_RDLOCK"}, {10 | (10 << 8), "SQLITE_IOERR_DELETE"},
        {10 | (12 << 8), "SQLITE_IOERR_NOMEM"}, {10 | (13 << 8), "SQLITE_IOERR_ACCESS"},
        {10 | (14 << 8), "SQLITE_IOERR_CHECKRESERVEDLOCK"}, {10 | (15 << 8), "SQLITE_IOERR_LOCK"},
        {10 | (16 << 8), "SQLITE_IOERR_CLOSE"}, {10 | (18 << 8), "SQLITE_IOERR_SHMOPEN"},
        {10 | (19 << 8), "SQLITE_IOERR_SHMSIZE"}, {10 | (21 << 8), "SQLITE_IOERR_SHMMAP"},
        {10 | (22 << 8), "SQLITE_IOERR_SEEK"}, {10 | (23 << 8), "SQLITE_IOERR_DELETE_NOENT"},
        {10 | (24 << 8), "SQLITE_IOERR_MMAP"}, {10 | (25 << 8), "SQLITE_IOERR_GETTEMPPATH"},
        {10 | (26 << 8), "SQLITE_IOERR_CONVPATH"}, {10 | (33 << 8), "SQLITE_IOERR_DATA"},
        {10 | (34 << 8), "SQLITE_IOERR_CORRUPTFS"},
        {5 | (1 << 8), "SQLITE_BUSY_RECOVERY"}, {5 | (2 << 8), "SQLITE_BUSY_SNAPSHOT"},
        {5 | (3 << 8), "SQLITE_BUSY_TIMEOUT"}, {6 | (1 << 8), "SQLITE_LOCKED_SHAREDCACHE"},
        {11 | (1 << 8), "SQLITE_CORRUPT_VTAB"}, {11 | (2 << 8), "SQLITE_CORRUPT_SEQUENCE"},
        {11 | (3 << 8), "SQLITE_CORRUPT_INDEX"}, {14 | (1 << 8), "SQLITE_CANTOPEN_NOTEMPDIR"},
        {14 | (2 << 8), "SQLITE_CANTOPEN_ISDIR"}, {14 | (3 << 8), "SQLITE_CANTOPEN_FULLPATH"},
        {8 | (1 << 8), "SQLITE_READONLY_RECOVERY"}, {8 | (2 << 8), "SQLITE_READONLY_CANTLOCK"},
        {8 | (3 << 8), "SQLITE_READONLY_ROLLBACK"}, {8 | (4 << 8), "SQLITE_READONLY_DBMOVED"},
        {8 | (5 << 8), "SQLITE_READONLY_CANTINIT"}, {8 | (6 << 8), "SQLITE_READONLY_DIRECTORY"},
        {19 | (8 << 8), "SQLITE_CONSTRAINT_UNIQUE"}, {19 | (6 << 8), "SQLITE_CONSTRAINT_PRIMARYKEY"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == code)
            return names[i].name;
    /* An extended code we do not list: name its primary code. */
    if (code > 255)
        return sqlite_code_name(code & 0xff);
    return "SQLITE_UNKNOWN";
}

/* Fills err from a SQLite failure of `what` on connection db.  A BUSY
 * after the deadline passed is that deadline's error.  Returns -1. */
static int fail(sq *s, sqlite3 *db, int rc, const spool_deadline *dl, const char *what, spool_error *err)
{
    if (err == NULL)
        return -1;
    if ((rc & 0xff) == SQLITE_BUSY && dl != NULL && spool_monotonic() >= dl->at)
        return spool_deadline_error(dl, err);
    /* The connection's message only when it belongs to this code: a code
     * from elsewhere (a pragma's result, a check) would read "not an
     * error". */
    const char *msg = db != NULL && (sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff) ? sqlite3_errmsg(db)
                                                                                      : sqlite3_errstr(rc);
    spool_error_set(err, kind_of(rc), "%s: %s (%s) in %s", what, msg, sqlite_code_name(rc),
                    s ? s->db_path : "spool");
    err->code = rc;
    err->code_name = sqlite_code_name(rc);
    if (db != NULL && ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_FULL ||
                       (rc & 0xff) == SQLITE_CANTOPEN))
        err->sys_errno = sqlite3_system_errno(db);
    return -1;
}

/* Waits with exponential backoff while another connection or process
 * holds a lock, until the operation's deadline. */
static int busy_handler(void *arg, int count)
{
    conn *c = arg;
    double now = spool_monotonic();
    if (c->dl == NULL)
        return 0; /* no operation deadline: do not wait */
    double at = c->dl->at;
    if (now >= at)
        return 0;
    /* A commit holds the lock for tens of microseconds: start short.
     * 0.1 ms doubling to 12.8 ms. */
    double wait = 0.0001 * (double)(1 << (count < 7 ? count : 7));
    if (wait > at - now)
        wait = at - now;
    struct timespec ts = {(time_t)wait, (long)((wait - floor(wait)) * 1e9)};
    nanosleep(&ts, NULL);
    return 1;
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* Runs SQL with no results; returns the SQLite code. */
static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Reads one integer (a PRAGMA); returns the SQLite code. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(stmt, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(stmt);
    return rc;
}

static void conn_close(conn *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

/* What every connection gets before it reads anything: the schema is
 * never trusted to run functions, and the connection cannot be made to
 * corrupt its own file (SQLite's defensive mode).  Returns the code. */
static int harden(sqlite3 *db)
{
    int rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
    return rc == SQLITE_OK ? exec(db, "PRAGMA trusted_schema=OFF") : rc;
}

/* Applies the per-connection settings. */
static int conn_configure(sq *s, conn *c)
{
    char sql[256];
    const sq_tuning *t = &s->t;
    int rc;
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous=%s; PRAGMA cache_size=-%lld; PRAGMA mmap_size=%lld;"
             "PRAGMA secure_delete=%d; PRAGMA wal_autocheckpoint=%d; PRAGMA foreign_keys=OFF;",
             s->sync_full ? "FULL" : "NORMAL", (long long)(t->cache_kib > 0 ? t->cache_kib : 2048),
             (long long)(t->mmap_size > 0 ? t->mmap_size : 0), t->secure_delete ? 1 : 0,
             t->wal_autocheckpoint < 0 ? 0 : t->wal_autocheckpoint > 0 ? t->wal_autocheckpoint : 1000);
    if ((rc = exec(c->db, sql)) != SQLITE_OK)
        return rc;
    if ((rc = harden(c->db)) != SQLITE_OK)
        return rc;
    if (t->exclusive && (rc = exec(c->db, "PRAGMA locking_mode=EXCLUSIVE")) != SQLITE_OK)
        return rc;
    return SQLITE_OK;
}

/* Opens a connection to an existing spool database and prepares the
 * statements.  Returns 0 or -1 with err set. */
static int conn_open(sq *s, conn **out, const spool_deadline *dl, spool_error *err)
{
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening %s", s->db_path);
    int rc = sqlite3_open_v2(s->db_path, &c->db, SQLITE_OPEN_READWRITE | OPEN_FLAGS, s->vfs);
    if (rc != SQLITE_OK) {
        fail(s, c->db, rc, NULL, "open", err);
        conn_close(c);
        return -1;
    }
    sqlite3_busy_handler(c->db, busy_handler, c);
    c->dl = dl;
    rc = conn_configure(s, c);
    c->dl = NULL;
    if (rc != SQLITE_OK) {
        fail(s, c->db, rc, dl, "configure", err);
        conn_close(c);
        return -1;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL);
        if (rc != SQLITE_OK) {
            fail(s, c->db, rc, NULL, "prepare", err);
            conn_close(c);
            return -1;
        }
    }
    *out = c;
    return 0;
}

static int schema_text(sqlite3 *db, char **out);

/* The schema a spool of `version` holds, as one line per object
 * ("type name table sql"), sorted: read from a reference database made
 * in memory, so that it is exactly what SQLite stores for our SQL.
 * Returns a malloc'd string, or NULL when out of memory. */
static char *expected_schema(int version)
{
    sqlite3 *db = NULL;
    char *out = NULL;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
        exec(db, schema_sql) == SQLITE_OK && (version < 2 || exec(db, info_sql) == SQLITE_OK))
        schema_text(db, &out);
    sqlite3_close_v2(db);
    return out;
}

/* Reads db's schema as expected_schema writes it.  Returns the code. */
static int schema_text(sqlite3 *db, char **out)
{
    sqlite3_stmt *q;
    *out = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT group_concat(line, char(10)) FROM (SELECT type || ' ' || name || ' ' || "
                                "tbl_name || ' ' || coalesce(sql, '') AS line FROM sqlite_schema ORDER BY 1)",
                                -1, &q, NULL);
    if (rc != SQLITE_OK)
        return rc;
    if ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(q, 0);
        *out = strdup(t ? t : "");
        rc = *out ? SQLITE_OK : SQLITE_NOMEM;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Compares db's schema with exactly the objects of `version`.  Returns
 * SQLITE_OK with *why = "" when it matches, or with *why naming the
 * first object that differs; another code when it could not read it. */
static int schema_check(sqlite3 *db, int version, char *why, size_t size)
{
    char *have = NULL, *want = expected_schema(version);
    int rc = want ? schema_text(db, &have) : SQLITE_NOMEM;
    why[0] = '\0';
    if (rc == SQLITE_OK && strcmp(have, want) != 0) {
        /* Name one line of the difference: an extra object first. */
        const char *line = NULL, *what = "unexpected";
        size_t len = 0;
        for (int pass = 0; pass < 2 && line == NULL; pass++) {
            const char *a = pass == 0 ? have : want, *b = pass == 0 ? want : have;
            for (const char *p = a; *p; p += len + (p[len] == '\n')) {
                len = strcspn(p, "\n");
                int found = 0;
                for (const char *q = b; *q; q += strcspn(q, "\n") + (q[strcspn(q, "\n")] == '\n'))
                    if (strcspn(q, "\n") == len && memcmp(p, q, len) == 0)
                        found = 1;
                if (!found) {
                    line = p;
                    what = pass == 0 ? "an unexpected object" : "a missing object";
                    break;
                }
            }
        }
        if (line == NULL) /* same lines, differently repeated */
            snprintf(why, size, "the schema differs from a spool's");
        else
            snprintf(why, size, "the schema differs from a spool's: %s: %.*s", what,
                     (int)(len > 200 ? 200 : len), line);
    }
    free(have);
    free(want);
    return rc;
}

/* Checks that an existing file is a spool of a format this build reads,
 * with exactly a spool's schema, without writing to it.  *fresh = 1 for
 * an empty database; *version = its format.  Returns 0 or -1 with err. */
static int check_identity(sq *s, int *fresh, int64_t *version, spool_error *err)
{
    sqlite3 *db = NULL;
    int64_t app = 0, ver = 0, tables = 0;
    spool_deadline dl = {spool_monotonic() + s->p.store_deadline, 0, s->p.store_deadline};
    conn tmp = {.dl = &dl};
    char why[320] = "";
    int rc = sqlite3_open_v2(s->db_path, &db, SQLITE_OPEN_READONLY | OPEN_FLAGS, s->vfs);
    if (rc == SQLITE_OK)
        rc = harden(db);
    if (rc == SQLITE_OK) {
        tmp.db = db;
        sqlite3_busy_handler(db, busy_handler, &tmp);
        /* One read transaction for every read: another process may be
         * creating the schema right now, and a mix of before and after
         * would look like a foreign file. */
        rc = exec(db, "BEGIN");
    }
    if (rc == SQLITE_OK)
        rc = query_int(db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = query_int(db, "PRAGMA user_version", &ver);
    if (rc == SQLITE_OK)
        rc = query_int(db, "SELECT count(*) FROM sqlite_schema", &tables);
    if (rc == SQLITE_OK && app == APPLICATION_ID && ver >= 1 && ver <= FORMAT_VERSION)
        rc = schema_check(db, (int)ver, why, sizeof why);
    if (db != NULL && !sqlite3_get_autocommit(db))
        exec(db, "COMMIT");
    if (rc != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_NOTADB)
            spool_error_set(err, SPOOL_CORRUPT, "%s is not a spool database (not an SQLite file); left untouched",
                            s->db_path);
        else
            fail(s, db, rc, &dl, "open", err);
        sqlite3_close_v2(db);
        return -1;
    }
    sqlite3_close_v2(db);
    *fresh = app == 0 && ver == 0 && tables == 0;
    *version = ver;
    if (*fresh)
        return 0;
    if (app != APPLICATION_ID)
        return spool_error_set(err, SPOOL_CORRUPT,
                               "%s is not a spool database (application_id %lld, expected %d); left untouched",
                               s->db_path, (long long)app, APPLICATION_ID);
    if (ver > FORMAT_VERSION)
        return spool_error_set(err, SPOOL_CORRUPT,
                               "%s has spool format %lld, newer than this build reads (%d); left untouched",
                               s->db_path, (long long)ver, FORMAT_VERSION);
    if (ver < 1)
        return spool_error_set(err, SPOOL_CORRUPT, "%s has no spool format version (user_version %lld); left untouched",
                               s->db_path, (long long)ver);
    if (why[0] != '\0')
        return spool_error_set(err, SPOOL_CORRUPT, "%s: %s; refused and left untouched", s->db_path, why);
    return 0;
}

/* Creates the schema in a new (empty) database on its own connection:
 * page size and auto_vacuum must be set before the first table, WAL
 * before any use.  Two processes racing here agree: the tables go in
 * under a write lock, with IF NOT EXISTS.  Returns 0 or -1. */
static int create_schema(sq *s, spool_error *err)
{
    char sql[1024];
    sqlite3 *db = NULL;
    spool_deadline dl = {spool_monotonic() + s->p.store_deadline, 0, s->p.store_deadline};
    conn tmp = {.dl = &dl};
    int rc = sqlite3_open_v2(s->db_path, &db, SQLITE_OPEN_READWRITE | OPEN_FLAGS, s->vfs);
    if (rc == SQLITE_OK)
        rc = harden(db);
    if (rc == SQLITE_OK) {
        tmp.db = db;
        sqlite3_busy_handler(db, busy_handler, &tmp);
        snprintf(sql, sizeof sql, "PRAGMA page_size=%d; PRAGMA auto_vacuum=INCREMENTAL;",
                 s->t.page_size > 0 ? s->t.page_size : 4096);
        rc = exec(db, sql);
    }
    /* Changing the journal mode does not wait through the busy handler:
     * while another process is creating the same spool it answers BUSY at
     * once, so retry until the deadline. */
    for (int tries = 0; rc == SQLITE_OK || (rc & 0xff) == SQLITE_BUSY; tries++) {
        rc = exec(db, "PRAGMA journal_mode=WAL");
        if ((rc & 0xff) != SQLITE_BUSY || !busy_handler(&tmp, tries))
            break;
    }
    if (rc == SQLITE_OK)
        rc = exec(db, "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK) {
        snprintf(sql, sizeof sql, "%s %s PRAGMA application_id=%d; PRAGMA user_version=%d;", schema_sql,
                 info_sql, APPLICATION_ID, FORMAT_VERSION);
        rc = exec(db, sql);
        if (rc == SQLITE_OK)
            rc = exec(db, "COMMIT");
        if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
            exec(db, "ROLLBACK");
    }
    int ret = rc == SQLITE_OK ? 0 : fail(s, db, rc, &dl, "create schema", err);
    sqlite3_close_v2(db);
    return ret;
}

/* Creates path and its missing parents with `mode`.  Returns 0 or -1
 * with errno. */
static int mkdir_p(const char *path, mode_t mode)
{
    char *tmp = strdup(path);
    if (tmp == NULL)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST) {
            free(tmp);
            return -1;
        }
        *p = '/';
    }
    int rc = mkdir(tmp, mode) != 0 && errno != EEXIST ? -1 : 0;
    free(tmp);
    return rc;
}

/* ------------------------------------------------- files of this process
 *
 * SQLite keeps its POSIX-lock bookkeeping per process, keyed by file, and
 * a forked child inherits it: a connection the child opens on a file its
 * parent had open holds no real lock, so the parent's close can
 * checkpoint and delete the WAL under the child's feet.  Every database
 * this process has open is listed here with the fork generation that
 * opened it; a child refuses a file that an ancestor had open.  The list
 * also answers an exclusive lock held within this process at once (POSIX
 * locks cannot tell a process about its own). */
typedef struct open_file {
    dev_t dev;
    ino_t ino;
    unsigned gen;
    int exclusive;
    const sq *owner;
    struct open_file *next;
} open_file;

static open_file *open_files;
static pthread_mutex_t open_files_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t open_files_fork_once = PTHREAD_ONCE_INIT;

static void sqlite_mutex_enter(void *m)
{
    sqlite3_mutex_enter(m);
}

static void sqlite_mutex_leave(void *m)
{
    sqlite3_mutex_leave(m);
}

/* Held across fork(): open_files_lock, and SQLite's process-wide static
 * mutexes (the allocator's, the page cache's, the unix VFS's inode list,
 * the PRNG's), because a child forked while another thread held one of
 * them would block in its first sqlite3_malloc or open.  SQLite takes
 * them nested in this order only (OPEN > PRNG > MAIN > VFS1 > LRU > PMEM
 * > MEM; the allocator's is innermost), and open_files_lock is never held
 * while SQLite runs, so taking them in this order cannot deadlock. */
static void open_files_install_fork_hold(void)
{
    static const int statics[] = {
        SQLITE_MUTEX_STATIC_OPEN, SQLITE_MUTEX_STATIC_PRNG, SQLITE_MUTEX_STATIC_MAIN,
        SQLITE_MUTEX_STATIC_VFS1, SQLITE_MUTEX_STATIC_LRU,  SQLITE_MUTEX_STATIC_PMEM,
        SQLITE_MUTEX_STATIC_MEM,
    };
    spool_fork_hold_mutex(&open_files_lock);
    if (sqlite3_initialize() != SQLITE_OK)
        return;
    for (size_t i = 0; i < sizeof statics / sizeof statics[0]; i++) {
        sqlite3_mutex *m = sqlite3_mutex_alloc(statics[i]);
        if (m != NULL)
            spool_fork_hold(sqlite_mutex_enter, sqlite_mutex_leave, m);
    }
}

/* Takes open_files_lock. */
static void open_files_take(void)
{
    pthread_once(&open_files_fork_once, open_files_install_fork_hold);
    pthread_mutex_lock(&open_files_lock);
}

/* Why (dev, ino) cannot be opened now by this process, or NULL: 'F' a
 * handle inherited from a parent, 'X' one holding it exclusively, 'x' the
 * caller wants it exclusively and a handle has it.  Lock held. */
static const open_file *open_file_conflict(dev_t dev, ino_t ino, int exclusive, char *why)
{
    unsigned gen = spool_fork_generation();
    for (const open_file *f = open_files; f != NULL; f = f->next) {
        if (f->dev != dev || f->ino != ino)
            continue;
        *why = f->gen != gen ? 'F' : f->exclusive ? 'X' : exclusive ? 'x' : 0;
        if (*why)
            return f;
    }
    return NULL;
}

static void open_file_forget(const sq *s)
{
    open_files_take();
    for (open_file **f = &open_files; *f != NULL; f = &(*f)->next) {
        if ((*f)->owner == s) {
            open_file *dead = *f;
            *f = dead->next;
            free(dead);
            break;
        }
    }
    pthread_mutex_unlock(&open_files_lock);
}

/* Whether another process holds `path` with SQLite's EXCLUSIVE lock for
 * longer than a close or a journal-mode change takes.  Only asked when
 * this process has no connection on the file: closing the descriptor
 * used to ask would drop this process's own POSIX locks on it.
 * Returns the holder's pid, or 0. */
static pid_t exclusive_holder(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    pid_t holder = 0;
    if (fd < 0)
        return 0;
    for (int tries = 0; tries < 10; tries++) {
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = LOCK_SHARED_FIRST,
                           .l_len = LOCK_SHARED_SIZE};
        if (fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type != F_WRLCK) {
            holder = 0;
            break;
        }
        holder = fl.l_pid;
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    close(fd);
    return holder;
}

/* lstat()s a file of the spool: *exists = 0 when absent; a symlink or
 * anything but a regular file is refused.  Returns 0 or -1 with err. */
static int check_regular(const char *path, int *exists, struct stat *st, spool_error *err)
{
    *exists = 0;
    if (lstat(path, st) != 0) {
        if (errno == ENOENT)
            return 0;
        int e = errno;
        spool_error_set(err, SPOOL_IO, "open: cannot inspect %s: %s", path, strerror(e));
        err->sys_errno = e;
        return -1;
    }
    *exists = 1;
    if (S_ISREG(st->st_mode))
        return 0;
    return spool_error_set(err, SPOOL_IO, "open: %s is %s, not a regular file: refused (a spool never "
                           "follows links among its own files)", path,
                           S_ISLNK(st->st_mode) ? "a symbolic link" : S_ISDIR(st->st_mode) ? "a directory"
                                                                                            : "a special file");
}

/* Refuses a file this process cannot both read and write (checked with
 * the effective ids, as open() does), naming it and the missing right.
 * A -wal or -shm file (may_vanish) that is gone since its lstat passes:
 * another process's last connection deletes them when it closes, and
 * SQLite creates them again.  Returns 0 or -1 with err. */
static int check_writable(const char *path, int is_dir, int may_vanish, spool_error *err)
{
    int need = is_dir ? (W_OK | X_OK) : (R_OK | W_OK);
    if (faccessat(AT_FDCWD, path, need, AT_EACCESS) == 0)
        return 0;
    int e = errno;
    if (may_vanish && e == ENOENT)
        return 0;
    const char *missing = is_dir ? "write access to the directory (the spool creates its -wal and -shm files there)"
                                 : faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) != 0 ? "read access" : "write access";
    spool_error_set(err, SPOOL_IO, "open: %s: this process (uid %ld) has no %s: %s", path, (long)geteuid(),
                    missing, strerror(e));
    err->sys_errno = e;
    return -1;
}

static int step_done(sqlite3_stmt *st);

/* The error for a database SQLite could open only for reading.  Returns -1. */
static int readonly_error(sq *s, spool_error *err)
{
    spool_error_set(err, SPOOL_IO, "open: %s opened read-only (this process, uid %ld, cannot write it): "
                    "a spool needs write access", s->db_path, (long)geteuid());
    err->sys_errno = EACCES;
    return -1;
}

/* Upgrades a version-1 spool and records (or checks) the spool's name,
 * in one write transaction on a connection of its own (the writer's
 * statements need the upgraded schema).  A directory holds one spool: a
 * name different from the recorded one is refused.  Returns 0 or -1. */
static int record_identity(sq *s, int64_t version, spool_error *err)
{
    if (version >= FORMAT_VERSION && s->p.name == NULL)
        return 0;
    spool_deadline dl = {spool_monotonic() + s->p.store_deadline, 0, s->p.store_deadline};
    conn tmp = {.dl = &dl};
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(s->db_path, &db, SQLITE_OPEN_READWRITE | OPEN_FLAGS, s->vfs), ok = 1;
    if (rc == SQLITE_OK && sqlite3_db_readonly(db, "main") == 1) {
        sqlite3_close_v2(db);
        return readonly_error(s, err);
    }
    if (rc == SQLITE_OK)
        rc = harden(db);
    if (rc == SQLITE_OK) {
        tmp.db = db;
        sqlite3_busy_handler(db, busy_handler, &tmp);
        rc = exec(db, "BEGIN IMMEDIATE");
    }
    char sql[512];
    if (rc == SQLITE_OK && version < 2) {
        snprintf(sql, sizeof sql, "%s PRAGMA user_version=%d;", info_sql, FORMAT_VERSION);
        rc = exec(db, sql);
    }
    if (rc == SQLITE_OK && s->p.name != NULL) {
        sqlite3_stmt *q;
        rc = sqlite3_prepare_v2(db, "SELECT value FROM info WHERE key = 'name'", -1, &q, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
            const char *had = (const char *)sqlite3_column_text(q, 0);
            if (had == NULL || strcmp(had, s->p.name) != 0) {
                ok = 0;
                spool_error_set(err, SPOOL_MISUSE,
                                "cannot define spool '%s' on %s: that directory holds spool '%s' "
                                "(a directory holds one spool)", s->p.name, s->dir, had ? had : "?");
            }
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            sqlite3_finalize(q);
            q = NULL;
            rc = sqlite3_prepare_v2(db, "INSERT INTO info(key, value) VALUES ('name', ?1)", -1, &q, NULL);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(q, 1, s->p.name, -1, SQLITE_STATIC);
            if (rc == SQLITE_OK)
                rc = step_done(q);
        }
        sqlite3_finalize(q);
    }
    if (rc == SQLITE_OK && ok)
        rc = exec(db, "COMMIT");
    int ret = 0;
    if (rc != SQLITE_OK)
        ret = fail(s, db, rc, &dl, "record the spool's identity", err);
    else if (!ok)
        ret = -1;
    if (db != NULL && !sqlite3_get_autocommit(db))
        exec(db, "ROLLBACK");
    sqlite3_close_v2(db);
    return ret;
}

static void sq_free(sq *s)
{
    if (s->registered)
        open_file_forget(s);
    conn_close(s->writer);
    while (s->idle) {
        conn *c = s->idle;
        s->idle = c->next;
        conn_close(c);
    }
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->pool_lock);
    free(s->dir);
    free(s->db_path);
    free(s->wal_path);
    free(s->vfs);
    free(s);
}

/* Opens (creating if needed) the spool in p->path.  Before SQLite sees a
 * file: the directory is created 0700 (0750 with group_access) and
 * resolved, the database, -wal and -shm must be regular files (never
 * links), readable and writable by this process, not opened by a parent
 * before fork(), not held exclusively by anyone else; a new database is
 * created 0600 (0640).  SQLite gives -wal and -shm the database's mode.
 * Then the file must carry exactly a spool's schema.  Returns 0 or -1. */
static int sq_open(const spool_params *p, const void *tuning, void **state, spool_error *err)
{
    struct stat stt;
    sq *s = calloc(1, sizeof *s);
    if (s == NULL)
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening %s", p->path);
    pthread_mutex_init(&s->write_lock, NULL);
    pthread_mutex_init(&s->pool_lock, NULL);
    s->p = *p;
    s->t = *(const sq_tuning *)tuning;
    s->sync_full = p->flush;
    mode_t dir_mode = p->group_access ? 0750 : 0700, file_mode = p->group_access ? 0640 : 0600;
    if (mkdir_p(p->path, dir_mode) != 0 || stat(p->path, &stt) != 0 || !S_ISDIR(stt.st_mode)) {
        int e = errno;
        spool_error_set(err, SPOOL_IO, "path: cannot create or use the directory %s: %s", p->path,
                        stat(p->path, &stt) == 0 && !S_ISDIR(stt.st_mode) ? "not a directory" : strerror(e));
        err->sys_errno = e;
        sq_free(s);
        return -1;
    }
    /* The directory's own links are the operator's choice; resolving
     * them here leaves SQLite a name whose only link could be the file's
     * own, which SQLITE_OPEN_NOFOLLOW refuses. */
    s->dir = realpath(p->path, NULL);
    size_t n = s->dir ? strlen(s->dir) : 0;
    s->db_path = malloc(n + sizeof "/" DB_NAME);
    s->wal_path = malloc(n + sizeof "/" DB_NAME "-wal");
    char *shm_path = malloc(n + sizeof "/" DB_NAME "-shm");
    if (s->dir == NULL || s->db_path == NULL || s->wal_path == NULL || shm_path == NULL ||
        (s->t.vfs != NULL && (s->vfs = strdup(s->t.vfs)) == NULL)) {
        int e = errno;
        free(shm_path);
        sq_free(s);
        spool_error_set(err, e == ENOMEM ? SPOOL_INTERNAL : SPOOL_IO, "path: cannot resolve %s: %s", p->path,
                        strerror(e));
        return -1;
    }
    s->p.path = s->dir;
    s->t.vfs = s->vfs;
    sprintf(s->db_path, "%s/%s", s->dir, DB_NAME);
    sprintf(s->wal_path, "%s/%s-wal", s->dir, DB_NAME);
    sprintf(shm_path, "%s/%s-shm", s->dir, DB_NAME);
    int db_exists, wal_exists, shm_exists;
    struct stat db_st, other;
    int bad = check_regular(s->db_path, &db_exists, &db_st, err) != 0 ||
              check_regular(s->wal_path, &wal_exists, &other, err) != 0 ||
              check_regular(shm_path, &shm_exists, &other, err) != 0 ||
              (db_exists && check_writable(s->db_path, 0, 0, err) != 0) ||
              (wal_exists && check_writable(s->wal_path, 0, 1, err) != 0) ||
              (shm_exists && check_writable(shm_path, 0, 1, err) != 0) || check_writable(s->dir, 1, 0, err) != 0;
    free(shm_path);
    if (bad) {
        sq_free(s);
        return -1;
    }
    if (!db_exists) {
        /* Created here, not by SQLite, for its mode and O_NOFOLLOW; a
         * process racing us to it is fine (EEXIST). */
        int fd = open(s->db_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, file_mode);
        if (fd < 0 && errno != EEXIST) {
            int e = errno;
            spool_error_set(err, SPOOL_IO, "open: cannot create %s: %s", s->db_path, strerror(e));
            err->sys_errno = e;
            sq_free(s);
            return -1;
        }
        if (fd >= 0)
            close(fd);
        if (check_regular(s->db_path, &db_exists, &db_st, err) != 0 || !db_exists) {
            if (!db_exists)
                spool_error_set(err, SPOOL_IO, "open: %s vanished while it was created", s->db_path);
            sq_free(s);
            return -1;
        }
    }
    /* The file's identity decides, not its name. */
    open_file *me = calloc(1, sizeof *me);
    if (me == NULL) {
        sq_free(s);
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening %s", s->dir);
    }
    char why = 0;
    open_files_take();
    const open_file *f = open_file_conflict(db_st.st_dev, db_st.st_ino, s->t.exclusive, &why);
    int here = 0;
    for (const open_file *g = open_files; g != NULL; g = g->next)
        here |= g->dev == db_st.st_dev && g->ino == db_st.st_ino;
    if (f == NULL) {
        me->dev = db_st.st_dev;
        me->ino = db_st.st_ino;
        me->gen = spool_fork_generation();
        me->exclusive = s->t.exclusive;
        me->owner = s;
        me->next = open_files;
        open_files = me;
        s->registered = 1;
    }
    pthread_mutex_unlock(&open_files_lock);
    if (f != NULL) {
        free(me);
        if (why == 'F')
            spool_error_set(err, SPOOL_MISUSE,
                            "cannot open %s in process %ld: its parent process had it open when it forked, "
                            "and SQLite's locks are per process, so this process could not lock it "
                            "(open spools after fork(), e.g. in init_worker_by_lua, or shut them down before "
                            "forking)", s->db_path, (long)getpid());
        else
            spool_error_set(err, SPOOL_BUSY,
                            "cannot open %s: %s in this process (sqlite.exclusive takes the file for one handle)",
                            s->db_path, why == 'X' ? "another handle holds it with an exclusive lock"
                                                   : "it is open by another handle, so no exclusive lock can be had");
        sq_free(s);
        return -1;
    }
    pid_t holder = here ? 0 : exclusive_holder(s->db_path);
    if (holder != 0) {
        spool_error_set(err, SPOOL_BUSY,
                        "cannot open %s: process %ld holds it with an exclusive lock (sqlite.exclusive); "
                        "it must close it first", s->db_path, (long)holder);
        sq_free(s);
        return -1;
    }
    int fresh = 1;
    int64_t version = FORMAT_VERSION;
    if (check_identity(s, &fresh, &version, err) != 0) {
        sq_free(s);
        return -1;
    }
    if (fresh && create_schema(s, err) != 0) {
        sq_free(s);
        return -1;
    }
    if (fresh)
        version = FORMAT_VERSION;
    if (record_identity(s, version, err) != 0) {
        sq_free(s);
        return -1;
    }
    spool_deadline dl = {spool_monotonic() + s->p.store_deadline, 0, s->p.store_deadline};
    if (conn_open(s, &s->writer, &dl, err) != 0) {
        sq_free(s);
        return -1;
    }
    if (sqlite3_db_readonly(s->writer->db, "main") == 1) {
        readonly_error(s, err);
        sq_free(s);
        return -1;
    }
    s->p.name = NULL; /* the caller's string: only needed above */
    int64_t limit = sqlite3_limit(s->writer->db, SQLITE_LIMIT_LENGTH, -1);
    s->max_entry = limit - 64; /* the row's key, checksum and header */
    *state = s;
    return 0;
}

static void sq_close(void *st, int leak)
{
    sq *s = st;
    if (leak) {
        pthread_mutex_lock(&abandoned_lock);
        s->next_abandoned = abandoned;
        abandoned = s;
        pthread_mutex_unlock(&abandoned_lock);
        return;
    }
    sq_free(s);
}

/* Takes the writer connection, waiting until the deadline.
 * Returns the connection, or NULL with the deadline's error. */
static conn *writer_acquire(sq *s, const spool_deadline *dl, spool_error *err)
{
    struct timespec ts;
    double whole = floor(dl->at);
    ts.tv_sec = (time_t)whole;
    ts.tv_nsec = (long)((dl->at - whole) * 1e9);
    if (pthread_mutex_clocklock(&s->write_lock, CLOCK_MONOTONIC, &ts) != 0) {
        spool_deadline_error(dl, err);
        return NULL;
    }
    s->writer->dl = dl;
    return s->writer;
}

static void writer_release(sq *s)
{
    s->writer->dl = NULL;
    pthread_mutex_unlock(&s->write_lock);
}

/* Takes a connection to read with.  With locking_mode=EXCLUSIVE the
 * writer's connection holds the file for itself, so reads share it. */
static conn *reader_acquire(sq *s, const spool_deadline *dl, spool_error *err)
{
    if (s->t.exclusive)
        return writer_acquire(s, dl, err);
    pthread_mutex_lock(&s->pool_lock);
    conn *c = s->idle;
    if (c != NULL)
        s->idle = c->next;
    pthread_mutex_unlock(&s->pool_lock);
    if (c == NULL && conn_open(s, &c, dl, err) != 0)
        return NULL;
    c->dl = dl;
    c->next = NULL;
    return c;
}

static void reader_release(sq *s, conn *c)
{
    if (s->t.exclusive) {
        writer_release(s);
        return;
    }
    c->dl = NULL;
    pthread_mutex_lock(&s->pool_lock);
    c->next = s->idle;
    s->idle = c;
    pthread_mutex_unlock(&s->pool_lock);
}

/* Steps a statement that returns no rows, then resets it. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Begins a write transaction on the writer; with force_sync (and no
 * flush) this one commit is made with synchronous=FULL, which syncs the
 * WAL and so also every commit before it.  Returns the connection or NULL. */
static conn *write_begin(sq *s, int force_sync, const spool_deadline *dl, spool_error *err)
{
    conn *c = writer_acquire(s, dl, err);
    if (c == NULL)
        return NULL;
    int rc = SQLITE_OK;
    if (force_sync && !s->sync_full)
        rc = exec(c->db, "PRAGMA synchronous=FULL");
    if (rc == SQLITE_OK)
        rc = step_done(c->st[ST_BEGIN]);
    if (rc != SQLITE_OK) {
        fail(s, c->db, rc, dl, "begin", err);
        if (force_sync && !s->sync_full)
            exec(c->db, "PRAGMA synchronous=NORMAL");
        writer_release(s);
        return NULL;
    }
    return c;
}

/* Commits (ok = 1) or rolls back the writer's transaction and releases
 * it.  A failed COMMIT that left the transaction open is rolled back;
 * one that did not may or may not have reached the disk, and says so. */
static int write_end(sq *s, conn *c, int ok, int force_sync, const spool_deadline *dl, spool_error *err)
{
    int ret = ok ? 0 : -1;
    if (ok) {
        int rc = step_done(c->st[ST_COMMIT]);
        if (rc != SQLITE_OK) {
            fail(s, c->db, rc, dl, "commit", err);
            /* An I/O error or a full disk during COMMIT may strike after
             * the commit frame reached the WAL file (a failed sync, say):
             * the next open can then recover the transaction even though
             * it was rolled back here.  The caller must be told that the
             * outcome is unknown. */
            if ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_FULL)
                err->ambiguous = 1;
            if (!sqlite3_get_autocommit(c->db))
                step_done(c->st[ST_ROLLBACK]);
            ret = -1;
        }
    } else if (!sqlite3_get_autocommit(c->db)) {
        step_done(c->st[ST_ROLLBACK]);
    }
    if (force_sync && !s->sync_full)
        exec(c->db, "PRAGMA synchronous=NORMAL");
    writer_release(s);
    return ret;
}

static uint32_t entry_sum(const uint8_t *key, size_t key_len, const void *data, size_t len)
{
    return spool_crc32c(spool_crc32c(0, key, key_len), data, len);
}

/* ------------------------------------------------------ group commit
 *
 * The core queues stores and removes and hands them here in batches
 * (csrc/core/spool_group.h): one transaction, one commit.
 */

/* Runs one request's statements inside the open transaction.
 * Adds the change to the live entry count to *delta.  Returns SQLITE_OK,
 * or the failing code with r->err set. */
static int req_apply(sq *s, conn *c, spool_write_req *r, int64_t *delta)
{
    sqlite3_stmt *st = c->st[r->op == SPOOL_WRITE_STORE ? ST_INSERT : ST_DELETE];
    r->removed = 0;
    *delta = 0;
    for (size_t i = 0; i < r->n; i++) {
        uint8_t key[SPOOL_ID_BYTES];
        int rc;
        if (r->op == SPOOL_WRITE_STORE) {
            const spool_item *it = &r->items[i];
            /* Refused before SQLite sees it: it would answer a NOT NULL
             * failure (its blob limit). */
            if (it->len > (size_t)s->max_entry) {
                spool_error_set(&r->err, SPOOL_MISUSE,
                                "data: an entry of %zu bytes is larger than the largest a spool holds "
                                "(%lld bytes: SQLite's length limit less 64)",
                                it->len, (long long)s->max_entry);
                return SQLITE_TOOBIG;
            }
            spool_id_to_key(&it->id, key);
            rc = sqlite3_bind_blob(st, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(st, 2, entry_sum(key, SPOOL_ID_BYTES, it->data, it->len));
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_blob(st, 3, it->len ? it->data : "", (int)it->len, SQLITE_STATIC);
            sqlite3_set_last_insert_rowid(c->db, 0);
            if (rc == SQLITE_OK)
                rc = step_done(st);
            if (rc == SQLITE_OK && sqlite3_last_insert_rowid(c->db) != 0)
                (*delta)++; /* a new entry, not a replaced one */
            sqlite3_clear_bindings(st);
        } else {
            spool_id_to_key(&r->ids[i], key);
            rc = sqlite3_bind_blob(st, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
            if (rc == SQLITE_OK)
                rc = step_done(st);
            if (rc == SQLITE_OK) {
                r->removed += (size_t)sqlite3_changes(c->db);
                *delta -= sqlite3_changes(c->db);
            }
        }
        if (rc != SQLITE_OK) {
            fail(s, c->db, rc, r->dl, r->op == SPOOL_WRITE_STORE ? "store" : "remove", &r->err);
            return rc;
        }
    }
    return SQLITE_OK;
}

/* Adds delta to the live entry count inside the open transaction.
 * Returns the SQLite code. */
static int count_add(conn *c, int64_t delta)
{
    sqlite3_stmt *st = c->st[ST_COUNT_ADD];
    int rc = sqlite3_bind_int64(st, 1, delta);
    if (rc == SQLITE_OK)
        rc = step_done(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* The driver's apply_batch (spool_group.h): one transaction (a savepoint
 * per request, so that one request's failure is its own) and one commit,
 * synced if a request asked for it. */
static void sq_apply_batch(void *st, spool_write_req **batch, size_t n, int durable)
{
    sq *s = st;
    durable = durable && !s->sync_full; /* with sync FULL every commit syncs */
    conn *c = NULL;
    /* Wait for the write lock until the earliest deadline; requests whose
     * deadline passed drop out and the rest wait on. */
    while (c == NULL) {
        spool_write_req *e = spool_group_earliest(batch, n);
        if (e == NULL)
            return;
        spool_error err;
        spool_error_clear(&err);
        c = write_begin(s, durable, e->dl, &err);
        if (c != NULL)
            break;
        if (err.kind == SPOOL_CALLER_DEADLINE_EXCEEDED || err.kind == SPOOL_BACKPRESSURE_TIMEOUT) {
            if (spool_group_expire(batch, n) == 0)
                return;
            continue;
        }
        spool_group_fail_pending(batch, n, &err);
        return;
    }
    int use_savepoints = n > 1, applied = 0;
    int64_t delta = 0;
    for (size_t i = 0; i < n; i++) {
        spool_write_req *r = batch[i];
        int64_t r_delta = 0;
        if (r->rc != 0)
            continue;
        int rc = use_savepoints ? step_done(c->st[ST_SAVEPOINT]) : SQLITE_OK;
        if (rc != SQLITE_OK)
            fail(s, c->db, rc, r->dl, "savepoint", &r->err);
        else
            rc = req_apply(s, c, r, &r_delta);
        if (rc == SQLITE_OK && use_savepoints && (rc = step_done(c->st[ST_RELEASE])) != SQLITE_OK)
            fail(s, c->db, rc, r->dl, "release savepoint", &r->err);
        if (rc == SQLITE_OK) {
            applied++;
            delta += r_delta;
            continue;
        }
        r->rc = -1;
        /* The request's own rows go with its savepoint; if that cannot be
         * undone cleanly, the whole batch must go. */
        int undone = use_savepoints && !sqlite3_get_autocommit(c->db) &&
                     step_done(c->st[ST_ROLLBACK_TO]) == SQLITE_OK && step_done(c->st[ST_RELEASE]) == SQLITE_OK;
        if (!undone) {
            /* A batch of one, or SQLite rolled the whole transaction back
             * (disk full, I/O error ...), or the savepoint could not be
             * undone: the whole batch fails with this error. */
            spool_group_fail_pending(batch, n, &r->err);
            applied = 0;
            break;
        }
    }
    spool_error err;
    spool_error_clear(&err);
    /* The commit's deadline is the earliest of those still pending. */
    spool_write_req *e = spool_group_earliest(batch, n);
    if (applied > 0 && delta != 0) {
        int rc = count_add(c, delta);
        if (rc != SQLITE_OK) {
            fail(s, c->db, rc, e ? e->dl : batch[0]->dl, "count entries", &err);
            spool_group_fail_pending(batch, n, &err);
            applied = 0; /* rolled back below: nothing of the batch is kept */
        }
    }
    if (write_end(s, c, applied > 0, durable, e ? e->dl : batch[0]->dl, &err) != 0 && applied > 0)
        spool_group_fail_pending(batch, n, &err);
}

static int sq_load(void *st, const spool_id *id, spool_blob_fn fn, void *ud, const spool_deadline *dl,
                   spool_error *err)
{
    sq *s = st;
    conn *c = reader_acquire(s, dl, err);
    if (c == NULL)
        return -1;
    uint8_t key[SPOOL_ID_BYTES];
    spool_id_to_key(id, key);
    sqlite3_stmt *sel = c->st[ST_SELECT];
    sqlite3_bind_blob(sel, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(sel), ret = 0;
    char text[SPOOL_ID_TEXT + 1]; /* for messages only */
    if (rc == SQLITE_ROW) {
        uint32_t stored = (uint32_t)sqlite3_column_int64(sel, 0);
        const void *blob = sqlite3_column_blob(sel, 1);
        size_t n = (size_t)sqlite3_column_bytes(sel, 1);
        uint32_t sum = blob == NULL && n > 0 ? 0 : entry_sum(key, SPOOL_ID_BYTES, blob, n);
        if (blob == NULL && n > 0) { /* out of memory inside SQLite */
            ret = fail(s, c->db, sqlite3_errcode(c->db), dl, "load", err);
        } else if (sum != stored) {
            spool_id_format(id, text);
            ret = spool_error_set(err, SPOOL_CORRUPT,
                                  "entry %s failed its checksum (stored %08x, computed %08x) in %s", text,
                                  stored, sum, s->db_path);
        } else if (fn(ud, blob ? blob : "", n) != 0) { /* SQLite gives NULL for an empty blob */
            ret = spool_error_set(err, SPOOL_INTERNAL, "out of memory taking a loaded entry of %zu bytes", n);
        }
    } else if (rc == SQLITE_DONE) {
        spool_id_format(id, text);
        ret = spool_error_set(err, SPOOL_NOT_FOUND, "no entry %s in %s", text, s->dir);
    } else {
        ret = fail(s, c->db, rc, dl, "load", err);
    }
    sqlite3_reset(sel);
    sqlite3_clear_bindings(sel);
    reader_release(s, c);
    return ret;
}

static void rows_free(cursor *cu)
{
    cu->nrows = cu->pos = 0;
    cu->arena_used = 0;
}

/* Copies n bytes (plus a NUL when nul) into the arena.  Returns the
 * offset, or SIZE_MAX when out of memory. */
static size_t arena_put(cursor *cu, const void *p, size_t n, int nul)
{
    size_t need = cu->arena_used + n + (nul ? 1 : 0);
    if (need > cu->arena_cap) {
        size_t cap = cu->arena_cap ? cu->arena_cap : 65536;
        while (cap < need)
            cap *= 2;
        uint8_t *a = realloc(cu->arena, cap);
        if (a == NULL)
            return SIZE_MAX;
        cu->arena = a;
        cu->arena_cap = cap;
    }
    size_t off = cu->arena_used;
    if (n > 0)
        memcpy(cu->arena + off, p, n);
    if (nul)
        cu->arena[off + n] = 0;
    cu->arena_used = need;
    return off;
}

static int sq_cursor_open(void *st, const spool_enum_opts *o, void **out, spool_error *err)
{
    sq *s = st;
    cursor *cu = calloc(1, sizeof *cu);
    int cap = s->t.enumerate_chunk_rows > 0 ? s->t.enumerate_chunk_rows : 256;
    if (cu == NULL || (cu->rows = calloc((size_t)cap, sizeof *cu->rows)) == NULL ||
        (cu->arena = malloc(65536)) == NULL) {
        if (cu)
            free(cu->rows);
        free(cu);
        return spool_error_set(err, SPOOL_INTERNAL, "out of memory opening a cursor");
    }
    cu->s = s;
    cu->cap = cap;
    cu->arena_cap = 65536;
    cu->which = o ? o->which : SPOOL_ENTRIES;
    cu->include_data = o ? o->include_data : 1;
    cu->ids_only = o && o->ids_only && cu->which == SPOOL_ENTRIES;
    spool_id_key_floor(o && o->has_start ? o->start_100ns : spool_id_now_unix_100ns(), cu->floor);
    *out = cu;
    return 0;
}

/* Fetches the next chunk in one short read transaction: at most `cap`
 * rows and about enumerate_chunk_bytes of data.  The statement is reset
 * before returning, so nothing stays open between chunks. */
static int fetch_chunk(cursor *cu, spool_error *err)
{
    sq *s = cu->s;
    int64_t budget = s->t.enumerate_chunk_bytes > 0 ? s->t.enumerate_chunk_bytes : 4 << 20;
    spool_deadline dl = {spool_monotonic() + s->p.store_deadline, 0, s->p.store_deadline};
    rows_free(cu);
    conn *c = reader_acquire(s, &dl, err);
    if (c == NULL)
        return -1;
    sqlite3_stmt *q = c->st[cu->which == SPOOL_QUARANTINE ? ST_QCHUNK : cu->ids_only ? ST_KEYCHUNK : ST_CHUNK];
    sqlite3_bind_blob(q, 1, cu->last ? (const void *)cu->last : "", (int)cu->last_len, SQLITE_STATIC);
    if (cu->which == SPOOL_QUARANTINE) {
        sqlite3_bind_int(q, 2, cu->cap);
    } else {
        sqlite3_bind_blob(q, 2, cu->floor, SPOOL_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int(q, 3, cu->cap);
    }
    int rc = SQLITE_ROW, ret = 0;
    while (cu->nrows < cu->cap && budget > 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        row *r = &cu->rows[cu->nrows];
        memset(r, 0, sizeof *r);
        r->key_len = (size_t)sqlite3_column_bytes(q, 0);
        const void *key = sqlite3_column_blob(q, 0);
        const void *data = NULL;
        if (!cu->ids_only) {
            r->sum = sqlite3_column_int64(q, 1);
            r->len = (size_t)sqlite3_column_bytes(q, 2);
            data = sqlite3_column_blob(q, 2);
        }
        r->key_off = arena_put(cu, key, r->key_len, 0);
        r->data_off = arena_put(cu, data, r->len, 0);
        r->reason_off = 0;
        if (cu->which == SPOOL_QUARANTINE) {
            const char *reason = (const char *)sqlite3_column_text(q, 3);
            r->reason_off = arena_put(cu, reason ? reason : "", reason ? strlen(reason) : 0, 1);
            r->time = sqlite3_column_double(q, 4);
        }
        if (r->key_off == SIZE_MAX || r->data_off == SIZE_MAX || r->reason_off == SIZE_MAX) {
            ret = spool_error_set(err, SPOOL_INTERNAL, "out of memory enumerating");
            break;
        }
        cu->nrows++;
        budget -= (int64_t)r->len;
    }
    /* rc is SQLITE_ROW when the chunk filled up, DONE when the query ran
     * out of rows, anything else an error. */
    if (ret == 0 && rc == SQLITE_DONE)
        cu->done = 1;
    else if (ret == 0 && rc != SQLITE_ROW)
        ret = fail(s, c->db, rc, &dl, "enumerate", err);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    reader_release(s, c);
    if (ret == 0 && cu->nrows > 0) {
        row *last = &cu->rows[cu->nrows - 1];
        uint8_t *k = realloc(cu->last, last->key_len ? last->key_len : 1);
        if (k == NULL)
            return spool_error_set(err, SPOOL_INTERNAL, "out of memory enumerating");
        memcpy(k, cu->arena + last->key_off, last->key_len);
        cu->last = k;
        cu->last_len = last->key_len;
    }
    if (cu->nrows == 0)
        cu->done = 1;
    return ret;
}

static int sq_cursor_next(void *cur, spool_entry *e, spool_error *err)
{
    cursor *cu = cur;
    if (cu->pos >= cu->nrows) {
        if (cu->done)
            return 0;
        if (fetch_chunk(cu, err) != 0) {
            cu->done = 1;
            return -1;
        }
        if (cu->nrows == 0)
            return 0;
    }
    row *r = &cu->rows[cu->pos++];
    const uint8_t *key = cu->arena + r->key_off, *data = cu->arena + r->data_off;
    const char *why = NULL;
    memset(e, 0, sizeof *e);
    e->id_valid = spool_id_from_key(key, r->key_len, &e->id, &why) == 0;
    if (!e->id_valid) {
        snprintf(cu->error, sizeof cu->error, "invalid id in the spool: %s", why);
        e->corrupt = 1;
        e->error = cu->error;
    } else if (cu->ids_only) {
        /* no data read: nothing to verify */
    } else if ((uint32_t)r->sum != entry_sum(key, r->key_len, data, r->len)) {
        char text[SPOOL_ID_TEXT + 1];
        spool_id_format(&e->id, text);
        snprintf(cu->error, sizeof cu->error, "entry %s failed its checksum", text);
        e->corrupt = 1;
        e->error = cu->error;
    } else if (cu->include_data) {
        e->data = data;
        e->len = r->len;
    }
    e->reason = cu->which == SPOOL_QUARANTINE ? (const char *)cu->arena + r->reason_off : NULL;
    e->time = r->time;
    return 1;
}

static void sq_cursor_close(void *cur)
{
    cursor *cu = cur;
    free(cu->rows);
    free(cu->arena);
    free(cu->last);
    free(cu);
}

static int sq_quarantine(void *st, const spool_id *id, const char *reason, const spool_deadline *dl,
                         spool_error *err)
{
    sq *s = st;
    conn *c = write_begin(s, 0, dl, err);
    if (c == NULL)
        return -1;
    uint8_t key[SPOOL_ID_BYTES];
    spool_id_to_key(id, key);
    sqlite3_stmt *ins = c->st[ST_QINSERT], *del = c->st[ST_DELETE];
    sqlite3_bind_blob(ins, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, reason, -1, SQLITE_STATIC);
    sqlite3_bind_double(ins, 3, (double)spool_id_now_unix_100ns() / 1e7);
    int rc = step_done(ins), ok = 1;
    sqlite3_clear_bindings(ins);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        char text[SPOOL_ID_TEXT + 1];
        spool_id_format(id, text);
        ok = 0;
        spool_error_set(err, SPOOL_CONFLICT,
                        "cannot quarantine %s: an entry with this id is already in quarantine "
                        "(restore or purge it first); both are kept", text);
    } else if (rc != SQLITE_OK) {
        ok = 0;
        fail(s, c->db, rc, dl, "quarantine", err);
    } else if (sqlite3_changes(c->db) == 0) {
        char text[SPOOL_ID_TEXT + 1];
        spool_id_format(id, text);
        ok = 0;
        spool_error_set(err, SPOOL_NOT_FOUND, "no entry %s to quarantine in %s", text, s->dir);
    } else {
        sqlite3_bind_blob(del, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
        if ((rc = step_done(del)) != SQLITE_OK || (rc = count_add(c, -1)) != SQLITE_OK) {
            ok = 0;
            fail(s, c->db, rc, dl, "quarantine", err);
        }
    }
    return write_end(s, c, ok, 0, dl, err);
}

static int sq_restore(void *st, const spool_id *id, const spool_deadline *dl, spool_error *err)
{
    sq *s = st;
    conn *c = write_begin(s, 0, dl, err);
    if (c == NULL)
        return -1;
    uint8_t key[SPOOL_ID_BYTES];
    spool_id_to_key(id, key);
    sqlite3_stmt *ins = c->st[ST_QRESTORE], *del = c->st[ST_QDELETE];
    sqlite3_bind_blob(ins, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
    int rc = step_done(ins), ok = 1;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        char text[SPOOL_ID_TEXT + 1];
        spool_id_format(id, text);
        ok = 0;
        spool_error_set(err, SPOOL_CONFLICT,
                        "cannot restore %s: a live entry with this id exists (remove it first); "
                        "both are kept", text);
    } else if (rc != SQLITE_OK) {
        ok = 0;
        fail(s, c->db, rc, dl, "restore", err);
    } else if (sqlite3_changes(c->db) == 0) {
        char text[SPOOL_ID_TEXT + 1];
        spool_id_format(id, text);
        ok = 0;
        spool_error_set(err, SPOOL_NOT_FOUND, "no quarantined entry %s in %s", text, s->dir);
    } else {
        sqlite3_bind_blob(del, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
        if ((rc = step_done(del)) != SQLITE_OK || (rc = count_add(c, 1)) != SQLITE_OK) {
            ok = 0;
            fail(s, c->db, rc, dl, "restore", err);
        }
    }
    return write_end(s, c, ok, 0, dl, err);
}

/* Deletes a quarantined entry for good; *purged = 1 when there was one. */
static int sq_purge(void *st, const spool_id *id, const spool_deadline *dl, int *purged, spool_error *err)
{
    sq *s = st;
    conn *c = write_begin(s, 0, dl, err);
    if (c == NULL)
        return -1;
    uint8_t key[SPOOL_ID_BYTES];
    spool_id_to_key(id, key);
    sqlite3_stmt *del = c->st[ST_QDELETE];
    int rc = sqlite3_bind_blob(del, 1, key, SPOOL_ID_BYTES, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = step_done(del);
    sqlite3_clear_bindings(del);
    *purged = rc == SQLITE_OK && sqlite3_changes(c->db) > 0;
    if (rc != SQLITE_OK)
        fail(s, c->db, rc, dl, "purge", err);
    return write_end(s, c, rc == SQLITE_OK, 0, dl, err);
}

/* Notes the WAL's size for health(): since when it has stayed over
 * checkpoint_wal_bytes (a reader holding an old snapshot keeps it from
 * being reset).  Returns the size. */
static int64_t note_wal(sq *s)
{
    int64_t limit = s->t.checkpoint_wal_bytes > 0 ? s->t.checkpoint_wal_bytes : 64 << 20;
    int64_t wal = file_size(s->wal_path);
    pthread_mutex_lock(&s->pool_lock);
    if (wal <= limit)
        s->wal_over_since = 0;
    else if (s->wal_over_since == 0)
        s->wal_over_since = (double)spool_id_now_unix_100ns() / 1e7;
    pthread_mutex_unlock(&s->pool_lock);
    return wal;
}

/* Checkpoints the WAL and truncates it to zero bytes when no reader is
 * in the way, never waiting: a checkpoint that waits for readers holds
 * the write lock all the while, and every store of every process would
 * wait behind it.  So it copies what it can (PASSIVE, which takes no
 * write lock), and truncates only when everything was copied, with the
 * busy handler off (a reader then answers BUSY at once, and the WAL is
 * left to grow, as health() reports).  Returns 0, or -1 on a real error. */
static int checkpoint(sq *s, conn *c, const spool_deadline *dl, spool_error *err)
{
    const spool_deadline *own = c->dl;
    int log = 0, copied = 0;
    c->dl = NULL; /* busy_handler: do not wait */
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc == SQLITE_OK && log > 0 && copied == log)
        rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    c->dl = own;
    note_wal(s);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
        return fail(s, c->db, rc, dl, "checkpoint", err);
    return 0;
}

/* Reclaims up to `pages` free pages in one write transaction.
 * *freed = pages actually reclaimed. */
static int vacuum_step(sq *s, int pages, const spool_deadline *dl, int64_t *freed, spool_error *err)
{
    int64_t before = 0, after = 0;
    char sql[64];
    conn *c = write_begin(s, 0, dl, err);
    if (c == NULL)
        return -1;
    snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%d)", pages);
    int rc = query_int(c->db, "PRAGMA freelist_count", &before);
    if (rc == SQLITE_OK && before > 0)
        rc = exec(c->db, sql);
    if (rc == SQLITE_OK)
        rc = query_int(c->db, "PRAGMA freelist_count", &after);
    if (rc != SQLITE_OK)
        fail(s, c->db, rc, dl, "incremental vacuum", err);
    if (write_end(s, c, rc == SQLITE_OK, 0, dl, err) != 0)
        return -1;
    *freed = before - after;
    return 0;
}

static int sq_compact(void *st, spool_compact_stats *stats, spool_error *err)
{
    sq *s = st;
    double t0 = spool_monotonic();
    int step = s->t.vacuum_step_pages > 0 ? s->t.vacuum_step_pages : 1024;
    int64_t db_before = file_size(s->db_path), wal_before = file_size(s->wal_path);
    int64_t wal_max = wal_before, pages_freed = 0;
    stats->bytes_before = db_before + wal_before;
    int rc = 0;
    for (;;) {
        spool_deadline dl = {spool_monotonic() + s->p.store_deadline, 0, s->p.store_deadline};
        conn *c = writer_acquire(s, &dl, err);
        if (c == NULL) {
            rc = -1;
            break;
        }
        int64_t wal = file_size(s->wal_path);
        if (wal > wal_max)
            wal_max = wal;
        rc = checkpoint(s, c, &dl, err);
        writer_release(s);
        if (rc != 0)
            break;
        /* The writer lock is dropped between steps, so stores go on while
         * a large spool is compacted. */
        int64_t freed = 0;
        if ((rc = vacuum_step(s, step, &dl, &freed, err)) != 0)
            break;
        pages_freed += freed;
        if (freed <= 0)
            break;
        stats->steps++;
    }
    int64_t db_after = file_size(s->db_path), wal_after = file_size(s->wal_path);
    stats->bytes_after = db_after + wal_after;
    stats->seconds = spool_monotonic() - t0;
    spool_metrics_set(&stats->backend, "db_bytes_before", (double)db_before);
    spool_metrics_set(&stats->backend, "db_bytes_after", (double)db_after);
    spool_metrics_set(&stats->backend, "wal_bytes_before", (double)wal_before);
    spool_metrics_set(&stats->backend, "wal_bytes_after", (double)wal_after);
    spool_metrics_set(&stats->backend, "wal_bytes_max", (double)wal_max);
    spool_metrics_set(&stats->backend, "pages_freed", (double)pages_freed);
    return rc;
}

static int sq_cleanup(void *st, spool_cleanup_stats *stats, spool_error *err)
{
    sq *s = st;
    double t0 = spool_monotonic();
    spool_deadline dl = {spool_monotonic() + s->p.store_deadline, 0, s->p.store_deadline};
    int64_t limit = s->t.checkpoint_wal_bytes > 0 ? s->t.checkpoint_wal_bytes : 64 << 20;
    int pages = s->t.cleanup_vacuum_pages > 0 ? s->t.cleanup_vacuum_pages : 256;
    int checkpointed = 0;
    int64_t pages_freed = 0;
    if (file_size(s->wal_path) > limit) {
        conn *c = writer_acquire(s, &dl, err);
        if (c == NULL)
            return -1;
        int rc = checkpoint(s, c, &dl, err);
        writer_release(s);
        if (rc != 0)
            return -1;
        checkpointed = 1;
    }
    if (vacuum_step(s, pages, &dl, &pages_freed, err) != 0)
        return -1;
    stats->seconds = spool_monotonic() - t0;
    spool_metrics_set_bool(&stats->backend, "checkpointed", checkpointed);
    spool_metrics_set(&stats->backend, "pages_freed", (double)pages_freed);
    spool_metrics_set(&stats->backend, "wal_bytes", (double)file_size(s->wal_path));
    return 0;
}

static int sq_advise_low_memory(void *st, int64_t *released, spool_error *err)
{
    sq *s = st;
    (void)err;
    int64_t before = sqlite3_memory_used();
    pthread_mutex_lock(&s->write_lock);
    sqlite3_db_release_memory(s->writer->db);
    pthread_mutex_unlock(&s->write_lock);
    pthread_mutex_lock(&s->pool_lock);
    for (conn *c = s->idle; c; c = c->next)
        sqlite3_db_release_memory(c->db);
    pthread_mutex_unlock(&s->pool_lock);
    sqlite3_release_memory(INT_MAX);
    *released = before - sqlite3_memory_used();
    return 0;
}

/* PRAGMA quick_check: the b-tree structure and every index, without the
 * cost of integrity_check's full cross-check. */
static int sq_check(void *st, int *good, char *report, size_t size, spool_error *err)
{
    sq *s = st;
    spool_deadline dl = {spool_monotonic() + s->p.store_deadline, 0, s->p.store_deadline};
    conn *c = reader_acquire(s, &dl, err);
    if (c == NULL)
        return -1;
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(c->db, "PRAGMA quick_check(10)", -1, &q, NULL);
    size_t used = 0;
    report[0] = '\0';
    while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(q, 0);
        int n = snprintf(report + used, size - used, "%s%s", used ? "; " : "", line ? line : "");
        if (n > 0 && (size_t)n < size - used)
            used += (size_t)n;
        rc = SQLITE_OK;
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    sqlite3_finalize(q);
    int ret = 0;
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_CORRUPT && (rc & 0xff) != SQLITE_NOTADB) {
        ret = fail(s, c->db, rc, &dl, "verify", err);
    } else if (rc != SQLITE_OK) {
        snprintf(report, size, "%s (%s)", sqlite3_errmsg(c->db), sqlite_code_name(rc));
    }
    *good = ret == 0 && rc == SQLITE_OK && strcmp(report, "ok") == 0;
    /* A file whose structure is sound can still carry objects a spool
     * does not (a trigger that moves rows away): exactly the schema. */
    int64_t ver = 0;
    char why[320];
    if (ret == 0 && (rc = query_int(c->db, "PRAGMA user_version", &ver)) == SQLITE_OK &&
        (rc = schema_check(c->db, (int)ver, why, sizeof why)) == SQLITE_OK && why[0] != '\0') {
        size_t at = *good ? 0 : strlen(report); /* "ok" is replaced */
        snprintf(report + at, size - at, "%s%s", at ? "; " : "", why);
        *good = 0;
    } else if (ret == 0 && rc != SQLITE_OK) {
        ret = fail(s, c->db, rc, &dl, "verify", err);
        *good = 0;
    }
    /* The live count must agree with the rows (one read transaction). */
    int64_t recorded = 0, counted = 0;
    if (ret == 0 && why[0] == '\0' && ver >= 2 && exec(c->db, "BEGIN") == SQLITE_OK) {
        rc = query_int(c->db, "SELECT value FROM info WHERE key = 'entries'", &recorded);
        if (rc == SQLITE_OK)
            rc = query_int(c->db, "SELECT count(*) FROM entries", &counted);
        exec(c->db, "COMMIT");
        if (rc == SQLITE_OK && recorded != counted) {
            size_t at = *good ? 0 : strlen(report);
            snprintf(report + at, size - at, "%sthe entry count is recorded as %lld, but %lld entries are present",
                     at ? "; " : "", (long long)recorded, (long long)counted);
            *good = 0;
        } else if (rc != SQLITE_OK) {
            ret = fail(s, c->db, rc, &dl, "verify", err);
            *good = 0;
        }
    }
    reader_release(s, c);
    return ret;
}

static int sq_stats(void *st, spool_stats *out, spool_error *err)
{
    sq *s = st;
    spool_deadline dl = {spool_monotonic() + s->p.store_deadline, 0, s->p.store_deadline};
    conn *c = reader_acquire(s, &dl, err);
    if (c == NULL)
        return -1;
    int64_t page_size = 0, page_count = 0, freelist = 0;
    sqlite3_stmt *q = c->st[ST_COUNT_GET];
    int rc = sqlite3_step(q);
    out->entries = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    sqlite3_reset(q);
    if (rc == SQLITE_OK)
        rc = query_int(c->db, "SELECT count(*) FROM quarantine", &out->quarantined);
    if (rc == SQLITE_OK)
        rc = query_int(c->db, "PRAGMA page_size", &page_size);
    if (rc == SQLITE_OK)
        rc = query_int(c->db, "PRAGMA page_count", &page_count);
    if (rc == SQLITE_OK)
        rc = query_int(c->db, "PRAGMA freelist_count", &freelist);
    int ret = rc == SQLITE_OK ? 0 : fail(s, c->db, rc, &dl, "stats", err);
    reader_release(s, c);
    int64_t db = file_size(s->db_path), wal = file_size(s->wal_path);
    out->bytes = db + wal;
    spool_metrics_set(&out->backend, "db_bytes", (double)db);
    spool_metrics_set(&out->backend, "wal_bytes", (double)wal);
    spool_metrics_set(&out->backend, "page_size", (double)page_size);
    spool_metrics_set(&out->backend, "page_count", (double)page_count);
    spool_metrics_set(&out->backend, "freelist_count", (double)freelist);
    return ret;
}

static void sq_health(void *st, spool_health *h)
{
    sq *s = st;
    spool_metrics_set(&h->backend, "wal_bytes", (double)note_wal(s));
    pthread_mutex_lock(&s->pool_lock);
    double since = s->wal_over_since;
    pthread_mutex_unlock(&s->pool_lock);
    if (since > 0)
        spool_metrics_set(&h->backend, "wal_over_since", since);
}

/* A directory holds a SQLite spool when it has the database file. */
static int sq_probe(const char *path)
{
    char buf[4096];
    struct stat st;
    snprintf(buf, sizeof buf, "%s/" DB_NAME, path);
    return lstat(buf, &st) == 0;
}

#define SQ_OPT(field) offsetof(sq_tuning, field)
#define SQ_MAX_INT 2147483647LL
#define SQ_MAX_BYTES 9007199254740992LL /* 2^53: exact in a double */

/* The `sqlite` table of the parameters, read into sq_tuning. */
static const spool_option sq_options[] = {
    {"page_size", SPOOL_OPT_POW2, 512, 65536, 0, "4096", SQ_OPT(page_size),
     "page size of a new database (an existing one keeps its own)", NULL},
    {"cache_kib", SPOOL_OPT_INT64, 1, SQ_MAX_INT, 0, "2048", SQ_OPT(cache_kib), "page cache per connection, KiB", NULL},
    {"mmap_size", SPOOL_OPT_INT64, 0, SQ_MAX_BYTES, 0, "0", SQ_OPT(mmap_size), "bytes of the database mapped", NULL},
    {"wal_autocheckpoint", SPOOL_OPT_INT, 0, SQ_MAX_INT, -1, "1000", SQ_OPT(wal_autocheckpoint),
     "pages of WAL before an automatic checkpoint; 0 disables them (cleanup and compact still checkpoint)", NULL},
    {"checkpoint_wal_bytes", SPOOL_OPT_INT64, 1, SQ_MAX_BYTES, 0, "67108864", SQ_OPT(checkpoint_wal_bytes),
     "cleanup() checkpoints a WAL larger than this", NULL},
    {"vacuum_step_pages", SPOOL_OPT_INT, 1, SQ_MAX_INT, 0, "1024", SQ_OPT(vacuum_step_pages),
     "pages compact() reclaims per step", NULL},
    {"cleanup_vacuum_pages", SPOOL_OPT_INT, 1, SQ_MAX_INT, 0, "256", SQ_OPT(cleanup_vacuum_pages),
     "pages cleanup() reclaims per call", NULL},
    {"enumerate_chunk_rows", SPOOL_OPT_INT, 1, SQ_MAX_INT, 0, "256", SQ_OPT(enumerate_chunk_rows),
     "rows per enumerate read transaction", NULL},
    {"enumerate_chunk_bytes", SPOOL_OPT_INT64, 1, SQ_MAX_BYTES, 0, "4194304", SQ_OPT(enumerate_chunk_bytes),
     "bytes per enumerate read transaction", NULL},
    {"exclusive", SPOOL_OPT_BOOL, 0, 1, 0, "false", SQ_OPT(exclusive),
     "locking_mode=EXCLUSIVE: one process, one handle", NULL},
    {"secure_delete", SPOOL_OPT_BOOL, 0, 1, 0, "false", SQ_OPT(secure_delete), "zero the pages a remove frees", NULL},
    {"vfs", SPOOL_OPT_STRING, 0, 0, 0, "the default", SQ_OPT(vfs), "a registered SQLite VFS, by name (tests)", NULL},
    {NULL, 0, 0, 0, 0, NULL, 0, NULL, NULL},
};

const spool_backend spool_sqlite_backend = {
    .version = 4,
    .enumerate_order = SPOOL_ORDER_CREATED,
    .batch_commit = 1, /* one transaction per batch */
    .probe = sq_probe,
    .options_key = "sqlite",
    .options = sq_options,
    .params_size = sizeof(sq_tuning),
    .kind = "SQLite",
    .open = sq_open,
    .load = sq_load,
    .cursor_open = sq_cursor_open,
    .cursor_next = sq_cursor_next,
    .cursor_close = sq_cursor_close,
    .quarantine = sq_quarantine,
    .restore = sq_restore,
    .purge = sq_purge,
    .compact = sq_compact,
    .cleanup = sq_cleanup,
    .advise_low_memory = sq_advise_low_memory,
    .check = sq_check,
    .stats = sq_stats,
    .close = sq_close,
    .health = sq_health,
    .apply_batch = sq_apply_batch,
};
