-- rocks_background.lua: a RocksDB spool whose background flushes fail.
-- Run by tools/run-reliability when RocksDB is built, or directly:
--
--   luajit tools/reliability/rocks_background.lua SHIM.so
--
-- A child process stores through the real module with LD_PRELOAD=SHIM.so
-- (csrc/test/faultshim.c) and a small memtable; then the shim fails every
-- sync under the spool with EIO, so that the next memtable flush, which
-- runs in RocksDB's background, fails.  RocksDB then stalls every write
-- for good (7.8.3 answers them "Write stall").  Checked here:
--   - the first store that meets the stall fails with `io` at once, naming
--     the failed background work, instead of waiting out its deadline;
--   - the gate is latched (health().error_latched, and the next store
--     answers `unhealthy`); health().backend.background_errors counts it;
--   - reopened without the shim, every acknowledged store loads with its
--     bytes and no failed store is there.
-- Three rounds (LONG=1: 20).  Then slow background work (every sync
-- 1 s): a stalled store waits until its own deadline and answers
-- caller_deadline_exceeded; the stall clears once the disk is fast.
-- Prints TAP.
local spool = require "spool"

local shim = assert(arg[1], "usage: rocks_background.lua SHIM.so")
local lua = os.getenv("FAULT_LUA") or "luajit"

local function sh_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local n = 0
local failures = 0
local function ok(cond, what)
    n = n + 1
    if not cond then failures = failures + 1 end
    print((cond and "ok " or "not ok ") .. n .. " - " .. what)
end

local function body_of(hex)
    return (hex .. "\n"):rep(100) -- 3.3 KB, distinct per entry
end

if arg[2] == "--child" then
    -- The child: stores, turns the fault on, stores until a failure.
    local dir, sentinel = arg[3], arg[4]
    local s = assert(spool.open { path = dir, kind = "RocksDB", store_deadline = 10,
        rocks_params = { write_buffer_size = 65536 } })
    local function store()
        local id = spool.id.new()
        local t0 = spool.monotonic()
        local done, err = s:store(id, body_of(tostring(id)))
        if done then
            print("ack " .. tostring(id))
        else
            print(("fail %s %s %.3f %s"):format(tostring(id), err.kind, spool.monotonic() - t0,
                tostring(err):gsub("\n", " ")))
        end
        io.stdout:flush()
        return done
    end
    for _ = 1, 40 do assert(store()) end
    local f = assert(io.open(sentinel .. ".tmp", "w"))
    f:write("EIO sync\n")
    f:close()
    assert(os.rename(sentinel .. ".tmp", sentinel))
    local failed = false
    for _ = 1, 2000 do
        if not store() then failed = true break end
    end
    local h = s:health()
    print(("health %s %d"):format(tostring(h.error_latched), h.backend.background_errors or -1))
    if failed then store() end -- the one after: the gate's answer
    os.remove(sentinel)
    s:shutdown()
    return
end

if arg[2] == "--slow-child" then
    -- The child: every background sync takes 1 s, so that writes stall
    -- behind slow flushes; stores with a 0.3 s timeout.
    local dir, sentinel = arg[3], arg[4]
    local s = assert(spool.open { path = dir, kind = "RocksDB",
        rocks_params = { write_buffer_size = 65536, level0_stop_writes_trigger = 1 } })
    local f = assert(io.open(sentinel .. ".tmp", "w"))
    f:write("slow-sync 1000\n")
    f:close()
    assert(os.rename(sentinel .. ".tmp", sentinel))
    local timed_out = 0
    for _ = 1, 3000 do
        local id = spool.id.new()
        local t0 = spool.monotonic()
        local done, err = s:store(id, body_of(tostring(id)), { timeout = 0.3 })
        if done then
            print("ack " .. tostring(id))
        else
            print(("fail %s %s %.3f %s"):format(tostring(id), err.kind, spool.monotonic() - t0,
                tostring(err):gsub("\n", " ")))
            if err.kind == "caller_deadline_exceeded" then timed_out = timed_out + 1 end
            if timed_out == 3 then break end
        end
        io.stdout:flush()
    end
    os.remove(sentinel)
    local t0 = spool.monotonic()
    local later = 0
    while later < 20 and spool.monotonic() - t0 < 30 do -- the stall clears once syncs are fast again
        local id = spool.id.new()
        if s:store(id, body_of(tostring(id))) then
            print("ack " .. tostring(id))
            later = later + 1
        end
    end
    print(("later %d %s"):format(later, tostring(s:stats().backend.stalled_writes)))
    s:shutdown()
    return
end

