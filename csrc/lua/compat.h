/*
 * compat.h: one source for LuaJIT / Lua 5.1 and Lua 5.2-5.4.
 *
 * The binding is written to the Lua 5.1 API; the few calls that changed
 * in later versions are mapped here.
 */
#ifndef SPOOL_COMPAT_H
#define SPOOL_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 502
#define spool_lua_rawlen(L, i) lua_rawlen((L), (i))
#define spool_lua_setfuncs(L, l) luaL_setfuncs((L), (l), 0)
#define spool_lua_newlib(L, l) (lua_newtable(L), luaL_setfuncs((L), (l), 0))
#else
#define spool_lua_rawlen(L, i) lua_objlen((L), (i))
#define spool_lua_setfuncs(L, l) luaL_register((L), NULL, (l))
#define spool_lua_newlib(L, l) (lua_newtable(L), luaL_register((L), NULL, (l)))
#endif

#if LUA_VERSION_NUM >= 504
#define spool_lua_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#else
#define spool_lua_newuserdata(L, sz) lua_newuserdata((L), (sz))
#endif

/* luaL_testudata appeared in 5.2; LuaJIT 2.1 does not export it. */
static inline void *spool_lua_testudata(lua_State *L, int idx, const char *tname)
{
    void *p = lua_touserdata(L, idx);
    if (p == NULL || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}

#endif
