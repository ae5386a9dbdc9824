-- flush and force_sync, given from Lua, really select a durable commit:
-- seen without a power cut as the syncs the test-only fault VFS counts.
-- Under the default durability a WAL commit syncs nothing.

local spool = require "spool"
local helper = require "spec.helper"

describe("durability options from Lua", function()
  local dir, s, fv

  before_each(function()
    fv = helper.faultvfs()
    dir = helper.tmpdir()
  end)

  after_each(function()
    if s then s:shutdown() end
    s = nil
    fv.reset()
    helper.rm_rf(dir)
  end)

  local function open(flush)
    s = assert(spool.open { path = dir, flush = flush, sqlite = { vfs = "faultvfs" } })
    assert.is_true(s:store(spool.id.new(), "warm up"))
  end

  -- Syncs made by three stores with `opts`.
  local function syncs_for(opts)
    local before = fv.calls("sync")
    for _ = 1, 3 do
      assert.is_true(s:store(spool.id.new(), "entry", opts))
    end
    return fv.calls("sync") - before
  end

  it("a store under the default durability syncs nothing", function()
    open(false)
    assert.are.equal(0, syncs_for(nil))
  end)

  it("force_sync = true makes that store's commit sync", function()
    open(false)
    assert.is_true(syncs_for({ force_sync = true }) >= 3)
    assert.are.equal(0, syncs_for({ force_sync = false }))
  end)

  it("flush = true makes every commit sync", function()
    open(true)
    assert.is_true(syncs_for(nil) >= 3)
  end)

  it("store_many and remove honour force_sync", function()
    open(false)
    local before = fv.calls("sync")
    local id = spool.id.new()
    assert.is_true(s:store_many({ { id, "a" } }, { force_sync = true }))
    local after_many = fv.calls("sync")
    assert.is_true(after_many > before, "store_many with force_sync did not sync")
    assert.is_true(s:remove(id, { force_sync = true }))
    assert.is_true(fv.calls("sync") > after_many, "remove with force_sync did not sync")
  end)
end)
