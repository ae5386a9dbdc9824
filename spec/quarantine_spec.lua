-- Quarantine never overwrites: neither a second quarantine of an id nor
-- a restore over a live entry loses either copy.
local helper = require "spec.helper"
local spool = require "spool"

describe("quarantine conflicts", function()
  local dir, s
  before_each(function()
    dir = helper.tmpdir()
    s = assert(spool.open { path = dir })
  end)
  after_each(function()
    s:shutdown()
    helper.rm_rf(dir)
  end)

  it("refuses to quarantine an id already in quarantine, keeping both copies", function()
    local id = spool.id.new()
    assert(s:store(id, "first"))
    assert(s:quarantine(id, "one"))
    assert(s:store(id, "second"))
    local msg = helper.error_of(s.quarantine, s, id, "two")
    assert.matches("already in quarantine", msg, 1, true)
    assert.equal("second", s:load(id))
    local q = {}
    for e in s:quarantined() do q[#q + 1] = e end
    assert.equal(1, #q)
    assert.equal("first", q[1].data)
  end)

  it("refuses to restore over a live entry, keeping both copies", function()
    local id = spool.id.new()
    assert(s:store(id, "old"))
    assert(s:quarantine(id, "why"))
    assert(s:store(id, "new"))
    local msg = helper.error_of(s.restore, s, id)
    assert.matches("a live entry with this id exists", msg, 1, true)
    assert.equal("new", s:load(id))
    assert(s:remove(id))
    assert(s:restore(id))
    assert.equal("old", s:load(id))
  end)
end)
