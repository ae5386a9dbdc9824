-- Packaging: `make install` and `luarocks make` give a module that loads
-- from any directory with nothing but the installed files.
local helper = require "spec.helper"

local lua = os.getenv("SPOOL_TEST_LUA") or "luajit"
local lua_version = lua == "lua5.4" and "5.4" or "5.1"

-- Runs `lua` in / with only the given search paths; returns its output.
local function require_from(path, cpath)
  local cmd = ("cd / && LUA_PATH=%s LUA_CPATH=%s %s -e %s 2>&1"):format(
    helper.shell_quote(path), helper.shell_quote(cpath), lua,
    helper.shell_quote('local s = require "spool"; io.write(s.VERSION, " ", tostring(s.id.new()))'))
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return out
end

describe("make install", function()
  local dest
  before_each(function() dest = helper.tmpdir() end)
  after_each(function() helper.rm_rf(dest) end)

  it("honours PREFIX and DESTDIR, and the installed module loads from another directory", function()
    assert.is_true(helper.execute(("make -s install LUA=%s PREFIX=/opt/sp DESTDIR=%s >/dev/null 2>&1")
      :format(lua, helper.shell_quote(dest))))
    local libdir = dest .. "/opt/sp/lib/lua/" .. lua_version
    local luadir = dest .. "/opt/sp/share/lua/" .. lua_version
    assert.is_true(helper.exists(libdir .. "/spool/core.so"))
    assert.is_true(helper.exists(luadir .. "/spool.lua"))
    assert.is_true(helper.exists(luadir .. "/spool/errors.lua"))
    local out = require_from(luadir .. "/?.lua", libdir .. "/?.so")
    assert.matches("^%d+%.%d+%.%d+ %x+$", out)
    assert.equal(32, #out:match("%x+$"))
  end)

  -- LuaJIT and Lua 5.1 share lib/lua/5.1: the last `make install` wins,
  -- and either build serves both interpreters (one C API, one ABI).
  it("the LuaJIT and Lua 5.1 installs share one path, and either build works in both interpreters", function()
    if lua == "lua5.4" then return end
    for _, built in ipairs({ "luajit", "lua5.1" }) do
      local d = dest .. "/" .. built
      assert.is_true(helper.execute(("make -s install LUA=%s PREFIX=/opt/sp DESTDIR=%s >/dev/null 2>&1")
        :format(built, helper.shell_quote(d))))
      local libdir, luadir = d .. "/opt/sp/lib/lua/5.1", d .. "/opt/sp/share/lua/5.1"
      for _, interp in ipairs({ "luajit", "lua5.1" }) do
        local code = 'local spool = require "spool"; local d = os.tmpname(); os.remove(d); '
          .. 'local s = assert(spool.open { path = d }); local id = spool.id.new(); '
          .. 'assert(s:store(id, "both")); assert(s:load(id) == "both"); s:shutdown(); '
          .. 'os.execute("rm -rf " .. d); io.write("ok")'
        local p = io.popen(("cd / && LUA_PATH=%s LUA_CPATH=%s %s -e %s 2>&1"):format(
          helper.shell_quote(luadir .. "/?.lua"), helper.shell_quote(libdir .. "/?.so"), interp,
          helper.shell_quote(code)))
        local out = p:read("*a")
        p:close()
        assert.are.equal("ok", out, built .. " build under " .. interp)
      end
    end
  end)

  it("honours LuaRocks' INST_LIBDIR and INST_LUADIR", function()
    assert.is_true(helper.execute(("make -s install LUA=%s INST_LIBDIR=%s/lib INST_LUADIR=%s/lua >/dev/null 2>&1")
      :format(lua, helper.shell_quote(dest), helper.shell_quote(dest))))
    assert.is_true(helper.exists(dest .. "/lib/spool/core.so"))
    assert.is_true(helper.exists(dest .. "/lua/spool.lua"))
    assert.matches("^%d+%.%d+%.%d+ %x+$", require_from(dest .. "/lua/?.lua", dest .. "/lib/?.so"))
  end)

  it("links neither Lua's library nor exports anything but luaopen_spool_core", function()
    local so = "build/" .. lua .. "/spool/core.so"
    assert.is_true(helper.execute("make -s LUA=" .. lua .. " >/dev/null 2>&1"))
    local p = io.popen("readelf -d " .. so .. " | grep NEEDED")
    local needed = p:read("*a")
    p:close()
    assert.matches("libsqlite3", needed)
    assert.is_nil(needed:find("liblua", 1, true))
    assert.is_nil(needed:find("libluajit", 1, true))
    p = io.popen("nm -D --defined-only " .. so .. " | awk '$2 == \"T\" { print $3 }'")
    local exported = p:read("*a")
    p:close()
    assert.equal("luaopen_spool_core\n", exported)
  end)
end)

-- A build directory remembers what it was built with: turning RocksDB
-- off and on again (as installing librocksdb-dev after a first build
-- does) rebuilds the objects instead of keeping the old set of backends.
-- Once, under LuaJIT (a full build twice).
if lua == "luajit" then describe("make, run again with other settings", function()
  local build
  before_each(function() build = helper.tmpdir() end)
  after_each(function() helper.rm_rf(build) end)

  local function backends()
    local p = io.popen(("cd / && LUA_CPATH=%s %s -e %s 2>&1"):format(helper.shell_quote(build .. "/?.so"), lua,
      helper.shell_quote('local t = {} for _, b in ipairs(require("spool.core").backends()) do '
        .. 't[#t + 1] = b.kind or b.name or b[1] end io.write(table.concat(t, " "))')))
    local out = p:read("*a")
    p:close()
    return out
  end

  it("rebuilds the module when the set of backends changes", function()
    local make = ("make -s LUA=%s BUILD=%s all >/dev/null 2>&1"):format(lua, build)
    assert.is_true(helper.execute(make .. " ROCKSDB=0"))
    local without = backends()
    assert.is_nil(without:find("RocksDB", 1, true), without)
    if not helper.execute("printf '#include <rocksdb/c.h>\\n' | cc -E -x c - >/dev/null 2>&1") then
      return -- librocksdb-dev is not installed: no second set to build
    end
    assert.is_true(helper.execute(make))
    local with = backends()
    assert.is_truthy(with:find("RocksDB", 1, true), with)
  end)
end) end

-- The README documents the LuaJIT install; it runs once, under LuaJIT.
if lua == "luajit" then describe("luarocks make", function()
  local tree
  before_each(function() tree = helper.tmpdir() end)
  after_each(function() helper.rm_rf(tree) end)

  it("installs offline for LuaJIT into a tree, and the module loads from another directory", function()
    assert.is_true(helper.execute(("luarocks --tree %s make rockspec/spool-scm-1.rockspec "
      .. "LUA=luajit LUA_INCDIR=/usr/include/luajit-2.1 >/dev/null 2>&1"):format(helper.shell_quote(tree))))
    local out = require_from(tree .. "/share/lua/5.1/?.lua", tree .. "/lib/lua/5.1/?.so")
    assert.matches("^%d+%.%d+%.%d+ %x+$", out)
  end)
end) end
