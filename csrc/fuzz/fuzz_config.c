/*
 * fuzz_config.c: libFuzzer target for the configuration parser,
 * normalize(params, where) in lua/spool/config.lua, run in an embedded
 * Lua 5.1.  Nothing is opened: only the parser is exercised.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I/usr/include/lua5.1 \
 *       csrc/fuzz/fuzz_config.c -llua5.1 -lm
 *   ./a.out -max_len=512 csrc/fuzz/corpus/config   (from the repository root)
 * or tools/reliability/fuzz.sh, which builds it into build/fuzz/.
 *
 * Each input is decoded (below) into a parameter table of random keys and
 * values: strings, numbers (NaN, infinities, negative zero, huge, tiny,
 * fractions), booleans and nested tables, biased toward the keys the
 * parser knows (path, kind, flush, min_free_space, ..., sqlite = {...},
 * rocks_params = {...}, name) and values near their limits.  normalize
 * runs under lua_pcall and must either
 *   - return a table that core.open can take as it is: a non-empty path,
 *     only keys it reads, every number finite and in its range; or
 *   - raise a string that names the caller (`where`, after any "file:line:"
 *     position), names a key of the input (or says "path" / "parameter")
 *     and says what was wrong ("expected", "unknown", "required", "not
 *     built").
 * Anything else aborts, so libFuzzer saves the input.
 *
 * config.lua is loaded from lua/spool/config.lua relative to the current
 * directory (run from the repository root), or from $SPOOL_CONFIG_LUA.
 * FUZZ_CONFIG_LAX=1 lets an infinite count or duration through (to look
 * past a known, reported bug while it is open: a count string of 400
 * digits is accepted as +inf).  FUZZ_CONFIG_VERBOSE=1 prints each outcome
 * (e.g. with -runs=0 over the corpus).  A line hook feeds the lines of
 * config.lua that ran into libFuzzer's extra counters, so coverage of the
 * Lua parser guides the fuzzing too.
 *
 * Input format: byte 0 picks `where`; then a table: a count byte and that
 * many key/value pairs, each key a byte (mostly an index into the known
 * keys) and each value a tag byte and its payload.  Running out of input
 * ends every table, so any byte string decodes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_config: invariant violated at %s:%d: ", __FILE__, __LINE__);         \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

#define MAX_DEPTH 4
#define MAX_PAIRS 24

/* Keys of the parameter table, of sqlite = {...} and of rocks_params. */
static const char *const known_keys[] = {
    "path", "kind", "flush", "group_access", "min_free_space", "min_free_inodes", "store_deadline",
    "error_latch_duration", "error_unlatch_duration", "allow_error_unlatch",
    "limit_concurrent_stores", "limit_concurrent_loads", "limit_concurrent_removes",
    "reserve_bytes", "rocks_params", "sqlite", "name",
    "page_size", "cache_kib", "mmap_size", "wal_autocheckpoint", "checkpoint_wal_bytes",
    "vacuum_step_pages", "cleanup_vacuum_pages", "enumerate_chunk_rows", "enumerate_chunk_bytes",
    "exclusive", "secure_delete", "vfs",
    "compression_type", "increase_parallelism", "max_open_files", "paranoid_checks", "log_level",
    "log_file_time_to_roll", "obsolete_files_period", "write_buffer_size",
    /* not known: near misses */
    "Path", "paths", "", "sqlite.page_size", "min_free_space_percent", "log_parallelism",
};
#define N_KNOWN (sizeof known_keys / sizeof known_keys[0])

/* Strings near the edges of what the parser takes. */
static const char *const strings[] = {
    "/var/spool/app/data", "/tmp/spool", "relative/dir", "", " ", "SQLite", "LocalDisk", "RocksDB",
    "sqlite", "10%", "0%", "100%", "100.5%", "101%", "-5%", "abc%", " 7 % ", "..%", "1.2.3%", "%",
    "30s", "200ms", "5m", "2h", "1d", "1.5s", "0s", "0", "-1", ".", "1e5", "1e999", "inf", "-inf",
    "nan", "0x10", "1 h", "10 parsecs", "Snappy", "lz4", "ZSTD", "Info", "24 hours", "6h", "4096", "65536", "data", "meta", "unix-none", "a\0b",
    "9999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999",
};
#define N_STRINGS (sizeof strings / sizeof strings[0])

