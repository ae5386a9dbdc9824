-- A long reader must never stop the writers: cleanup() and compact()
-- checkpoint without waiting for readers, and health() reports the WAL
-- that grows meanwhile.
local spool = require "spool"
local helper = require "spec.helper"

local q = helper.shell_quote

-- Holds a read transaction on db from a sqlite3 shell (another process)
-- until release(); gives up by itself after max_seconds.
local function hold_read(db, max_seconds)
  local flags = helper.tmpdir()
  local held, release = flags .. "/held", flags .. "/release"
  local loops = math.floor((max_seconds or 30) / 0.05)
  local script = "( echo 'BEGIN;'; echo 'SELECT count(*) FROM entries;'; echo "
    .. q(".shell touch " .. q(held)) .. "; i=0; while [ ! -e " .. q(release) .. " ] && [ $i -lt " .. loops
    .. " ]; do sleep 0.05; i=$((i+1)); done; echo 'COMMIT;' ) | sqlite3 -bail " .. q(db) .. " >/dev/null 2>&1"
  local pipe = assert(io.popen(script, "r"))
  local r = {}
  function r:wait_held()
    for _ = 1, 250 do
      if helper.exists(held) then return true end
      helper.sleep(0.02)
    end
    return false
  end
  function r:release()
    if self.done then return end
    self.done = true
    helper.write_file(release, "")
    pipe:read("*a")
    pipe:close()
    helper.rm_rf(flags)
  end
  return r
end

describe("checkpoints", function()
  local dir, s, reader
  before_each(function() dir = helper.tmpdir() end)
  after_each(function()
    if reader then reader:release() end
    reader = nil
    if s then s:shutdown() end
    s = nil
    helper.rm_rf(dir)
  end)

  it("with a reader open in another process, stores go on while a third process runs cleanup and compact", function()
    s = assert(spool.open { path = dir, store_deadline = 1 })
    for _ = 1, 50 do assert(s:store(spool.id.new(), string.rep("w", 4096))) end
    reader = hold_read(dir .. "/spool.db", 60)
    assert.is_true(reader:wait_held(), "the sqlite3 reader did not start")
    -- The maintenance process: cleanup every 0.2 s (a WAL over 4 KiB is
    -- checkpointed at each), and compact now and then; default deadline.
    local maint = helper.tmpdir()
    local stop = maint .. "/stop"
    helper.write_file(maint .. "/m.lua", ([[
      local spool = require "spool"
      local s = assert(spool.open { path = %q, sqlite = { checkpoint_wal_bytes = 4096 } })
      local n = 0
      while not io.open(%q) do
        assert(s:cleanup())
        n = n + 1
        if n %% 5 == 0 then assert(s:compact()) end
        os.execute("sleep 0.2")
      end
      s:shutdown()
      print("maintenance rounds", n)
    ]]):format(dir, stop))
    local lua = os.getenv("SPOOL_TEST_LUA") or "luajit"
    local mp = assert(io.popen("timeout 60 " .. q(lua) .. " " .. q(maint .. "/m.lua") .. " 2>&1"))
    local failures, stored, worst = {}, 0, 0
    local t_end = spool.monotonic() + 4
    while spool.monotonic() < t_end do
      local t0 = spool.monotonic()
      local ok, err = s:store(spool.id.new(), string.rep("x", 4096))
      local took = spool.monotonic() - t0
      if took > worst then worst = took end
      if ok then stored = stored + 1 else failures[#failures + 1] = err.kind end
    end
    helper.write_file(stop, "")
    local mout = mp:read("*a")
    mp:close()
    helper.rm_rf(maint)
    assert.is_truthy(mout:find("maintenance rounds", 1, true), mout)
    assert.are.equal(0, #failures, "stores failed: " .. table.concat(failures, ", "))
    if (os.getenv("SPOOL_SANITIZE") or "") == "" then -- times mean nothing under valgrind
      assert.is_true(stored > 20, "only " .. stored .. " stores in 4 s")
      assert.is_true(worst < 0.9, "a store waited " .. worst .. " s")
    end
  end)

  it("health() reports the WAL growing while a reader holds it, and since when", function()
    s = assert(spool.open { path = dir, sqlite = { checkpoint_wal_bytes = 4096 } })
    for _ = 1, 5 do assert(s:store(spool.id.new(), string.rep("w", 4096))) end
    reader = hold_read(dir .. "/spool.db", 60)
    assert.is_true(reader:wait_held())
    local before = os.time()
    for _ = 1, 50 do assert(s:store(spool.id.new(), string.rep("x", 4096))) end
    assert(s:cleanup())
    local h = s:health()
    assert.is_true(h.wal_bytes > 4096, "wal_bytes " .. tostring(h.wal_bytes))
    assert.is_number(h.wal_over_since)
    assert.is_true(h.wal_over_since >= before - 1 and h.wal_over_since <= os.time() + 1)
    reader:release()
    assert(s:cleanup())
    h = s:health()
    assert.are.equal(0, h.wal_bytes)
    assert.is_nil(h.wal_over_since)
  end)
end)
