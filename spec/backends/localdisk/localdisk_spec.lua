-- The LocalDisk backend: a directory laid out as KumoMTA's LocalDisk
-- spool writes it (lock, new/, data/aa/bb/cc/dd/<24 hex>), made here by
-- hand as kumod would leave it, is opened, read and written through
-- spool.open, and what it leaves is what kumod reads.

local spool = require "spool"
local helper = require "spec.helper"
local q = helper.shell_quote

local function stat(fmt, path)
  local p = assert(io.popen("stat -c " .. fmt .. " " .. q(path) .. " 2>/dev/null"))
  local v = p:read("*l")
  p:close()
  return v
end

-- Writes `bytes` as kumod writes an entry: data/<id path>, no checksum.
local function kumod_write(dir, id, bytes)
  local path = id:path(dir .. "/data")
  assert(helper.mkdir_p(path:match("^(.*)/[^/]+$")))
  helper.write_file(path, bytes)
  return path
end

-- A KumoMTA-shaped spool directory: a lock file of a process that is
-- gone, a temporary file a crash left in new/, and `n` entries.
local function kumomta_dir(dir, n)
  helper.mkdir_p(dir .. "/new")
  helper.mkdir_p(dir .. "/data")
  helper.write_file(dir .. "/lock", "999999\n")
  helper.write_file(dir .. "/new/.tmpAbC123", "half a message")
  local entries = {}
  for i = 1, n do
    local id = spool.id.new()
    entries[tostring(id)] = "Subject: message " .. i .. "\r\n\r\nbody " .. i .. "\r\n"
    kumod_write(dir, id, entries[tostring(id)])
  end
  return entries
end