static const double numbers[] = {
    0, 1, -1, 0.5, -0.5, 2, 7, 15, 30, 100, 101, 300, 511, 512, 513, 1000, 1024, 2048, 4096, 4097,
    8192, 32768, 65536, 65537, 131072, 1e-300, 1e300, 1.7976931348623157e308, 4.9e-324,
    2147483647.0, 2147483648.0, 4294967295.0, 4294967296.0, 9007199254740992.0,
    9223372036854775807.0, 18446744073709551616.0, -2147483648.0, -9223372036854775808.0,
};
#define N_NUMBERS (sizeof numbers / sizeof numbers[0])

typedef struct reader {
    const uint8_t *p;
    size_t n, pos;
} reader;

static int more(const reader *r)
{
    return r->pos < r->n;
}

static uint8_t next(reader *r)
{
    return r->pos < r->n ? r->p[r->pos++] : 0;
}

static double special(uint8_t b)
{
    switch (b % 6) {
    case 0:
        return NAN;
    case 1:
        return INFINITY;
    case 2:
        return -INFINITY;
    case 3:
        return -0.0;
    case 4:
        return -numbers[(b / 6) % N_NUMBERS];
    default:
        return numbers[(b / 6) % N_NUMBERS];
    }
}

static void push_table(lua_State *L, reader *r, int depth);

/* Pushes one value decoded from r.  Returns 0 when it pushed nothing
 * (nil was drawn). */
static int push_value(lua_State *L, reader *r, int depth)
{
    uint8_t tag = next(r);
    switch (tag % 12) {
    case 0:
        return 0; /* nil */
    case 1:
        lua_pushboolean(L, tag & 0x80);
        return 1;
    case 2:
        lua_pushnumber(L, (double)(int8_t)next(r));
        return 1;
    case 3:
        lua_pushnumber(L, numbers[next(r) % N_NUMBERS]);
        return 1;
    case 4:
        lua_pushnumber(L, special(next(r)));
        return 1;
    case 5: { /* any double, from 8 bytes */
        uint64_t u = 0;
        double d;
        for (int i = 0; i < 8; i++)
            u = u << 8 | next(r);
        memcpy(&d, &u, sizeof d);
        lua_pushnumber(L, d);
        return 1;
    }
    case 6: { /* a 32-bit integer, possibly negative */
        uint32_t u = 0;
        for (int i = 0; i < 4; i++)
            u = u << 8 | next(r);
        lua_pushnumber(L, (double)(int32_t)u);
        return 1;
    }
    case 7: {
        uint8_t i = next(r);
        const char *s = strings[i % N_STRINGS];
        /* "a\0b" keeps its NUL */
        lua_pushlstring(L, s, strcmp(s, "a") == 0 ? 3 : strlen(s));
        return 1;
    }
    case 8: { /* raw bytes */
        size_t len = next(r) % 64;
        if (len > r->n - r->pos)
            len = r->n - r->pos;
        lua_pushlstring(L, (const char *)r->p + r->pos, len);
        r->pos += len;
        return 1;
    }
    case 9:
        lua_pushstring(L, known_keys[next(r) % N_KNOWN]);
        return 1;
    case 10: { /* a number and a suffix, or a long run of one digit (beyond a double's range) */
        char buf[1100];
        static const char *const suffix[] = {"", "%", "s", "ms", "m", "h", "d", " %", "x", "S"};
        uint8_t b = next(r);
        if (b & 0x80) {
            size_t n = (size_t)(b & 0x7f) * 8 + 1;
            memset(buf, '0' + next(r) % 10, n);
            buf[n] = '\0';
        } else {
            snprintf(buf, sizeof buf, "%.17g", numbers[b % N_NUMBERS]);
        }
        strncat(buf, suffix[next(r) % 10], sizeof buf - strlen(buf) - 1);
        lua_pushstring(L, buf);
        return 1;
    }
    default:
        if (depth >= MAX_DEPTH) {
            lua_pushboolean(L, 0);
            return 1;
        }
        push_table(L, r, depth + 1);
        return 1;
    }
}

