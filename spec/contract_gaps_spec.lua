-- Behaviours that mutations of the code showed no test held.
local spool = require "spool"
local helper = require "spec.helper"

describe("contract gaps", function()
  local dir, s
  before_each(function()
    dir = helper.tmpdir()
    s = assert(helper.open { path = dir, sqlite = { enumerate_chunk_rows = 2 } })
    for i = 1, 6 do assert(s:store(spool.id.new(), "e" .. i)) end
  end)
  after_each(function()
    s:shutdown()
    helper.rm_rf(dir)
  end)

  it("an entries() loop that fails after it started raises a spool.Error with its kind", function()
    local n = 0
    local ok, err = pcall(function()
      for _ in s:entries() do
        n = n + 1
        if n == 1 then s:shutdown() end
      end
    end)
    assert.is_false(ok)
    assert.is_true(spool.errors.is(err), "raised a " .. type(err) .. ": " .. tostring(err))
    assert.are.equal("closed", err.kind)
    assert.are.equal(1, n)
  end)

  it("breaking out of an entries() loop closes its cursor where the interpreter has __close", function()
    local iter
    local function keep(f, ...)
      iter = f
      return f, ...
    end
    for _ in keep(s:entries()) do break end
    local more = iter()
    if _VERSION == "Lua 5.4" then
      assert.is_nil(more, "the cursor stayed open after break")
    else
      -- no to-be-closed variables: the cursor stays until collected
      assert.is_table(more)
    end
  end)
end)
