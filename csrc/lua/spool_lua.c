/*
 * spool_lua.c: the Lua binding, module `spool.core`: one file per class
 * (lua_id.c, lua_error.c, lua_spool.c, lua_cursor.c), registered from the
 * table below, in the manner of luv.
 *
 * Thin by design: it converts Lua values to the C API's and back.
 * Validation of configuration and policy live in lua/spool.lua.
 */
#include "spool_lua.h"

/* Each class: its metatable, and the functions it adds to spool.core
 * (or to the sub-table `field` of it). */
static const struct {
    void (*init)(lua_State *L);
    const luaL_Reg *funcs;
    const char *field;
} classes[] = {
    {spool_lua_id_init, spool_lua_id_funcs, "id"},
    {spool_lua_error_init, spool_lua_error_funcs, NULL},
    {spool_lua_spool_init, spool_lua_spool_funcs, NULL},
    {spool_lua_cursor_init, NULL, NULL},
};

void spool_lua_new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    if (meta)
        spool_lua_setfuncs(L, meta);
    if (methods) {
        spool_lua_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}

__attribute__((visibility("default"))) int luaopen_spool_core(lua_State *L);

int luaopen_spool_core(lua_State *L)
{
    lua_newtable(L);
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        classes[i].init(L);
        if (classes[i].funcs == NULL)
            continue;
        if (classes[i].field != NULL) {
            spool_lua_newlib(L, classes[i].funcs);
            lua_setfield(L, -2, classes[i].field);
        } else {
            spool_lua_setfuncs(L, classes[i].funcs);
        }
    }
    lua_createtable(L, SPOOL_MISUSE - 1, 0);
    for (int k = SPOOL_NOT_FOUND; k < SPOOL_MISUSE; k++) {
        lua_pushstring(L, spool_kind_name((spool_kind)k));
        lua_rawseti(L, -2, k);
    }
    lua_setfield(L, -2, "kinds");
    luaL_getmetatable(L, ERROR_MT);
    lua_setfield(L, -2, "error_mt");
    lua_pushstring(L, SPOOL_VERSION);
    lua_setfield(L, -2, "VERSION");
    return 1;
}
