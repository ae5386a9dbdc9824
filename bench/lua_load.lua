-- bench/lua_load.lua: Lua loads of distinct random payloads, as a new
-- string (s:load(id)) and into a reused LuaJIT string.buffer
-- (s:load(id, { into = buf })), in alternating rounds in one process;
-- prints each way's median loads/s and the ratio into / string.
--
--   luajit bench/lua_load.lua [DIR] [KIND]   (LUA_PATH/LUA_CPATH as for the specs)
local spool = require "spool"
local buffer = require "string.buffer"

local dir = arg[1] or os.tmpname() .. ".d"
local kind = arg[2] or "SQLite"
local ROUNDS = 5
local PLAN = { { 4096, 4000 }, { 65536, 1000 }, { 1048576, 64 } }

os.execute("rm -rf '" .. dir .. "' && mkdir -p '" .. dir .. "'")
local s = assert(spool.open { path = dir, kind = kind })
local monotonic = spool.monotonic

-- n distinct payloads of size bytes (random, so that no two are equal).
local function payloads(n, size)
  local out, b = {}, buffer.new()
  math.randomseed(size)
  for i = 1, n do
    b:reset()
    for _ = 1, size / 8 do b:put(string.char(math.random(0, 255), math.random(0, 255), math.random(0, 255),
      math.random(0, 255), math.random(0, 255), math.random(0, 255), math.random(0, 255), i % 256)) end
    out[i] = b:tostring()
  end
  return out
end

local function median(t)
  table.sort(t)
  return t[math.ceil(#t / 2)]
end

print(("%-8s %12s %12s %8s"):format("size", "string/s", "into/s", "ratio"))
for _, p in ipairs(PLAN) do
  local size, n = p[1], p[2]
  local ids, data = {}, payloads(n, size)
  for i = 1, n do
    ids[i] = spool.id.new()
    assert(s:store(ids[i], data[i]))
  end
  data = nil
  collectgarbage()
  local buf = buffer.new()
  local opts = { into = buf }
  local ways = {
    string = function()
      for i = 1, n do
        local v = assert(s:load(ids[i]))
        if #v ~= size then error("short load") end
      end
    end,
    into = function()
      for i = 1, n do
        buf:reset()
        assert(s:load(ids[i], opts))
        if #buf ~= size then error("short load") end
      end
    end,
  }
  local rate = { string = {}, into = {} }
  for round = 1, ROUNDS do
    local order = round % 2 == 1 and { "string", "into" } or { "into", "string" }
    for _, w in ipairs(order) do
      local t0 = monotonic()
      ways[w]()
      rate[w][#rate[w] + 1] = n / (monotonic() - t0)
    end
  end
  local a, b = median(rate.string), median(rate.into)
  print(("%-8d %12.0f %12.0f %7.2fx"):format(size, a, b, b / a))
  assert(s:remove_many(ids))
end
s:shutdown()
os.execute("rm -rf '" .. dir .. "'")
