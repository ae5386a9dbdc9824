/*
 * lua_load.c: spool.Spool's load, into a new Lua string or appended to a
 * LuaJIT string.buffer (`s:load(id, { into = buf })`).
 *
 * While the bytes are handed over, the core holds the spool's life lock,
 * a reader connection and a load slot, so no Lua code may run then (a
 * finalizer that shut the spool down would wait for that lock forever).
 * A string is made under lua_pcall with the collector paused; a buffer
 * has its room reserved before the load and committed after it, and the
 * load itself only copies, so nothing there can raise.
 */
#include <stdint.h>
#include <string.h>

#include "spool_lua.h"

/* Pushes the loaded bytes as a Lua string, straight from the backend's
 * buffer.  lua_pushlstring can raise (out of memory) and a raise must not
 * jump over the statement the bytes belong to: it runs under lua_pcall,
 * and the error is raised again once the load has released everything. */
typedef struct blob_args {
    const void *data;
    size_t len;
} blob_args;

static int push_blob(lua_State *L)
{
    blob_args *a = lua_touserdata(L, 1);
    lua_pushlstring(L, a->data, a->len);
    return 1;
}

#ifdef LUA_GCISRUNNING
static int blob_to_lua(void *ud, const void *data, size_t len)
{
    lua_State *L = ud;
    blob_args a = {data, len};
    lua_pushcfunction(L, push_blob);
    lua_pushlightuserdata(L, &a);
    return lua_pcall(L, 1, 1, 0) == 0 ? 0 : -1; /* the string, or the error */
}
#endif

/* The load as a new string: pushes it and returns 1, or nil, err. */
static int load_string(lua_State *L, lspool *h, const spool_id *id)
{
    spool_error err;
#ifdef LUA_GCISRUNNING
    /* 0 or 1; a PUC 5.1 interpreter loading a LuaJIT build answers -1
     * (unknown option): it takes the copying path below.  Where the
     * collector can be paused and resumed exactly as it was (LuaJIT,
     * 5.2+), the string is made straight from the backend's buffer; PUC
     * Lua 5.1 cannot tell whether a user stopped it, so there the bytes
     * are copied out first and the string is made once nothing is held. */
    int collecting = lua_gc(L, LUA_GCISRUNNING, 0);
    if (collecting == 0 || collecting == 1) {
        int top = lua_gettop(L);
        if (collecting)
            lua_gc(L, LUA_GCSTOP, 0);
        int rc = spool_load_with(h->s, id, blob_to_lua, L, &err);
        if (collecting)
            lua_gc(L, LUA_GCRESTART, 0);
        if (rc != 0) {
            if (lua_gettop(L) > top) /* push_blob raised: raise it again, now */
                return lua_error(L);
            return spool_lua_fail(L, &err);
        }
        return 1;
    }
#endif
    void *data;
    size_t len;
    if (spool_load(h->s, id, &data, &len, &err) != 0)
        return spool_lua_fail(L, &err);
    blob_args a = {data, len};
    lua_pushcfunction(L, push_blob);
    lua_pushlightuserdata(L, &a);
    int rc = lua_pcall(L, 1, 1, 0);
    spool_free(data);
    return rc == 0 ? 1 : lua_error(L);
}

/* ------------------------------------------------- into a string.buffer */

/* The registry key of reserve_at, made on first use. */
static const char reserve_key = 0;

/* reserve_at(buf, n) -> address, room: buf:reserve(n) with the pointer it
 * returns as a number (a cdata pointer's value is not readable through
 * the C API; an address fits a double's 53 bits). */
static const char reserve_src[] = "local ffi = require 'ffi'\n"
                                  "local cast, tonumber = ffi.cast, tonumber\n"
                                  "return function(buf, n)\n"
                                  "  local p, room = buf:reserve(n)\n"
                                  "  return tonumber(cast('uintptr_t', p)), room\n"
                                  "end\n";

