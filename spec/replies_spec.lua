-- spool.errors.smtp / http: the replies a server sends for spool errors.
local spool = require "spool"
local errors = spool.errors

describe("spool.errors replies", function()
  it("answers every kind with a transient SMTP reply (4xx, enhanced 4.x.x)", function()
    for _, kind in ipairs(errors.kinds) do
      local code, enhanced, text = errors.smtp(errors.new(kind, { deadline = 1 }))
      assert.is_true(code >= 400 and code < 500, kind .. " -> " .. tostring(code))
      assert.matches("^4%.%d+%.%d+$", enhanced)
      assert.is_string(text)
      assert.is_true(#text > 0)
    end
  end)

  it("answers every kind with 503, or 404 for not_found and 409 for conflict", function()
    local special = { not_found = 404, conflict = 409 }
    for _, kind in ipairs(errors.kinds) do
      local status = errors.http(errors.new(kind, { deadline = 1 }))
      assert.equal(special[kind] or 503, status)
    end
  end)

  it("answers unhealthy with 421 4.3.2 and the reference text, as at KumoMTA's banner", function()
    assert.same({ 421, "4.3.2", "the spool is not accepting writes" }, { errors.smtp(errors.new("unhealthy")) })
  end)

  it("gives the two deadline kinds distinct 451 replies with their reference texts", function()
    local c1, e1, t1 = errors.smtp(errors.new("caller_deadline_exceeded"))
    local c2, e2, t2 = errors.smtp(errors.new("backpressure_timeout", { deadline = 30 }))
    assert.equal(451, c1)
    assert.equal(451, c2)
    assert.are_not.equal(e1, e2)
    assert.equal("the caller-provided deadline was reached before the spool accepted the write", t1)
    assert.equal("the spool did not accept the write within 30s", t2)
  end)

  it("answers a full disk with 452 4.3.1", function()
    local code, enhanced = errors.smtp(errors.new("full"))
    assert.equal(452, code)
    assert.equal("4.3.1", enhanced)
  end)

  it("never puts internal detail (paths, SQLite messages) on the wire", function()
    local err = errors.new("io", { message = "disk I/O error (SQLITE_IOERR_WRITE) in /var/spool/secret/spool.db" })
    local _, _, text = errors.smtp(err)
    local _, htext = errors.http(err)
    assert.is_nil(text:find("/var/spool", 1, true))
    assert.is_nil(htext:find("SQLITE", 1, true))
  end)

  it("answers something that is not a spool error with 451 4.3.0 / 503", function()
    assert.same({ 451, "4.3.0", "local error in processing" }, { errors.smtp("some string") })
    assert.equal(503, (errors.http(nil)))
  end)
end)
