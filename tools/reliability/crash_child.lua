-- crash_child.lua: the process that tools/reliability/crash.lua kills.
--
--   luajit tools/reliability/crash_child.lua DIR JOURNAL LIVE SEED [TARGET]
--
-- Opens the spool in DIR and loops until it is killed: stores new entries
-- (1 B .. 64 KiB, bytes derived from a seed, half of them with
-- force_sync) and removes earlier ones - those listed in LIVE (left by
-- the earlier rounds and verified present by the parent) and its own.
-- Every event is appended to JOURNAL, one line each, written with one
-- write(2) and flushed before the next step:
--
--   S- <id> <len> <seed>   before a store starts (the store is in doubt)
--   S <id> <len> <seed>    after the store returned true (acknowledged)
--   R- <id>                before a remove starts
--   R <id>                 after the remove returned true (acknowledged)
--   RF <id>                the remove returned false: an entry that was
--                          acknowledged and verified was not there (lost)
--   E <op> <kind> <text>   a call failed (unexpected: nothing competes)
--
-- Loaded with the single argument "--lib" it returns {derive = ...}, so
-- that the parent derives the same bytes.
local M = {}

-- The bytes of an entry: `len` bytes from the Park-Miller generator
-- seeded with `seed` (1 .. 2^31-2).  Exact in doubles, so every Lua
-- derives the same bytes; with LuaJIT's FFI it is fast enough to derive
-- every live entry at every check.
local has_ffi, ffi = pcall(require, "ffi")
local floor = math.floor

if has_ffi then
    local buf, cap = nil, 0
    function M.derive(len, seed)
        if len > cap then
            cap = len
            buf = ffi.new("uint8_t[?]", cap)
        end
        local x = seed
        for i = 0, len - 1 do
            x = (x * 16807) % 2147483647
            buf[i] = x % 256
        end
        return ffi.string(buf, len)
    end
else
    local char, concat, unpack = string.char, table.concat, unpack or table.unpack
    function M.derive(len, seed)
        local x, parts, t, n = seed, {}, {}, 0
        for _ = 1, len do
            x = (x * 16807) % 2147483647
            n = n + 1
            t[n] = x % 256
            if n == 4096 then
                parts[#parts + 1] = char(unpack(t, 1, n))
                n = 0
            end
        end
        if n > 0 then
            parts[#parts + 1] = char(unpack(t, 1, n))
        end
        return concat(parts)
    end
end

if ... == "--lib" then
    return M
end

local dir, journal_path, live_path, seed, target = ...
assert(dir and journal_path and live_path and seed, "usage: crash_child.lua DIR JOURNAL LIVE SEED [TARGET]")
seed = tonumber(seed)
target = tonumber(target) or 200
math.randomseed(seed)
local random = math.random

local spool = require "spool"

local journal = assert(io.open(journal_path, "a"))
local function log(line)
    journal:write(line .. "\n") -- one buffer, one write(2) at the flush
    journal:flush()
end

-- The entries the earlier rounds left, verified present by the parent.
local live, n_live = {}, 0
local lf = io.open(live_path, "r")
if lf then
    for line in lf:lines() do
        local id = line:match("^(%x+)")
        if id then
            n_live = n_live + 1
            live[n_live] = id
        end
    end
    lf:close()
end

local s, err = spool.open { path = dir, kind = os.getenv("SPOOL_KIND") or "SQLite", min_free_space = 0,
                            min_free_inodes = 0 }
if not s then
    log(("E open %s %s"):format(err.kind, tostring(err):gsub("\n", " ")))
    os.exit(3)
end

local function size()
    if random() < 0.5 then
        return random(1, 65536)
    end
    return floor(2 ^ (random() * 16)) -- log-uniform: many small ones too
end

while true do
    if n_live > 0 and (n_live > target or random() < 0.3) then
        local i = random(1, n_live)
        local id = live[i]
        live[i] = live[n_live]
        live[n_live] = nil
        n_live = n_live - 1
        log("R- " .. id)
        local ok, rerr = s:remove(id)
        if ok == true then
            log("R " .. id)
        elseif ok == false then
            log("RF " .. id)
        else
            log(("E remove %s %s"):format(tostring(rerr and rerr.kind), tostring(rerr):gsub("\n", " ")))
        end
    else
        local id = tostring(spool.id.new())
        local len, dseed = size(), random(1, 2147483646)
        local rec = ("%s %d %d"):format(id, len, dseed)
        log("S- " .. rec)
        local ok, serr = s:store(id, M.derive(len, dseed), { force_sync = random() < 0.5 })
        if ok == true then
            log("S " .. rec)
            n_live = n_live + 1
            live[n_live] = id
        else
            log(("E store %s %s"):format(tostring(serr and serr.kind), tostring(serr):gsub("\n", " ")))
        end
    end
end
