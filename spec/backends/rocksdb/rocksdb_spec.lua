-- The RocksDB backend's own behaviour (the contract specs run against it
-- too, by kind): a database written as KumoMTA writes it is read as it
-- is; RocksDB's LOCK keeps a second process out with a clear error; a
-- damaged SST file gives `corrupt` answers, never wrong bytes.  Pending in
-- a build without librocksdb-dev.
local spool = require "spool"
local helper = require "spec.helper"

local built = false
for _, b in ipairs(require("spool.core").backends()) do built = built or b.kind == "RocksDB" end
local rocks_it = built and it or pending

-- The build's helper programs, beside its module (tools/run-tests sets
-- SPOOL_TEST_CPATH to "<build>/?.so").
local function helper_program(name)
  local cpath = os.getenv("SPOOL_TEST_CPATH") or "build/luajit/?.so"
  return (cpath:gsub("%?%.so$", "")) .. "helper/" .. name
end

describe("the RocksDB backend", function()
  local dir, s
  before_each(function() dir = helper.tmpdir() end)
  after_each(function()
    if s then s:shutdown() end
    s = nil
    helper.rm_rf(dir)
  end)

  rocks_it("reads a database KumoMTA wrote (WriteBatch puts of the 16 id bytes), detecting its kind", function()
    local p = assert(io.popen(helper.shell_quote(helper_program("rocks_kumo_write")) .. " "
      .. helper.shell_quote(dir .. "/db") .. " 20"))
    local want = {}
    for line in p:lines() do
      local hex, value = line:match("^(%x+) (.*)$")
      want[hex] = value
    end
    assert.is_true(p:close())
    s = assert(spool.open { path = dir .. "/db" })
    assert.are.equal("RocksDB", s:kind())
    local n = 0
    for e in s:entries() do
      n = n + 1
      assert.are.equal(want[tostring(e.id)], e.data, tostring(e.id))
    end
    assert.are.equal(20, n)
    for hex, value in pairs(want) do
      assert.are.equal(value, s:load(hex))
    end
  end)

  rocks_it("writes what KumoMTA reads: the key is the id's 16 bytes, the value the raw bytes", function()
    s = assert(spool.open { path = dir, kind = "RocksDB" })
    local id = spool.id.new()
    assert.is_true(s:store(id, "raw bytes"))
    s:shutdown()
    s = nil
    -- A reader that knows only RocksDB (no spool code) lists the keys.
    local p = assert(io.popen(helper.shell_quote(helper_program("rocks_kumo_write")) .. " "
      .. helper.shell_quote(dir) .. " dump"))
    local out = p:read("*a")
    assert.is_true(p:close())
    local hex = id:bytes():gsub(".", function(c) return ("%02x"):format(c:byte()) end)
    assert.are.equal(hex .. " raw bytes\n", out)
  end)

  rocks_it("hands rocks_params to RocksDB: its OPTIONS file records them", function()
    s = assert(spool.open { path = dir, kind = "RocksDB", rocks_params = {
      compression_type = "none", max_open_files = 123, level0_stop_writes_trigger = 77, paranoid_checks = true,
    } })
    s:shutdown()
    s = nil
    local options
    for name in io.popen("ls " .. helper.shell_quote(dir)):lines() do
      if name:match("^OPTIONS%-") then options = helper.read_file(dir .. "/" .. name) end
    end
    assert.is_truthy(options, "an OPTIONS file")
    for _, line in ipairs({ "max_open_files=123", "level0_stop_writes_trigger=77", "paranoid_checks=true",
                            "compression=kNoCompression" }) do
      assert.is_truthy(options:find("\n%s*" .. line .. "\n"), line)
    end
  end)

  rocks_it("retries a write RocksDB stalls (no_slowdown) until it is accepted, and counts it", function()
    -- One level-0 file stops writes until a compaction merges it: with a
    -- 64 KiB memtable, stores meet stalls all the time.
    s = assert(spool.open { path = dir, kind = "RocksDB",
      rocks_params = { write_buffer_size = 65536, level0_stop_writes_trigger = 1 } })
    local body, ids = ("z"):rep(4096), {}
    for i = 1, 600 do
      ids[i] = spool.id.new()
      local ok, err = s:store(ids[i], body .. i)
      assert.is_true(ok, tostring(err))
    end
    local st = s:stats()
    assert.is_true(st.backend.stalled_writes > 0, "no store met a stall")
    assert.are.equal(0, st.backend.background_errors)
    for i = 1, 600, 37 do assert.are.equal(body .. i, s:load(ids[i])) end
  end)

  rocks_it("answers remove by what is there, whether the entry is in memory or only in a table file", function()
    s = assert(spool.open { path = dir, kind = "RocksDB" })
    local old, recent, never = spool.id.new(), spool.id.new(), spool.id.new()
    assert.is_true(s:store(old, "in a table file"))
    assert(s:compact()) -- flushed out of the memtable
    s:shutdown()
    s = assert(spool.open { path = dir }) -- a cold cache
    assert.is_true(s:store(recent, "in the memtable"))
    assert.is_true(s:remove(old))
    assert.is_true(s:remove(recent))
    assert.is_false(s:remove(never))
    assert.is_false(s:remove(old)) -- its tombstone is in memory now
    assert.is_false(s:remove(recent))
    local _, err = s:load(old)
    assert.are.equal("not_found", err.kind)
  end)

  rocks_it("answers the remove of an entry this handle stored from memory, and of others by reading", function()
    s = assert(spool.open { path = dir, kind = "RocksDB" })
    local before = spool.id.new()
    assert.is_true(s:store(before, "stored before a reopen"))
    s:shutdown()
    s = assert(spool.open { path = dir })
    local ids = {}
    for i = 1, 50 do
      ids[i] = spool.id.new()
      assert.is_true(s:store(ids[i], "x"))
    end
    for i = 1, 50 do assert.is_true(s:remove(ids[i])) end
    assert.are.equal(50, s:stats().backend.removes_known)
    assert.is_true(s:remove(before)) -- not stored by this handle: read
    assert.is_false(s:remove(ids[1]))
    assert.are.equal(50, s:stats().backend.removes_known)
  end)

  rocks_it("refuses a second process with a clear error naming the LOCK, without hanging", function()
    s = assert(spool.open { path = dir, kind = "RocksDB" })
    local ok, out, timed_out = helper.run_lua(([[
      local spool = require "spool"
      local s, err = spool.open { path = %q, kind = "RocksDB" }
      print(s and "opened" or (err.kind .. ": " .. err.message))
    ]]):format(dir), 20)
    assert.is_true(ok, out)
    assert.is_false(timed_out)
    assert.is_truthy(out:find("busy: ", 1, true), out)
    assert.is_truthy(out:find("LOCK", 1, true), out)
  end)

  rocks_it("records the name of a defined spool and refuses another name for its directory later", function()
    local name = "rocks-" .. tostring(spool.id.new())
    s = assert(spool.define { name = name, path = dir, kind = "RocksDB" })
    s:shutdown()
    s = nil
    local msg = helper.error_of(spool.define, { name = name .. "-other", path = dir })
    assert.is_truthy(msg:find("holds spool '" .. name .. "'", 1, true), msg)
    s = assert(spool.define { name = name, path = dir }) -- the same name still opens it
  end)

  -- A spool with one SST file and a known entry; returns the SST's path
  -- and the entry's id.
  local function spool_with_sst()
    s = assert(spool.open { path = dir, kind = "RocksDB" })
    local id = spool.id.new()
    assert.is_true(s:store(id, "kept"))
    assert(s:compact())
    s:shutdown()
    s = nil
    local sst
    for name in io.popen("ls " .. helper.shell_quote(dir)):lines() do
      if name:match("%.sst$") then sst = dir .. "/" .. name end
    end
    assert.is_string(sst, "no SST file after compact")
    return sst, id
  end

  -- Every file of dir and its bytes.
  local function snapshot()
    local files = {}
    for name in io.popen("ls -A " .. helper.shell_quote(dir)):lines() do
      files[name] = helper.read_file(dir .. "/" .. name) or "(dir)"
    end
    return files
  end

  rocks_it("refuses, touching nothing, a table file in a format_version newer than its RocksDB reads", function()
    local sst, id = spool_with_sst()
    local size = #helper.read_file(sst)
    helper.patch_file(sst, size - 11, "\6") -- the footer's format_version, before the 8-byte magic
    local before = snapshot()
    local none, err = spool.open { path = dir }
    assert.is_nil(none)
    assert.are.equal("corrupt", err.kind)
    assert.is_truthy(err.message:find("is in RocksDB table format_version 6, newer than this build's RocksDB", 1, true),
      err.message)
    assert.is_truthy(err.message:find("left untouched", 1, true), err.message)
    assert.are.same(before, snapshot())
    helper.patch_file(sst, size - 11, "\5") -- as it was: it opens and reads again
    s = assert(spool.open { path = dir })
    assert.are.equal("kept", s:load(id))
  end)

  rocks_it("refuses, touching nothing, a database whose OPTIONS name a newer table format_version", function()
    spool_with_sst()
    local options
    for name in io.popen("ls " .. helper.shell_quote(dir)):lines() do
      if name:match("^OPTIONS%-%d+$") then options = dir .. "/" .. name end -- ls sorts: the last is the latest
    end
    local text = helper.read_file(options)
    local patched, n = text:gsub("\n(%s*)format_version=%d+\n", "\n%1format_version=7\n")
    assert.are.equal(1, n)
    patched = patched:gsub("rocksdb_version=[%d.]+", "rocksdb_version=99.1.0")
    helper.write_file(options, patched)
    local before = snapshot()
    local none, err = spool.open { path = dir, kind = "RocksDB" }
    assert.is_nil(none)
    assert.are.equal("corrupt", err.kind)
    assert.is_truthy(err.message:find("names table format_version 7 (written by RocksDB 99.1.0)", 1, true), err.message)
    assert.are.same(before, snapshot())
  end)

  -- A spool of 200 4 KiB entries in one uncompressed SST file, damaged at
  -- `at` (a fraction of its size); returns the expected bytes by id.
  local function damaged_spool(at)
    s = assert(spool.open { path = dir, kind = "RocksDB", rocks_params = { compression_type = "None" } })
    local body, want = ("0123456789abcdef"):rep(256), {}
    for i = 1, 200 do
      local id = spool.id.new()
      want[tostring(id)] = body .. i
      assert.is_true(s:store(id, body .. i))
    end
    assert(s:compact())
    s:shutdown()
    s = nil
    local sst
    for name in io.popen("ls " .. helper.shell_quote(dir)):lines() do
      if name:match("%.sst$") then sst = dir .. "/" .. name end
    end
    local size = #helper.read_file(sst)
    helper.patch_file(sst, math.floor(size * at), ("\255"):rep(16))
    s = assert(spool.open { path = dir })
    return want
  end

  -- The ids whose load answers their bytes (the others must answer corrupt),
  -- and what an enumeration visits: good ids, and the corrupt entries' errors.
  local function load_and_enumerate(want)
    local loadable = {}
    for hex, bytes in pairs(want) do
      local data, err = s:load(hex)
      if data then
        assert.are.equal(bytes, data)
        loadable[hex] = true
      else
        assert.are.equal("corrupt", err.kind)
      end
    end
    local seen, corrupt = {}, {}
    local n, err = s:enumerate(function(e)
      if e.corrupt then
        corrupt[#corrupt + 1] = e.error
      else
        assert.are.equal(want[tostring(e.id)], e.data)
        seen[tostring(e.id)] = true
      end
    end)
    assert.is_number(n, tostring(err))
    return loadable, seen, corrupt
  end

  -- The corrupt entry's error names a key range that holds every entry
  -- that does not load, and no entry that does.
  local function assert_hides(message, want, loadable)
    local from, to = message:match("keys from (%x+) up to (%x+) are in an unreadable block: Corruption")
    assert.is_string(from, message)
    for hex in pairs(want) do
      local key = spool.id.parse(hex):bytes() -- the RocksDB key, whose order the range is in
      local inside = key >= helper.unhex(from) and key <= helper.unhex(to)
      assert.are.equal(not loadable[hex], inside, hex .. " vs " .. message)
    end
  end

  rocks_it("enumerates past a damaged data block: one corrupt entry for what it hides, then the rest", function()
    local want = damaged_spool(1 / 3)
    local loadable, seen, corrupt = load_and_enumerate(want)
    assert.are.equal(1, #corrupt, table.concat(corrupt, "; "))
    assert.is_true(helper.count(loadable) < 200, "the damage hid no entry")
    assert.is_true(helper.count(loadable) > 100, "the damage hid more than a block")
    assert.are.same(loadable, seen) -- every entry outside the damage, and no other
    assert_hides(corrupt[1], want, loadable)
  end)

  rocks_it("removes an entry in a damaged block as the other backends remove one: true, then not_found", function()
    local want = damaged_spool(1 / 3)
    local damaged = {}
    for hex in pairs(want) do
      local data, err = s:load(hex)
      if data == nil and err.kind == "corrupt" then damaged[#damaged + 1] = hex end
    end
    assert.is_true(#damaged > 0, "no entry in the damaged block")
    for _, hex in ipairs(damaged) do
      local removed, err = s:remove(hex)
      assert.is_true(removed, tostring(err))
      local _, lerr = s:load(hex)
      assert.are.equal("not_found", lerr.kind)
    end
  end)

  rocks_it("enumerates a table whose index block is damaged as one corrupt entry, never as empty", function()
    local want = damaged_spool(0.9995) -- the index block, before the footer
    local loadable, seen, corrupt = load_and_enumerate(want)
    assert.are.same({}, loadable)
    assert.are.same({}, seen)
    assert.are.equal(1, #corrupt, table.concat(corrupt, "; "))
    assert_hides(corrupt[1], want, loadable) -- the whole table: from the first key to its last
  end)

  rocks_it("answers corrupt for an entry in a damaged SST file, never wrong bytes", function()
    s = assert(spool.open { path = dir, kind = "RocksDB", rocks_params = { compression_type = "None" } })
    local ids, body = {}, ("0123456789abcdef"):rep(256) -- 4 KiB, uncompressed in the SST
    for i = 1, 50 do
      ids[i] = spool.id.new()
      assert.is_true(s:store(ids[i], body .. i))
    end
    assert(s:compact()) -- into an SST file
    s:shutdown()
    s = nil
    local sst
    for name in io.popen("ls " .. helper.shell_quote(dir)):lines() do
      if name:match("%.sst$") then sst = dir .. "/" .. name end
    end
    assert.is_string(sst, "no SST file after compact")
    -- Flip bytes in the middle of the data blocks.
    local f = assert(io.open(sst, "r+b"))
    local size = f:seek("end")
    f:seek("set", math.floor(size / 3))
    f:write(("\255"):rep(64))
    f:close()
    s = assert(spool.open { path = dir })
    local corrupt, wrong = 0, 0
    for i, id in ipairs(ids) do
      local data, err = s:load(id)
      if data == nil then
        assert.are.equal("corrupt", err.kind, err.message)
        corrupt = corrupt + 1
      elseif data ~= body .. i then
        wrong = wrong + 1
      end
    end
    assert.are.equal(0, wrong)
    assert.is_true(corrupt > 0, "no load saw the damage")
  end)
end)
