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
-- Three rounds (LONG=1: 20).  Prints TAP.
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

local long = (os.getenv("LONG") or "") ~= "" and os.getenv("LONG") ~= "0"
local stalls, rounds = 0, long and 20 or 3
for r = 1, rounds do
    if round(r) then stalls = stalls + 1 end
end
print(("# rocks_background figures: %d rounds, %d met the stall, %d RocksDB's own error"):format(rounds, stalls,
    rounds - stalls))
print("1.." .. n)
os.exit(failures == 0 and 0 or 1)
