-- spool.define / get / data / meta: the process-wide registry, and
-- KumoMTA's define_spool parameter table accepted verbatim.
local helper = require "spec.helper"
local spool = require "spool"

local n = 0
local function unique(name)
  n = n + 1
  return name .. "-registry-" .. n
end

describe("spool.define", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rm_rf(dir) end)

  it("opens and registers a spool that get() returns by name", function()
    local name = unique("x")
    local s = spool.define { name = name, path = dir }
    assert.equal(s, spool.get(name))
    local id = spool.id.new()
    assert(s:store(id, "hello"))
    assert.equal("hello", spool.get(name):load(id))
    s:shutdown()
  end)

  it("raises on a second define of a name, naming it, and leaves the first spool working", function()
    local name = unique("dup")
    local s = spool.define { name = name, path = dir .. "/a" }
    local msg = helper.error_of(spool.define, { name = name, path = dir .. "/b" })
    assert.matches("already defined", msg, 1, true)
    assert.matches(name, msg, 1, true)
    assert(s:store(spool.id.new(), "still fine"))
    s:shutdown()
  end)

  it("requires a name", function()
    assert.matches("name", helper.error_of(spool.define, { path = dir }))
  end)

  it("raises when the storage cannot be opened, saying where", function()
    local f = assert(io.open(dir .. "/file", "w"))
    f:close()
    local msg = helper.error_of(spool.define, { name = unique("bad"), path = dir .. "/file" })
    assert.matches("cannot open spool", msg, 1, true)
    assert.matches(dir .. "/file", msg, 1, true)
  end)

  it("frees the name at shutdown, and get() then answers nil, not_found", function()
    local name = unique("gone")
    local s = spool.define { name = name, path = dir }
    s:shutdown()
    local none, err = spool.get(name)
    assert.is_nil(none)
    assert.is_true(spool.errors.is(err, "not_found"))
    local again = spool.define { name = name, path = dir }
    assert.is_false(again:is_closed())
    again:shutdown()
  end)

  it("gives data() and meta() the spools named data and meta", function()
    local d = spool.define { name = "data", path = dir .. "/data" }
    local m = spool.define { name = "meta", path = dir .. "/meta" }
    assert.equal(d, spool.data())
    assert.equal(m, spool.meta())
    d:shutdown()
    m:shutdown()
    assert.is_nil((spool.data()))
  end)

  it("accepts a KumoMTA define_spool table verbatim, kind defaulting to SQLite", function()
    local s = spool.define {
      name = unique("kumo"),
      path = dir,
      flush = false,
      min_free_space = "10%",
      min_free_inodes = "10%",
      rocks_params = { increase_parallelism = 4, store_deadline = "20s", limit_concurrent_stores = 8 },
    }
    assert(s:store(spool.id.new(), "x"))
    s:shutdown()
  end)

  local rocks_built = false
  for _, b in ipairs(require("spool.core").backends()) do rocks_built = rocks_built or b.kind == "RocksDB" end
  ;(rocks_built and pending or it)("refuses the RocksDB kind when it is not built, with a clear error", function()
    local msg = helper.error_of(spool.define, { name = unique("k"), path = dir, kind = "RocksDB" })
    assert.matches("RocksDB backend is not built into this spool", msg, 1, true)
    assert.matches("apt-get install librocksdb-dev", msg, 1, true) -- says how to get it
  end)

  it("get() raises on a non-string name", function()
    assert.matches("spool name expected", helper.error_of(spool.get, 42))
  end)
end)
