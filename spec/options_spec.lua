-- Each backend's options are declared once, in C: spool.core.backends()
-- lists them, the configuration validates against them, and
-- docs/BACKENDS.md holds the table generated from them.
local helper = require "spec.helper"
local spool = require "spool"
local core = require "spool.core"

local function sqlite_options()
  for _, b in ipairs(core.backends()) do
    if b.kind == "SQLite" then return b end
  end
end

describe("backend options", function()
  it("spool.core.backends() lists the built kinds, SQLite first, with their options", function()
    local kinds = {}
    for i, b in ipairs(core.backends()) do kinds[i] = b.kind end
    local want = { "SQLite", "LocalDisk" }
    if kinds[3] == "RocksDB" then want[3] = "RocksDB" end -- built with librocksdb-dev
    assert.are.same(want, kinds)
    local sq = sqlite_options()
    assert.are.equal("sqlite", sq.options_key)
    local names = {}
    for _, o in ipairs(sq.options) do names[o.name] = o end
    assert.are.equal("power of two", names.page_size.type)
    assert.are.equal(512, names.page_size.min)
    assert.are.equal("4096", names.page_size.default)
    assert.are.equal("boolean", names.exclusive.type)
  end)

  it("docs/BACKENDS.md holds the generated table of every built backend", function()
    local docs = helper.read_file("docs/BACKENDS.md")
    local block = docs:match("<!%-%- options:begin[^\n]*\n(.-)<!%-%- options:end %-%->")
    assert.is_string(block, "the options markers are missing")
    local tool = dofile("tools/backend-options.lua")
    -- Every backend's section, whichever are built here (a build without
    -- librocksdb checks the others); with all built, the block is exact.
    for _, b in ipairs(core.backends()) do
      local section = tool.section(b)
      assert.is_truthy(block:find(section, 1, true),
        "run tools/backend-options.lua and paste its output into docs/BACKENDS.md (" .. b.kind .. ")")
    end
    if #core.backends() == 3 then
      assert.are.equal(tool.markdown(), block)
    end
  end)

  it("the configuration refuses a value outside a declared range, naming the option and the range", function()
    local dir = helper.tmpdir()
    local msg = helper.error_of(spool.open, { path = dir, sqlite = { vacuum_step_pages = 0 } })
    assert.is_truthy(msg:find("sqlite.vacuum_step_pages", 1, true), msg)
    assert.is_truthy(msg:find("between 1 and", 1, true), msg)
    msg = helper.error_of(spool.open, { path = dir, sqlite = { page_size = 3000 } })
    assert.is_truthy(msg:find("a power of two between 512 and 65536", 1, true), msg)
    msg = helper.error_of(spool.open, { path = dir, sqlite = { no_such = 1 } })
    assert.is_truthy(msg:find("unknown setting \"no_such\"", 1, true) or msg:find("unknown setting no_such", 1, true), msg)
    assert.is_truthy(msg:find("cache_kib", 1, true), msg)
    helper.rm_rf(dir)
  end)

  it("declared options reach the backend: wal_autocheckpoint = 0 leaves the database file unwritten", function()
    local dir = helper.tmpdir()
    -- Stores of 4000 bytes, 1500 of them: ~1500 WAL pages, past the
    -- default 1000-page autocheckpoint, which copies them into the
    -- database file; with 0 they stay in the WAL.
    local function db_bytes_after(opts)
      local path = dir .. "/" .. tostring(opts.wal_autocheckpoint)
      local s = assert(spool.open { path = path, sqlite = opts })
      for _ = 1, 1500 do assert(s:store(spool.id.new(), string.rep("x", 4000))) end
      local st = s:stats()
      s:shutdown()
      return st.db_bytes, st.page_size
    end
    local default_bytes = db_bytes_after({ wal_autocheckpoint = 1000 })
    local disabled_bytes, page_size = db_bytes_after({ wal_autocheckpoint = 0, page_size = 8192 })
    assert.is_true(default_bytes > 4 * 2 ^ 20, "default: " .. default_bytes)
    assert.is_true(disabled_bytes < 2 ^ 20, "disabled: " .. disabled_bytes)
    assert.are.equal(8192, page_size)
    helper.rm_rf(dir)
  end)
end)
