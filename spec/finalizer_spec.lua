-- No Lua code, finalizers included, runs while the core holds a lock or a
-- statement: a __gc that shuts the spool down must not deadlock a load.
local helper = require "spec.helper"

describe("finalizers", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rm_rf(dir) end)

  -- A script that makes garbage with finalizers which shut the spool down
  -- while large loads allocate: before the fix the collector ran inside
  -- the load and the finalizer waited for the load's own lock forever.
  local rounds = (os.getenv("SPOOL_SANITIZE") or "") == "" and 2000 or 300
  local function script(path)
    return ([[
      local spool = require "spool"
      local s = assert(spool.open { path = %q, kind = %q })
      local ids = {}
      for i = 1, 4 do
        ids[i] = spool.id.new()
        assert(s:store(ids[i], string.rep(string.char(64 + i), 256 * 1024)))
      end
      local function doomed()
        if newproxy then
          local p = newproxy(true)
          getmetatable(p).__gc = function() s:shutdown() end
          return p
        end
        return setmetatable({}, { __gc = function() s:shutdown() end })
      end
      -- Garbage with finalizers, then nothing but loads allocating: the
      -- collector's steps (and so the finalizers) come due inside them.
      for _ = 1, 100 do doomed() end
      local loads = 0
      for round = 1, %d do
        local ok, data = pcall(s.load, s, ids[round %% 4 + 1])
        if not ok then
          assert(tostring(data):find("shut down"), tostring(data))
          break
        end
        assert(#data == 256 * 1024)
        loads = loads + 1
      end
      collectgarbage()
      assert(s:is_closed(), "the finalizer never ran")
      print("ok", loads)
    ]]):format(path, helper.kind, rounds)
  end

  it("a finalizer that shuts the spool down during a load does not deadlock", function()
    local ok, out, timed_out = helper.run_lua(script(dir), 60)
    assert.is_false(timed_out, "the load deadlocked in a finalizer: " .. out)
    assert.is_true(ok, out)
    assert.truthy(out:find("^ok"), out)
  end)

  it("a load still returns the stored bytes while the collector is paused around it", function()
    local ok, out = helper.run_lua([[
      local spool = require "spool"
      local s = assert(spool.open { path = ]] .. ("%q"):format(dir) .. [[, kind = ]] .. ("%q"):format(helper.kind) .. [[ })
      local id = spool.id.new()
      assert(s:store(id, "abc"))
      collectgarbage("stop")
      assert(s:load(id) == "abc")
      -- the collector stays as the caller left it: stopped
      local known, running = pcall(collectgarbage, "isrunning")
      if known then assert(running == false, "the load restarted a stopped collector") end
      local before = collectgarbage("count")
      for _ = 1, 20000 do local _ = {} end
      assert(collectgarbage("count") > before, "the load restarted a stopped collector")
      collectgarbage("restart")
      assert(s:load(id) == "abc")
      s:shutdown()
      print("ok")
    ]], 30)
    assert.is_true(ok, out)
  end)
end)
