/*
 * lua_error.c: spool.Error tables (kind, message, retryable, code, errno,
 * deadline, ambiguous) and the clocks: spool.core.error, format_duration,
 * monotonic, now.
 */
#include <string.h>

#include "spool_lua.h"

/* Pushes a spool.Error table for err. */
void spool_lua_push_error(lua_State *L, const spool_error *err)
{
    lua_createtable(L, 0, 7);
    lua_pushstring(L, spool_kind_name(err->kind));
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, err->message);
    lua_setfield(L, -2, "message");
    lua_pushboolean(L, spool_kind_retryable(err->kind));
    lua_setfield(L, -2, "retryable");
    /* The backend's name for its code; else, for a failed system call of
     * the core's own (the reserve file), the errno's name. */
    const char *code = err->code_name;
    if (code == NULL && err->sys_errno != 0)
        code = spool_errno_name(err->sys_errno);
    if (code != NULL) {
        lua_pushstring(L, code);
        lua_setfield(L, -2, "code");
    }
    if (err->sys_errno != 0) {
        lua_pushinteger(L, err->sys_errno);
        lua_setfield(L, -2, "errno");
    }
    if (err->kind == SPOOL_BACKPRESSURE_TIMEOUT) {
        lua_pushnumber(L, err->deadline);
        lua_setfield(L, -2, "deadline");
    }
    if (err->ambiguous) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "ambiguous");
    }
    luaL_getmetatable(L, ERROR_MT);
    lua_setmetatable(L, -2);
}

/* Answers a failure: raises misuse, else returns nil, err. */
int spool_lua_fail(lua_State *L, const spool_error *err)
{
    if (err->kind == SPOOL_MISUSE)
        return luaL_error(L, "%s", err->message);
    lua_pushnil(L);
    spool_lua_push_error(L, err);
    return 2;
}

/* error(kind, fields) -> a spool.Error, for policies and tests. */
static int l_error_new(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int kind = spool_kind_from_name(name);
    spool_error err;
    if (kind < 0)
        return luaL_argerror(L, 1, lua_pushfstring(L, "unknown error kind '%s'", name));
    spool_error_clear(&err);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    else
        lua_settop(L, 1), lua_newtable(L);
    lua_getfield(L, 2, "message");
    const char *msg = lua_tostring(L, -1);
    spool_error_set(&err, (spool_kind)kind, msg ? "%s" : NULL, msg);
    lua_getfield(L, 2, "deadline");
    if (kind == SPOOL_BACKPRESSURE_TIMEOUT) {
        /* Its reference text names the deadline: without one it would
         * read "within 0ns". */
        if (lua_isnil(L, -1) && msg == NULL)
            return luaL_argerror(L, 2, "deadline: backpressure_timeout needs the deadline (seconds > 0) its text names");
        double d = lua_isnil(L, -1) ? 0 : luaL_checknumber(L, -1);
        if (!lua_isnil(L, -1) && !(d > 0))
            return luaL_argerror(L, 2, "deadline: a number of seconds > 0 expected");
        if (!lua_isnil(L, -1))
            spool_error_backpressure(&err, d);
    }
    lua_getfield(L, 2, "errno");
    double e = lua_tonumber(L, -1);
    if (!lua_isnil(L, -1) && !(e >= 0 && e <= 4095 && e == (int)e))
        return luaL_argerror(L, 2, "errno: an integer between 0 and 4095 expected");
    err.sys_errno = (int)e;
    lua_getfield(L, 2, "ambiguous");
    err.ambiguous = lua_toboolean(L, -1);
    spool_lua_push_error(L, &err);
    lua_getfield(L, 2, "message");
    if (lua_type(L, -1) == LUA_TSTRING && kind != SPOOL_UNHEALTHY && kind != SPOOL_CALLER_DEADLINE_EXCEEDED &&
        kind != SPOOL_BACKPRESSURE_TIMEOUT)
        lua_setfield(L, -2, "message"); /* the whole string, NULs included */
    else
        lua_pop(L, 1);
    lua_getfield(L, 2, "code");
    if (!lua_isnil(L, -1))
        lua_setfield(L, -2, "code");
    else
        lua_pop(L, 1);
    return 1;
}

static int l_error_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "message");
    if (!lua_isstring(L, -1))
        lua_pushstring(L, "spool error");
    return 1;
}

static int l_format_duration(lua_State *L)
{
    double d = luaL_checknumber(L, 1);
    char buf[64];
    /* Rust's Duration holds u64 seconds: anything larger is not one. */
    luaL_argcheck(L, d >= 0 && d < 18446744073709551616.0, 1, "duration must be >= 0 and < 2^64 seconds");
    lua_pushstring(L, spool_format_duration(d, buf, sizeof buf));
    return 1;
}

/* now() -> wall-clock seconds since the Unix epoch, 100-ns resolution. */
static int l_now(lua_State *L)
{
    int64_t t = spool_id_now_unix_100ns();
    lua_pushnumber(L, (double)(t / 10000000) + (double)(t % 10000000) / 1e7);
    return 1;
}

static int l_monotonic(lua_State *L)
{
    lua_pushnumber(L, spool_monotonic());
    return 1;
}

const luaL_Reg spool_lua_error_funcs[] = {
    {"error", l_error_new},
    {"format_duration", l_format_duration},
    {"monotonic", l_monotonic},
    {"now", l_now},
    {NULL, NULL},
};

void spool_lua_error_init(lua_State *L)
{
    static const luaL_Reg error_meta[] = {{"__tostring", l_error_tostring}, {NULL, NULL}};
    spool_lua_new_class(L, ERROR_MT, error_meta, NULL);
}
