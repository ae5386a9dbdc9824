-- Specs for write deadlines: the caller's deadline (timeout / deadline)
-- and the spool's own store_deadline, while another process holds the
-- database's write lock.

local spool = require "spool"
local helper = require "spec.helper"

local errors = spool.errors

local CALLER_TEXT = "the caller-provided deadline was reached before the spool accepted the write"

describe("write deadlines while another process holds the write lock", function()
  local dir, s, holder

  -- Opens the spool with `params` (path added), stores `keep` entries,
  -- then has a sqlite3 process take the write lock.
  local function setup(params)
    local p = { path = dir }
    for k, v in pairs(params or {}) do
      p[k] = v
    end
    s = assert(spool.open(p))
    holder = helper.hold_write_lock(dir .. "/spool.db")
    assert.is_true(holder:wait_locked(), "the sqlite3 process did not take the write lock")
  end

  -- Calls fn() and returns its results followed by the seconds it took.
  local function timed(fn)
    local t0 = spool.monotonic()
    local a, b = fn()
    return a, b, spool.monotonic() - t0
  end

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

  describe("with a caller deadline", function()
    it("a store with timeout fails with caller_deadline_exceeded and the reference text", function()
      setup()
      local ok, err = s:store(spool.id.new(), "x", { timeout = 0.2 })
      assert.is_nil(ok)
      assert.are.equal("caller_deadline_exceeded", err.kind)
      assert.are.equal(CALLER_TEXT, err.message)
      assert.are.equal(CALLER_TEXT, tostring(err))
      assert.is_true(err.retryable)
      assert.is_true(errors.is(err, errors.CALLER_DEADLINE_EXCEEDED))
      assert.is_nil(err.deadline)
    end)

    it("a store with an absolute deadline fails the same way", function()
      setup()
      local ok, err = s:store(spool.id.new(), "x", { deadline = spool.monotonic() + 0.2 })
      assert.is_nil(ok)
      assert.are.equal("caller_deadline_exceeded", err.kind)
      assert.are.equal(CALLER_TEXT, err.message)
    end)

    it("a store waits until about the deadline, not longer", function()
      setup()
      local ok, err, took = timed(function()
        return s:store(spool.id.new(), "x", { timeout = 0.2 })
      end)
      assert.is_nil(ok)
      assert.are.equal("caller_deadline_exceeded", err.kind)
      assert.is_true(took >= 0.18, ("returned after %.3f s, before the deadline"):format(took))
      assert.is_true(took < 2, ("returned after %.3f s"):format(took))
    end)

    it("a remove with timeout fails with caller_deadline_exceeded", function()
      local id = spool.id.new()
      s = assert(spool.open { path = dir })
      assert.is_true(s:store(id, "x"))
      holder = helper.hold_write_lock(dir .. "/spool.db")
      assert.is_true(holder:wait_locked())
      local ok, err = s:remove(id, { timeout = 0.2 })
      assert.is_nil(ok)
      assert.are.equal("caller_deadline_exceeded", err.kind)
      assert.are.equal(CALLER_TEXT, err.message)
    end)

    it("a store_many with timeout fails and stores none of its items", function()
      setup()
      local a, b = spool.id.new(), spool.id.new()
      local ok, err = s:store_many({ { a, "a" }, { b, "b" } }, { timeout = 0.2 })
      assert.is_nil(ok)
      assert.are.equal("caller_deadline_exceeded", err.kind)
      holder:release()
      for _, id in ipairs({ a, b }) do
        local _, lerr = s:load(id)
        assert.are.equal("not_found", lerr.kind)
      end
    end)

    it("names the caller when its deadline is the earlier one", function()
      setup({ store_deadline = 5 })
      local _, err = s:store(spool.id.new(), "x", { timeout = 0.2 })
      assert.are.equal("caller_deadline_exceeded", err.kind)
    end)
  end)

  describe("with store_deadline", function()
    it("a store fails with backpressure_timeout and the configured deadline in the text", function()
      setup({ store_deadline = 0.2 })
      local ok, err = s:store(spool.id.new(), "x")
      assert.is_nil(ok)
      assert.are.equal("backpressure_timeout", err.kind)
      assert.are.equal("the spool did not accept the write within 200ms", err.message)
      assert.are.equal(0.2, err.deadline)
      assert.is_true(err.retryable)
    end)

    it("a store returns after about store_deadline", function()
      setup({ store_deadline = 0.2 })
      local ok, err, took = timed(function()
        return s:store(spool.id.new(), "x")
      end)
      assert.is_nil(ok)
      assert.are.equal("backpressure_timeout", err.kind)
      assert.is_true(took >= 0.18, ("returned after %.3f s, before store_deadline"):format(took))
      assert.is_true(took < 2, ("returned after %.3f s"):format(took))
    end)

    it("names the spool when store_deadline is earlier than the caller's", function()
      setup({ store_deadline = 0.2 })
      local _, err = s:store(spool.id.new(), "x", { timeout = 5 })
      assert.are.equal("backpressure_timeout", err.kind)
      assert.are.equal(0.2, err.deadline)
    end)

    it("writes a duration string's value in the text", function()
      setup({ store_deadline = "300ms" })
      local _, err = s:store(spool.id.new(), "x")
      assert.are.equal("backpressure_timeout", err.kind)
      assert.are.equal("the spool did not accept the write within 300ms", err.message)
      assert.are.equal(0.3, err.deadline)
    end)

    it("takes store_deadline from rocks_params", function()
      setup({ rocks_params = { store_deadline = "250ms" } })
      local _, err = s:store(spool.id.new(), "x")
      assert.are.equal("backpressure_timeout", err.kind)
      assert.are.equal("the spool did not accept the write within 250ms", err.message)
    end)
  end)

  describe("opening", function()
    -- In a separate process, killed after 15 s, so that an open that
    -- never returns fails the spec instead of hanging the suite.
    it("returns within about store_deadline while another process holds the file exclusively", function()
      s = assert(spool.open { path = dir })
      assert.is_true(s:store(spool.id.new(), "x"))
      s:shutdown()
      s = nil
      holder = helper.hold_write_lock(dir .. "/spool.db", 30, true)
      assert.is_true(holder:wait_locked(), "the sqlite3 process did not take the exclusive lock")
      local ok, out, timed_out = helper.run_lua(([[
        local spool = require "spool"
        local t0 = spool.monotonic()
        local h, err = spool.open { path = %q, store_deadline = 0.5 }
        print(("open: %%s %%s %%s %%.3f"):format(tostring(h ~= nil), err and err.kind,
          tostring(err and err.retryable), spool.monotonic() - t0))
        if h then h:shutdown() end
      ]]):format(dir), 15)
      assert.is_false(timed_out, "spool.open did not return within 15 s (store_deadline = 0.5)")
      assert.is_true(ok, out)
      local opened, kind, retryable, took = out:match("open: (%a+) (%S+) (%a+) ([%d%.]+)")
      assert.are.equal("false", opened, out)
      assert.is_truthy(kind == "busy" or kind == "backpressure_timeout", out)
      assert.are.equal("true", retryable, out)
      assert.is_true(tonumber(took) < 5, out)
    end)
  end)

  describe("around the lock", function()
    it("loads go on while the write lock is held", function()
      local id = spool.id.new()
      s = assert(spool.open { path = dir, store_deadline = 0.5 })
      assert.is_true(s:store(id, "readable"))
      holder = helper.hold_write_lock(dir .. "/spool.db")
      assert.is_true(holder:wait_locked())
      assert.are.equal("readable", s:load(id))
    end)

    it("a store succeeds once the lock holder has ended", function()
      setup()
      local _, err = s:store(spool.id.new(), "x", { timeout = 0.2 })
      assert.are.equal("caller_deadline_exceeded", err.kind)
      holder:release()
      local id = spool.id.new()
      local ok, serr = s:store(id, "after", { timeout = 5 })
      assert.is_true(ok, serr and serr.message)
      assert.are.equal("after", s:load(id))
    end)

    it("a store that missed its deadline left nothing behind", function()
      setup()
      local id = spool.id.new()
      local _, err = s:store(id, "x", { timeout = 0.2 })
      assert.are.equal("caller_deadline_exceeded", err.kind)
      holder:release()
      local data, lerr = s:load(id)
      assert.is_nil(data)
      assert.are.equal("not_found", lerr.kind)
    end)

    it("a store waiting for the lock succeeds when it is freed before the deadline", function()
      setup()
      holder:release_after(0.3)
      local id = spool.id.new()
      local ok, err, took = timed(function()
        return s:store(id, "late but in time", { timeout = 10 })
      end)
      assert.is_true(ok, err and err.message)
      -- it did wait for the lock, and no longer than needed
      assert.is_true(took >= 0.15, ("took %.3f s: the lock was not held"):format(took))
      assert.is_true(took < 9, ("took %.3f s"):format(took))
      assert.are.equal("late but in time", s:load(id))
    end)
  end)
end)

