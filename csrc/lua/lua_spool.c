/*
 * lua_spool.c: the spool.Spool class: open, define, lookup, backends and
 * every method but the cursor walks (lua_cursor.c).  Misuse (wrong types,
 * invalid ids, a shut-down handle) raises; runtime failures return nil
 * and a spool.Error.
 */
#include <stdlib.h>
#include <string.h>

#include "spool_backend.h"
#include "spool_lua.h"

/* The open spool.Spool at index 1; raises, naming why, when it is shut
 * down or was inherited across fork(). */
lspool *spool_lua_check_spool(lua_State *L)
{
    lspool *h = luaL_checkudata(L, 1, SPOOL_MT);
    char why[SPOOL_ERROR_MESSAGE_MAX];
    if (h->s == NULL)
        luaL_error(L, "spool %s is shut down", h->path ? h->path : "?");
    if (spool_closed_reason(h->s, why, sizeof why) != NULL)
        luaL_error(L, "%s", why);
    return h;
}

static double opt_field_number(lua_State *L, int t, const char *k, double def)
{
    lua_getfield(L, t, k);
    double v = lua_isnil(L, -1) ? def : lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int opt_field_bool(lua_State *L, int t, const char *k, int def)
{
    lua_getfield(L, t, k);
    int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static void read_threshold(lua_State *L, int t, const char *pct, const char *abs, spool_threshold *out)
{
    lua_getfield(L, t, pct);
    if (!lua_isnil(L, -1)) {
        out->is_percent = 1;
        out->value = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    lua_getfield(L, t, abs);
    if (!lua_isnil(L, -1)) {
        out->is_percent = 0;
        out->value = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
}

/* Records the options of backend b found in the Lua table at t as
 * tuning rows of p (the core checks them at open against the same
 * declarations config.lua validated them by).  Strings stay anchored in
 * the table.  Raises when the rows do not fit. */
static void read_options(lua_State *L, int t, const spool_backend *b, spool_params *p)
{
    spool_error err;
    for (const spool_option *o = b->options; o->name != NULL; o++) {
        lua_getfield(L, t, o->name);
        int rc = 0;
        if (lua_type(L, -1) == LUA_TSTRING)
            rc = spool_params_tune_text(p, b->options_key, o->name, lua_tostring(L, -1), &err);
        else if (lua_type(L, -1) == LUA_TBOOLEAN)
            rc = spool_params_tune_number(p, b->options_key, o->name, lua_toboolean(L, -1), &err);
        else if (lua_type(L, -1) == LUA_TNUMBER)
            rc = spool_params_tune_number(p, b->options_key, o->name, lua_tonumber(L, -1), &err);
        if (rc != 0)
            luaL_error(L, "%s", err.message);
        lua_pop(L, 1);
    }
}

/* Reads the parameter table at idx (validated and normalised by
 * lua/spool/config.lua) into p.  Strings stay anchored in the table. */
static void read_params(lua_State *L, int idx, spool_params *p)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    spool_params_init(p);
    lua_getfield(L, idx, "path");
    p->path = luaL_checkstring(L, -1);
    lua_getfield(L, idx, "kind");
    if (!lua_isnil(L, -1))
        p->kind = luaL_checkstring(L, -1);
    lua_pop(L, 2);
    p->flush = opt_field_bool(L, idx, "flush", 0);
    p->group_access = opt_field_bool(L, idx, "group_access", 0);
    read_threshold(L, idx, "min_free_space_percent", "min_free_space_bytes", &p->min_free_space);
    read_threshold(L, idx, "min_free_inodes_percent", "min_free_inodes_count", &p->min_free_inodes);
    p->store_deadline = opt_field_number(L, idx, "store_deadline", p->store_deadline);
    p->error_latch_duration = opt_field_number(L, idx, "error_latch_duration", p->error_latch_duration);
    p->error_unlatch_duration = opt_field_number(L, idx, "error_unlatch_duration", p->error_unlatch_duration);
    p->allow_error_unlatch = opt_field_bool(L, idx, "allow_error_unlatch", 1);
    p->limit_concurrent_stores = (unsigned)opt_field_number(L, idx, "limit_concurrent_stores", 0);
    p->limit_concurrent_loads = (unsigned)opt_field_number(L, idx, "limit_concurrent_loads", 0);
    p->limit_concurrent_removes = (unsigned)opt_field_number(L, idx, "limit_concurrent_removes", 0);
    p->reserve_bytes = (int64_t)opt_field_number(L, idx, "reserve_bytes", (double)p->reserve_bytes);
    p->commit_wait = opt_field_number(L, idx, "commit_wait", p->commit_wait);
    /* Each backend's tuning table, read by its option declarations (the
     * Lua layer validated the values against the same rows). */
    const spool_backend *b;
    for (size_t i = 0; (b = spool_backend_get(i)) != NULL; i++) {
        if (b->options == NULL)
            continue;
        lua_getfield(L, idx, b->options_key);
        if (lua_istable(L, -1))
            read_options(L, lua_gettop(L), b, p);
        lua_pop(L, 1);
    }
}

/* Pushes a new, empty spool.Spool userdata for `path`.  It exists
 * before the spool is opened, so that a raise cannot leak the handle. */
static lspool *push_handle(lua_State *L, const char *path)
{
    lspool *h = spool_lua_newuserdata(L, sizeof *h);
    h->s = NULL;
    h->path = NULL;
    h->kind = "";
    luaL_getmetatable(L, SPOOL_MT);
    lua_setmetatable(L, -2);
    h->path = strdup(path);
    if (h->path == NULL)
        luaL_error(L, "out of memory");
    return h;
}

/* open(params) -> spool.Spool | nil, err: an anonymous spool. */
static int l_open(lua_State *L)
{
    spool_params p;
    spool_error err;
    read_params(L, 1, &p);
    lspool *h = push_handle(L, p.path);
    if (spool_open(&p, &h->s, &err) != 0)
        return spool_lua_fail(L, &err);
    h->kind = spool_get_kind(h->s);
    return 1;
}

/* define(name, params) -> spool.Spool | nil, err: opens and registers
 * the spool process-wide.  A name already defined raises. */
static int l_define(lua_State *L)
{
    spool_params p;
    spool_error err;
    size_t len;
    const char *name = luaL_checklstring(L, 1, &len);
    if (strlen(name) != len)
        return luaL_argerror(L, 1, "name: a spool name must not contain NUL bytes");
    read_params(L, 2, &p);
    lspool *h = push_handle(L, p.path);
    if (spool_define(name, &p, &h->s, &err) != 0)
        return spool_lua_fail(L, &err);
    h->kind = spool_get_kind(h->s);
    return 1;
}

/* lookup(name) -> spool.Spool | nil: a new handle, in this Lua state, on
 * the spool registered under `name` by any state of the process. */
static int l_lookup(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    /* The userdata first: once the reference is taken nothing may raise. */
    lspool *h = spool_lua_newuserdata(L, sizeof *h);
    h->s = NULL;
    h->path = NULL;
    h->kind = "";
    luaL_getmetatable(L, SPOOL_MT);
    lua_setmetatable(L, -2);
    spool *s = spool_lookup(name);
    if (s == NULL) {
        lua_pushnil(L);
        return 1;
    }
    h->s = s;
    h->kind = spool_get_kind(s);
    h->path = strdup(spool_get_path(s)); /* NULL prints as "?" */
    return 1;
}

/* The one close: idempotent, never raises; used by shutdown, __gc and
 * __close.  With shutdown, the storage closes for every holder (other
 * Lua states and threads then get "shut down" errors); without (__gc),
 * only this handle's reference goes, and the storage closes with the
 * last one. */
static void spool_handle_close(lspool *h, int shutdown)
{
    if (h->s != NULL) {
        if (shutdown)
            spool_shutdown(h->s, NULL);
        spool_release(h->s);
        h->s = NULL;
    }
}

static int l_spool_shutdown(lua_State *L)
{
    spool_handle_close(luaL_checkudata(L, 1, SPOOL_MT), 1);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_spool_gc(lua_State *L)
{
    lspool *h = luaL_checkudata(L, 1, SPOOL_MT);
    spool_handle_close(h, 0);
    free(h->path);
    h->path = NULL;
    return 0;
}

static int l_spool_tostring(lua_State *L)
{
    lspool *h = luaL_checkudata(L, 1, SPOOL_MT);
    lua_pushfstring(L, "spool.Spool(%s, %s)", h->path ? h->path : "?",
                    h->s && !spool_is_closed(h->s) ? "open" : "closed");
    return 1;
}

static int l_spool_is_closed(lua_State *L)
{
    lspool *h = luaL_checkudata(L, 1, SPOOL_MT);
    lua_pushboolean(L, h->s == NULL || spool_is_closed(h->s));
    return 1;
}

/* Reads the options table of a write at idx: force_sync, deadline
 * (absolute, spool.monotonic()) or timeout (seconds from now). */
static void check_write_opts(lua_State *L, int idx, spool_write_opts *o)
{
    memset(o, 0, sizeof *o);
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        if (strcmp(k, "force_sync") == 0) {
            luaL_argcheck(L, lua_isboolean(L, -1), idx, "force_sync: boolean expected");
            o->force_sync = lua_toboolean(L, -1);
        } else if (strcmp(k, "deadline") == 0 || strcmp(k, "timeout") == 0) {
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_argerror(L, idx, lua_pushfstring(L, "%s: number of seconds expected, got %s", k,
                                                      luaL_typename(L, -1)));
            double v = lua_tonumber(L, -1);
            if (v != v)
                luaL_argerror(L, idx, lua_pushfstring(L, "%s: a number of seconds expected, got NaN", k));
            if (k[0] == 't') {
                luaL_argcheck(L, v >= 0, idx, "timeout: must be >= 0 seconds");
                v += spool_monotonic();
            }
            /* A deadline already past still counts: 0 would mean "none".
             * Given both deadline and timeout, the earlier one applies,
             * whatever the order the table yields them in. */
            v = v > 0 ? v : 1e-9;
            if (o->deadline == 0 || v < o->deadline)
                o->deadline = v;
        } else {
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s' (expected force_sync, deadline, timeout)", k));
        }
        lua_pop(L, 1);
    }
}

static int l_spool_store(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_id id = spool_lua_check_id(L, 2);
    spool_write_opts o;
    spool_error err;
    size_t len;
    if (lua_type(L, 3) != LUA_TSTRING)
        return luaL_argerror(L, 3, lua_pushfstring(L, "data: string expected, got %s", luaL_typename(L, 3)));
    const char *data = lua_tolstring(L, 3, &len);
    check_write_opts(L, 4, &o);
    if (spool_store(h->s, &id, data, len, &o, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_spool_remove(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_id id = spool_lua_check_id(L, 2);
    spool_write_opts o;
    spool_error err;
    int removed;
    check_write_opts(L, 3, &o);
    if (spool_remove(h->s, &id, &o, &removed, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_pushboolean(L, removed);
    return 1;
}

/* One transaction holds at most this many entries (and Lua 5.4 can
 * report a border of 2^60 for a sparse table). */
#define SPOOL_LIST_MAX 10000000

static void check_list_length(lua_State *L, size_t n)
{
    if (n > SPOOL_LIST_MAX)
        luaL_argerror(L, 2, lua_pushfstring(L, "a list of at most %d items expected (its length is %f)",
                                            SPOOL_LIST_MAX, (double)n));
}

static int l_spool_store_many(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_write_opts o;
    spool_error err;
    luaL_checktype(L, 2, LUA_TTABLE);
    check_write_opts(L, 3, &o);
    size_t n = spool_lua_rawlen(L, 2);
    check_list_length(L, n);
    /* A userdata, so that a raise while reading the list frees it. */
    spool_item *items = spool_lua_newuserdata(L, (n ? n : 1) * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        if (!lua_istable(L, -1))
            return luaL_argerror(L, 2, lua_pushfstring(L, "item %d: {id, data} pair expected, got %s",
                                                       (int)i + 1, luaL_typename(L, -1)));
        int t = lua_gettop(L);
        lua_rawgeti(L, t, 1);
        spool_id *u = spool_lua_testudata(L, -1, ID_MT);
        const char *why = "spool.Id or id string expected";
        if (u != NULL)
            items[i].id = *u;
        else if (lua_type(L, -1) != LUA_TSTRING ||
                 spool_id_parse(lua_tostring(L, -1), spool_lua_rawlen(L, -1), &items[i].id, &why) != 0)
            return luaL_argerror(L, 2, lua_pushfstring(L, "item %d: invalid id: %s", (int)i + 1, why));
        lua_rawgeti(L, t, 2);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 2, lua_pushfstring(L, "item %d: data: string expected, got %s", (int)i + 1,
                                                       luaL_typename(L, -1)));
        items[i].data = lua_tolstring(L, -1, &items[i].len); /* anchored in the list */
        lua_pop(L, 3);
    }
    if (spool_store_many(h->s, items, n, &o, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_spool_remove_many(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_write_opts o;
    spool_error err;
    size_t removed;
    luaL_checktype(L, 2, LUA_TTABLE);
    check_write_opts(L, 3, &o);
    size_t n = spool_lua_rawlen(L, 2);
    check_list_length(L, n);
    spool_id *ids = spool_lua_newuserdata(L, (n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        spool_id *u = spool_lua_testudata(L, -1, ID_MT);
        const char *why = "spool.Id or id string expected";
        if (u != NULL)
            ids[i] = *u;
        else if (lua_type(L, -1) != LUA_TSTRING ||
                 spool_id_parse(lua_tostring(L, -1), spool_lua_rawlen(L, -1), &ids[i], &why) != 0)
            return luaL_argerror(L, 2, lua_pushfstring(L, "item %d: invalid id: %s", (int)i + 1, why));
        lua_pop(L, 1);
    }
    if (spool_remove_many(h->s, ids, n, &o, &removed, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_pushinteger(L, (lua_Integer)removed);
    return 1;
}

static int l_spool_quarantine(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_id id = spool_lua_check_id(L, 2);
    spool_error err;
    size_t len;
    const char *reason = luaL_optlstring(L, 3, "", &len);
    if (strlen(reason) != len)
        return luaL_argerror(L, 3, "reason: a quarantine reason must not contain NUL bytes");
    if (spool_quarantine(h->s, &id, reason, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_spool_restore(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_id id = spool_lua_check_id(L, 2);
    spool_error err;
    if (spool_restore(h->s, &id, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* purge_quarantined(id) -> true (purged) | false (none) | nil, err */
static int l_spool_purge_quarantined(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_id id = spool_lua_check_id(L, 2);
    spool_error err;
    int purged;
    if (spool_purge_quarantined(h->s, &id, &purged, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_pushboolean(L, purged);
    return 1;
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

/* Counts and byte sizes: integers under Lua 5.3+, numbers elsewhere. */
static void set_int(lua_State *L, const char *k, int64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

/* Sets field k to v, or leaves it nil when v < 0 (not known). */
static void set_known(lua_State *L, const char *k, int64_t v)
{
    if (v >= 0)
        set_int(L, k, v);
}

/* Sets the table on top's `backend` field to the backend's figures, and
 * each of them also at the top level unless a kind-neutral field has its
 * name there: they lived at the top before the figures were split (the
 * 0.x tables), and programs read them there. */
static void set_backend(lua_State *L, const spool_metrics *ms)
{
    lua_createtable(L, 0, ms->n);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < ms->n; i++) {
            const char *k = ms->m[i].name;
            double v = ms->m[i].value;
            if (pass == 1) {
                lua_getfield(L, -2, k);
                int taken = !lua_isnil(L, -1);
                lua_pop(L, 1);
                if (taken)
                    continue;
            }
            if (ms->m[i].boolean)
                lua_pushboolean(L, v != 0);
            else if (v == (double)(int64_t)v && v > -9007199254740992.0 && v < 9007199254740992.0)
                lua_pushinteger(L, (lua_Integer)v);
            else
                lua_pushnumber(L, v);
            lua_setfield(L, pass == 0 ? -2 : -3, k);
        }
    }
    lua_setfield(L, -2, "backend");
}

static int l_spool_compact(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_compact_stats st;
    spool_error err;
    if (spool_compact(h->s, &st, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_createtable(L, 0, 5 + st.backend.n);
    set_known(L, "bytes_before", st.bytes_before);
    set_known(L, "bytes_after", st.bytes_after);
    set_int(L, "steps", st.steps);
    set_num(L, "seconds", st.seconds);
    set_backend(L, &st.backend);
    return 1;
}

/* verify() -> {ok, storage, entries, corrupt} | nil, err */
static int l_spool_verify(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_verify_report r;
    spool_error err;
    if (spool_verify(h->s, &r, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, r.storage_ok && r.corrupt == 0);
    lua_setfield(L, -2, "ok");
    lua_pushstring(L, r.storage);
    lua_setfield(L, -2, "storage");
    set_int(L, "entries", r.entries);
    set_int(L, "corrupt", r.corrupt);
    return 1;
}

static int l_spool_cleanup(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_cleanup_stats st;
    spool_error err;
    if (spool_cleanup(h->s, &st, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_createtable(L, 0, 2 + st.backend.n);
    set_num(L, "seconds", st.seconds);
    set_backend(L, &st.backend);
    return 1;
}

static int l_spool_advise_low_memory(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_error err;
    int64_t released;
    if (spool_advise_low_memory(h->s, &released, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_pushinteger(L, (lua_Integer)released);
    return 1;
}

/* unhealthy_reason() -> nil | reason.  Never raises: a shut-down or
 * inherited handle is not accepting writes, and says so. */
static int l_spool_unhealthy_reason(lua_State *L)
{
    lspool *h = luaL_checkudata(L, 1, SPOOL_MT);
    const char *r = h->s == NULL ? spool_kind_message(SPOOL_UNHEALTHY) : spool_unhealthy_reason(h->s);
    if (r == NULL)
        lua_pushnil(L);
    else
        lua_pushstring(L, r);
    return 1;
}

/* health() -> table | nil, err.  On a shut-down or inherited handle it
 * does not raise: { healthy = false, closed = true, reason = why }. */
static int l_spool_health(lua_State *L)
{
    lspool *h = luaL_checkudata(L, 1, SPOOL_MT);
    spool_health hl;
    spool_error err;
    char why[SPOOL_ERROR_MESSAGE_MAX];
    if (h->s == NULL)
        snprintf(why, sizeof why, "spool %s is shut down", h->path ? h->path : "?");
    const char *closed = h->s == NULL ? why : spool_closed_reason(h->s, why, sizeof why);
    if (closed != NULL) {
        lua_createtable(L, 0, 3);
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "healthy");
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "closed");
        lua_pushstring(L, closed);
        lua_setfield(L, -2, "reason");
        return 1;
    }
    if (spool_get_health(h->s, &hl, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_createtable(L, 0, 12);
    lua_pushboolean(L, hl.healthy);
    lua_setfield(L, -2, "healthy");
    if (hl.reason) {
        lua_pushstring(L, hl.reason);
        lua_setfield(L, -2, "reason");
    }
    lua_pushboolean(L, hl.error_latched);
    lua_setfield(L, -2, "error_latched");
    lua_pushboolean(L, hl.space_low);
    lua_setfield(L, -2, "space_low");
    lua_pushboolean(L, hl.reserve_held);
    lua_setfield(L, -2, "reserve_held");
    set_num(L, "latched_for", hl.latched_for);
    if (hl.last_error_kind) {
        lua_pushstring(L, hl.last_error_kind);
        lua_setfield(L, -2, "last_error_kind");
        lua_pushstring(L, hl.last_error);
        lua_setfield(L, -2, "last_error");
    }
    set_int(L, "free_bytes", (int64_t)hl.free_bytes);
    set_int(L, "total_bytes", (int64_t)hl.total_bytes);
    set_int(L, "free_inodes", (int64_t)hl.free_inodes);
    set_int(L, "total_inodes", (int64_t)hl.total_inodes);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "closed");
    set_backend(L, &hl.backend);
    return 1;
}

static int l_spool_stats(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_stats st;
    spool_error err;
    if (spool_get_stats(h->s, &st, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_createtable(L, 0, 14);
    set_int(L, "stores", (int64_t)st.stores);
    set_int(L, "loads", (int64_t)st.loads);
    set_int(L, "removes", (int64_t)st.removes);
    set_int(L, "errors", (int64_t)st.errors);
    set_int(L, "overruns", (int64_t)st.overruns);
    set_known(L, "entries", (int64_t)st.entries); /* LocalDisk does not count */
    set_int(L, "quarantined", (int64_t)st.quarantined);
    set_known(L, "bytes", st.bytes);
    lua_createtable(L, 0, SPOOL_KIND_COUNT);
    for (int k = SPOOL_NOT_FOUND; k < SPOOL_MISUSE; k++)
        set_int(L, spool_kind_name((spool_kind)k), (int64_t)st.errors_by_kind[k]);
    lua_setfield(L, -2, "errors_by_kind");
    set_backend(L, &st.backend);
    return 1;
}

static int l_is_spool(lua_State *L)
{
    lua_pushboolean(L, spool_lua_testudata(L, 1, SPOOL_MT) != NULL);
    return 1;
}

static int l_spool_path(lua_State *L)
{
    lspool *h = luaL_checkudata(L, 1, SPOOL_MT);
    lua_pushstring(L, h->path ? h->path : "");
    return 1;
}

/* s:kind(): the backend the spool was opened with. */
static int l_spool_kind(lua_State *L)
{
    lspool *h = luaL_checkudata(L, 1, SPOOL_MT);
    lua_pushstring(L, h->kind);
    return 1;
}

/* spool.core.backends(): the built kinds, the default first, each
 * {kind = ..., options_key = ..., options = {{name, type, min, max,
 * default, doc}, ...}, order = "created" | "id_bytes" | nil}: the one
 * declaration of each backend's options, and the enumerate order it
 * promises. */
static int l_backends(lua_State *L)
{
    static const char *const types[] = {"integer", "integer", "power of two", "boolean", "string", "one of",
                                        "duration"};
    const spool_backend *b;
    lua_newtable(L);
    for (size_t i = 0; (b = spool_backend_get(i)) != NULL; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, b->kind);
        lua_setfield(L, -2, "kind");
        lua_newtable(L);
        int n = 0;
        for (const spool_option *o = b->options; o != NULL && o->name != NULL; o++) {
            lua_createtable(L, 0, 6);
            lua_pushstring(L, o->name);
            lua_setfield(L, -2, "name");
            lua_pushstring(L, types[o->type]);
            lua_setfield(L, -2, "type");
            if (o->type == SPOOL_OPT_ENUM) {
                lua_pushstring(L, o->values);
                lua_setfield(L, -2, "values");
            } else if (o->type != SPOOL_OPT_STRING && o->type != SPOOL_OPT_BOOL) {
                lua_pushnumber(L, (lua_Number)o->min);
                lua_setfield(L, -2, "min");
                lua_pushnumber(L, (lua_Number)o->max);
                lua_setfield(L, -2, "max");
            }
            lua_pushstring(L, o->default_text);
            lua_setfield(L, -2, "default");
            lua_pushstring(L, o->doc);
            lua_setfield(L, -2, "doc");
            lua_rawseti(L, -2, ++n);
        }
        lua_setfield(L, -2, "options");
        if (b->options_key != NULL) {
            lua_pushstring(L, b->options_key);
            lua_setfield(L, -2, "options_key");
        }
        int order = spool_backend_order(b);
        if (order == SPOOL_ORDER_CREATED || order == SPOOL_ORDER_ID_BYTES) {
            lua_pushstring(L, order == SPOOL_ORDER_CREATED ? "created" : "id_bytes");
            lua_setfield(L, -2, "order");
        }
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

static const luaL_Reg spool_methods[] = {
    {"store", l_spool_store},
    {"load", spool_lua_load},
    {"remove", l_spool_remove},
    {"store_many", l_spool_store_many},
    {"remove_many", l_spool_remove_many},
    {"enumerate", spool_lua_enumerate},
    {"entries", spool_lua_entries},
    {"quarantine", l_spool_quarantine},
    {"quarantined", spool_lua_quarantined},
    {"restore", l_spool_restore},
    {"compact", l_spool_compact},
    {"cleanup", l_spool_cleanup},
    {"verify", l_spool_verify},
    {"advise_low_memory", l_spool_advise_low_memory},
    {"unhealthy_reason", l_spool_unhealthy_reason},
    {"health", l_spool_health},
    {"stats", l_spool_stats},
    {"shutdown", l_spool_shutdown},
    {"is_closed", l_spool_is_closed},
    {"purge_quarantined", l_spool_purge_quarantined},
    {"path", l_spool_path},
    {"kind", l_spool_kind},
    {NULL, NULL},
};

const luaL_Reg spool_lua_spool_funcs[] = {
    {"open", l_open},
    {"define", l_define},
    {"lookup", l_lookup},
    {"is_spool", l_is_spool},
    {"backends", l_backends},
    {NULL, NULL},
};

void spool_lua_spool_init(lua_State *L)
{
    static const luaL_Reg spool_meta[] = {
        {"__gc", l_spool_gc}, {"__close", l_spool_shutdown}, {"__tostring", l_spool_tostring}, {NULL, NULL}};
    spool_lua_new_class(L, SPOOL_MT, spool_meta, spool_methods);
}