-- One round: a child that stores until the failure, then the checks.
-- Which answer the failing store gets depends on timing: mostly the
-- stall behind the failed flush (which, unfixed, would wait out its
-- 10 s deadline), sometimes RocksDB's own I/O error; both must be io
-- and at once.  Returns whether it met the stall.
local function round(r)
    local p = io.popen("mktemp -d \"${TMPDIR:-/tmp}/spool-rocksbg-XXXXXX\"")
    local work = p:read("*l")
    p:close()
    local dir, sentinel = work .. "/spool", work .. "/fault"
    local cmd = ("SPOOL_FAULT_DIR=%s SPOOL_FAULT_SENTINEL=%s LD_PRELOAD=%s timeout -k 2 120 %s %s %s --child %s %s 2>&1")
        :format(sh_quote(dir), sh_quote(sentinel), sh_quote(shim), sh_quote(lua), sh_quote(arg[0]), sh_quote(shim),
            sh_quote(dir), sh_quote(sentinel))
    local acked, failed, lines, health = {}, {}, {}, nil
    for line in io.popen(cmd):lines() do
        lines[#lines + 1] = line
        local hex = line:match("^ack (%x+)$")
        if hex then acked[#acked + 1] = hex end
        local fhex, kind, secs, msg = line:match("^fail (%x+) (%S+) (%S+) (.*)$")
        if fhex then failed[#failed + 1] = { id = fhex, kind = kind, secs = tonumber(secs), msg = msg } end
        local latched, bg = line:match("^health (%S+) (%-?%d+)$")
        if latched then health = { latched = latched == "true", background_errors = tonumber(bg) } end
    end

    local first, after = failed[1], failed[2]
    ok(#acked >= 40 and first ~= nil, ("stores were acknowledged (%d), then one failed"):format(#acked))
    if not first then
        io.stderr:write(table.concat(lines, "\n"), "\n")
    else
        ok(first.kind == "io" and (first.msg:find("failed flush or compaction", 1, true) ~= nil
            or first.msg:find("IO error", 1, true) ~= nil),
            ("round %d: it failed as io, naming the failed background work: %s"):format(r, first.msg))
        ok(first.secs < 2, ("at once (%.3f s), not after its 10 s deadline"):format(first.secs))
    end
    ok(health and health.latched and health.background_errors >= 1,
        ("the gate latched and health counts the background errors (%s)"):format(
            health and tostring(health.background_errors) or "no health line"))
    ok(after ~= nil and after.kind == "unhealthy", "the next store answers unhealthy: " .. (after and after.kind or "none"))

    local s = assert(spool.open { path = dir })
    local lost, wrong = 0, 0
    for _, hex in ipairs(acked) do
        local data = s:load(hex)
        if data == nil then lost = lost + 1 elseif data ~= body_of(hex) then wrong = wrong + 1 end
    end
    ok(lost == 0 and wrong == 0, ("every acknowledged store loads with its bytes (%d lost, %d wrong)"):format(lost, wrong))
    local present = 0
    for _, f in ipairs(failed) do
        if s:load(f.id) ~= nil then present = present + 1 end
    end
    ok(present == 0, ("no failed store is there (%d are)"):format(present))
    s:shutdown()
    os.execute("rm -rf " .. sh_quote(work))
    return first ~= nil and first.msg:find("failed flush or compaction", 1, true) ~= nil
end

-- Slow background work: a stalled store waits for RocksDB until its own
-- deadline, then answers caller_deadline_exceeded, typed and on time;
-- once the disk is fast again stores go through; nothing acknowledged is
-- lost and no failed store is there.
local function slow_round()
    local p = io.popen("mktemp -d \"${TMPDIR:-/tmp}/spool-rocksbg-XXXXXX\"")
    local work = p:read("*l")
    p:close()
    local dir, sentinel = work .. "/spool", work .. "/fault"
    local cmd = ("SPOOL_FAULT_DIR=%s SPOOL_FAULT_SENTINEL=%s LD_PRELOAD=%s timeout -k 2 120 %s %s %s --slow-child %s %s 2>&1")
        :format(sh_quote(dir), sh_quote(sentinel), sh_quote(shim), sh_quote(lua), sh_quote(arg[0]), sh_quote(shim),
            sh_quote(dir), sh_quote(sentinel))
    local acked, failed, later, stalled, other = {}, {}, nil, nil, {}
    for line in io.popen(cmd):lines() do
        local hex = line:match("^ack (%x+)$")
        if hex then acked[#acked + 1] = hex end
        local fhex, kind, secs, msg = line:match("^fail (%x+) (%S+) (%S+) (.*)$")
        if fhex then failed[#failed + 1] = { id = fhex, kind = kind, secs = tonumber(secs), msg = msg } end
        local l, st = line:match("^later (%d+) (%S+)$")
        if l then later, stalled = tonumber(l), tonumber(st) end
        if not (hex or fhex or l) then other[#other + 1] = line end
    end
    local typed, on_time = true, true
    for _, f in ipairs(failed) do
        typed = typed and f.kind == "caller_deadline_exceeded" and
            f.msg == "the caller-provided deadline was reached before the spool accepted the write"
        on_time = on_time and f.secs >= 0.29 and f.secs < 0.8
    end
    ok(#failed >= 3 and typed, ("stalled stores answered caller_deadline_exceeded with the reference text (%d)%s")
        :format(#failed, #other > 0 and ": " .. table.concat(other, " | ") or ""))
    ok(on_time, "each at its 0.3 s deadline, not before and not much after")
    ok(later == 20 and stalled and stalled > 0,
        ("stores go through again once the disk is fast (%s), after %s stalled writes"):format(tostring(later),
            tostring(stalled)))
    local s = assert(spool.open { path = dir })
    local lost, present = 0, 0
    for _, hex in ipairs(acked) do
        if s:load(hex) ~= body_of(hex) then lost = lost + 1 end
    end
    for _, f in ipairs(failed) do
        if s:load(f.id) ~= nil then present = present + 1 end
    end
    ok(lost == 0 and present == 0, ("every acknowledged store is there (%d lost), no failed one (%d present)")
        :format(lost, present))
    s:shutdown()
    os.execute("rm -rf " .. sh_quote(work))
end

local long = (os.getenv("LONG") or "") ~= "" and os.getenv("LONG") ~= "0"
slow_round()
local stalls, rounds = 0, long and 20 or 3
for r = 1, rounds do
    if round(r) then stalls = stalls + 1 end
end
print(("# rocks_background figures: %d rounds, %d met the stall, %d RocksDB's own error"):format(rounds, stalls,
    rounds - stalls))
print("1.." .. n)
os.exit(failures == 0 and 0 or 1)
