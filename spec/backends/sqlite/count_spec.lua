-- stats().entries is a live count kept in the transactions that change
-- it, never a count(*) over the table: cheap enough for every /metrics
-- scrape, exact across handles and processes.
local spool = require "spool"
local helper = require "spec.helper"

describe("the live entry count", function()
  local dir, s
  before_each(function()
    dir = helper.tmpdir()
    s = assert(spool.open { path = dir })
  end)
  after_each(function()
    s:shutdown()
    helper.rm_rf(dir)
  end)

  it("counts new entries, not replacements, and removes", function()
    local a, b = spool.id.new(), spool.id.new()
    assert(s:store(a, "1"))
    assert(s:store(b, "2"))
    assert(s:store(a, "replaced"))
    assert.are.equal(2, s:stats().entries)
    assert.is_true(s:remove(a))
    assert.is_false(s:remove(a))
    assert.are.equal(1, s:stats().entries)
  end)

  it("follows store_many, remove_many, quarantine and restore", function()
    local ids = {}
    local items = {}
    for i = 1, 10 do
      ids[i] = spool.id.new()
      items[i] = { ids[i], "x" .. i }
    end
    assert(s:store_many(items))
    assert(s:store_many({ { ids[1], "again" }, { spool.id.new(), "new" } }))
    assert.are.equal(11, s:stats().entries)
    assert.are.equal(3, s:remove_many({ ids[2], ids[3], ids[4], spool.id.new() }))
    assert.are.equal(8, s:stats().entries)
    assert(s:quarantine(ids[5], "why"))
    assert.are.equal(7, s:stats().entries)
    assert(s:restore(ids[5]))
    assert.are.equal(8, s:stats().entries)
    assert.is_true(s:verify().ok)
  end)

  it("is exact for writes from another process", function()
    assert(s:store(spool.id.new(), "here"))
    local ok, out = helper.run_lua(([[
      local spool = require "spool"
      local s = assert(spool.open { path = %q })
      for i = 1, 25 do assert(s:store(spool.id.new(), "there")) end
      s:shutdown()
      print("ok")
    ]]):format(dir), 30)
    assert.is_true(ok, out)
    assert.are.equal(26, s:stats().entries)
  end)

  it("is read from the spool's record, and verify() reports a record that disagrees", function()
    for _ = 1, 3 do assert(s:store(spool.id.new(), "x")) end
    assert(helper.sqlite3(dir .. "/spool.db", "UPDATE info SET value = 1000 WHERE key = 'entries';"))
    assert.are.equal(1000, s:stats().entries)
    local r = assert(s:verify())
    assert.is_false(r.ok)
    assert.is_truthy(r.storage:find("recorded as 1000, but 3", 1, true), r.storage)
  end)

  it("starts from the rows present when a version-1 spool is upgraded", function()
    for _ = 1, 4 do assert(s:store(spool.id.new(), "x")) end
    s:shutdown()
    assert(helper.sqlite3(dir .. "/spool.db", "DROP TABLE info; PRAGMA user_version=1;"))
    s = assert(spool.open { path = dir })
    assert.are.equal(4, s:stats().entries)
    assert.is_true(s:verify().ok)
  end)
end)
