-- Specs for the health gate: latching on sustained errors, unlatching,
-- and the free-space minimum.  Durations are sub-second so that the
-- specs stay quick.  A contract spec (run per kind): the errors are made
-- by a sqlite3 process holding SQLite's write lock, so the parts that
-- need them are SQLite's; the free-space minimum is every backend's.

local spool = require "spool"
local helper = require "spec.helper"

local UNHEALTHY_TEXT = "the spool is not accepting writes"
local sqlite_it = helper.sqlite and it or pending

describe("the health gate", function()
  local dir, s, holder

  before_each(function()
    dir = helper.tmpdir()
  end)

  after_each(function()
    if holder then
      holder:release()
      holder = nil
    end
    if s then
      s:shutdown()
      s = nil
    end
    helper.rm_rf(dir)
  end)

  -- Opens the spool with `params` (path added); the free-space minimums
  -- are 0 unless given, so that only what a test sets can trip the gate.
  local function open(params)
    local p = { path = dir, min_free_space = 0, min_free_inodes = 0 }
    for k, v in pairs(params or {}) do
      p[k] = v
    end
    s = assert(helper.open(p))
    return s
  end

  describe("on sustained errors", function()
    -- Opens with `params`, has a sqlite3 process hold the write lock and
    -- makes one store miss its deadline.
    local function fail_a_store(params)
      open(params)
      assert.is_nil(s:unhealthy_reason())
      holder = helper.hold_write_lock(dir .. "/spool.db")
      assert.is_true(holder:wait_locked(), "the sqlite3 process did not take the write lock")
      local ok, err = s:store(spool.id.new(), "x", { timeout = 0.1 })
      assert.is_nil(ok)
      assert.are.equal("caller_deadline_exceeded", err.kind)
    end

    local LATCH_AT_ONCE = { error_latch_duration = 0, error_unlatch_duration = 0.3 }

    sqlite_it("latches when error_latch_duration has passed (0: at the first error)", function()
      fail_a_store(LATCH_AT_ONCE)
      assert.are.equal(UNHEALTHY_TEXT, s:unhealthy_reason())
    end)

    sqlite_it("does not latch on one error when error_latch_duration is longer", function()
      fail_a_store({ error_latch_duration = 10, error_unlatch_duration = 0.3 })
      assert.is_nil(s:unhealthy_reason())
      holder:release()
      assert.is_true(s:store(spool.id.new(), "fine", { timeout = 5 }))
    end)

    sqlite_it("makes a store fail at once with kind unhealthy and the reference text", function()
      fail_a_store(LATCH_AT_ONCE)
      local t0 = spool.monotonic()
      local ok, err = s:store(spool.id.new(), "x", { timeout = 1 })
      local took = spool.monotonic() - t0
      assert.is_nil(ok)
      assert.are.equal("unhealthy", err.kind)
      assert.are.equal(UNHEALTHY_TEXT, err.message)
      assert.are.equal(UNHEALTHY_TEXT, tostring(err))
      assert.is_true(err.retryable)
      -- the lock is still held: waiting for it would have taken the whole second
      assert.is_true(took < 0.5, ("the refused store took %.3f s"):format(took))
    end)

    sqlite_it("makes store_many fail with kind unhealthy", function()
      fail_a_store(LATCH_AT_ONCE)
      local ok, err = s:store_many({ { spool.id.new(), "x" } })
      assert.is_nil(ok)
      assert.are.equal("unhealthy", err.kind)
    end)

    sqlite_it("reports the latch in health()", function()
      fail_a_store(LATCH_AT_ONCE)
      local h = assert(s:health())
      assert.is_false(h.healthy)
      assert.are.equal(UNHEALTHY_TEXT, h.reason)
      assert.is_true(h.error_latched)
      assert.is_false(h.space_low)
      assert.are.equal("caller_deadline_exceeded", h.last_error_kind)
    end)

    sqlite_it("does not unlatch before error_unlatch_duration", function()
      fail_a_store({ error_latch_duration = 0, error_unlatch_duration = 5 })
      holder:release()
      assert.are.equal(UNHEALTHY_TEXT, s:unhealthy_reason())
      local _, err = s:store(spool.id.new(), "x")
      assert.are.equal("unhealthy", err.kind)
    end)

    sqlite_it("unlatches after error_unlatch_duration without errors, and stores succeed", function()
      fail_a_store(LATCH_AT_ONCE)
      holder:release()
      helper.sleep(0.45)
      assert.is_nil(s:unhealthy_reason())
      local id = spool.id.new()
      local ok, err = s:store(id, "accepted again", { timeout = 5 })
      assert.is_true(ok, err and err.message)
      assert.are.equal("accepted again", s:load(id))
    end)

    sqlite_it("stays latched with allow_error_unlatch = false", function()
      fail_a_store({ error_latch_duration = 0, error_unlatch_duration = 0.3, allow_error_unlatch = false })
      holder:release()
      helper.sleep(0.45)
      assert.are.equal(UNHEALTHY_TEXT, s:unhealthy_reason())
      local ok, err = s:store(spool.id.new(), "x", { timeout = 5 })
      assert.is_nil(ok)
      assert.are.equal("unhealthy", err.kind)
    end)
  end)

  describe("on free space", function()
    it("is unhealthy at once with min_free_space = \"100%\"", function()
      open({ min_free_space = "100%" })
      assert.are.equal(UNHEALTHY_TEXT, s:unhealthy_reason())
      local h = assert(s:health())
      assert.is_false(h.healthy)
      assert.is_true(h.space_low)
      assert.is_false(h.error_latched)
    end)

    it("refuses stores with kind unhealthy when space is low", function()
      open({ min_free_space = "100%" })
      local ok, err = s:store(spool.id.new(), "x")
      assert.is_nil(ok)
      assert.are.equal("unhealthy", err.kind)
      assert.are.equal(UNHEALTHY_TEXT, err.message)
    end)

    it("is unhealthy with a byte count above the free space", function()
      open({ min_free_space = 2 ^ 52 })
      assert.are.equal(UNHEALTHY_TEXT, s:unhealthy_reason())
      assert.is_true(s:health().space_low)
    end)

    it("is unhealthy with min_free_inodes = \"100%\"", function()
      open({ min_free_inodes = "100%" })
      assert.is_true(s:health().total_inodes > 0, "the file system reports no inode count")
      assert.are.equal(UNHEALTHY_TEXT, s:unhealthy_reason())
    end)

    it("is healthy with min_free_space = 0, and stores succeed", function()
      open({ min_free_space = 0 })
      assert.is_nil(s:unhealthy_reason())
      local h = assert(s:health())
      assert.is_true(h.healthy)
      assert.is_false(h.space_low)
      assert.is_nil(h.reason)
      assert.is_true(s:store(spool.id.new(), "x"))
    end)

    it("health() reports the free space of the file system", function()
      open()
      local h = assert(s:health())
      assert.are.equal("number", type(h.free_bytes))
      assert.is_true(h.free_bytes > 0)
      assert.is_true(h.total_bytes >= h.free_bytes)
      assert.are.equal("number", type(h.free_inodes))
    end)
  end)
end)