describe("LocalDisk", function()
  local dir, s

  before_each(function()
    dir = helper.tmpdir() .. "/spool"
  end)

  after_each(function()
    if s then s:shutdown() end
    s = nil
    helper.rm_rf(dir:match("^(.*)/spool$"))
  end)

  describe("on a directory KumoMTA wrote", function()
    local entries

    before_each(function()
      entries = kumomta_dir(dir, 5)
      s = assert(spool.open { path = dir })
    end)

    it("is opened as LocalDisk without kind being given", function()
      assert.are.equal("LocalDisk", s:kind())
      assert.is_false(helper.exists(dir .. "/spool.db"), "a SQLite spool was created beside it")
    end)

    it("enumerates every entry with its bytes", function()
      local seen = {}
      local n = assert(s:enumerate(function(e)
        assert.is_nil(e.corrupt)
        seen[tostring(e.id)] = e.data
      end))
      assert.are.equal(5, n)
      assert.are.same(entries, seen)
    end)

    it("loads each entry", function()
      for hex, bytes in pairs(entries) do
        assert.are.equal(bytes, s:load(hex))
      end
    end)

    it("deletes what a crash left in new/ at open", function()
      assert.is_false(helper.exists(dir .. "/new/.tmpAbC123"))
    end)

    it("takes the lock file: its pid, the sticky bit", function()
      local pid = helper.read_file("/proc/self/stat"):match("^(%d+)")
      assert.are.equal(helper.read_file(dir .. "/lock"), pid .. "\n")
      assert.is_truthy(stat("%A", dir .. "/lock"):find("[tT]$"), stat("%A", dir .. "/lock"))
    end)

    it("removes an entry and prunes the directories it emptied", function()
      local hex = next(entries)
      local id = spool.id.parse(hex)
      local leaf = id:path(dir .. "/data"):match("^(.*)/[^/]+$")
      assert.is_true(s:remove(id))
      assert.is_false(helper.exists(id:path(dir .. "/data")))
      assert.is_false(helper.exists(leaf), "the emptied leaf directory was left")
      assert.is_false(s:remove(id))
      local _, err = s:load(id)
      assert.are.equal("not_found", err.kind)
    end)

    it("reports a file whose name is not an id as corrupt, and does not delete it", function()
      local stray = dir .. "/data/00/00/00/00/not-an-id"
      helper.mkdir_p(dir .. "/data/00/00/00/00")
      helper.write_file(stray, "?")
      local corrupt = {}
      s:enumerate(function(e)
        if e.corrupt then corrupt[#corrupt + 1] = e.error end
      end)
      assert.are.equal(1, #corrupt)
      assert.is_truthy(corrupt[1]:find("not-an-id", 1, true), corrupt[1])
      assert.is_true(helper.exists(stray))
    end)
  end)

  describe("writes what kumod reads", function()
    before_each(function()
      s = assert(spool.open { path = dir, kind = "LocalDisk" })
    end)

    it("a store is the raw bytes at the id's path, mode 0600", function()
      local id = spool.id.new()
      local bytes = "From: a@example.com\r\n\r\n" .. string.rep("x", 5000) .. "\0\255"
      assert.is_true(s:store(id, bytes))
      local path = id:path(dir .. "/data")
      assert.are.equal(bytes, helper.read_file(path))
      assert.are.equal("600", stat("%a", path))
      assert.are.equal("700", stat("%a", dir .. "/data"))
      assert.are.same({}, (function()
        local left = {}
        for name in io.popen("ls -A " .. q(dir .. "/new")):lines() do left[#left + 1] = name end
        return left
      end)())
    end)

    it("a store replaces an entry", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "one"))
      assert.is_true(s:store(id, "two", { force_sync = true }))
      assert.are.equal("two", helper.read_file(id:path(dir .. "/data")))
    end)

    it("store_many stores every entry", function()
      local a, b = spool.id.new(), spool.id.new()
      assert.is_true(s:store_many({ { a, "a" }, { b, "b" } }))
      assert.are.equal("a", s:load(a))
      assert.are.equal("b", s:load(b))
    end)

    it("enumerate skips entries created at or after start_time", function()
      local old = spool.id.new()
      assert.is_true(s:store(old, "old"))
      local young = spool.id.new()
      assert.is_true(s:store(young, "young"))
      local seen = {}
      s:enumerate(function(e) seen[#seen + 1] = tostring(e.id) end, { start_time = young:created() })
      assert.are.same({ tostring(old) }, seen)
    end)

    it("quarantines an entry where kumod does not look, and restores it", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "suspect"))
      assert.is_true(s:quarantine(id, "a test"))
      assert.is_false(helper.exists(id:path(dir .. "/data")))
      local _, err = s:load(id)
      assert.are.equal("not_found", err.kind)
      local found
      for qe in s:quarantined() do found = qe end
      assert.are.equal(tostring(id), tostring(found.id))
      assert.are.equal("a test", found.reason)
      assert.is_true(s:restore(id))
      assert.are.equal("suspect", s:load(id))
    end)

    it("refuses to quarantine an entry twice, with kind conflict", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "x"))
      assert.is_true(s:quarantine(id, "once"))
      local ok, err = s:quarantine(id, "twice")
      assert.is_nil(ok)
      assert.are.equal("conflict", err.kind)
    end)

    it("compact prunes empty directories and reclaims nothing else", function()
      helper.mkdir_p(dir .. "/data/01/02/03/04")
      assert.is_truthy(s:compact())
      assert.is_false(helper.exists(dir .. "/data/01"))
    end)

    it("verify says LocalDisk keeps no checksums", function()
      assert.is_true(s:store(spool.id.new(), "x"))
      local v = assert(s:verify())
      assert.is_true(v.ok)
      assert.are.equal(1, v.entries)
      assert.is_truthy(v.storage:find("no checksums", 1, true), v.storage)
    end)

    it("stats leave entries unknown (nil): counting would walk every file", function()
      assert.is_nil(s:stats().entries)
    end)
  end)

  describe("one spool per directory", function()
    it("refuses a second open while the first holds the lock, naming the process", function()
      s = assert(spool.open { path = dir, kind = "LocalDisk" })
      local other, err = spool.open { path = dir }
      assert.is_nil(other)
      assert.are.equal("busy", err.kind)
      assert.is_truthy(err.message:find("in use by process", 1, true), err.message)
    end)

    it("opens again once the first is shut down", function()
      s = assert(spool.open { path = dir, kind = "LocalDisk" })
      s:shutdown()
      s = assert(spool.open { path = dir })
      assert.are.equal("LocalDisk", s:kind())
    end)

    it("refuses kind = SQLite on a LocalDisk directory, naming both kinds", function()
      kumomta_dir(dir, 1)
      local msg = helper.error_of(spool.open, { path = dir, kind = "SQLite" })
      assert.is_truthy(msg:find("holds a LocalDisk spool, not a SQLite one", 1, true), msg)
      assert.is_false(helper.exists(dir .. "/spool.db"))
    end)

    it("refuses kind = LocalDisk on a SQLite spool", function()
      s = assert(spool.open { path = dir })
      assert.are.equal("SQLite", s:kind())
      s:shutdown()
      s = nil
      local msg = helper.error_of(spool.open, { path = dir, kind = "LocalDisk" })
      assert.is_truthy(msg:find("holds a SQLite spool, not a LocalDisk one", 1, true), msg)
      assert.is_false(helper.exists(dir .. "/data"))
    end)

    it("a new, empty directory is still SQLite by default", function()
      s = assert(spool.open { path = dir })
      assert.are.equal("SQLite", s:kind())
    end)

    it("records the name at first define and refuses another", function()
      s = assert(spool.define { name = "ld-data", path = dir, kind = "LocalDisk" })
      s:shutdown()
      s = nil
      local msg = helper.error_of(spool.define, { name = "ld-meta", path = dir })
      assert.is_truthy(msg:find("holds spool 'ld-data'", 1, true), msg)
    end)
  end)
end)