/* Pushes a table decoded from r. */
static void push_table(lua_State *L, reader *r, int depth)
{
    int n = next(r) % (MAX_PAIRS + 1);
    lua_createtable(L, 0, n);
    for (int i = 0; i < n && more(r); i++) {
        uint8_t k = next(r);
        if (k < 200) {
            lua_pushstring(L, known_keys[k % N_KNOWN]);
        } else if (k < 240) {
            lua_pushnumber(L, (double)(k - 220)); /* array-like keys, 0 and negative too */
        } else if (!push_value(L, r, depth)) {
            continue;
        }
        /* A nil or NaN key cannot go into a table. */
        if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1))) {
            lua_pop(L, 1);
            continue;
        }
        if (!push_value(L, r, depth)) {
            lua_pop(L, 1);
            continue;
        }
        lua_rawset(L, -3);
    }
    if (depth == 0 && next(r) & 1) { /* now and then, a cycle */
        lua_pushstring(L, "rocks_params");
        lua_pushvalue(L, -2);
        lua_rawset(L, -3);
    }
}

/* ------------------------------------------------------------- checks */

static int lax, verbose;

static int is_finite(double v)
{
    return v == v && v != INFINITY && v != -INFINITY;
}

static int integral(double v)
{
    return is_finite(v) && v == floor(v);
}

static double field_number(lua_State *L, int t, const char *key, const char *where)
{
    lua_getfield(L, t, key);
    if (lua_type(L, -1) != LUA_TNUMBER)
        FAIL("normalize returned %s%s = a %s, not a number", where, key, luaL_typename(L, -1));
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static void check_sqlite(lua_State *L, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            FAIL("normalize returned a non-string key in sqlite");
        const char *k = lua_tostring(L, -2);
        int vt = lua_type(L, -1);
        double v = vt == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        if (strcmp(k, "exclusive") == 0 || strcmp(k, "secure_delete") == 0) {
            if (vt != LUA_TBOOLEAN)
                FAIL("normalize returned sqlite.%s = a %s, not a boolean", k, lua_typename(L, vt));
        } else if (strcmp(k, "vfs") == 0) {
            if (vt != LUA_TSTRING || lua_objlen(L, -1) == 0)
                FAIL("normalize returned an empty or non-string sqlite.vfs");
        } else if (strcmp(k, "page_size") == 0) {
            if (vt != LUA_TNUMBER || !integral(v) || v < 512 || v > 65536 || ((long)v & ((long)v - 1)) != 0)
                FAIL("normalize returned sqlite.page_size = %.17g, not a power of two in [512, 65536]", v);
        } else if (strcmp(k, "mmap_size") == 0 || strcmp(k, "wal_autocheckpoint") == 0) {
            if (vt != LUA_TNUMBER || !integral(v) || v < 0)
                FAIL("normalize returned sqlite.%s = %.17g, not an integer >= 0", k, v);
        } else if (strcmp(k, "cache_kib") == 0 || strcmp(k, "checkpoint_wal_bytes") == 0 ||
                   strcmp(k, "vacuum_step_pages") == 0 || strcmp(k, "cleanup_vacuum_pages") == 0 ||
                   strcmp(k, "enumerate_chunk_rows") == 0 || strcmp(k, "enumerate_chunk_bytes") == 0) {
            if (vt != LUA_TNUMBER || !integral(v) || v < 1)
                FAIL("normalize returned sqlite.%s = %.17g, not an integer >= 1", k, v);
        } else {
            FAIL("normalize returned an unknown sqlite setting '%s'", k);
        }
        lua_pop(L, 1);
    }
}

