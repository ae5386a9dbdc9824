-- Specs for the parameters of spool.open (lua/spool/config.lua) and for
-- opening something that is not a spool.

local spool = require "spool"
local config = require "spool.config"
local helper = require "spec.helper"

local error_of, contains = helper.error_of, helper.contains

describe("spool.open parameters", function()
  local dir
  local opened -- handles to shut down after the test

  before_each(function()
    dir = helper.tmpdir()
    opened = {}
  end)

  after_each(function()
    for _, h in ipairs(opened) do
      h:shutdown()
    end
    helper.rm_rf(dir)
  end)

  -- spool.open with `params` plus a path under dir (unless params has
  -- one, or path = false); returns the error message it raised, or nil.
  local function open_error(params)
    local p = { path = dir .. "/spool" }
    for k, v in pairs(params) do
      p[k] = v
    end
    if p.path == false then
      p.path = nil
    end
    return error_of(function()
      local h, err = spool.open(p)
      if h then
        opened[#opened + 1] = h
      end
      return h, err
    end)
  end

  -- Opens with params (path added); the handle is shut down after the test.
  local function open_ok(params)
    local p = { path = dir .. "/spool" }
    for k, v in pairs(params) do
      p[k] = v
    end
    local h, err = spool.open(p)
    assert.is_truthy(h, err and err.message)
    opened[#opened + 1] = h
    return h
  end

  describe("raise, naming the key", function()
    it("on an unknown key", function()
      local msg = open_error({ bogus = 1 })
      assert.is_true(contains(msg, 'unknown parameter "bogus"'), msg)
    end)

    it("on a key that is not a string", function()
      local msg = open_error({ [1] = "x" })
      assert.is_true(contains(msg, "unknown parameter 1"), msg)
    end)

    it("on parameters that are not a table", function()
      local msg = error_of(function()
        local h = spool.open("/tmp/x")
        return h
      end)
      assert.is_true(contains(msg, "expected a table of parameters"), msg)
    end)

    it("on a missing path", function()
      local msg = open_error({ path = false })
      assert.is_true(contains(msg, "path: a directory path is required"), msg)
    end)

    it("before anything is created", function()
      local target = dir .. "/never"
      local msg = open_error({ path = target, flush = "yes" })
      assert.is_true(contains(msg, "flush"), msg)
      assert.is_false(helper.exists(target))
    end)

    local wrong_types = {
      { "name", 42 },
      { "name", "" },
      { "path", 42 },
      { "path", "" },
      { "kind", 42 },
      { "kind", "Sqlite" },
      { "flush", "yes" },
      { "flush", 1 },
      { "min_free_space", true },
      { "min_free_inodes", {} },
      { "store_deadline", true },
      { "store_deadline", {} },
      { "error_latch_duration", {} },
      { "error_unlatch_duration", false },
      { "allow_error_unlatch", "true" },
      { "allow_error_unlatch", 1 },
      { "limit_concurrent_stores", "4" },
      { "limit_concurrent_loads", 1.5 },
      { "limit_concurrent_removes", 0 },
      { "limit_concurrent_stores", -2 },
      { "sqlite", "big" },
      { "rocks_params", "x" },
      { "commit_wait", -0.001 },
      { "commit_wait", 0.5 },
      { "commit_wait", "soon" },
    }
    for _, case in ipairs(wrong_types) do
      local key, value = case[1], case[2]
      it(("on %s = %s (%s)"):format(key, tostring(value), type(value)), function()
        local msg = open_error({ [key] = value })
        assert.is_true(contains(msg, key .. ":"), msg)
        assert.is_true(contains(msg, "expected"), msg)
      end)
    end

    local sqlite_wrong = {
      { "page_size", "4096" },
      { "cache_kib", true },
      { "cache_kib", 0 },
      { "mmap_size", -1 },
      { "wal_autocheckpoint", "1000" },
      { "wal_autocheckpoint", -1 },
      { "checkpoint_wal_bytes", 0 },
      { "vacuum_step_pages", 1.5 },
      { "cleanup_vacuum_pages", {} },
      { "enumerate_chunk_rows", "256" },
      { "enumerate_chunk_bytes", false },
      { "exclusive", 1 },
      { "secure_delete", "no" },
    }
    for _, case in ipairs(sqlite_wrong) do
      local key, value = case[1], case[2]
      it(("on sqlite.%s = %s (%s)"):format(key, tostring(value), type(value)), function()
        local msg = open_error({ sqlite = { [key] = value } })
        assert.is_true(contains(msg, "sqlite." .. key .. ":"), msg)
        assert.is_true(contains(msg, "expected"), msg)
      end)
    end

    it("on an unknown sqlite setting", function()
      local msg = open_error({ sqlite = { journal_mode = "DELETE" } })
      assert.is_true(contains(msg, 'sqlite: unknown setting "journal_mode"'), msg)
    end)

    for _, size in ipairs({ 1000, 3000, 4095, 256, 131072 }) do
      it("on sqlite.page_size = " .. size .. " (not a power of two from 512 to 65536)", function()
        local msg = open_error({ sqlite = { page_size = size } })
        assert.is_true(contains(msg, "sqlite.page_size:"), msg)
        assert.is_true(contains(msg, "power of two"), msg)
      end)
    end

    local rocks_built = false
    for _, b in ipairs(require("spool.core").backends()) do rocks_built = rocks_built or b.kind == "RocksDB" end
    local unbuilt_it = rocks_built and pending or it
    unbuilt_it("on kind = RocksDB, saying it is not built in and what is", function()
      local msg = open_error({ kind = "RocksDB" })
      assert.is_true(contains(msg, "kind:"), msg)
      assert.is_true(contains(msg, "RocksDB"), msg)
      assert.is_true(contains(msg, "not built in"), msg)
      assert.is_true(contains(msg, "SQLite, LocalDisk"), msg)
    end)

    for _, key in ipairs({ "min_free_space", "min_free_inodes" }) do
      for _, value in ipairs({ "abc%", "150%", "-5%", "%", "", "ten", "5 percent", -1, 0 / 0, math.huge }) do
        it(("on malformed %s = %q"):format(key, tostring(value)), function()
          local msg = open_error({ [key] = value })
          assert.is_true(contains(msg, key .. ":"), msg)
          assert.is_true(contains(msg, "expected"), msg)
        end)
      end
    end

    for _, key in ipairs({ "store_deadline", "error_latch_duration", "error_unlatch_duration" }) do
      for _, value in ipairs({ -1, -0.5, "-5s", "-200ms", "5 parsecs", "abc", "", "s", 0 / 0, math.huge }) do
        it(("on %s = %q"):format(key, tostring(value)), function()
          local msg = open_error({ [key] = value })
          assert.is_true(contains(msg, key .. ":"), msg)
          assert.is_true(contains(msg, "duration"), msg)
        end)
      end
    end

    for _, value in ipairs({ 0, "0s", "0ms" }) do
      it(("on store_deadline = %q"):format(tostring(value)), function()
        local msg = open_error({ store_deadline = value })
        assert.is_true(contains(msg, "store_deadline:"), msg)
        assert.is_true(contains(msg, "> 0"), msg)
      end)
    end

    it("on a bad gate setting inside rocks_params", function()
      local msg = open_error({ rocks_params = { store_deadline = true } })
      assert.is_true(contains(msg, "rocks_params.store_deadline:"), msg)
    end)
  end)

  describe("accept", function()
    local good = {
      { store_deadline = "30s" },
      { store_deadline = "200ms" },
      { store_deadline = "5m" },
      { store_deadline = 0.25 },
      { store_deadline = 10 },
      { error_latch_duration = 0, error_unlatch_duration = "0s", allow_error_unlatch = false },
      { error_latch_duration = "1.5s", error_unlatch_duration = "1h" },
      { min_free_space = "5%" },
      { min_free_space = "0%" },
      { min_free_space = 0 },
      { min_free_space = 1024 * 1024 },
      { min_free_inodes = "5%" },
      { min_free_inodes = 1000 },
      { flush = true },
      { flush = false, allow_error_unlatch = false },
      { name = "data", kind = "SQLite" },
      { limit_concurrent_stores = 4, limit_concurrent_loads = 8, limit_concurrent_removes = 2 },
      { sqlite = { page_size = 8192, cache_kib = 4096, mmap_size = 0, wal_autocheckpoint = 0,
        checkpoint_wal_bytes = 1024 * 1024, vacuum_step_pages = 64, cleanup_vacuum_pages = 32,
        enumerate_chunk_rows = 16, enumerate_chunk_bytes = 65536, exclusive = false,
        secure_delete = true } },
    }
    for _, params in ipairs(good) do
      local names = {}
      for k, v in pairs(params) do
        names[#names + 1] = k .. "=" .. (type(v) == "table" and "{...}" or tostring(v))
      end
      table.sort(names)
      it(table.concat(names, ", ") .. ", and the spool works", function()
        local h = open_ok(params)
        local id = spool.id.new()
        assert.is_true(h:store(id, "ok"))
        assert.are.equal("ok", h:load(id))
      end)
    end

    for k = 9, 16 do
      local size = 2 ^ k
      it(("sqlite.page_size = %d"):format(size), function()
        local h = open_ok({ sqlite = { page_size = size } })
        assert.are.equal(size, h:stats().page_size)
      end)
    end

    -- In a separate process, killed after 20 s: a spool that cannot read
    -- its own writes would otherwise hang the suite.
    it("sqlite.exclusive = true, and the spool loads what it stored", function()
      local ok, out, timed_out = helper.run_lua(([[
        local spool = require "spool"
        local h = assert(spool.open { path = %q, store_deadline = 1, sqlite = { exclusive = true } })
        local id = spool.id.new()
        assert(h:store(id, "ok"))
        local data, err = h:load(id)
        print("load:", data, err and err.kind, err and err.message)
        h:shutdown()
      ]]):format(dir .. "/spool"), 10)
      assert.is_false(timed_out, "the load did not return within 10 s (store_deadline = 1)")
      assert.is_true(ok, out)
      assert.is_true(contains(out, "load:\tok"), out)
    end)

    it("rocks_params as KumoMTA policies write it", function()
      local h = open_ok({
        rocks_params = {
          increase_parallelism = 4,
          optimize_level_style_compaction = 536870912,
          paranoid_checks = false,
          compression_type = "lz4",
          memtable_huge_page_size = 0,
          log_level = "Info",
          level_compaction_dynamic_level_bytes = true,
          max_open_files = 256,
          store_deadline = "30s",
          error_latch_duration = "15s",
          error_unlatch_duration = "5m",
          allow_error_unlatch = true,
          limit_concurrent_stores = 32,
          limit_concurrent_loads = 32,
          limit_concurrent_removes = 32,
        },
      })
      local id = spool.id.new()
      assert.is_true(h:store(id, "ok"))
      assert.are.equal("ok", h:load(id))
    end)
  end)

  describe("normalisation", function()
    it("reads duration strings as seconds", function()
      local p = config.normalize({ path = "/x", store_deadline = "200ms", error_latch_duration = "1.5s",
        error_unlatch_duration = "5m" })
      assert.are.equal(0.2, p.store_deadline)
      assert.are.equal(1.5, p.error_latch_duration)
      assert.are.equal(300, p.error_unlatch_duration)
    end)

    it("reads commit_wait in seconds or as \"200us\", 0 allowed", function()
      assert.is_true(math.abs(config.normalize({ path = "/x", commit_wait = "200us" }).commit_wait - 0.0002) < 1e-12)
      assert.are.equal(0.05, config.normalize({ path = "/x", commit_wait = "50ms" }).commit_wait)
      assert.are.equal(0, config.normalize({ path = "/x", commit_wait = 0 }).commit_wait)
    end)

    it("reads a percentage string as a percentage", function()
      local p = config.normalize({ path = "/x", min_free_space = "5%", min_free_inodes = "7%" })
      assert.are.equal(5, p.min_free_space_percent)
      assert.is_nil(p.min_free_space_bytes)
      assert.are.equal(7, p.min_free_inodes_percent)
      assert.is_nil(p.min_free_inodes_count)
    end)

    it("reads a number as a byte or inode count", function()
      local p = config.normalize({ path = "/x", min_free_space = 1048576, min_free_inodes = 1000 })
      assert.are.equal(1048576, p.min_free_space_bytes)
      assert.is_nil(p.min_free_space_percent)
      assert.are.equal(1000, p.min_free_inodes_count)
    end)

    it("takes the gate settings of rocks_params", function()
      local p = config.normalize({ path = "/x", rocks_params = { store_deadline = "20s",
        allow_error_unlatch = false, increase_parallelism = 4 } })
      assert.are.equal(20, p.store_deadline)
      assert.is_false(p.allow_error_unlatch)
      assert.is_nil(p.increase_parallelism)
    end)

    it("lets a top-level setting win over rocks_params", function()
      local p = config.normalize({ path = "/x", store_deadline = 10, rocks_params = { store_deadline = "20s" } })
      assert.are.equal(10, p.store_deadline)
    end)
  end)

  describe("opening what is not a spool", function()
    local db

    before_each(function()
      assert.is_true(helper.mkdir_p(dir .. "/spool"))
      db = dir .. "/spool/spool.db"
    end)

    it("fails with kind corrupt on a file that is not SQLite, leaving its bytes unchanged", function()
      local garbage = string.rep("this is not a database, just text\n", 200)
      helper.write_file(db, garbage)
      local h, err = spool.open({ path = dir .. "/spool" })
      if h then
        opened[#opened + 1] = h
      end
      assert.is_nil(h)
      assert.are.equal("corrupt", err.kind)
      assert.is_true(contains(err.message, db), err.message)
      assert.is_true(helper.read_file(db) == garbage, "the file's bytes changed")
    end)

    it("fails on an SQLite database of another application, leaving its bytes unchanged", function()
      local ok, out = helper.sqlite3(db, "create table t(x); insert into t values (1); pragma application_id=42;")
      assert.is_true(ok, out)
      local before = helper.read_file(db)
      local h, err = spool.open({ path = dir .. "/spool" })
      if h then
        opened[#opened + 1] = h
      end
      assert.is_nil(h)
      assert.are.equal("corrupt", err.kind)
      assert.is_true(contains(err.message, "application_id"), err.message)
      assert.is_true(helper.read_file(db) == before, "the file's bytes changed")
      local ok2, rows = helper.sqlite3(db, "select x from t; pragma application_id;")
      assert.is_true(ok2, rows)
      assert.are.equal("1\n42\n", rows)
    end)

    it("fails on a spool of a newer format, naming the format version, leaving its bytes unchanged", function()
      local h = open_ok({})
      local id = spool.id.new()
      assert.is_true(h:store(id, "kept"))
      h:shutdown()
      local ok, out = helper.sqlite3(db, "pragma user_version=99;")
      assert.is_true(ok, out)
      local before = helper.read_file(db)
      local h2, err = spool.open({ path = dir .. "/spool" })
      if h2 then
        opened[#opened + 1] = h2
      end
      assert.is_nil(h2)
      assert.are.equal("corrupt", err.kind)
      assert.is_true(contains(err.message, "format"), err.message)
      assert.is_true(contains(err.message, "99"), err.message)
      assert.is_true(helper.read_file(db) == before, "the file's bytes changed")
    end)

    it("fails with kind io when the path is a file", function()
      local file = dir .. "/plain-file"
      helper.write_file(file, "x")
      local h, err = spool.open({ path = file })
      if h then
        opened[#opened + 1] = h
      end
      assert.is_nil(h)
      assert.are.equal("io", err.kind)
      assert.is_true(contains(err.message, "not a directory"), err.message)
    end)

    it("initialises an empty spool.db file as a new spool", function()
      helper.write_file(db, "")
      local h = open_ok({})
      local id = spool.id.new()
      assert.is_true(h:store(id, "fresh"))
      assert.are.equal("fresh", h:load(id))
    end)
  end)
end)

describe("sqlite.wal_autocheckpoint", function()
  local spool = require "spool"
  local helper = require "spec.helper"
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rm_rf(dir) end)

  -- 600 commits of 16 KiB make ~2400 WAL pages: past the default 1000,
  -- the WAL is reset and stays near 1000 pages; disabled, it keeps them all.
  local function wal_after_commits(sq)
    local s = assert(spool.open { path = dir, sqlite = sq })
    local data = string.rep("w", 16384)
    for _ = 1, 600 do assert(s:store(spool.id.new(), data)) end
    local wal = s:health().wal_bytes
    s:shutdown()
    return wal
  end

  it("0 disables automatic checkpoints", function()
    assert.is_true(wal_after_commits({ wal_autocheckpoint = 0 }) > 2000 * 4096)
  end)

  it("absent keeps the default, which checkpoints", function()
    assert.is_true(wal_after_commits({}) < 1600 * 4096)
  end)

  it("a negative value is refused, naming the key", function()
    local msg = helper.error_of(spool.open, { path = dir, sqlite = { wal_autocheckpoint = -1 } })
    assert.is_truthy(msg:find("wal_autocheckpoint", 1, true), msg)
  end)
end)
