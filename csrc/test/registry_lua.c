/*
 * registry_lua.c: the process-wide registry seen from two Lua states on
 * two threads, as OpenResty's worker threads and a C host use it.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

int luaopen_spool_core(lua_State *L);

static char dir[] = "/tmp/spool-registry-XXXXXX";
static char shared_id[64];

/* A fresh state that finds spool.core without dlopen and spool.lua in lua/. */
static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_spool_core);
    lua_setfield(L, -2, "spool.core");
    lua_pop(L, 1);
    lua_pushstring(L, "lua/?.lua");
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    lua_pushstring(L, dir);
    lua_setglobal(L, "DIR");
    return L;
}

/* Runs a chunk; returns its string result (static) or the error. */
static const char *run(lua_State *L, const char *code)
{
    static __thread char out[512];
    if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        snprintf(out, sizeof out, "error: %s", lua_tostring(L, -1));
    } else {
        const char *r = lua_tostring(L, -1);
        snprintf(out, sizeof out, "%s", r ? r : "nil");
    }
    lua_pop(L, 1);
    return out;
}

static void *thread_b(void *arg)
{
    char *result = arg;
    lua_State *L = new_state();
    char code[512];
    snprintf(code, sizeof code,
             "local spool = require 'spool'\n"
             "local s = assert(spool.get('shared'))\n"
             "assert(s:load('%s') == 'from A', 'load of the entry of A')\n"
             "assert(s:store(spool.id.new(), 'from B'))\n"
             "return 'ok'",
             shared_id);
    snprintf(result, 512, "%s", run(L, code));
    lua_close(L); /* drops B's reference only */
    return NULL;
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 2;
    lua_State *A = new_state();
    const char *r = run(A, "local spool = require 'spool'\n"
                           "S = spool.define { name = 'shared', path = DIR }\n"
                           "ID = spool.id.new()\n"
                           "assert(S:store(ID, 'from A'))\n"
                           "return tostring(ID)");
    ok(strlen(r) == 32, "state A defines 'shared' and stores (%s)", r);
    snprintf(shared_id, sizeof shared_id, "%s", r);

    char result[512];
    pthread_t th;
    pthread_create(&th, NULL, thread_b, result);
    pthread_join(th, NULL);
    ok(strcmp(result, "ok") == 0, "state B on another thread gets it by name, loads and stores (%s)", result);
    r = run(A, "local n = 0\n"
               "for e in S:entries() do n = n + 1 end\n"
               "return tostring(n)");
    ok(strcmp(r, "2") == 0, "state A sees B's store after B closed its state (%s)", r);

    r = run(A, "return tostring(pcall(require('spool').define, { name = 'shared', path = DIR .. '/other' }))");
    ok(strcmp(r, "false") == 0, "a second define of the name raises");

    /* Reference counting: B holds the spool, A closes its whole state. */
    lua_State *B = new_state();
    r = run(B, "B = require('spool').get('shared'); return tostring(B ~= nil)");
    ok(strcmp(r, "true") == 0, "state B takes a reference");
    lua_close(A);
    r = run(B, "assert(B:store(require('spool').id.new(), 'after A closed')); return 'ok'");
    ok(strcmp(r, "ok") == 0, "the spool stays open while B holds it after A's state closed (%s)", r);
    r = run(B, "B:shutdown(); return tostring(require('spool').get('shared'))");
    ok(strcmp(r, "nil") == 0, "after shutdown the name is free (%s)", r);
    lua_close(B);

    lua_State *C = new_state();
    r = run(C, "local spool = require 'spool'\n"
               "local s = spool.define { name = 'shared', path = DIR }\n"
               "local n = assert(s:enumerate(function() end))\n"
               "s = nil; collectgarbage(); collectgarbage()\n"
               "return n .. ' ' .. tostring(spool.get('shared') ~= nil)");
    ok(strcmp(r, "3 true") == 0, "redefined after shutdown, the entries are there; the state's own reference keeps it (%s)", r);
    lua_close(C);
    lua_State *D = new_state();
    r = run(D, "return tostring(require('spool').get('shared'))");
    ok(strcmp(r, "nil") == 0, "when the last state holding it closes, the spool closes and leaves the registry");
    lua_close(D);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
