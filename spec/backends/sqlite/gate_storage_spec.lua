-- The health gate latches at once on errors that mean the storage is
-- broken: a full disk and an I/O error, whatever error_latch_duration
-- says.  The failures come from the test-only fault VFS.

local spool = require "spool"
local helper = require "spec.helper"

local UNHEALTHY_TEXT = "the spool is not accepting writes"

describe("the health gate on storage errors", function()
  local dir, s, fv

  before_each(function()
    fv = helper.faultvfs()
    dir = helper.tmpdir()
    -- A latch duration far longer than the spec: only an error that
    -- latches at once can trip the gate here.
    s = assert(spool.open {
      path = dir, min_free_space = 0, min_free_inodes = 0,
      error_latch_duration = 3600, error_unlatch_duration = 3600,
      sqlite = { vfs = "faultvfs" },
    })
    assert.is_true(s:store(spool.id.new(), "before the fault"))
  end)

  after_each(function()
    fv.reset()
    s:shutdown()
    helper.rm_rf(dir)
  end)

  -- Stores once under the fault; returns the error, after checking that
  -- the store failed.
  local function failing_store()
    local ok, err = s:store(spool.id.new(), string.rep("m", 64 * 1024))
    assert.is_nil(ok)
    return err
  end

  it("latches at once when a write fails with an I/O error", function()
    fv.fail_at("write", 1, true)
    local err = failing_store()
    assert.is_truthy(fv.faults() > 0, "the fault VFS injected no fault")
    assert.are.equal("io", err.kind)
    assert.are.equal(UNHEALTHY_TEXT, s:unhealthy_reason())
    assert.is_true(s:health().error_latched)
  end)

  it("latches at once when the disk is full", function()
    fv.set_capacity(1)
    local err = failing_store()
    assert.are.equal("full", err.kind)
    assert.are.equal(UNHEALTHY_TEXT, s:unhealthy_reason())
    assert.is_true(s:health().error_latched)
  end)

  it("stays latched once the storage is healthy again: stores fail fast with unhealthy", function()
    fv.fail_at("write", 1, true)
    failing_store()
    fv.reset()
    local ok, err = s:store(spool.id.new(), "after the fault")
    assert.is_nil(ok)
    assert.are.equal("unhealthy", err.kind)
    assert.are.equal(UNHEALTHY_TEXT, err.message)
    assert.are.equal(0, fv.calls("write"), "a latched store touched storage")
  end)

  it("keeps what was stored before the fault", function()
    local id = spool.id.new()
    assert.is_true(s:store(id, "kept"))
    fv.set_capacity(1)
    failing_store()
    fv.reset()
    assert.are.equal("kept", s:load(id))
  end)
end)
