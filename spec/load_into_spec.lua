-- s:load(id, { into = buf }): an entry appended to a LuaJIT
-- string.buffer, so that a large entry is never made into a Lua string
-- (docs/PERFORMANCE.md).  A contract spec: it runs once per backend kind.
local spool = require "spool"
local helper = require "spec.helper"

local has_buffer = pcall(require, "string.buffer")
local buffer_it = has_buffer and it or pending
local no_buffer_it = has_buffer and pending or it

describe("load into a string.buffer", function()
  local dir, s
  before_each(function()
    dir = helper.tmpdir()
    s = assert(helper.open { path = dir })
  end)
  after_each(function()
    s:shutdown()
    helper.rm_rf(dir)
  end)

  local function new_buffer() return require("string.buffer").new() end

  buffer_it("appends the entry's bytes to what the buffer holds and returns the buffer", function()
    local id = spool.id.new()
    assert(s:store(id, "hello, world"))
    local buf = new_buffer()
    buf:put("before|")
    local r, err = s:load(id, { into = buf })
    assert.are.equal(buf, r, err and err.message)
    assert.are.equal("before|hello, world", buf:tostring())
  end)

  buffer_it("loads an entry larger than the buffer's room whole, and again into the same buffer", function()
    local id = spool.id.new()
    local big = ("0123456789abcdef"):rep(65536) .. "tail" -- 1 MiB and 4 bytes
    assert(s:store(id, big))
    local buf = new_buffer()
    assert(s:load(id, { into = buf }))
    assert.are.equal(#big, #buf)
    assert.is_true(buf:tostring() == big)
    buf:reset()
    assert(s:load(id, { into = buf }))
    assert.is_true(buf:tostring() == big)
  end)

  buffer_it("appends nothing for an empty entry", function()
    local id = spool.id.new()
    assert(s:store(id, ""))
    local buf = new_buffer()
    buf:put("x")
    assert(s:load(id, { into = buf }))
    assert.are.equal("x", buf:tostring())
  end)

  buffer_it("answers a missing entry not_found and leaves the buffer as it was", function()
    local buf = new_buffer()
    buf:put("kept")
    local r, err = s:load(spool.id.new(), { into = buf })
    assert.is_nil(r)
    assert.are.equal("not_found", err.kind)
    assert.are.equal("kept", buf:tostring())
  end)

  buffer_it("gives the same bytes as a load into a string, for each of many entries", function()
    local ids, buf = {}, new_buffer()
    for i = 1, 50 do
      ids[i] = spool.id.new()
      assert(s:store(ids[i], ("entry %d "):format(i):rep(i * 37)))
    end
    for i = 1, 50 do
      buf:reset()
      assert(s:load(ids[i], { into = buf }))
      assert.are.equal(s:load(ids[i]), buf:tostring())
    end
  end)

  it("refuses an into that is not a string.buffer, naming what it got", function()
    local msg = helper.error_of(s.load, s, spool.id.new(), { into = {} })
    assert.is_truthy(msg:find("into: a LuaJIT string.buffer expected, got table", 1, true), msg)
  end)

  it("refuses an unknown option, naming it", function()
    local msg = helper.error_of(s.load, s, spool.id.new(), { intto = true })
    assert.is_truthy(msg:find("unknown option 'intto'", 1, true), msg)
  end)

  no_buffer_it("says that this interpreter has no string.buffer when given a look-alike", function()
    local fake = io.tmpfile()
    local ud = newproxy and newproxy(true)
    if ud then
      getmetatable(ud).__index = { reserve = function() end, commit = function() end }
      local msg = helper.error_of(s.load, s, spool.id.new(), { into = ud })
      assert.is_truthy(msg:find("has none", 1, true), msg)
    else
      local msg = helper.error_of(s.load, s, spool.id.new(), { into = fake })
      assert.is_truthy(msg:find("string.buffer expected", 1, true), msg)
    end
    fake:close()
  end)
end)
