/*
 * lua_id.c: the spool.Id class and spool.core.id: new, parse, from_bytes,
 * from_path, is; methods bytes, created, age, path, hyphenated,
 * derive_new_with_cloned_timestamp; __tostring, __eq, __lt, __le.
 * Invalid input raises, naming the argument.
 */
#include <string.h>

#include "spool_lua.h"

spool_id *spool_lua_push_id(lua_State *L, const spool_id *id)
{
    spool_id *u = spool_lua_newuserdata(L, sizeof *u);
    *u = *id;
    luaL_getmetatable(L, ID_MT);
    lua_setmetatable(L, -2);
    return u;
}

/* Reads argument idx as an id: a spool.Id or its text.  Raises a
 * "bad argument" error naming the argument otherwise. */
spool_id spool_lua_check_id(lua_State *L, int idx)
{
    spool_id *u = spool_lua_testudata(L, idx, ID_MT);
    if (u != NULL)
        return *u;
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        const char *why;
        spool_id id;
        if (spool_id_parse(s, len, &id, &why) == 0)
            return id;
        luaL_argerror(L, idx, lua_pushfstring(L, "invalid spool id: %s", why));
    }
    luaL_argerror(L, idx, lua_pushfstring(L, "spool.Id or id string expected, got %s", luaL_typename(L, idx)));
    return *u; /* not reached */
}

static spool_id *check_self_id(lua_State *L)
{
    return luaL_checkudata(L, 1, ID_MT);
}

static int l_id_new(lua_State *L)
{
    spool_id id;
    if (spool_id_new(&id) != 0)
        return luaL_error(L, "spool.id.new: the system gave no randomness for the node id");
    spool_lua_push_id(L, &id);
    return 1;
}

/* parse(s) -> id | nil, message.  Never raises on bad text. */
static int l_id_parse(lua_State *L)
{
    size_t len;
    const char *why;
    spool_id id;
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid spool id: string expected, got %s", luaL_typename(L, 1));
        return 2;
    }
    const char *s = lua_tolstring(L, 1, &len);
    if (spool_id_parse(s, len, &id, &why) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid spool id: %s", why);
        return 2;
    }
    spool_lua_push_id(L, &id);
    return 1;
}

static int l_id_from_bytes(lua_State *L)
{
    size_t len;
    const char *why;
    spool_id id;
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid spool id: 16-byte string expected, got %s", luaL_typename(L, 1));
        return 2;
    }
    const char *b = lua_tolstring(L, 1, &len);
    if (spool_id_from_bytes(b, len, &id, &why) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid spool id: %s", why);
        return 2;
    }
    spool_lua_push_id(L, &id);
    return 1;
}

static int l_id_from_path(lua_State *L)
{
    size_t len;
    const char *why;
    spool_id id;
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid spool id path: string expected, got %s", luaL_typename(L, 1));
        return 2;
    }
    const char *p = lua_tolstring(L, 1, &len);
    if (spool_id_from_path(p, len, &id, &why) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid spool id path: %s", why);
        return 2;
    }
    spool_lua_push_id(L, &id);
    return 1;
}

static int l_id_is(lua_State *L)
{
    lua_pushboolean(L, spool_lua_testudata(L, 1, ID_MT) != NULL);
    return 1;
}

static int l_id_tostring(lua_State *L)
{
    char text[SPOOL_ID_TEXT + 1];
    spool_id_format(check_self_id(L), text);
    lua_pushstring(L, text);
    return 1;
}

static int l_id_hyphenated(lua_State *L)
{
    char text[37];
    spool_id_format_hyphenated(check_self_id(L), text);
    lua_pushstring(L, text);
    return 1;
}

static int l_id_bytes(lua_State *L)
{
    lua_pushlstring(L, (const char *)check_self_id(L)->b, SPOOL_ID_BYTES);
    return 1;
}

static int l_id_created(lua_State *L)
{
    lua_pushnumber(L, spool_id_created(check_self_id(L)));
    return 1;
}

static int l_id_age(lua_State *L)
{
    spool_id *id = check_self_id(L);
    double now;
    if (lua_isnoneornil(L, 2)) {
        int64_t t = spool_id_now_unix_100ns();
        now = (double)(t / 10000000) + (double)(t % 10000000) / 1e7;
    } else {
        now = luaL_checknumber(L, 2);
    }
    lua_pushnumber(L, now - spool_id_created(id));
    return 1;
}

static int l_id_path(lua_State *L)
{
    spool_id *id = check_self_id(L);
    char suffix[SPOOL_ID_PATH_SUFFIX + 1];
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_argerror(L, 2, lua_pushfstring(L, "dir: string expected, got %s", luaL_typename(L, 2)));
    spool_id_path_suffix(id, suffix);
    lua_pushvalue(L, 2);
    lua_pushstring(L, suffix);
    lua_concat(L, 2);
    return 1;
}

static int l_id_derive(lua_State *L)
{
    spool_id out;
    if (spool_id_derive_cloned_timestamp(check_self_id(L), &out) != 0)
        return luaL_error(L, "derive_new_with_cloned_timestamp: the system gave no randomness");
    spool_lua_push_id(L, &out);
    return 1;
}

static int l_id_eq(lua_State *L)
{
    spool_id *a = spool_lua_testudata(L, 1, ID_MT), *b = spool_lua_testudata(L, 2, ID_MT);
    lua_pushboolean(L, a && b && memcmp(a->b, b->b, SPOOL_ID_BYTES) == 0);
    return 1;
}

static int l_id_lt(lua_State *L)
{
    spool_id *a = luaL_checkudata(L, 1, ID_MT), *b = luaL_checkudata(L, 2, ID_MT);
    lua_pushboolean(L, spool_id_compare(a, b) < 0);
    return 1;
}

static int l_id_le(lua_State *L)
{
    spool_id *a = luaL_checkudata(L, 1, ID_MT), *b = luaL_checkudata(L, 2, ID_MT);
    lua_pushboolean(L, spool_id_compare(a, b) <= 0);
    return 1;
}

static const luaL_Reg id_methods[] = {
    {"bytes", l_id_bytes},
    {"created", l_id_created},
    {"age", l_id_age},
    {"path", l_id_path},
    {"hyphenated", l_id_hyphenated},
    {"derive_new_with_cloned_timestamp", l_id_derive},
    {NULL, NULL},
};

static const luaL_Reg id_meta[] = {
    {"__tostring", l_id_tostring},
    {"__eq", l_id_eq},
    {"__lt", l_id_lt},
    {"__le", l_id_le},
    {NULL, NULL},
};

const luaL_Reg spool_lua_id_funcs[] = {
    {"new", l_id_new},
    {"parse", l_id_parse},
    {"from_bytes", l_id_from_bytes},
    {"from_path", l_id_from_path},
    {"is", l_id_is},
    {NULL, NULL},
};

void spool_lua_id_init(lua_State *L)
{
    spool_lua_new_class(L, ID_MT, id_meta, id_methods);
}
