-- s:verify(): SQLite's quick_check plus every entry's checksum.
local helper = require "spec.helper"
local spool = require "spool"

describe("verify", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rm_rf(dir) end)

  it("reports a healthy spool as ok with its entry count", function()
    local s = assert(spool.open { path = dir })
    for i = 1, 25 do assert(s:store(spool.id.new(), "entry " .. i)) end
    local r = assert(s:verify())
    assert.is_true(r.ok)
    assert.equal("ok", r.storage)
    assert.equal(25, r.entries)
    assert.equal(0, r.corrupt)
    assert.is_nil(s:unhealthy_reason())
    s:shutdown()
  end)

  it("finds an entry whose bytes were damaged on disk, and latches the gate", function()
    local s = assert(spool.open { path = dir })
    for i = 1, 10 do assert(s:store(spool.id.new(), ("payload-%02d-"):format(i) .. ("p"):rep(200))) end
    s:shutdown() -- checkpoints everything into spool.db
    local f = assert(io.open(dir .. "/spool.db", "r+b"))
    local at = f:read("*a"):find("payload-04-", 1, true)
    assert.is_number(at)
    f:seek("set", at + 20)
    f:write("!")
    f:close()
    s = assert(spool.open { path = dir })
    local r = assert(s:verify())
    assert.is_false(r.ok)
    assert.equal(10, r.entries)
    assert.equal(1, r.corrupt)
    assert.equal("the spool is not accepting writes", s:unhealthy_reason())
    s:shutdown()
  end)

  it("raises after shutdown", function()
    local s = assert(spool.open { path = dir })
    s:shutdown()
    assert.matches("shut down", helper.error_of(s.verify, s))
  end)
end)
