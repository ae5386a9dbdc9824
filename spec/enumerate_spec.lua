-- Enumerate streams: neither the WAL nor memory grows with the spool
-- while a long enumerate runs, and it resumes correctly across chunks.
local helper = require "spec.helper"
local spool = require "spool"

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

-- Resident set size of this process in bytes (Linux).
local function rss()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * 4096
end

describe("enumerate", function()
  local dir, s
  before_each(function() dir = helper.tmpdir() end)
  after_each(function()
    if s and not s:is_closed() then s:shutdown() end
    helper.rm_rf(dir)
  end)

  it("visits every entry exactly once across many small chunks, in the backend's order", function()
    s = assert(helper.open { path = dir, sqlite = { enumerate_chunk_rows = 7 } })
    local ids, data = {}, {}
    for i = 1, 100 do
      ids[i] = spool.id.new()
      data[tostring(ids[i])] = "entry " .. i
      assert(s:store(ids[i], "entry " .. i))
    end
    local want = helper.in_order(ids)
    local i = 0
    for e in s:entries() do
      i = i + 1
      assert.equal(want[i], e.id)
      assert.equal(data[tostring(e.id)], e.data)
    end
    assert.equal(100, i)
  end)

  it("keeps the WAL bounded while writers commit during a long enumerate", function()
    s = assert(helper.open { path = dir, sqlite = { enumerate_chunk_rows = 16, wal_autocheckpoint = 64 } })
    local body = ("w"):rep(4096)
    local items = {}
    for i = 1, 400 do items[i] = { spool.id.new(), body } end
    assert(s:store_many(items))
    assert(s:compact())
    local wal = dir .. "/spool.db-wal"
    local max_wal, written = 0, 0
    local visited = assert(s:enumerate(function()
      -- 4 stores per entry: 1,600 commits, about 6.5 MB through the WAL.
      for _ = 1, 4 do
        assert(s:store(spool.id.new(), body))
        written = written + #body
      end
      local n = file_size(wal)
      if n > max_wal then max_wal = n end
    end))
    assert.equal(400, visited)
    assert.is_true(written > 6e6)
    -- One long read transaction would pin the WAL and let it grow to
    -- about `written`; chunked reads let checkpoints reuse it.
    assert.is_true(max_wal < 2e6, "WAL grew to " .. max_wal .. " bytes")
  end)

  it("keeps memory flat while enumerating entries much larger than its chunk budget", function()
    if (os.getenv("SPOOL_SANITIZE") or "") ~= "" then
      -- ASan's quarantine and valgrind's allocator hold freed memory on
      -- purpose: RSS says nothing there.  The normal runs measure it.
      pending("RSS is not meaningful under " .. os.getenv("SPOOL_SANITIZE"))
      return
    end
    s = assert(helper.open { path = dir, sqlite = { enumerate_chunk_bytes = 1024 * 1024 } })
    local body = ("m"):rep(256 * 1024)
    for _ = 1, 4 do
      local items = {}
      for i = 1, 100 do items[i] = { spool.id.new(), body } end
      assert(s:store_many(items)) -- 100 MB in all
    end
    collectgarbage()
    collectgarbage()
    local before, peak, total = rss(), 0, 0
    for e in s:entries() do
      total = total + #e.data
      local now = rss()
      if now > peak then peak = now end
    end
    assert.equal(400 * #body, total)
    local growth = peak - before
    assert.is_true(growth < 48 * 1024 * 1024, ("RSS grew by %.1f MiB over 100 MiB enumerated"):format(growth / 2 ^ 20))
  end)

  it("does not return entries stored after it started (start_time defaults to now)", function()
    s = assert(helper.open { path = dir, sqlite = { enumerate_chunk_rows = 4 } })
    for _ = 1, 10 do assert(s:store(spool.id.new(), "old")) end
    local seen = 0
    for e in s:entries() do
      seen = seen + 1
      assert.equal("old", e.data)
      assert(s:store(spool.id.new(), "new"))
    end
    assert.equal(10, seen)
  end)
end)

describe("enumerate start_time", function()
  local spool = require "spool"
  local helper = require "spec.helper"
  local dir, s
  before_each(function()
    dir = helper.tmpdir()
    s = assert(helper.open { path = dir })
  end)
  after_each(function()
    s:shutdown()
    helper.rm_rf(dir)
  end)

  -- A double near today's time resolves ~240 ns, coarser than the ids'
  -- 100 ns ticks: id:created() must still bound exactly.
  it("id:created() as start_time never visits the id, and visits every entry created before it", function()
    math.randomseed(42)
    local ids = {}
    local n = (os.getenv("SPOOL_SANITIZE") or "") == "" and 200 or 40
    for i = 1, n do
      local t = 1700000000 + math.random(0, 100000) + math.random(0, 9999999) / 1e7
      ids[i] = assert(spool.id.parse(helper.v1_id_hex(t, i % 16384)))
      assert(s:store(ids[i], "x"))
    end
    for _ = 1, n / 4 do ids[#ids + 1] = spool.id.new(); assert(s:store(ids[#ids], "y")) end
    for _, id in ipairs(ids) do
      local start = id:created()
      local seen, expected = {}, 0
      for _, other in ipairs(ids) do
        if other:created() < start then expected = expected + 1 end
      end
      local n = 0
      for e in s:entries { start_time = start, ids_only = true } do
        assert(e.id ~= id, "start_time = created() visited the id itself: " .. tostring(id))
        assert(e.id:created() < start, "visited an entry created at or after start_time")
        n = n + 1
      end
      assert.are.equal(expected, n)
    end
  end)
end)
