-- Specs for the SQLite-backed spool: store, load, remove, enumerate,
-- quarantine, maintenance, ids, shutdown and sharing a path.

local spool = require "spool"
local helper = require "spec.helper"
-- Behaviours only SQLite has: several handles on one path, its WAL,
-- checkpoints and vacuum, its live entry count.
local sqlite_it = helper.sqlite and it or pending

local errors = spool.errors
local error_of, contains = helper.error_of, helper.contains

-- A spool id created at `t` (Unix seconds), made from its hex text.
local function id_at(t, clock_seq)
  return assert(spool.id.parse(helper.v1_id_hex(t, clock_seq)))
end

-- Every entry enumerate gives, as a list, with the count it returned.
local function collect(s, opts)
  local got = {}
  local n, err = s:enumerate(function(e)
    got[#got + 1] = e
  end, opts)
  assert(n, err and err.message)
  return got, n
end

-- Set of the hex ids in a list of entries.
local function id_set(entries)
  local set = {}
  for _, e in ipairs(entries) do
    set[tostring(e.id)] = true
  end
  return set
end

-- `n` bytes of a repeating pattern; cheap to build, easy to compare.
local function blob(n, seed)
  local unit = {}
  for i = 0, 255 do
    unit[#unit + 1] = string.char((i * 7 + (seed or 0)) % 256)
  end
  local s = table.concat(unit)
  return string.rep(s, math.floor(n / 256)) .. s:sub(1, n % 256)
end

describe("spool", function()
  local dir, s
  local others -- further handles, shut down after each test

  -- Another handle on the same path, shut down after the test.
  local function open_other(params)
    local p = { path = dir }
    for k, v in pairs(params or {}) do
      p[k] = v
    end
    local h = assert(helper.open(p))
    others[#others + 1] = h
    return h
  end

  -- Replaces `s` by a handle opened with `params` (path added).
  local function reopen(params)
    s:shutdown()
    local p = { path = dir }
    for k, v in pairs(params or {}) do
      p[k] = v
    end
    s = assert(helper.open(p))
    return s
  end

  before_each(function()
    others = {}
    dir = helper.tmpdir()
    s = assert(helper.open { path = dir })
  end)

  after_each(function()
    for _, h in ipairs(others) do
      h:shutdown()
    end
    if s then
      s:shutdown()
    end
    helper.rm_rf(dir)
  end)

  describe("the reference crate's test", function()
    local function store_100()
      local ids = {}
      for i = 1, 100 do
        ids[i] = spool.id.new()
        assert.is_true(s:store(ids[i], "I am " .. i))
      end
      return ids
    end

    -- Enumerates, removing each entry from inside the callback; returns
    -- the data seen by hex id and the count enumerate returned.
    local function drain()
      local seen = {}
      local n, err = s:enumerate(function(e)
        assert.is_nil(e.corrupt)
        seen[tostring(e.id)] = e.data
        assert.is_true(s:remove(e.id))
      end)
      assert.is_nil(err)
      return seen, n
    end

    it("loads back each of 100 stored entries", function()
      local ids = store_100()
      for i, id in ipairs(ids) do
        assert.are.equal("I am " .. i, s:load(id))
      end
    end)

    it("enumerates each of 100 entries once while each is removed", function()
      local ids = store_100()
      local seen, n = drain()
      assert.are.equal(100, n)
      assert.are.equal(100, helper.count(seen))
      for i, id in ipairs(ids) do
        assert.are.equal("I am " .. i, seen[tostring(id)])
      end
    end)

    it("finds nothing in two more enumerations after that", function()
      store_100()
      drain()
      local _, n1 = collect(s)
      local _, n2 = collect(s)
      assert.are.equal(0, n1)
      assert.are.equal(0, n2)
    end)
  end)

  describe("store and load", function()
    it("replaces an entry stored twice", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "first"))
      assert.is_true(s:store(id, "second"))
      assert.are.equal("second", s:load(id))
      assert.are.equal(1, helper.entry_count(s))
    end)

    it("answers not_found for an absent id", function()
      local data, err = s:load(spool.id.new())
      assert.is_nil(data)
      assert.are.equal("not_found", err.kind)
      assert.is_true(errors.is(err, "not_found"))
      assert.is_false(err.retryable)
      assert.are.equal(err.message, tostring(err))
    end)

    it("removes an absent id with false", function()
      assert.is_false(s:remove(spool.id.new()))
    end)

    it("answers false to a second remove of the same id", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "x"))
      assert.is_true(s:remove(id))
      assert.is_false(s:remove(id))
    end)

    it("answers true to a remove of an id stored again after its remove", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "x"))
      assert.is_true(s:remove(id))
      assert.is_true(s:store(id, "y"))
      assert.is_true(s:remove(id))
      assert.is_false(s:remove(id))
    end)

    it("remove_many counts an id listed twice once", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "x"))
      assert.are.equal(1, s:remove_many({ id, id }))
      assert.is_false(s:remove(id))
    end)

    it("removes a present id with true, after which it is not found", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "x"))
      assert.is_true(s:remove(id))
      local data, err = s:load(id)
      assert.is_nil(data)
      assert.are.equal("not_found", err.kind)
    end)

    it("keeps binary data with NULs and all 256 byte values", function()
      local bytes = {}
      for i = 0, 255 do
        bytes[#bytes + 1] = string.char(i)
      end
      local data = "\0\0" .. table.concat(bytes) .. "\0mid\0" .. table.concat(bytes):reverse() .. "\0"
      local id = spool.id.new()
      assert.is_true(s:store(id, data))
      local got = s:load(id)
      assert.are.equal(#data, #got)
      assert.are.equal(helper.hex(data), helper.hex(got))
    end)

    it("keeps empty data as the empty string", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, ""))
      assert.are.equal("", s:load(id))
    end)

    it("enumerates empty data as the empty string", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, ""))
      local got = collect(s)
      assert.are.equal(1, #got)
      assert.are.equal("", got[1].data)
    end)

    it("round-trips a 16 MiB entry", function()
      local data = blob(16 * 1024 * 1024, 3)
      local id = spool.id.new()
      assert.is_true(s:store(id, data))
      local got = s:load(id)
      assert.are.equal(#data, #got)
      assert.is_true(got == data, "the loaded 16 MiB differ from the stored ones")
    end)

    it("accepts force_sync", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "durable", { force_sync = true }))
      assert.are.equal("durable", s:load(id))
    end)

    it("raises on a force_sync that is not a boolean", function()
      local id = spool.id.new()
      local msg = error_of(function()
        local r = s:store(id, "x", { force_sync = 1 })
        return r
      end)
      assert.is_true(contains(msg, "force_sync"), msg)
    end)

    for _, case in ipairs({
      { "a number", 42, "got number" },
      { "nil", nil, "got nil" },
      { "a table", { "x" }, "got table" },
      { "a boolean", true, "got boolean" },
    }) do
      it("raises on data that is " .. case[1] .. ", storing nothing", function()
        local id = spool.id.new()
        local msg = error_of(function()
          local r = s:store(id, case[2])
          return r
        end)
        assert.is_true(contains(msg, "data: string expected"), msg)
        assert.is_true(contains(msg, case[3]), msg)
        local _, err = s:load(id)
        assert.are.equal("not_found", err.kind)
      end)
    end

    it("raises on an unknown store option, storing nothing", function()
      local id = spool.id.new()
      local msg = error_of(function()
        local r = s:store(id, "x", { bogus = 1 })
        return r
      end)
      assert.is_true(contains(msg, "unknown option 'bogus'"), msg)
      local _, err = s:load(id)
      assert.are.equal("not_found", err.kind)
    end)

    it("raises on a timeout that is not a number", function()
      local msg = error_of(function()
        local r = s:store(spool.id.new(), "x", { timeout = "1s" })
        return r
      end)
      assert.is_true(contains(msg, "timeout: number of seconds expected"), msg)
    end)
  end)

  describe("store_many and remove_many", function()
    it("makes everything in one call visible", function()
      local list = {}
      for i = 1, 50 do
        list[i] = { spool.id.new(), "item " .. i }
      end
      assert.is_true(s:store_many(list))
      for i = 1, 50 do
        assert.are.equal("item " .. i, s:load(list[i][1]))
      end
      assert.are.equal(50, helper.entry_count(s))
    end)

    it("accepts id strings in the list", function()
      local id = spool.id.new()
      assert.is_true(s:store_many({ { tostring(id), "by text" } }))
      assert.are.equal("by text", s:load(id))
    end)

    it("raises on an item with data of a wrong type, before anything is stored", function()
      local a, b, c = spool.id.new(), spool.id.new(), spool.id.new()
      local msg = error_of(function()
        local r = s:store_many({ { a, "one" }, { b, 42 }, { c, "three" } })
        return r
      end)
      assert.is_true(contains(msg, "item 2"), msg)
      assert.is_true(contains(msg, "data: string expected"), msg)
      for _, id in ipairs({ a, b, c }) do
        local _, err = s:load(id)
        assert.are.equal("not_found", err.kind)
      end
      assert.are.equal(0, helper.entry_count(s))
    end)

    it("raises on an item with an invalid id, before anything is stored", function()
      local a = spool.id.new()
      local msg = error_of(function()
        local r = s:store_many({ { a, "one" }, { "not-an-id", "two" } })
        return r
      end)
      assert.is_true(contains(msg, "item 2: invalid id"), msg)
      local _, err = s:load(a)
      assert.are.equal("not_found", err.kind)
    end)

    it("raises on an item that is not a pair", function()
      local msg = error_of(function()
        local r = s:store_many({ "x" })
        return r
      end)
      assert.is_true(contains(msg, "item 1: {id, data} pair expected"), msg)
    end)

    it("stores an empty list", function()
      assert.is_true(s:store_many({}))
      assert.are.equal(0, helper.entry_count(s))
    end)

    it("remove_many returns how many of the ids were present", function()
      local a, b, c = spool.id.new(), spool.id.new(), spool.id.new()
      assert.is_true(s:store_many({ { a, "a" }, { b, "b" }, { c, "c" } }))
      assert.are.equal(2, s:remove_many({ a, tostring(b), spool.id.new() }))
      local _, ea = s:load(a)
      local _, eb = s:load(b)
      assert.are.equal("not_found", ea.kind)
      assert.are.equal("not_found", eb.kind)
      assert.are.equal("c", s:load(c))
    end)

    it("remove_many of an empty list returns 0", function()
      assert.is_true(s:store(spool.id.new(), "x"))
      assert.are.equal(0, s:remove_many({}))
      assert.are.equal(1, helper.entry_count(s))
    end)

    it("remove_many raises on an invalid id, removing nothing", function()
      local a = spool.id.new()
      assert.is_true(s:store(a, "a"))
      local msg = error_of(function()
        local r = s:remove_many({ a, "zz" })
        return r
      end)
      assert.is_true(contains(msg, "item 2: invalid id"), msg)
      assert.are.equal("a", s:load(a))
    end)
  end)

  describe("enumerate", function()
    local PAST1, PAST2 = 1600000000, 1650000000

    it("lists by default only entries created before now", function()
      local p1, p2, future = id_at(PAST1), id_at(PAST2), id_at(os.time() + 3600)
      for _, id in ipairs({ p1, p2, future }) do
        assert.is_true(s:store(id, tostring(id)))
      end
      local got, n = collect(s)
      local set = id_set(got)
      assert.are.equal(2, n)
      assert.is_true(set[tostring(p1)])
      assert.is_true(set[tostring(p2)])
      assert.is_nil(set[tostring(future)])
      -- the future entry is stored all the same
      assert.are.equal(tostring(future), s:load(future))
    end)

    it("lists only entries created before start_time", function()
      local p1, p2 = id_at(PAST1), id_at(PAST2)
      assert.are.equal(PAST1, p1:created())
      assert.is_true(s:store(p1, "1"))
      assert.is_true(s:store(p2, "2"))
      local got, n = collect(s, { start_time = (PAST1 + PAST2) / 2 })
      assert.are.equal(1, n)
      assert.are.equal(p1, got[1].id)
    end)

    it("does not list an entry created exactly at start_time", function()
      local p1, p2 = id_at(PAST1), id_at(PAST2)
      assert.is_true(s:store(p1, "1"))
      assert.is_true(s:store(p2, "2"))
      local got = collect(s, { start_time = PAST2 })
      assert.are.equal(1, #got)
      assert.are.equal(p1, got[1].id)
      assert.are.equal(2, #collect(s, { start_time = PAST2 + 1 }))
    end)

    it("lists future entries when start_time is after them", function()
      local future = id_at(os.time() + 3600)
      assert.is_true(s:store(future, "later"))
      local got = collect(s, { start_time = os.time() + 7200 })
      assert.are.equal(1, #got)
      assert.are.equal(future, got[1].id)
      assert.are.equal("later", got[1].data)
    end)

    it("lists entries in the backend's order (SQLite: oldest first; LocalDisk: by id bytes)", function()
      -- 100 s apart: the 32-bit time_low wraps every ~429.5 s, so the
      -- text order of these ids is not their time order.
      local times = { 1650000500, 1650000100.25, 1650000800, 1650000000, 1650000300,
        1650000900, 1650000100.5, 1650000200, 1650000700, 1650000400, 1650000600 }
      for _, t in ipairs(times) do
        assert.is_true(s:store(id_at(t), tostring(t)))
      end
      local sorted = {}
      for i, t in ipairs(times) do
        sorted[i] = t
      end
      table.sort(sorted)
      local by_text = {}
      for i, t in ipairs(sorted) do
        by_text[i] = { hex = helper.v1_id_hex(t), t = t }
      end
      table.sort(by_text, function(a, b) return a.hex < b.hex end)
      local text_order_differs = false
      for i, e in ipairs(by_text) do
        if e.t ~= sorted[i] then
          text_order_differs = true
        end
      end
      assert.is_true(text_order_differs, "the chosen times do not discriminate")

      local ids = {}
      for i, t in ipairs(times) do ids[i] = id_at(t) end
      local got = collect(s)
      assert.are.equal(#times, #got)
      for i, id in ipairs(helper.in_order(ids)) do
        assert.are.equal(id, got[i].id)
      end
    end)

    it("stops when the callback returns false", function()
      for i = 1, 5 do
        assert.is_true(s:store(id_at(PAST1 + i), "e" .. i))
      end
      local calls = 0
      local n = s:enumerate(function()
        calls = calls + 1
        if calls == 2 then
          return false
        end
      end)
      assert.are.equal(2, calls)
      assert.are.equal(2, n)
    end)

    it("goes on when the callback returns nil or true", function()
      for i = 1, 4 do
        assert.is_true(s:store(id_at(PAST1 + i), "e" .. i))
      end
      local calls = 0
      local n = s:enumerate(function()
        calls = calls + 1
        return calls % 2 == 0 or nil
      end)
      assert.are.equal(4, calls)
      assert.are.equal(4, n)
    end)

    it("gives ids and no data with include_data = false", function()
      local a, b = id_at(PAST1), id_at(PAST2)
      assert.is_true(s:store(a, "alpha"))
      assert.is_true(s:store(b, "beta"))
      local got = collect(s, { include_data = false })
      assert.are.equal(2, #got)
      local want = helper.in_order({ a, b })
      assert.are.equal(want[1], got[1].id)
      assert.are.equal(want[2], got[2].id)
      for _, e in ipairs(got) do
        assert.is_nil(e.data)
        assert.is_nil(e.corrupt)
      end
    end)

    it("gives data with include_data = true", function()
      local a = id_at(PAST1)
      assert.is_true(s:store(a, "alpha"))
      local got = collect(s, { include_data = true })
      assert.are.equal("alpha", got[1].data)
    end)

    it("raises on an unknown option", function()
      local msg = error_of(function()
        local r = s:enumerate(function() end, { since = 1 })
        return r
      end)
      assert.is_true(contains(msg, "unknown option 'since'"), msg)
    end)

    it("raises on a start_time that is not a number", function()
      local msg = error_of(function()
        local r = s:enumerate(function() end, { start_time = "yesterday" })
        return r
      end)
      assert.is_true(contains(msg, "start_time"), msg)
    end)

    it("raises when the callback is not a function", function()
      local msg = error_of(function()
        local r = s:enumerate({})
        return r
      end)
      assert.is_true(contains(msg, "bad argument"), msg)
    end)

    describe("when the callback raises", function()
      local function raise_in_callback(value)
        for i = 1, 3 do
          assert.is_true(s:store(id_at(PAST1 + i), "e" .. i))
        end
        local calls = 0
        local ok, err = pcall(function()
          local r = s:enumerate(function()
            calls = calls + 1
            error(value, 0)
          end)
          return r
        end)
        return ok, err, calls
      end

      it("propagates a string error", function()
        local ok, err, calls = raise_in_callback("boom in callback")
        assert.is_false(ok)
        assert.are.equal("boom in callback", err)
        assert.are.equal(1, calls)
      end)

      it("propagates a table error unchanged", function()
        local value = { reason = "mine" }
        local ok, err = raise_in_callback(value)
        assert.is_false(ok)
        assert.are.equal(value, err)
      end)

      it("leaves the spool working: store and load succeed", function()
        raise_in_callback("boom")
        local id = spool.id.new()
        assert.is_true(s:store(id, "after", { timeout = 2 }))
        assert.are.equal("after", s:load(id))
      end)

      sqlite_it("leaves no lock: a second handle on the path can write", function()
        raise_in_callback("boom")
        local other = open_other()
        local id = spool.id.new()
        local ok, err = other:store(id, "from the second handle", { timeout = 2 })
        assert.is_true(ok, err and err.message)
        assert.are.equal("from the second handle", s:load(id))
      end)
    end)
  end)

  describe("entries()", function()
    it("iterates like enumerate, in the backend's order", function()
      local a, b = id_at(1600000000), id_at(1600000100)
      assert.is_true(s:store(b, "b"))
      assert.is_true(s:store(a, "a"))
      local got = {}
      for e in s:entries() do
        got[#got + 1] = e
      end
      assert.are.equal(2, #got)
      local want = helper.in_order({ a, b })
      local data = { [tostring(a)] = "a", [tostring(b)] = "b" }
      for i = 1, 2 do
        assert.are.equal(want[i], got[i].id)
        assert.are.equal(data[tostring(want[i])], got[i].data)
      end
    end)

    it("takes the enumerate options", function()
      local a, b = id_at(1600000000), id_at(1600000100)
      assert.is_true(s:store(a, "a"))
      assert.is_true(s:store(b, "b"))
      local got = {}
      for e in s:entries({ start_time = 1600000050, include_data = false }) do
        got[#got + 1] = e
      end
      assert.are.equal(1, #got)
      assert.are.equal(a, got[1].id)
      assert.is_nil(got[1].data)
    end)

    it("a walk left open across shutdown raises when stepped and is collected safely", function()
      for i = 1, 5 do
        assert.is_true(s:store(id_at(1600000000 + i), "e" .. i))
      end
      local step = s:entries()
      assert.is_table(step()) -- the walk holds its backend's read state now
      s:shutdown()
      local ok, err = pcall(step)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("is shut down", 1, true), tostring(err))
      step = nil
      collectgarbage()
      collectgarbage() -- its finalizer frees it after the backend closed (ASan, valgrind)
    end)

    describe("after a break", function()
      before_each(function()
        reopen({ sqlite = { enumerate_chunk_rows = 2 } })
        for i = 1, 10 do
          assert.is_true(s:store(id_at(1600000000 + i), "e" .. i))
        end
        local n = 0
        for _ in s:entries() do
          n = n + 1
          if n == 3 then
            break
          end
        end
        assert.are.equal(3, n)
      end)

      sqlite_it("a second handle can store", function()
        local other = open_other()
        local id = spool.id.new()
        local ok, err = other:store(id, "second", { timeout = 2 })
        assert.is_true(ok, err and err.message)
        assert.are.equal("second", s:load(id))
      end)

      sqlite_it("compact works and empties the WAL", function()
        local other = open_other()
        assert.is_true(other:store(spool.id.new(), "second", { timeout = 2 }))
        local st, err = s:compact()
        assert.is_nil(err)
        assert.are.equal("table", type(st))
        assert.are.equal(0, st.wal_bytes_after)
      end)
    end)
  end)

  describe("quarantine", function()
    local a, b

    before_each(function()
      a, b = id_at(1600000000), id_at(1600000100)
      assert.is_true(s:store(a, "payload a"))
      assert.is_true(s:store(b, "payload b"))
    end)

    it("moves an entry out of load", function()
      assert.is_true(s:quarantine(a, "bad header"))
      local data, err = s:load(a)
      assert.is_nil(data)
      assert.are.equal("not_found", err.kind)
      assert.are.equal("payload b", s:load(b))
    end)

    it("moves an entry out of enumerate", function()
      assert.is_true(s:quarantine(a, "bad header"))
      local got = collect(s)
      assert.are.equal(1, #got)
      assert.are.equal(b, got[1].id)
    end)

    it("lists the quarantined entry with its reason, time and data", function()
      local before = os.time()
      assert.is_true(s:quarantine(tostring(a), "bad header"))
      local after = os.time()
      local got = {}
      for q in s:quarantined() do
        got[#got + 1] = q
      end
      assert.are.equal(1, #got)
      assert.are.equal(a, got[1].id)
      assert.are.equal("bad header", got[1].reason)
      assert.are.equal("payload a", got[1].data)
      assert.is_true(got[1].time >= before - 1 and got[1].time <= after + 1,
        "quarantine time " .. tostring(got[1].time) .. " not near now")
      assert.are.equal(1, s:stats().quarantined)
    end)

    it("restore brings the entry back to load and enumerate", function()
      assert.is_true(s:quarantine(a, "bad header"))
      assert.is_true(s:restore(a))
      assert.are.equal("payload a", s:load(a))
      assert.are.equal(2, #collect(s))
      local n = 0
      for _ in s:quarantined() do
        n = n + 1
      end
      assert.are.equal(0, n)
    end)

    it("answers not_found when quarantining an absent id", function()
      local ok, err = s:quarantine(spool.id.new(), "nothing")
      assert.is_nil(ok)
      assert.are.equal("not_found", err.kind)
    end)

    it("answers not_found when restoring an id that is not quarantined", function()
      local ok, err = s:restore(a)
      assert.is_nil(ok)
      assert.are.equal("not_found", err.kind)
      assert.are.equal("payload a", s:load(a))
    end)
  end)

  describe("maintenance", function()
    sqlite_it("compact returns a spool of ~20 MB, emptied, to near minimal size in small steps", function()
      reopen({ sqlite = { vacuum_step_pages = 256, wal_autocheckpoint = 16 } })
      local data = blob(64 * 1024, 1)
      local ids = {}
      for i = 1, 320 do
        ids[i] = spool.id.new()
        assert.is_true(s:store(ids[i], data))
      end
      assert.are.equal(320, s:remove_many(ids))
      local st, err = s:compact()
      assert.is_nil(err)
      assert.is_true(st.db_bytes_before > 15 * 1024 * 1024,
        "db_bytes_before = " .. st.db_bytes_before)
      assert.is_true(st.db_bytes_after < 1024 * 1024, "db_bytes_after = " .. st.db_bytes_after)
      assert.is_true(st.pages_freed > 0)
      assert.is_true(st.steps > 1, "steps = " .. st.steps)
      local freed = st.db_bytes_before - st.db_bytes_after
      assert.is_true(st.wal_bytes_max < freed / 4,
        "wal_bytes_max = " .. st.wal_bytes_max .. " for " .. freed .. " bytes freed")
      assert.are.equal(st.db_bytes_after, s:stats().db_bytes)
    end)

    it("compact keeps the entries that were not removed", function()
      local keep = spool.id.new()
      assert.is_true(s:store(keep, "keep me"))
      local data = blob(64 * 1024, 2)
      local ids = {}
      for i = 1, 40 do
        ids[i] = spool.id.new()
        assert.is_true(s:store(ids[i], data))
      end
      assert.are.equal(40, s:remove_many(ids))
      assert.is_truthy(s:compact())
      assert.are.equal("keep me", s:load(keep))
      assert.are.equal(1, helper.entry_count(s))
    end)

    it("cleanup returns a table of what it did", function()
      local st, err = s:cleanup()
      assert.is_nil(err)
      assert.are.equal("table", type(st))
      assert.are.equal("number", type(st.seconds))
      assert.are.equal("table", type(st.backend))
    end)

    sqlite_it("cleanup's backend part says what SQLite did, also at the top level", function()
      local st = assert(s:cleanup())
      assert.are.equal("boolean", type(st.backend.checkpointed))
      assert.are.equal("number", type(st.backend.pages_freed))
      assert.are.equal("number", type(st.backend.wal_bytes))
      assert.are.equal(st.backend.checkpointed, st.checkpointed)
      assert.are.equal(st.backend.wal_bytes, st.wal_bytes)
    end)

    it("compact returns the kind-neutral figures and a backend part", function()
      local c = assert(s:compact())
      assert.are.equal("number", type(c.steps))
      assert.are.equal("number", type(c.seconds))
      assert.are.equal("table", type(c.backend))
      if helper.sqlite then
        assert.is_true(c.bytes_before > 0 and c.bytes_after > 0)
        assert.are.equal("number", type(c.backend.pages_freed))
        assert.are.equal(c.backend.db_bytes_after, c.db_bytes_after)
      elseif helper.kind == "LocalDisk" then
        assert.is_nil(c.bytes_before) -- LocalDisk does not measure its files
        assert.are.equal("number", type(c.backend.directories_removed))
      end
    end)

    sqlite_it("cleanup reclaims at most cleanup_vacuum_pages pages", function()
      reopen({ sqlite = { cleanup_vacuum_pages = 16 } })
      local data = blob(64 * 1024, 4)
      local ids = {}
      for i = 1, 40 do
        ids[i] = spool.id.new()
        assert.is_true(s:store(ids[i], data))
      end
      assert.are.equal(40, s:remove_many(ids))
      local st = assert(s:cleanup())
      assert.is_true(st.pages_freed > 0)
      assert.is_true(st.pages_freed <= 16, "pages_freed = " .. st.pages_freed)
    end)

    sqlite_it("cleanup checkpoints a WAL over checkpoint_wal_bytes", function()
      reopen({ sqlite = { checkpoint_wal_bytes = 1 } })
      assert.is_true(s:store(spool.id.new(), blob(8192)))
      assert.is_true(s:stats().wal_bytes > 1)
      local st = assert(s:cleanup())
      assert.is_true(st.checkpointed)
      assert.are.equal(0, st.wal_bytes)
    end)

    sqlite_it("cleanup does not checkpoint a WAL under checkpoint_wal_bytes", function()
      assert.is_true(s:store(spool.id.new(), blob(8192)))
      local st = assert(s:cleanup())
      assert.is_false(st.checkpointed)
    end)

    it("advise_low_memory returns a number", function()
      assert.is_true(s:store(spool.id.new(), blob(100000)))
      local released, err = s:advise_low_memory()
      assert.is_nil(err)
      assert.are.equal("number", type(released))
    end)

    sqlite_it("stats counts the entries", function()
      local ids = {}
      for i = 1, 5 do
        ids[i] = spool.id.new()
        assert.is_true(s:store(ids[i], "x"))
      end
      assert.are.equal(5, s:stats().entries)
      assert.are.equal(2, s:remove_many({ ids[1], ids[2] }))
      assert.are.equal(3, s:stats().entries)
    end)

    it("makes a write whose deadline has passed when nothing stands in its way, counting an overrun", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "late", { deadline = spool.monotonic() - 1 }))
      assert.is_true(s:remove(id, { deadline = spool.monotonic() - 1 }))
      assert.is_nil(s:load(id))
      assert.are.equal(2, s:stats().overruns)
    end)

    it("stats counts stores, loads, removes and not_found answers", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "x"))
      assert.is_true(s:store(spool.id.new(), "y"))
      assert.are.equal("x", s:load(id))
      assert.is_nil(s:load(spool.id.new()))
      assert.is_true(s:remove(id))
      local st = s:stats()
      assert.are.equal(2, st.stores)
      assert.are.equal(1, st.loads)
      assert.are.equal(1, st.removes)
      assert.are.equal(1, st.errors_by_kind.not_found)
      assert.are.equal("table", type(st.backend))
    end)

    sqlite_it("stats measures the files, and SQLite's figures are in its backend part", function()
      assert.is_true(s:store(spool.id.new(), "x"))
      local st = s:stats()
      assert.are.equal(st.backend.db_bytes + st.backend.wal_bytes, st.bytes)
      for _, k in ipairs({ "db_bytes", "wal_bytes", "page_size", "page_count", "freelist_count" }) do
        assert.are.equal("number", type(st.backend[k]), k)
        assert.are.equal(st.backend[k], st[k], k) -- the 0.x top-level names
      end
    end)
  end)

  describe("ids", function()
    it("accepts an id's 32-hex string everywhere an id goes", function()
      local id = spool.id.new()
      local text = tostring(id)
      assert.is_true(s:store(text, "by text"))
      assert.are.equal("by text", s:load(id))
      assert.are.equal("by text", s:load(text))
      assert.is_true(s:remove(text))
      assert.is_nil(s:load(id))
    end)

    it("accepts the hyphenated form", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "hyphens"))
      assert.are.equal("hyphens", s:load(helper.hyphenate(tostring(id))))
    end)

    -- Written as method calls, so that the interpreter names the method
    -- and counts the arguments after self.
    local with_bad_id = {
      store = function(h) local r = h:store("not-a-spool-id", "x"); return r end,
      load = function(h) local r = h:load("not-a-spool-id"); return r end,
      remove = function(h) local r = h:remove("not-a-spool-id"); return r end,
      quarantine = function(h) local r = h:quarantine("not-a-spool-id", "x"); return r end,
      restore = function(h) local r = h:restore("not-a-spool-id"); return r end,
    }
    for _, method in ipairs({ "store", "load", "remove", "quarantine", "restore" }) do
      it(method .. " raises on an invalid id string, naming the argument", function()
        local msg = error_of(with_bad_id[method], s)
        assert.is_true(contains(msg, "bad argument #1"), msg)
        assert.is_true(contains(msg, "invalid spool id"), msg)
      end)
    end

    it("raises on a UUID that is not version 1", function()
      local msg = error_of(function()
        local r = s:load("0123456789ab4def8123456789abcdef")
        return r
      end)
      assert.is_true(contains(msg, "invalid spool id"), msg)
      assert.is_true(contains(msg, "version 1"), msg)
    end)

    it("raises on an id of a wrong type", function()
      local msg = error_of(function()
        local r = s:load(12345)
        return r
      end)
      assert.is_true(contains(msg, "bad argument #1"), msg)
      assert.is_true(contains(msg, "spool.Id or id string expected"), msg)
    end)
  end)

  describe("shutdown", function()
    local id

    before_each(function()
      id = spool.id.new()
      assert.is_true(s:store(id, "x"))
      assert.is_true(s:shutdown())
    end)

    local calls = {
      store = function(h) return h:store(id, "y") end,
      load = function(h) return h:load(id) end,
      remove = function(h) return h:remove(id) end,
      enumerate = function(h) return h:enumerate(function() end) end,
      entries = function(h) return h:entries() end,
      compact = function(h) return h:compact() end,
      stats = function(h) return h:stats() end,
      health = function(h) return h:health() end,
      cleanup = function(h) return h:cleanup() end,
      quarantine = function(h) return h:quarantine(id, "why") end,
      unhealthy_reason = function(h) return h:unhealthy_reason() end,
    }
    for _, name in ipairs({ "store", "load", "remove", "enumerate", "entries", "compact", "stats",
      "cleanup", "quarantine" }) do
      it("makes " .. name .. " raise, naming the spool", function()
        local msg = error_of(function()
          local r = calls[name](s)
          return r
        end)
        assert.is_true(contains(msg, "is shut down"), msg)
        assert.is_true(contains(msg, dir), msg)
      end)
    end

    -- Health checks answer instead of raising: a service asking whether
    -- to accept mail must hear "no", not fail.
    it("makes unhealthy_reason answer the unhealthy reason", function()
      assert.are.equal("the spool is not accepting writes", calls.unhealthy_reason(s))
    end)

    it("makes health report a closed, unhealthy spool, naming it", function()
      local h = calls.health(s)
      assert.is_false(h.healthy)
      assert.is_true(h.closed)
      assert.is_true(contains(h.reason, "is shut down"), h.reason)
      assert.is_true(contains(h.reason, dir), h.reason)
    end)

    it("is idempotent", function()
      assert.is_true(s:shutdown())
      assert.is_true(s:shutdown())
      assert.is_true(s:is_closed())
    end)

    it("shows in tostring", function()
      assert.is_true(contains(tostring(s), "closed"), tostring(s))
      local other = open_other()
      assert.is_true(contains(tostring(other), "open"), tostring(other))
    end)

  end)

  describe("sharing a path", function()
    sqlite_it("two handles see each other's stores", function()
      local other = open_other()
      local a, b = spool.id.new(), spool.id.new()
      assert.is_true(s:store(a, "from s"))
      assert.is_true(other:store(b, "from other"))
      assert.are.equal("from s", other:load(a))
      assert.are.equal("from other", s:load(b))
      assert.are.equal(2, #collect(other))
    end)

    it("reopening after shutdown finds the data", function()
      local id = spool.id.new()
      assert.is_true(s:store(id, "persisted"))
      reopen()
      assert.are.equal("persisted", s:load(id))
    end)

    -- RocksDB's open replays and writes files (milliseconds each): fewer
    -- cycles there, still enough to show a leak per cycle.
    local cycles = helper.kind == "RocksDB" and 300 or 10000
    it(("opens and shuts down %d times without leaking file descriptors"):format(cycles), function()
      -- No other handle on the path: SQLite defers closing a file while
      -- another connection of the process holds a lock on it, which
      -- would blur the count.
      s:shutdown()
      local warm = assert(helper.open { path = dir })
      warm:shutdown()
      collectgarbage()
      collectgarbage()
      local before, before_list = helper.count_fds(), helper.list_fds()
      for i = 1, cycles do
        local h = assert(helper.open { path = dir })
        h:shutdown()
        if i % 100 == 0 then
          collectgarbage()
        end
      end
      collectgarbage()
      collectgarbage()
      -- A leak per cycle adds thousands of descriptors; one the collector
      -- closed meanwhile (an earlier spec's file) takes one away.  CI once
      -- saw the count grow here under lua5.1 on LocalDisk, and never
      -- again: at most two more are tolerated, and the lists are shown.
      local after = helper.count_fds()
      assert.is_true(after <= before + 2, ("%d descriptors before, %d after\nbefore:\n%s\nafter:\n%s")
        :format(before, after, before_list, helper.list_fds()))
    end)
  end)
end)
