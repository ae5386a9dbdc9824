/*
 * spool_lua.h: what the binding's files (one per class, registered from
 * the table in spool_lua.c) share.  Internal to the module.
 */
#ifndef SPOOL_LUA_H
#define SPOOL_LUA_H

#include "compat.h"
#include "spool.h"

#define ID_MT "spool.Id"
#define SPOOL_MT "spool.Spool"
#define CURSOR_MT "spool.Cursor"
#define ERROR_MT "spool.Error"

/* A spool.Spool userdata. */
typedef struct lspool {
    spool *s;         /* NULL once closed */
    char *path;       /* for messages; freed by __gc */
    const char *kind; /* the backend's static name, kept after close */
} lspool;

/* Creates metatable `name` with the metamethods in meta and, when
 * methods is given, an __index table of them.  Raises only on memory. */
void spool_lua_new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

/* lua_id.c: pushes a spool.Id; reads argument idx as a spool.Id or its
 * text, raising a "bad argument" error that names it otherwise. */
spool_id *spool_lua_push_id(lua_State *L, const spool_id *id);
spool_id spool_lua_check_id(lua_State *L, int idx);
void spool_lua_id_init(lua_State *L);
extern const luaL_Reg spool_lua_id_funcs[];

/* lua_error.c: pushes a spool.Error table for err; answers a failure
 * (raises misuse, else returns nil, err: 2 results). */
void spool_lua_push_error(lua_State *L, const spool_error *err);
int spool_lua_fail(lua_State *L, const spool_error *err);
void spool_lua_error_init(lua_State *L);
extern const luaL_Reg spool_lua_error_funcs[];

/* lua_spool.c: the open spool.Spool at index 1 (raises, naming why, when
 * it is shut down or was inherited across fork()). */
lspool *spool_lua_check_spool(lua_State *L);
void spool_lua_spool_init(lua_State *L);
extern const luaL_Reg spool_lua_spool_funcs[];

/* lua_load.c: the load method. */
int spool_lua_load(lua_State *L);

/* lua_cursor.c: enumerate, entries and quarantined, the spool methods
 * that walk a cursor. */
int spool_lua_enumerate(lua_State *L);
int spool_lua_entries(lua_State *L);
int spool_lua_quarantined(lua_State *L);
void spool_lua_cursor_init(lua_State *L);

#endif
