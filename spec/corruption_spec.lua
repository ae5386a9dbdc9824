-- Specs for damaged entries: bytes of one payload are overwritten inside
-- spool.db behind the spool's back; the checksum must catch it.

local spool = require "spool"
local helper = require "spec.helper"

local contains = helper.contains

local UNHEALTHY_TEXT = "the spool is not accepting writes"

-- Distinctive payloads, each well inside one database page.
local PAYLOADS = {}
for i, name in ipairs({ "alpha", "bravo", "charlie", "delta" }) do
  PAYLOADS[i] = ("<" .. name .. " payload " .. i .. ">"):rep(8)
end

describe("a spool with a damaged entry", function()
  local dir, db, s
  local ids, data -- by index into PAYLOADS
  local BAD = 2   -- the entry whose bytes are damaged

  before_each(function()
    dir = helper.tmpdir()
    db = dir .. "/spool.db"
    ids, data = {}, {}
    local w = assert(spool.open { path = dir })
    for i, p in ipairs(PAYLOADS) do
      ids[i] = assert(spool.id.parse(helper.v1_id_hex(1600000000 + i * 60)))
      data[i] = p
      assert.is_true(w:store(ids[i], data[i]))
    end
    -- shutdown checkpoints the WAL into spool.db
    w:shutdown()
    local wal = helper.read_file(db .. "-wal")
    assert.is_true(wal == nil or wal == "", "the WAL still holds pages after shutdown")

    local bytes = assert(helper.read_file(db))
    local at = bytes:find(data[BAD], 1, true)
    assert.is_truthy(at, "the payload is not in spool.db as stored")
    assert.is_nil(bytes:find(data[BAD], at + 1, true), "the payload is in spool.db twice")
    -- "bravo" -> "BRAVO" inside the first copy of the pattern
    helper.patch_file(db, at + 1, "BRAVO")
    assert.is_nil(helper.read_file(db):find(data[BAD], 1, true))

    s = assert(spool.open { path = dir })
  end)

  after_each(function()
    if s then
      s:shutdown()
    end
    helper.rm_rf(dir)
  end)

  it("answers corrupt when loading it, never the wrong bytes", function()
    local got, err = s:load(ids[BAD])
    assert.is_nil(got)
    assert.are.equal("corrupt", err.kind)
    assert.is_true(contains(err.message, "checksum"), err.message)
    assert.is_false(err.retryable)
  end)

  local buffer_it = pcall(require, "string.buffer") and it or pending
  buffer_it("answers corrupt when loading it into a string.buffer, which keeps only what it held", function()
    local buf = require("string.buffer").new()
    buf:put("held")
    local got, err = s:load(ids[BAD], { into = buf })
    assert.is_nil(got)
    assert.are.equal("corrupt", err.kind)
    assert.are.equal("held", buf:tostring())
  end)

  it("still loads the other entries with their bytes", function()
    for i = 1, #PAYLOADS do
      if i ~= BAD then
        assert.are.equal(data[i], s:load(ids[i]))
      end
    end
  end)

  it("enumerates it as a corrupt entry with its id and a checksum error", function()
    local got = {}
    local n = s:enumerate(function(e)
      got[#got + 1] = e
    end)
    assert.are.equal(#PAYLOADS, n)
    local bad = got[BAD]
    assert.are.equal(ids[BAD], bad.id)
    assert.is_true(bad.corrupt)
    assert.is_nil(bad.data)
    assert.is_true(contains(bad.error, "checksum"), bad.error)
  end)

  it("enumerates the other entries with their bytes", function()
    local got = {}
    s:enumerate(function(e)
      got[#got + 1] = e
    end)
    for i = 1, #PAYLOADS do
      if i ~= BAD then
        assert.are.equal(ids[i], got[i].id)
        assert.is_nil(got[i].corrupt)
        assert.are.equal(data[i], got[i].data)
      end
    end
  end)

  it("yields it as corrupt from entries() too", function()
    local corrupt = {}
    for e in s:entries() do
      if e.corrupt then
        corrupt[#corrupt + 1] = e
      end
    end
    assert.are.equal(1, #corrupt)
    assert.are.equal(ids[BAD], corrupt[1].id)
  end)

  it("latches the gate after a corrupt load", function()
    assert.is_nil(s:unhealthy_reason())
    s:load(ids[BAD])
    assert.are.equal(UNHEALTHY_TEXT, s:unhealthy_reason())
    local ok, err = s:store(spool.id.new(), "refused")
    assert.is_nil(ok)
    assert.are.equal("unhealthy", err.kind)
    assert.are.equal(UNHEALTHY_TEXT, err.message)
  end)

  it("still removes it", function()
    assert.is_true(s:remove(ids[BAD]))
    local _, err = s:load(ids[BAD])
    assert.are.equal("not_found", err.kind)
    local n = s:enumerate(function(e)
      assert.is_nil(e.corrupt)
    end)
    assert.are.equal(#PAYLOADS - 1, n)
  end)

  it("still removes it after a corrupt load latched the gate", function()
    s:load(ids[BAD])
    assert.is_not_nil(s:unhealthy_reason())
    assert.is_true(s:remove(ids[BAD]))
    local _, err = s:load(ids[BAD])
    assert.are.equal("not_found", err.kind)
  end)

  it("can be quarantined, after which enumerate no longer yields it", function()
    assert.is_true(s:quarantine(ids[BAD], "checksum mismatch"))
    local n = s:enumerate(function(e)
      assert.is_nil(e.corrupt)
    end)
    assert.are.equal(#PAYLOADS - 1, n)
  end)
end)
