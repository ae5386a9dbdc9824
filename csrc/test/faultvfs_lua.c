/*
 * faultvfs_lua.c: the test-only fault VFS (faultvfs.c) as a Lua module,
 * `require "spool_test.faultvfs"`, so that specs can fail SQLite's
 * writes and syncs or fill a modelled disk.  Built into
 * build/<interpreter>/spool_test/faultvfs.so by `make ctest`; never
 * installed.  Spools opened with sqlite = { vfs = "faultvfs" } use it.
 *
 *   fv.register()                  true | raises
 *   fv.reset()                     clears counters, failures, capacity
 *   fv.fail_at(op, nth, persistent)   op: "read" "write" "sync" "truncate"
 *   fv.set_capacity(bytes)         -1: unlimited
 *   fv.calls(op), fv.faults()      counters since the last reset
 */
#include <string.h>

#include "compat.h"
#include "faultvfs.h"

/* The op named by argument i; raises on an unknown name. */
static int check_op(lua_State *L, int i)
{
    static const char *const names[] = {"read", "write", "sync", "truncate", NULL};
    return luaL_checkoption(L, i, NULL, names);
}

static int l_register(lua_State *L)
{
    if (faultvfs_register() != 0)
        return luaL_error(L, "faultvfs: could not register the VFS");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_reset(lua_State *L)
{
    (void)L;
    faultvfs_reset();
    return 0;
}

static int l_fail_at(lua_State *L)
{
    int op = check_op(L, 1);
    long nth = (long)luaL_checknumber(L, 2);
    faultvfs_fail_at(op, nth, lua_toboolean(L, 3));
    return 0;
}

static int l_set_capacity(lua_State *L)
{
    faultvfs_set_capacity((int64_t)luaL_checknumber(L, 1));
    return 0;
}

static int l_calls(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)faultvfs_calls(check_op(L, 1)));
    return 1;
}

static int l_faults(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)faultvfs_faults());
    return 1;
}

static const luaL_Reg functions[] = {
    {"register", l_register}, {"reset", l_reset},   {"fail_at", l_fail_at}, {"set_capacity", l_set_capacity},
    {"calls", l_calls},       {"faults", l_faults}, {NULL, NULL},
};

int luaopen_spool_test_faultvfs(lua_State *L);
int luaopen_spool_test_faultvfs(lua_State *L)
{
    spool_lua_newlib(L, functions);
    return 1;
}