/* rocks_params as normalize returns it when the RocksDB backend is built:
 * KumoMTA's keys, each a boolean, a known name or a finite number in its
 * range (the gate and deadline settings were taken out to the top level). */
static void check_rocks(lua_State *L, int t)
{
    static const char *const names[] = {"None", "Snappy", "Zlib", "Bz2", "Lz4", "Lz4hc", "Zstd",
                                        "Debug", "Info", "Warn", "Error", "Fatal", "Header"};
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            FAIL("normalize returned a non-string key in rocks_params");
        const char *k = lua_tostring(L, -2);
        int vt = lua_type(L, -1);
        double v = vt == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        if (strcmp(k, "paranoid_checks") == 0 || strcmp(k, "level_compaction_dynamic_level_bytes") == 0) {
            if (vt != LUA_TBOOLEAN)
                FAIL("normalize returned rocks_params.%s = a %s, not a boolean", k, lua_typename(L, vt));
        } else if (strcmp(k, "compression_type") == 0 || strcmp(k, "log_level") == 0) {
            int known = 0;
            for (size_t i = 0; vt == LUA_TSTRING && i < sizeof names / sizeof names[0]; i++)
                known |= strcmp(lua_tostring(L, -1), names[i]) == 0;
            if (!known)
                FAIL("normalize returned rocks_params.%s that is not one of the known names", k);
        } else if (strcmp(k, "log_file_time_to_roll") == 0 || strcmp(k, "obsolete_files_period") == 0) {
            if (vt != LUA_TNUMBER || !is_finite(v) || v < 0 || v > 1e9)
                FAIL("normalize returned rocks_params.%s = %.17g, not a duration in [0, 1e9] seconds", k, v);
        } else if (strcmp(k, "store_deadline") == 0 || strncmp(k, "error_", 6) == 0 ||
                   strncmp(k, "limit_concurrent_", 17) == 0 || strcmp(k, "allow_error_unlatch") == 0) {
            FAIL("normalize left the gate setting rocks_params.%s inside rocks_params", k);
        } else {
            /* The integer options: max_open_files may be -1. */
            if (vt != LUA_TNUMBER || !integral(v) || v < -1)
                FAIL("normalize returned rocks_params.%s = %.17g, not an integer", k, v);
        }
        lua_pop(L, 1);
    }
}

/* The returned table must be what core.open reads (csrc/spool_lua.c,
 * read_params), with every value in its range. */