/* Pushes reserve_at; raises, saying why, where there is no ffi. */
static void push_reserve_at(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&reserve_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, reserve_src, sizeof reserve_src - 1, "=spool.load") != 0 || lua_pcall(L, 0, 1, 0) != 0)
        luaL_error(L, "load: into: a LuaJIT string.buffer expected, and this interpreter has none (%s)",
                   lua_tostring(L, -1));
    lua_pushlightuserdata(L, (void *)&reserve_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

/* Room of at least n bytes at the end of the buffer at idx: its address
 * and *room.  Calls Lua (buf:reserve): never with anything held. */
static uint8_t *reserve(lua_State *L, int idx, size_t n, size_t *room)
{
    push_reserve_at(L);
    lua_pushvalue(L, idx);
    lua_pushnumber(L, (lua_Number)n);
    lua_call(L, 2, 2);
    uintptr_t at = (uintptr_t)lua_tonumber(L, -2);
    *room = (size_t)lua_tonumber(L, -1);
    lua_pop(L, 2);
    if (at == 0 || *room < n)
        luaL_error(L, "load: into: buf:reserve(%f) gave no room", (double)n);
    return (uint8_t *)at;
}

/* Copies the bytes when they fit the reserved room; else only records
 * their length, for a second try with more room. */
typedef struct into_args {
    uint8_t *room;
    size_t size, len;
} into_args;

static int copy_into(void *ud, const void *data, size_t len)
{
    into_args *a = ud;
    a->len = len;
    if (len <= a->size && len > 0)
        memcpy(a->room, data, len);
    return 0;
}

/* The load appended to the string.buffer at idx: pushes the buffer and
 * returns 1, or nil, err.  Tries with the room the buffer has (at least
 * 4 KiB); an entry larger than that is loaded again into room for it (an
 * entry replaced by a larger one in between, again). */
static int load_into(lua_State *L, lspool *h, const spool_id *id, int idx)
{
    spool_error err;
    size_t want = 4096;
    for (int attempt = 0;; attempt++) {
        into_args a = {NULL, 0, 0};
        a.room = reserve(L, idx, want, &a.size);
        if (spool_load_with(h->s, id, copy_into, &a, &err) != 0)
            return spool_lua_fail(L, &err);
        if (a.len <= a.size) {
            lua_getfield(L, idx, "commit");
            lua_pushvalue(L, idx);
            lua_pushnumber(L, (lua_Number)a.len);
            lua_call(L, 2, 0);
            lua_pushvalue(L, idx);
            return 1;
        }
        if (attempt == 8)
            return luaL_error(L, "load: into: the entry kept growing while it was loaded (%f bytes)", (double)a.len);
        want = a.len;
    }
}

/* The buffer of opts.into at index idx (absolute), or 0 for none.
 * Raises on an unknown option or anything but a string.buffer. */
static int check_load_opts(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    int into = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        lua_pop(L, 1);
        if (strcmp(k, "into") != 0)
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s' (expected into)", k));
        into = 1;
    }
    if (!into)
        return 0;
    lua_getfield(L, idx, "into");
    int buf = lua_gettop(L);
    int ok = lua_type(L, buf) == LUA_TUSERDATA;
    if (ok) {
        lua_getfield(L, buf, "reserve");
        lua_getfield(L, buf, "commit");
        ok = lua_isfunction(L, -1) && lua_isfunction(L, -2);
        lua_pop(L, 2);
    }
    if (!ok)
        luaL_argerror(L, idx, lua_pushfstring(L, "into: a LuaJIT string.buffer expected, got %s",
                                              luaL_typename(L, buf)));
    return buf;
}

/* load(id [, opts]) -> bytes | nil, err; with opts.into = buf (a LuaJIT
 * string.buffer): the bytes appended to buf, and buf | nil, err, buf as
 * it was.  Raises on misuse. */
int spool_lua_load(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_id id = spool_lua_check_id(L, 2);
    luaL_checkstack(L, 8, "spool.load");
    int buf = check_load_opts(L, 3);
    return buf ? load_into(L, h, &id, buf) : load_string(L, h, &id);
}