describe("sustained errors", function()
  local spool = require "spool"
  local helper = require "spec.helper"
  local dir, s, holder
  local sqlite_it = helper.sqlite and it or pending
  before_each(function() dir = helper.tmpdir() end)
  after_each(function()
    if holder then holder:release() end
    holder = nil
    if s then s:shutdown() end
    s = nil
    helper.rm_rf(dir)
  end)

  -- Each failure takes store_deadline (1 s), longer than the latch
  -- duration (0.5 s): errors with no success between them are sustained
  -- however far apart they come.
  sqlite_it("latch the gate when each failure takes longer than error_latch_duration", function()
    s = assert(spool.open { path = dir, store_deadline = 1, error_latch_duration = 0.5 })
    assert(s:store(spool.id.new(), "x"))
    holder = helper.hold_write_lock(dir .. "/spool.db", 30)
    assert.is_true(holder:wait_locked())
    local kinds = {}
    for _ = 1, 4 do
      local _, err = s:store(spool.id.new(), "y")
      kinds[#kinds + 1] = err.kind
    end
    assert.are.equal("backpressure_timeout", kinds[1])
    assert.is_truthy(s:unhealthy_reason(), "no latch after: " .. table.concat(kinds, ", "))
    assert.are.equal("unhealthy", kinds[4])
  end)

  it("refuse allow_error_unlatch with error_unlatch_duration = 0", function()
    local msg = helper.error_of(helper.open, { path = dir, error_unlatch_duration = 0 })
    assert.is_truthy(msg:find("error_unlatch_duration", 1, true), msg)
    s = assert(helper.open { path = dir, error_unlatch_duration = 0, allow_error_unlatch = false })
  end)
end)