static void check_result(lua_State *L, int t)
{
    if (lua_type(L, t) != LUA_TTABLE)
        FAIL("normalize returned a %s, not a table", luaL_typename(L, t));
    lua_getfield(L, t, "path");
    if (lua_type(L, -1) != LUA_TSTRING || lua_objlen(L, -1) == 0 ||
        strlen(lua_tostring(L, -1)) != lua_objlen(L, -1))
        FAIL("normalize returned no path, an empty one or one with a NUL");
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            FAIL("normalize returned a non-string key (%s)", luaL_typename(L, -2));
        const char *k = lua_tostring(L, -2);
        int vt = lua_type(L, -1);
        if (strcmp(k, "path") == 0) {
        } else if (strcmp(k, "name") == 0) {
            if (vt != LUA_TSTRING || lua_objlen(L, -1) == 0)
                FAIL("normalize returned an empty or non-string name");
        } else if (strcmp(k, "kind") == 0) {
            /* One of the contract's kinds (an unbuilt one must raise
             * "not built" before this: core.open would refuse it). */
            const char *kind = vt == LUA_TSTRING ? lua_tostring(L, -1) : "";
            if (strcmp(kind, "SQLite") != 0 && strcmp(kind, "LocalDisk") != 0 && strcmp(kind, "RocksDB") != 0)
                FAIL("normalize returned a kind that is not SQLite, LocalDisk or RocksDB");
        } else if (strcmp(k, "flush") == 0 || strcmp(k, "allow_error_unlatch") == 0 || strcmp(k, "group_access") == 0) {
            if (vt != LUA_TBOOLEAN)
                FAIL("normalize returned %s = a %s, not a boolean", k, lua_typename(L, vt));
        } else if (strcmp(k, "sqlite") == 0) {
            if (vt != LUA_TTABLE)
                FAIL("normalize returned sqlite = a %s, not a table", lua_typename(L, vt));
            check_sqlite(L, lua_gettop(L));
        } else if (strcmp(k, "rocks_params") == 0) {
            if (vt != LUA_TTABLE)
                FAIL("normalize returned rocks_params = a %s, not a table", lua_typename(L, vt));
            check_rocks(L, lua_gettop(L));
        } else {
            double v = field_number(L, t, k, "");
            if (strcmp(k, "min_free_space_percent") == 0 || strcmp(k, "min_free_inodes_percent") == 0) {
                if (!(v >= 0 && v <= 100))
                    FAIL("normalize returned %s = %.17g, not a percentage in [0, 100]", k, v);
            } else if (strcmp(k, "min_free_space_bytes") == 0 || strcmp(k, "min_free_inodes_count") == 0 ||
                       strcmp(k, "error_latch_duration") == 0 || strcmp(k, "error_unlatch_duration") == 0) {
                if (!(v >= 0) || (!lax && !is_finite(v)))
                    FAIL("normalize returned %s = %.17g, not a finite number >= 0", k, v);
            } else if (strcmp(k, "store_deadline") == 0) {
                if (!is_finite(v) || !(v > 0))
                    FAIL("normalize returned store_deadline = %.17g, not a finite number > 0", v);
            } else if (strcmp(k, "reserve_bytes") == 0) {
                if (!integral(v) || v < 0)
                    FAIL("normalize returned reserve_bytes = %.17g, not an integer >= 0", v);
            } else if (strncmp(k, "limit_concurrent_", 17) == 0) {
                if (!integral(v) || v < 1)
                    FAIL("normalize returned %s = %.17g, not an integer >= 1", k, v);
            } else {
                FAIL("normalize returned a key core.open does not read: '%s'", k);
            }
        }
        lua_pop(L, 1);
    }
}

/* Whether msg (of len bytes) contains the NUL-free string s. */
static int contains(const char *msg, size_t len, const char *s, size_t slen)
{
    if (slen == 0)
        return 1;
    for (size_t i = 0; i + slen <= len; i++)
        if (memcmp(msg + i, s, slen) == 0)
            return 1;
    return 0;
}

/* A raise must be a string that starts with `where` (after an optional
 * "file:line: " position), names a key of params (or says "path" or
 * "parameter") and says what was wrong. */