describe("timeout and deadline together", function()
  local spool = require "spool"
  local helper = require "spec.helper"
  local dir, s, holder
  before_each(function()
    dir = helper.tmpdir()
    s = assert(spool.open { path = dir, store_deadline = 5 })
    assert(s:store(spool.id.new(), "x"))
    holder = helper.hold_write_lock(dir .. "/spool.db")
    assert.is_true(holder:wait_locked())
  end)
  after_each(function()
    holder:release()
    s:shutdown()
    helper.rm_rf(dir)
  end)

  -- Both orders of the table: the earlier bound applies either way.
  for _, case in ipairs({
    { name = "an earlier timeout", opts = function(now) return { deadline = now + 3, timeout = 0.2 } end },
    { name = "an earlier deadline", opts = function(now) return { timeout = 3, deadline = now + 0.2 } end },
  }) do
    it("use the earlier of the two: " .. case.name, function()
      for _ = 1, 3 do
        local t0 = spool.monotonic()
        local ok, err = s:store(spool.id.new(), "y", case.opts(t0))
        local took = spool.monotonic() - t0
        assert.is_nil(ok)
        assert.are.equal("caller_deadline_exceeded", err.kind)
        assert.is_true(took < 1.5, "waited " .. took .. " s: the later bound applied")
      end
    end)
  end
end)
