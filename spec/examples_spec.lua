-- Every policy example runs, from another directory, under the
-- interpreter of this run, and prints what it promises.
local helper = require "spec.helper"

local lua = os.getenv("SPOOL_TEST_LUA") or "luajit"
local root = io.popen("pwd"):read("*l")

-- Runs an example from /; returns its output and whether it succeeded.
local function run(name)
  -- The module this run tests (under make asan, a sanitizer build), by
  -- an absolute path: the example runs from /.
  local cpath = os.getenv("SPOOL_TEST_CPATH")
  local env = cpath and ("LUA_CPATH=" .. helper.shell_quote(cpath .. ";;") .. " ") or ""
  local p = io.popen(("cd / && %s%s %s/policy-examples/%s.lua 2>&1; echo \"exit=$?\""):format(env, lua, root, name))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return out, code == 0
end

describe("policy-examples", function()
  it("init.lua accepts, survives a crash, recovers and delivers every message", function()
    local out, ok = run("init")
    assert.is_true(ok, out)
    local accepted = 0
    for _ in out:gmatch("250 2%.0%.0 OK queued as %x+") do accepted = accepted + 1 end
    assert.equal(5, accepted)
    assert.matches("start%-up: 5 messages recovered, 0 corrupt", out)
    assert.matches("delivered 5 messages", out)
    assert.matches("spool now holds 0 data and 0 meta entries", out)
  end)

  it("load-shedding.lua shows the 220 and 421 banners and the 503 path", function()
    local out, ok = run("load-shedding")
    assert.is_true(ok, out)
    assert.matches("healthy spool:  220 ", out, 1, true)
    assert.matches("starved spool:  421 4.3.2 the spool is not accepting writes", out, 1, true)
    assert.matches("store answers:  nil, unhealthy", out, 1, true)
    assert.matches("HTTP injection: 503", out, 1, true)
  end)

  it("maintenance.lua runs cleanup, compact and advise_low_memory", function()
    local out, ok = run("maintenance")
    assert.is_true(ok, out)
    assert.matches("after the backlog: 2000 entries", out, 1, true)
    assert.matches("cleanup 3:", out, 1, true)
    local freed = tonumber(out:match("(%d+) pages freed"))
    assert.is_true(freed and freed > 0, out)
    assert.matches("stats: stores=2000 removes=2000 errors=0 freelist=0 pages", out, 1, true)
  end)

  it("quarantine.lua quarantines, lists and restores", function()
    local out, ok = run("quarantine")
    assert.is_true(ok, out)
    assert.matches("enumerate sees 2 live entries", out, 1, true)
    assert.matches("load of a quarantined id: not_found", out, 1, true)
    assert.matches("recipient domain does not resolve", out, 1, true)
    assert.matches('load gives "envelope 2"', out, 1, true)
    assert.matches("1 entry left in quarantine", out, 1, true)
  end)

  it("leaves no scratch directory behind", function()
    local before = io.popen("ls -d /tmp/lua_*-init /tmp/lua_*-quarantine 2>/dev/null | wc -l"):read("*n")
    run("init")
    run("quarantine")
    local after = io.popen("ls -d /tmp/lua_*-init /tmp/lua_*-quarantine 2>/dev/null | wc -l"):read("*n")
    assert.equal(before, after)
  end)
end)
