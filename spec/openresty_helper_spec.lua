-- spool.openresty's own logic, outside nginx: a stub `ngx` whose
-- run_worker_thread runs the thread function in this Lua state (as the
-- real one does in a thread's state; the spool registry is process-wide).
local helper = require "spec.helper"

describe("spool.openresty (stub ngx)", function()
  local dir, openresty, spool, threads, shared
  before_each(function()
    dir = helper.tmpdir()
    threads, shared = {}, { metrics = {} }
    local dict = {}
    function dict:incr(k, v, init) self[k] = (rawget(self, k) or init or 0) + v end
    function dict:get(k) return rawget(self, k) end
    function dict:get_keys()
      local keys = {}
      for k in pairs(self) do if type(k) == "string" then keys[#keys + 1] = k end end
      return keys
    end
    shared.metrics = setmetatable({}, { __index = dict })
    rawset(_G, "ngx", {
      update_time = function() end,
      now = function() return os.clock() end,
      get_phase = function() return "content" end,
      shared = shared,
      run_worker_thread = function(pool, mod, fn, ...)
        threads[#threads + 1] = pool
        return true, require(mod)[fn](...)
      end,
    })
    package.loaded["spool.openresty"] = nil
    openresty = require "spool.openresty"
    spool = require "spool"
    openresty.define { name = "data", path = dir, store_deadline = 2 }
  end)
  after_each(function()
    local s = spool.get("data")
    if s then s:shutdown() end
    package.loaded["spool.openresty"] = nil
    rawset(_G, "ngx", nil)
    helper.rm_rf(dir)
  end)

  it("store refuses an option s:store would refuse", function()
    local msg = helper.error_of(openresty.store, "data", spool.id.new(), "x", { force_sink = true })
    assert.is_truthy(msg:find("force_sink", 1, true), msg)
  end)

  -- With the write lock held elsewhere, a store waits: until its own
  -- deadline when it is kept, else until store_deadline (2 s here).
  local function with_lock_held(f)
    local holder = helper.hold_write_lock(dir .. "/spool.db", 20)
    assert.is_true(holder:wait_locked())
    local ok, err = pcall(f)
    holder:release()
    assert(ok, err)
  end

  it("store keeps opts.deadline, inline and in the thread pool", function()
    with_lock_held(function()
      for _, pool in ipairs({ false, "spool" }) do
        openresty.configure { thread_pool = pool }
        local t0 = spool.monotonic()
        local ok, err = openresty.store("data", spool.id.new(), "x",
          { force_sync = true, deadline = t0 + 0.2 })
        assert.is_nil(ok)
        assert.are.equal("caller_deadline_exceeded", err.kind, "thread_pool " .. tostring(pool))
        assert.is_true(spool.monotonic() - t0 < 1.5)
      end
    end)
    assert.are.equal(1, #threads)
  end)

  it("in the thread pool, the deadline is absolute, so time waiting for a thread counts", function()
    openresty.configure { thread_pool = "spool" }
    local real = ngx.run_worker_thread
    ngx.run_worker_thread = function(...)
      helper.sleep(0.4) -- the thread pool's queue
      return real(...)
    end
    with_lock_held(function()
      local t0 = spool.monotonic()
      local ok, err = openresty.store("data", spool.id.new(), "x", { force_sync = true, timeout = 0.6 })
      local took = spool.monotonic() - t0
      assert.is_nil(ok)
      assert.are.equal("caller_deadline_exceeded", err.kind)
      if (os.getenv("SPOOL_SANITIZE") or "") == "" then
        assert.is_true(took < 0.9, "the wait for a thread did not count: " .. took .. " s")
      end
    end)
  end)

  it("configure{thread_pool = false} switches back to inline", function()
    openresty.configure { thread_pool = "spool" }
    assert(openresty.store("data", spool.id.new(), "x", { force_sync = true }))
    openresty.configure { thread_pool = false }
    assert(openresty.store("data", spool.id.new(), "x", { force_sync = true }))
    assert.are.equal(1, #threads)
  end)

  it("configure names a metrics_dict that nginx does not define", function()
    local msg = helper.error_of(openresty.configure, { metrics_dict = "nope" })
    assert.is_truthy(msg:find("nope", 1, true), msg)
    openresty.configure { metrics_dict = "metrics" }
  end)

  it("compact and cleanup return the same shape inline and in the thread pool", function()
    local inline_c, inline_u = openresty.compact("data"), openresty.cleanup("data")
    openresty.configure { thread_pool = "spool" }
    local pooled_c, pooled_u = openresty.compact("data"), openresty.cleanup("data")
    assert.are.equal("string", type(inline_c))
    assert.are.equal(type(inline_c), type(pooled_c))
    assert.are.equal(inline_c:gsub("=[^ ]*", ""), pooled_c:gsub("=[^ ]*", ""))
    assert.are.equal(inline_u:gsub("=[^ ]*", ""), pooled_u:gsub("=[^ ]*", ""))
  end)

  it("after shutdown, unhealthy_reason, metrics and store answer instead of raising", function()
    openresty.configure { metrics_dict = "metrics" }
    spool.get("data"):shutdown()
    assert.are.equal("the spool is not accepting writes", openresty.unhealthy_reason("data"))
    local text = openresty.metrics({ "data" })
    assert.is_truthy(text:find('spool_healthy{spool="data"} 0', 1, true), text)
    local ok, err = openresty.store("data", spool.id.new(), "x")
    assert.is_nil(ok)
    assert.are.equal("closed", err.kind)
    assert.are.equal(503, (spool.errors.http(err)))
  end)

  it("metrics of a LocalDisk spool leave out the figures it does not keep", function()
    local ld = helper.tmpdir()
    openresty.define { name = "ld", path = ld, kind = "LocalDisk" }
    assert(openresty.store("ld", spool.id.new(), "x"))
    local ok, text = pcall(openresty.metrics, { "data", "ld" })
    spool.get("ld"):shutdown()
    helper.rm_rf(ld)
    assert.is_true(ok, tostring(text))
    assert.is_truthy(text:find('spool_entries{spool="data"} 0', 1, true), text)
    assert.is_nil(text:find('spool_entries{spool="ld"}', 1, true), text)
    assert.is_nil(text:find('spool_wal_bytes{spool="ld"}', 1, true), text)
    assert.is_truthy(text:find('spool_healthy{spool="ld"} 1', 1, true), text)
  end)

  it("a spool whose define failed answers why, from health and store, instead of raising", function()
    local file = dir .. "/not-a-directory"
    assert(io.open(file, "w")):close()
    local msg = helper.error_of(openresty.define, { name = "broken", path = file })
    assert.is_truthy(msg:find("cannot open spool 'broken'", 1, true), msg)
    local reason = openresty.unhealthy_reason("broken")
    assert.is_truthy(reason and reason:find("cannot open spool 'broken'", 1, true), tostring(reason))
    local ok, err = openresty.store("broken", spool.id.new(), "x")
    assert.is_nil(ok)
    assert.are.equal("closed", err.kind)
    assert.are.equal(503, (spool.errors.http(err)))
    local data, lerr = openresty.load("broken", spool.id.new())
    assert.is_nil(data)
    assert.are.equal("closed", lerr.kind)
  end)

  it("a name never defined still raises, naming it", function()
    local msg = helper.error_of(openresty.unhealthy_reason, "nosuch")
    assert.is_truthy(msg:find("nosuch", 1, true), msg)
  end)
end)