static void check_error(lua_State *L, int params, const char *where)
{
    if (lua_type(L, -1) != LUA_TSTRING)
        FAIL("normalize raised a %s, not a string", luaL_typename(L, -1));
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    if (len == 0)
        FAIL("normalize raised an empty message");
    if (!contains(msg, len, where, strlen(where)))
        FAIL("normalize raised \"%s\", which does not name the caller \"%s\"", msg, where);
    int named = contains(msg, len, "path", 4) || contains(msg, len, "parameter", 9);
    int top = lua_gettop(L); /* msg stays anchored at top */
    lua_pushnil(L);
    while (!named && lua_next(L, params) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t kl;
            const char *k = lua_tolstring(L, -2, &kl);
            if (kl > 0 && strlen(k) == kl && contains(msg, len, k, kl))
                named = 1;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    if (!named)
        FAIL("normalize raised \"%s\", which names no key of the parameters", msg);
    if (!contains(msg, len, "expected", 8) && !contains(msg, len, "unknown", 7) &&
        !contains(msg, len, "required", 8) && !contains(msg, len, "not built", 9))
        FAIL("normalize raised \"%s\", which does not say what was expected", msg);
}

/* ----------------------------------------------------------- harness */

/* Coverage of config.lua itself: libFuzzer only sees the C code it
 * instrumented, and liblua is not.  A line hook counts each (previous
 * line, line) pair of the parser's source in libFuzzer's extra counters,
 * so that inputs reaching new branches of normalize are kept. */
#define LUA_COV_SIZE 4096
__attribute__((section("__libfuzzer_extra_counters"), used)) static uint8_t lua_cov[LUA_COV_SIZE];
static const char *config_source; /* "@path" as Lua names the chunk */
static int prev_line;

static void line_hook(lua_State *L, lua_Debug *ar)
{
    if (lua_getinfo(L, "S", ar) == 0 || ar->source == NULL || strcmp(ar->source, config_source) != 0)
        return;
    unsigned slot = ((unsigned)prev_line * 7919u + (unsigned)ar->currentline) % LUA_COV_SIZE;
    if (lua_cov[slot] < 255)
        lua_cov[slot]++;
    prev_line = ar->currentline;
}

static lua_State *L0;
static int normalize_ref = LUA_NOREF;

typedef struct run {
    const uint8_t *data;
    size_t size;
} run;

static const char *const wheres[] = {"spool.open", "spool.define", NULL, "fuzz"};

/* Decodes the input and calls normalize under lua_pcall; runs itself
 * under lua_cpcall, so that the decoding cannot escape either. */
static int run_one(lua_State *L)
{
    const run *rn = lua_touserdata(L, 1);
    reader r = {rn->data, rn->size, 0};
    const char *where = wheres[next(&r) % 4];
    lua_settop(L, 0);
    push_table(L, &r, 0); /* 1: params */
    lua_rawgeti(L, LUA_REGISTRYINDEX, normalize_ref);
    lua_pushvalue(L, 1);
    if (where)
        lua_pushstring(L, where);
    else
        lua_pushnil(L);
    if (lua_pcall(L, 2, 1, 0) == 0) {
        if (verbose)
            fprintf(stderr, "fuzz_config: accepted\n");
        check_result(L, 2);
    } else {
        if (verbose)
            fprintf(stderr, "fuzz_config: raised: %s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
        check_error(L, 1, where ? where : "spool.open");
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *file = getenv("SPOOL_CONFIG_LUA");
    const char *l = getenv("FUZZ_CONFIG_LAX");
    lax = l != NULL && l[0] != '\0' && strcmp(l, "0") != 0;
    verbose = getenv("FUZZ_CONFIG_VERBOSE") != NULL;
    if (file == NULL)
        file = "lua/spool/config.lua";
    L0 = luaL_newstate();
    if (L0 == NULL)
        FAIL("cannot create a Lua state");
    luaL_openlibs(L0);
    if (luaL_loadfile(L0, file) != 0 || lua_pcall(L0, 0, 1, 0) != 0) {
        fprintf(stderr, "fuzz_config: cannot load %s (run from the repository root): %s\n", file,
                lua_tostring(L0, -1));
        exit(2);
    }
    lua_getfield(L0, -1, "normalize");
    if (lua_type(L0, -1) != LUA_TFUNCTION) {
        fprintf(stderr, "fuzz_config: %s has no normalize function\n", file);
        exit(2);
    }
    normalize_ref = luaL_ref(L0, LUA_REGISTRYINDEX);
    lua_settop(L0, 0);
    static char source[4096];
    snprintf(source, sizeof source, "@%s", file);
    config_source = source;
    lua_sethook(L0, line_hook, LUA_MASKLINE, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    run rn = {data, size};
    prev_line = 0;
    int rc = lua_cpcall(L0, run_one, &rn);
    if (rc != 0) {
        /* Only the decoder runs unprotected by run_one's own pcall: a
         * failure here is a memory error, or a bug in this harness. */
        FAIL("the harness raised: %s", lua_tostring(L0, -1) ? lua_tostring(L0, -1) : "(no message)");
    }
    lua_settop(L0, 0);
    if (++runs % 4096 == 0)
        lua_gc(L0, LUA_GCCOLLECT, 0);
    return 0;
}
