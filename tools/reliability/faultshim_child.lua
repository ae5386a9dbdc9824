-- faultshim_child.lua: a process that tools/reliability/faultshim.lua
-- runs under the LD_PRELOAD fault shim (csrc/test/faultshim.c).
--
--   luajit faultshim_child.lua store   DIR JOURNAL SENTINEL STOP SEED FLUSH
--   luajit faultshim_child.lua compact DIR JOURNAL SENTINEL STOP SEED FLUSH
--
-- "store" stores new entries (bytes derived from a seed, as in
-- crash_child.lua) until the STOP file appears, one line per event in
-- JOURNAL (one write each, flushed):
--
--   READY                                  the spool is open
--   S- <id> <len> <seed>                   a store starts
--   S <id> <len> <seed> <ms> <before> <after>   it returned true
--   F <id> <kind> <amb> <ms> <before> <after>   it returned nil, err
--   L <kind> <latched> <next-kind>         after a `full` or `io` failure:
--                                          health().error_latched, and the
--                                          kind of the very next store
--                                          (expected: unhealthy)
--   O <ok|kind>                            the spool was reopened
--   X                                      exiting without closing (exit)
--
-- <before>/<after>: the sentinel's mode word when the call started and
-- when it returned ("-" when there was none); <ms>: the call's duration;
-- <amb>: 1 when err.ambiguous.  After a latch the child waits until the
-- sentinel is gone, shuts its handle down and opens the spool again.
--
-- "compact" runs s:compact() in a loop (20 ms apart), journaling
-- "C ok <ms>" or "C <kind> <ms>"; an error that is not a typed
-- spool.Error is journaled as "C untyped <text>".
local mode, dir, journal_path, sentinel, stop, seed, flush, after_latch = ...
assert(mode == "store" or mode == "compact",
    "usage: faultshim_child.lua store|compact DIR JOURNAL SENTINEL STOP SEED FLUSH [reopen|exit]")
-- "exit": after a latch, once the sentinel is gone, journal "X" and exit
-- without closing the spool (as a process that dies right after the
-- failure): the next open recovers the WAL from the file, ambiguous
-- commit frames included.
local exit_after_latch = after_latch == "exit"
seed = tonumber(seed) or 1
flush = flush == "1"
math.randomseed(seed)
local random = math.random

local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local derive = assert(loadfile(here .. "/crash_child.lua"))("--lib").derive
local spool = require "spool"

local has_ffi, ffi = pcall(require, "ffi")
if has_ffi then
    pcall(ffi.cdef, "int poll(struct pollfd *fds, unsigned long nfds, int timeout);")
end
local function sleep_ms(ms)
    if has_ffi then
        ffi.C.poll(nil, 0, ms)
    else
        os.execute(("sleep %.3f"):format(ms / 1000))
    end
end

local function exists(path)
    local f = io.open(path, "r")
    if f then
        f:close()
        return true
    end
    return false
end

-- The sentinel's mode word, "-" when it is absent.
local function fault_mode()
    local f = io.open(sentinel, "r")
    if not f then
        return "-"
    end
    local line = f:read("*l") or ""
    f:close()
    return line:match("^(%S+)") or "-"
end

local journal = assert(io.open(journal_path, "a"))
local function log(line)
    journal:write(line .. "\n")
    journal:flush()
end

local config = {
    path = dir, kind = os.getenv("SPOOL_KIND") or "SQLite", flush = flush, min_free_space = 0, min_free_inodes = 0,
    store_deadline = 5, reserve_bytes = 256 * 1024,
}

-- Opens the spool, retrying (a fault may be on) until it opens or STOP.
local function open()
    while true do
        local s, err = spool.open(config)
        if s then
            return s
        end
        log("O " .. tostring(err and err.kind))
        if exists(stop) then
            return nil
        end
        sleep_ms(20)
    end
end

local function ms_since(t0)
    return ("%.2f"):format((spool.monotonic() - t0) * 1000)
end

local s = open()
if not s then
    os.exit(3)
end
log("READY")

if mode == "compact" then
    while not exists(stop) do
        local t0 = spool.monotonic()
        local ok, res, err = pcall(s.compact, s)
        if not ok then
            log("C untyped " .. tostring(res):gsub("\n", " "))
        elseif res then
            log("C ok " .. ms_since(t0))
        else
            log(("C %s %s"):format(tostring(err and err.kind), ms_since(t0)))
        end
        sleep_ms(20)
    end
    s:shutdown()
    os.exit(0)
end

local function new_entry()
    local id = tostring(spool.id.new())
    local len = random() < 0.5 and random(1, 16384) or random(1, 512)
    return id, len, random(1, 2147483646)
end

while not exists(stop) do
    local id, len, dseed = new_entry()
    local rec = ("%s %d %d"):format(id, len, dseed)
    local data = derive(len, dseed)
    log("S- " .. rec)
    local before = fault_mode()
    local t0 = spool.monotonic()
    local ok, err = s:store(id, data)
    local ms = ms_since(t0)
    local after = fault_mode()
    if ok == true then
        log(("S %s %s %s %s"):format(rec, ms, before, after))
    else
        local kind = type(err) == "table" and err.kind or "untyped:" .. tostring(err)
        log(("F %s %s %d %s %s %s"):format(id, kind, (type(err) == "table" and err.ambiguous) and 1 or 0, ms, before, after))
        if kind == "full" or kind == "io" then
            local latched = s:health().error_latched and 1 or 0
            -- The very next store must be refused by the gate.
            local id2, len2, seed2 = new_entry()
            log(("S- %s %d %d"):format(id2, len2, seed2))
            local ok2, err2 = s:store(id2, derive(len2, seed2))
            if ok2 then
                log(("S %s %d %d 0 %s %s"):format(id2, len2, seed2, fault_mode(), fault_mode()))
            else
                log(("F %s %s %d 0 %s %s"):format(id2, tostring(err2.kind), err2.ambiguous and 1 or 0, fault_mode(), fault_mode()))
            end
            log(("L %s %d %s"):format(kind, latched, ok2 and "stored" or tostring(err2.kind)))
            -- Wait for the disk to come back, then start afresh.
            while fault_mode() ~= "-" and not exists(stop) do
                sleep_ms(5)
            end
            if exit_after_latch then
                log("X")
                journal:close()
                os.exit(0, false)
            end
            s:shutdown()
            s = open()
            if not s then
                break
            end
            log("O ok")
        end
    end
end
if s then
    s:shutdown()
end
os.exit(0)
