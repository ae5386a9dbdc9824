/*
 * lua_cursor.c: the walks over a spool: s:enumerate(fn, opts),
 * s:entries(opts) and s:quarantined(), on a spool.Cursor userdata that
 * holds no statement or lock between chunks (__gc and __close free it).
 */
#include <string.h>

#include "spool_lua.h"

typedef struct lcursor {
    spool_cursor *c; /* NULL once closed */
    int which;
} lcursor;

/* Reads enumerate options at idx: start_time (Unix seconds) and
 * include_data (default true). */
static void check_enum_opts(lua_State *L, int idx, spool_enum_opts *o)
{
    memset(o, 0, sizeof *o);
    o->include_data = 1;
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
        if (strcmp(k, "start_time") == 0) {
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_argerror(L, idx, lua_pushfstring(L, "start_time: number (Unix seconds) expected, got %s",
                                                      luaL_typename(L, -1)));
            double t = lua_tonumber(L, -1);
            /* Unix seconds that fit the 60-bit UUID clock (years 1582-5236). */
            if (!(t > -12219292800.0 && t < 103072857600.0))
                luaL_argerror(L, idx, lua_pushfstring(L, "start_time: Unix seconds between 1582 and 5236 expected, got %f", t));
            o->has_start = 1;
            o->start_100ns = spool_id_unix_100ns_from_seconds(t);
        } else if (strcmp(k, "include_data") == 0) {
            luaL_argcheck(L, lua_isboolean(L, -1), idx, "include_data: boolean expected");
            o->include_data = lua_toboolean(L, -1);
        } else if (strcmp(k, "ids_only") == 0) {
            luaL_argcheck(L, lua_isboolean(L, -1), idx, "ids_only: boolean expected");
            o->ids_only = lua_toboolean(L, -1);
        } else {
            luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s' (expected start_time, include_data, ids_only)", k));
        }
        lua_pop(L, 1);
    }
}

static lcursor *push_cursor(lua_State *L, int which)
{
    lcursor *c = spool_lua_newuserdata(L, sizeof *c);
    c->c = NULL;
    c->which = which;
    luaL_getmetatable(L, CURSOR_MT);
    lua_setmetatable(L, -2);
    return c;
}

static int l_cursor_gc(lua_State *L)
{
    lcursor *c = luaL_checkudata(L, 1, CURSOR_MT);
    if (c->c != NULL) {
        spool_cursor_close(c->c);
        c->c = NULL;
    }
    return 0;
}

/* Pushes the table for one entry. */
static void push_entry(lua_State *L, const spool_entry *e, int which)
{
    lua_createtable(L, 0, 4);
    if (e->id_valid) {
        spool_lua_push_id(L, &e->id);
        lua_setfield(L, -2, "id");
    }
    if (e->corrupt) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, "corrupt");
        lua_pushstring(L, e->error);
        lua_setfield(L, -2, "error");
    } else if (e->data != NULL) {
        lua_pushlstring(L, e->data, e->len);
        lua_setfield(L, -2, "data");
    }
    if (which == SPOOL_QUARANTINE) {
        lua_pushstring(L, e->reason ? e->reason : "");
        lua_setfield(L, -2, "reason");
        lua_pushnumber(L, e->time);
        lua_setfield(L, -2, "time");
    }
}

/* enumerate(fn, opts) -> visited | nil, err.  fn(entry) runs under
 * lua_pcall; an error in it closes the cursor and propagates. */
int spool_lua_enumerate(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_enum_opts o;
    spool_error err;
    spool_entry e;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    check_enum_opts(L, 3, &o);
    lua_settop(L, 3);
    lcursor *c = push_cursor(L, SPOOL_ENTRIES); /* index 4 */
    if (spool_cursor_open(h->s, &o, &c->c, &err) != 0)
        return spool_lua_fail(L, &err);
    lua_Integer visited = 0;
    int rc;
    while ((rc = spool_cursor_next(c->c, &e, &err)) == 1) {
        visited++;
        lua_pushvalue(L, 2);
        push_entry(L, &e, SPOOL_ENTRIES);
        if (lua_pcall(L, 1, 1, 0) != 0) {
            spool_cursor_close(c->c);
            c->c = NULL;
            return lua_error(L);
        }
        int stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (stop)
            break;
    }
    spool_cursor_close(c->c);
    c->c = NULL;
    if (rc < 0)
        return spool_lua_fail(L, &err);
    lua_pushinteger(L, visited);
    return 1;
}

static int l_cursor_iter(lua_State *L)
{
    lcursor *c = luaL_checkudata(L, lua_upvalueindex(1), CURSOR_MT);
    spool_entry e;
    spool_error err;
    if (c->c == NULL)
        return 0;
    int rc = spool_cursor_next(c->c, &e, &err);
    if (rc == 1) {
        push_entry(L, &e, c->which);
        return 1;
    }
    spool_cursor_close(c->c);
    c->c = NULL;
    if (rc == 0)
        return 0;
    /* A for loop cannot take nil, err: a failed enumeration raises. */
    spool_lua_push_error(L, &err);
    return lua_error(L);
}

/* Returns iterator, nil, nil, cursor: in Lua 5.4 the cursor is the
 * loop's to-be-closed value, so `break` releases it at once; elsewhere
 * the garbage collector does, and it holds no statement or lock. */
static int push_iterator(lua_State *L, lspool *h, const spool_enum_opts *o)
{
    spool_error err;
    lcursor *c = push_cursor(L, o->which);
    if (spool_cursor_open(h->s, o, &c->c, &err) != 0) {
        spool_lua_push_error(L, &err);
        return lua_error(L);
    }
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_cursor_iter, 1);
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushvalue(L, -4);
    return 4;
}

int spool_lua_entries(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_enum_opts o;
    check_enum_opts(L, 2, &o);
    return push_iterator(L, h, &o);
}

int spool_lua_quarantined(lua_State *L)
{
    lspool *h = spool_lua_check_spool(L);
    spool_enum_opts o;
    memset(&o, 0, sizeof o);
    o.which = SPOOL_QUARANTINE;
    o.include_data = 1;
    return push_iterator(L, h, &o);
}

void spool_lua_cursor_init(lua_State *L)
{
    static const luaL_Reg cursor_meta[] = {{"__gc", l_cursor_gc}, {"__close", l_cursor_gc}, {NULL, NULL}};
    spool_lua_new_class(L, CURSOR_MT, cursor_meta, NULL);
}
