-- spool.recover: the start-up rebuild of a server's queues.
local helper = require "spec.helper"
local spool = require "spool"

describe("spool.recover", function()
  local dir, meta, data, n = nil, nil, nil, 0
  before_each(function()
    dir = helper.tmpdir()
    -- Names are process-wide: each test defines its own pair.
    n = n + 1
    meta = helper.define { name = "meta" .. n, path = dir .. "/meta" }
    data = helper.define { name = "data" .. n, path = dir .. "/data" }
  end)
  after_each(function()
    meta:shutdown()
    data:shutdown()
    helper.rm_rf(dir)
  end)

  local function put(i, with_data)
    local id = spool.id.new()
    assert(meta:store(id, "meta " .. i))
    if with_data ~= false then assert(data:store(id, "data " .. i)) end
    return id
  end

  local function recover(opts)
    opts.meta = opts.meta or meta
    opts.data = opts.data or data
    return spool.recover(opts)
  end

  it("hands every message to on_message in the spools' order, with its meta and lazily loaded data", function()
    local ids, index = {}, {}
    for i = 1, 20 do
      ids[i] = put(i)
      index[tostring(ids[i])] = i
    end
    local got = {}
    local counts = recover { on_message = function(msg) got[#got + 1] = msg end }
    assert.equal(20, counts.messages)
    assert.equal(0, counts.corrupt)
    for i, id in ipairs(helper.in_order(ids)) do
      assert.equal(id, got[i].id)
      assert.equal("meta " .. index[tostring(id)], got[i].meta)
      assert.equal("data " .. index[tostring(id)], got[i]:data())
    end
  end)

  it("resolves spools by name through the registry", function()
    put(1)
    local counts = spool.recover { meta = "meta" .. n, data = "data" .. n, on_message = function() end }
    assert.equal(1, counts.messages)
  end)

  it("skips messages created at or after start_time", function()
    local first = put(1)
    local cut = first:created() + 1e-6
    while spool.id.new():created() <= cut do end
    put(2)
    local counts = recover { start_time = cut, on_message = function(msg) assert.equal(first, msg.id) end }
    assert.equal(1, counts.messages)
  end)

  it("quarantines a message whose data entry is missing, by default", function()
    put(1)
    local lost = put(2, false)
    put(3)
    local counts = recover { on_message = function() end }
    assert.equal(2, counts.messages)
    assert.equal(1, counts.corrupt)
    assert.equal(1, counts.quarantined)
    local q = {}
    for e in meta:quarantined() do q[#q + 1] = e end
    assert.equal(1, #q)
    assert.equal(lost, q[1].id)
    assert.matches("no data entry", q[1].reason)
    local _, err = meta:load(lost)
    assert.is_true(spool.errors.is(err, "not_found"))
  end)

  it("removes incomplete messages with on_corrupt = \"remove\"", function()
    local lost = put(1, false)
    local counts = recover { on_corrupt = "remove", on_message = function() end }
    assert.equal(1, counts.removed)
    assert.is_nil((meta:load(lost)))
  end)

  it("keeps them with on_corrupt = \"keep\"", function()
    local lost = put(1, false)
    local counts = recover { on_corrupt = "keep", on_message = function() end }
    assert.equal(1, counts.corrupt)
    assert.equal("meta 1", meta:load(lost))
  end)

  it("calls an on_corrupt function with the id and the reason", function()
    local lost = put(1, false)
    local seen_id, seen_why
    recover { on_corrupt = function(id, why) seen_id, seen_why = id, why end, on_message = function() end }
    assert.equal(lost, seen_id)
    assert.matches("no data entry", seen_why)
  end)

  it("reports data entries that have no meta entry as orphans, and keeps them", function()
    put(1)
    local stray = spool.id.new()
    assert(data:store(stray, "orphan"))
    local orphans = {}
    local counts = recover { on_message = function() end, on_orphan = function(id) orphans[#orphans + 1] = id end }
    assert.equal(1, counts.orphans)
    assert.equal(stray, orphans[1])
    assert.equal("orphan", data:load(stray))
  end)

  it("aborts with an error naming the id when on_message raises", function()
    put(1)
    local bad = put(2)
    local calls = 0
    local msg = helper.error_of(recover, { on_message = function(m)
      calls = calls + 1
      if m.id == bad then error("policy says no") end
    end })
    assert.is_string(msg)
    assert.matches(tostring(bad), msg, 1, true)
    assert.matches("policy says no", msg, 1, true)
    assert.equal(2, calls)
    -- nothing was removed or quarantined by the abort
    assert.equal("meta 2", meta:load(bad))
  end)

  it("reports progress at a bounded rate and once at the end", function()
    for i = 1, 50 do put(i) end
    local calls = {}
    recover { on_message = function() end, progress_interval = 3600,
              on_progress = function(done) calls[#calls + 1] = done end }
    assert.same({ 50 }, calls)
  end)

  it("raises on bad options, naming them", function()
    assert.matches("on_message", helper.error_of(recover, {}))
    assert.matches("on_corrupt", helper.error_of(recover, { on_message = print, on_corrupt = "burn" }))
    assert.matches("unknown option", helper.error_of(spool.recover, { on_message = print, bogus = 1 }))
    assert.matches("no spool named", helper.error_of(spool.recover, { meta = "nope", data = data, on_message = print }))
    assert.matches("meta", helper.error_of(spool.recover, { meta = 42, data = data, on_message = print }))
  end)
end)
