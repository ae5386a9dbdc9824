-- Quarantine never overwrites: neither a second quarantine of an id nor
-- a restore over a live entry loses either copy.
local helper = require "spec.helper"
local spool = require "spool"

describe("quarantine conflicts", function()
  local dir, s
  before_each(function()
    dir = helper.tmpdir()
    s = assert(helper.open { path = dir })
  end)
  after_each(function()
    s:shutdown()
    helper.rm_rf(dir)
  end)

  -- Both are runtime states (an operator's race), not misuse: nil, err.
  it("answers conflict to a quarantine of an id already in quarantine, keeping both copies", function()
    local id = spool.id.new()
    assert(s:store(id, "first"))
    assert(s:quarantine(id, "one"))
    assert(s:store(id, "second"))
    local ok, err = s:quarantine(id, "two")
    assert.is_nil(ok)
    assert.equal("conflict", err.kind)
    assert.matches("already in quarantine", err.message, 1, true)
    assert.equal("second", s:load(id))
    local q = {}
    for e in s:quarantined() do q[#q + 1] = e end
    assert.equal(1, #q)
    assert.equal("first", q[1].data)
  end)

  it("answers conflict to a restore over a live entry, keeping both copies", function()
    local id = spool.id.new()
    assert(s:store(id, "old"))
    assert(s:quarantine(id, "why"))
    assert(s:store(id, "new"))
    local ok, err = s:restore(id)
    assert.is_nil(ok)
    assert.equal("conflict", err.kind)
    assert.matches("a live entry with this id exists", err.message, 1, true)
    assert.equal("new", s:load(id))
    assert(s:remove(id))
    assert(s:restore(id))
    assert.equal("old", s:load(id))
  end)

  it("a remove of a quarantined entry's id answers false and leaves the quarantined copy", function()
    local id = spool.id.new()
    assert(s:store(id, "kept"))
    assert(s:quarantine(id, "why"))
    assert.is_false(s:remove(id))
    assert.are.equal(0, s:remove_many({ id }))
    local q = {}
    for e in s:quarantined() do q[#q + 1] = e end
    assert.equal(1, #q)
    assert.equal("kept", q[1].data)
  end)

  it("a remove of a restored entry answers true", function()
    local id = spool.id.new()
    assert(s:store(id, "back"))
    assert(s:quarantine(id, "why"))
    assert(s:restore(id))
    assert.is_true(s:remove(id))
    assert.is_false(s:remove(id))
  end)

  it("a conflict does not latch the gate", function()
    local id = spool.id.new()
    assert(s:store(id, "a"))
    assert(s:quarantine(id, "one"))
    assert(s:store(id, "b"))
    for _ = 1, 3 do assert.is_nil((s:quarantine(id, "again"))) end
    assert.is_nil(s:unhealthy_reason())
  end)

  it("purge_quarantined deletes a quarantined entry for good, and only that", function()
    local id, other = spool.id.new(), spool.id.new()
    assert(s:store(id, "bad"))
    assert(s:store(other, "good"))
    assert(s:quarantine(id, "corrupt upstream"))
    assert(s:store(id, "live copy"))
    assert.is_true(s:purge_quarantined(id))
    assert.is_false(s:purge_quarantined(id))
    for _ in s:quarantined() do error("a quarantined entry is left") end
    assert.equal("live copy", s:load(id))
    assert.equal("good", s:load(other))
  end)

  it("purge_quarantined of an id never quarantined answers false", function()
    assert.is_false(s:purge_quarantined(spool.id.new()))
  end)

  it("purge_quarantined refuses a bad id", function()
    local msg = helper.error_of(s.purge_quarantined, s, "not-an-id")
    assert.is_truthy(msg:find("id", 1, true), msg)
  end)
end)
