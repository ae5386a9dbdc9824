-- Specs for spool.errors: error kinds, error objects, duration formatting.

local spool = require "spool"
local helper = require "spec.helper"
local sqlite_it = helper.sqlite and it or pending

local errors = spool.errors
local error_of, contains = helper.error_of, helper.contains

local CONSTANTS = {
  NOT_FOUND = "not_found",
  UNHEALTHY = "unhealthy",
  CALLER_DEADLINE_EXCEEDED = "caller_deadline_exceeded",
  BACKPRESSURE_TIMEOUT = "backpressure_timeout",
  CORRUPT = "corrupt",
  FULL = "full",
  IO = "io",
  BUSY = "busy",
  CLOSED = "closed",
  INTERNAL = "internal",
  CONFLICT = "conflict",
}

-- constant names in a fixed order, so test names are stable
local NAMES = {}
for name in pairs(CONSTANTS) do
  NAMES[#NAMES + 1] = name
end
table.sort(NAMES)

local RETRYABLE = {
  unhealthy = true,
  caller_deadline_exceeded = true,
  backpressure_timeout = true,
  busy = true,
  full = true,
  not_found = false,
  corrupt = false,
  io = false,
  closed = false,
  internal = false,
  conflict = false,
}

local UNHEALTHY_TEXT = "the spool is not accepting writes"
local DEADLINE_TEXT = "the caller-provided deadline was reached before the spool accepted the write"
local function backpressure_text(d)
  return "the spool did not accept the write within " .. d
end

-- the fields every kind needs to build (backpressure_timeout wants a deadline)
local function fields_for(kind)
  if kind == "backpressure_timeout" then
    return { deadline = 30 }
  end
  return {}
end

local function make(kind)
  return errors.new(kind, fields_for(kind))
end

describe("spool.errors", function()

  describe("kind constants", function()
    for _, name in ipairs(NAMES) do
      it(name .. " is " .. string.format("%q", CONSTANTS[name]), function()
        assert.are.equal(CONSTANTS[name], errors[name])
      end)
    end

    it("kinds lists exactly the 11 kinds, once each", function()
      assert.is_table(errors.kinds)
      assert.are.equal(11, #errors.kinds)
      local seen = {}
      for i = 1, #errors.kinds do
        local k = errors.kinds[i]
        assert.is_string(k)
        assert.is_nil(seen[k], "duplicate kind " .. tostring(k))
        seen[k] = true
      end
      for _, name in ipairs(NAMES) do
        assert.is_true(seen[CONSTANTS[name]], "kinds lacks " .. CONSTANTS[name])
      end
    end)
  end)

  describe("new()", function()

    for _, name in ipairs(NAMES) do
      local kind = CONSTANTS[name]

      it("builds a " .. kind .. " error whose kind is " .. kind, function()
        local err = make(kind)
        assert.is_table(err)
        assert.are.equal(kind, err.kind)
      end)

      it("gives a " .. kind .. " error a non-empty default message", function()
        local err = make(kind)
        assert.is_string(err.message)
        assert.is_true(#err.message > 0)
      end)

      it("makes tostring() of a " .. kind .. " error its message", function()
        local err = make(kind)
        assert.are.equal(err.message, tostring(err))
      end)

      it("marks a " .. kind .. " error retryable == " .. tostring(RETRYABLE[kind]), function()
        assert.are.equal(RETRYABLE[kind], make(kind).retryable)
      end)
    end

    it("gives all error objects the spool.Error metatable", function()
      local mt = getmetatable(make("io"))
      assert.is_table(mt)
      assert.is_true(debug.getregistry()["spool.Error"] == mt or mt.__name == "spool.Error",
        "metatable is neither registry.spool.Error nor named spool.Error")
      for _, kind in ipairs(errors.kinds) do
        assert.are.equal(mt, getmetatable(make(kind)))
      end
    end)

    it("accepts a missing fields table", function()
      local err = errors.new("not_found")
      assert.are.equal("not_found", err.kind)
      assert.is_string(err.message)
    end)

    it("uses the reference text for unhealthy", function()
      assert.are.equal(UNHEALTHY_TEXT, errors.new("unhealthy", {}).message)
    end)

    it("uses the reference text for caller_deadline_exceeded", function()
      assert.are.equal(DEADLINE_TEXT, errors.new("caller_deadline_exceeded", {}).message)
    end)

    it("uses the reference text for backpressure_timeout with a 30 s deadline", function()
      local err = errors.new("backpressure_timeout", { deadline = 30 })
      assert.are.equal("the spool did not accept the write within 30s", err.message)
      assert.are.equal("the spool did not accept the write within 30s", tostring(err))
    end)

    it("formats the backpressure_timeout deadline like a Rust Duration", function()
      assert.are.equal(backpressure_text("200ms"),
        errors.new("backpressure_timeout", { deadline = 0.2 }).message)
      assert.are.equal(backpressure_text("1.5s"),
        errors.new("backpressure_timeout", { deadline = 1.5 }).message)
      assert.are.equal(backpressure_text("2µs"),
        errors.new("backpressure_timeout", { deadline = 0.000002 }).message)
    end)

    it("keeps the deadline in err.deadline", function()
      assert.are.equal(30, errors.new("backpressure_timeout", { deadline = 30 }).deadline)
      assert.are.equal(0.2, errors.new("backpressure_timeout", { deadline = 0.2 }).deadline)
    end)

    it("lets fields.message override the message of other kinds", function()
      for _, kind in ipairs({ "not_found", "corrupt", "full", "io", "busy", "closed", "internal" }) do
        local err = errors.new(kind, { message = "custom " .. kind })
        assert.are.equal("custom " .. kind, err.message)
        assert.are.equal("custom " .. kind, tostring(err))
      end
    end)

    it("ignores fields.message for unhealthy", function()
      local err = errors.new("unhealthy", { message = "nope" })
      assert.are.equal(UNHEALTHY_TEXT, err.message)
      assert.are.equal(UNHEALTHY_TEXT, tostring(err))
    end)

    it("ignores fields.message for caller_deadline_exceeded", function()
      local err = errors.new("caller_deadline_exceeded", { message = "nope" })
      assert.are.equal(DEADLINE_TEXT, err.message)
    end)

    it("ignores fields.message for backpressure_timeout", function()
      local err = errors.new("backpressure_timeout", { deadline = 90, message = "nope" })
      assert.are.equal(backpressure_text("90s"), err.message)
    end)

    it("carries code and errno", function()
      local err = errors.new("full", { code = "SQLITE_FULL", errno = 28 })
      assert.are.equal("SQLITE_FULL", err.code)
      assert.are.equal(28, err.errno)
      assert.are.equal("full", err.kind)
    end)

    it("leaves code and errno nil when not given", function()
      local err = errors.new("io", {})
      assert.is_nil(err.code)
      assert.is_nil(err.errno)
    end)

    it("raises an error naming an unknown kind", function()
      local err = error_of(errors.new, "no_such_kind", {})
      assert.is_not_nil(err, "new() accepted an unknown kind")
      assert.is_true(contains(err, "no_such_kind"), "message: " .. tostring(err))
    end)

    it("raises for a constant's name used as a kind", function()
      local err = error_of(errors.new, "NOT_FOUND", {})
      assert.is_not_nil(err, "new() accepted NOT_FOUND")
      assert.is_true(contains(err, "NOT_FOUND"), "message: " .. tostring(err))
    end)

    it("raises for a non-string kind", function()
      assert.is_not_nil(error_of(errors.new, nil, {}))
      assert.is_not_nil(error_of(errors.new, 1, {}))
    end)
  end)

  describe("is()", function()

    it("is true for an error of that kind", function()
      for _, kind in ipairs(errors.kinds) do
        assert.is_true(errors.is(make(kind), kind), kind)
      end
    end)

    it("is false for an error of another kind", function()
      assert.is_false(errors.is(make("io"), "not_found"))
      assert.is_false(errors.is(make("busy"), "full"))
      assert.is_false(errors.is(make("unhealthy"), "io"))
    end)

    it("is false for an unknown kind", function()
      assert.is_false(errors.is(make("io"), "no_such_kind"))
    end)

    it("is false for nil", function()
      assert.is_false(errors.is(nil, "io"))
    end)

    it("is false for the kind string itself", function()
      assert.is_false(errors.is("io", "io"))
    end)

    it("is false for a message string", function()
      assert.is_false(errors.is(make("io").message, "io"))
    end)

    it("is false for a number and a boolean", function()
      assert.is_false(errors.is(42, "io"))
      assert.is_false(errors.is(true, "io"))
    end)

    it("is false for a plain table with a matching kind field", function()
      assert.is_false(errors.is({ kind = "io", message = "x" }, "io"))
    end)
  end)

  describe("format_duration()", function()
    local cases = {
      { 30, "30s" },
      { 90, "90s" },
      { 1, "1s" },
      { 3600, "3600s" },
      { 1000000, "1000000s" },
      { 1.8e19, "18000000000000000000s" },
      { 1.5, "1.5s" },
      { 1.25, "1.25s" },
      { 61.25, "61.25s" },
      { 12.345, "12.345s" },
      { 86400.5, "86400.5s" },
      { 1.123456789, "1.123456789s" },
      { 2.000000002, "2.000000002s" },
      { 0.2, "200ms" },
      { 0.5, "500ms" },
      { 0.25, "250ms" },
      { 0.01, "10ms" },
      { 0.001, "1ms" },
      { 0.0015, "1.5ms" },
      { 0.000125, "125µs" },
      { 0.000999, "999µs" },
      { 0.0000015, "1.5µs" },
      { 0.000002, "2µs" },
      { 0.000000999, "999ns" },
      { 1e-9, "1ns" },
      { 0, "0ns" },
    }
    for _, case in ipairs(cases) do
      it(string.format("formats %.17g as %s", case[1], case[2]), function()
        assert.are.equal(case[2], errors.format_duration(case[1]))
      end)
    end

    it("rounds to the nearest nanosecond", function()
      -- the doubles nearest these values lie just below them; truncation
      -- would give 999ns, 1.999µs, 123.456788ms, 1.000999999s, 99ns,
      -- 120.000000999s and 0ns
      assert.are.equal("1µs", errors.format_duration(0.000001))
      assert.are.equal("1.2µs", errors.format_duration(0.0000012))
      assert.are.equal("123.456789ms", errors.format_duration(0.123456789))
      assert.are.equal("1.001s", errors.format_duration(1.001))
      assert.are.equal("100ns", errors.format_duration(1e-7))
      assert.are.equal("120.000001s", errors.format_duration(120.000001))
      assert.are.equal("1ns", errors.format_duration(6e-10))
    end)

    it("carries a rounded-up fraction into the next unit", function()
      assert.are.equal("1s", errors.format_duration(0.9999999999))
      assert.are.equal("2s", errors.format_duration(1.9999999999))
      assert.are.equal("1ms", errors.format_duration(0.0009999999999))
    end)

    it("raises for a negative duration", function()
      assert.is_not_nil(error_of(errors.format_duration, -1))
      assert.is_not_nil(error_of(errors.format_duration, -0.5))
      assert.is_not_nil(error_of(errors.format_duration, -1e-9))
    end)

    it("raises for NaN", function()
      assert.is_not_nil(error_of(errors.format_duration, 0 / 0))
    end)

    -- A Rust Duration holds at most 2^64 - 1 seconds (from_secs_f64 panics
    -- beyond that); there is no correct text for such values.
    it("raises for infinity", function()
      local err = error_of(errors.format_duration, math.huge)
      assert.is_not_nil(err, "format_duration(math.huge) returned "
        .. tostring(select(2, pcall(errors.format_duration, math.huge))))
    end)

    it("raises for finite values of 2^64 seconds or more", function()
      for _, v in ipairs({ 2 ^ 64, 1e20, 1e300 }) do
        local err = error_of(errors.format_duration, v)
        assert.is_not_nil(err, string.format("format_duration(%.17g) returned %s", v,
          tostring(select(2, pcall(errors.format_duration, v)))))
      end
    end)

    it("raises for nil", function()
      assert.is_not_nil(error_of(errors.format_duration, nil))
    end)

    it("raises for a non-numeric string", function()
      assert.is_not_nil(error_of(errors.format_duration, "soon"))
    end)

    it("raises for a table and a boolean", function()
      assert.is_not_nil(error_of(errors.format_duration, {}))
      assert.is_not_nil(error_of(errors.format_duration, true))
    end)
  end)
end)

describe("error texts", function()
  local spool = require "spool"
  local helper = require "spec.helper"

  it("errors.new refuses a backpressure_timeout without the deadline its text names", function()
    local msg = helper.error_of(spool.errors.new, "backpressure_timeout")
    assert.is_truthy(msg:find("deadline", 1, true), msg)
    msg = helper.error_of(spool.errors.new, "backpressure_timeout", { deadline = 0 })
    assert.is_truthy(msg:find("deadline", 1, true), msg)
  end)

  it("a quarantine reason with a NUL inside is refused, not cut short", function()
    local dir = helper.tmpdir()
    local s = assert(helper.open { path = dir })
    local id = spool.id.new()
    assert(s:store(id, "x"))
    local msg = helper.error_of(s.quarantine, s, id, "bad\0hidden")
    assert.is_truthy(msg:find("NUL", 1, true), msg)
    assert.equal("x", s:load(id))
    s:shutdown()
    helper.rm_rf(dir)
  end)

  sqlite_it("an SQLite code from outside the connection is named by its own text, never 'not an error'", function()
    local dir = helper.tmpdir()
    local s = assert(helper.open { path = dir })
    s:shutdown()
    assert(helper.execute("chmod 444 " .. helper.shell_quote(dir .. "/spool.db")))
    local h, err = helper.open { path = dir }
    if h then h:shutdown() end -- root can write a 0444 file: nothing to check then
    if err then
      assert.is_falsy(err.message:find("not an error", 1, true), err.message)
    end
    helper.rm_rf(dir)
  end)
end)
