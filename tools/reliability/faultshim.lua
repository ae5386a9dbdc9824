-- faultshim.lua: real syscalls failing under a real process.  Run by
-- tools/run-reliability (short) or directly:
--
--   luajit tools/reliability/faultshim.lua SHIM.so [WORKDIR]
--
-- Each scenario starts tools/reliability/faultshim_child.lua, which
-- stores through the real module with LD_PRELOAD=SHIM.so (built from
-- csrc/test/faultshim.c), and for some scenarios a second such process
-- that runs s:compact() in a loop; then for each round it leaves the disk
-- healthy for a while, writes the sentinel (ENOSPC, EIO, EIO on the syncs
-- only, or slow-sync), waits, and removes it again.  Afterwards it opens
-- the spool here, without the shim, and checks the contract:
--   - a store that ran wholly under ENOSPC / EIO failed with `full` / `io`
--     (or waited its turn behind compact and answered a lock-wait kind);
--     none of them succeeded;
--   - after each `full` or `io` failure health().error_latched is true and
--     the next store answers `unhealthy`;
--   - every acknowledged store loads with exactly its bytes;
--   - every failed store is absent, unless err.ambiguous said the commit
--     may have happened: then it is absent or has exactly its bytes;
--   - enumerate finds nothing else and nothing corrupt; verify() is ok
--     and the sqlite3 CLI's integrity_check says ok;
--   - with slow-sync <ms> and flush = true every store that ran wholly
--     under it took at least <ms> (the shim reaches the commit's sync);
--     with flush = false the median store stays below <ms>;
--   - every failure of compact is a typed error.
-- Prints TAP and a "# faultshim figures:" line; exits non-zero on failure.
--
-- Environment: FAULT_ROUNDS (rounds per scenario, default 3; LONG=1: 30),
-- SEED, FAULT_LUA (the children's interpreter, default: luajit),
-- SPOOL_KIND (the backend, default SQLite; for LocalDisk, whose lock
-- admits one process, the scenarios run without the compacting process
-- and without the sqlite3 integrity check).
local spool = require "spool"

local shim = assert(arg[1], "usage: faultshim.lua SHIM.so [WORKDIR]")
local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local child = here .. "/faultshim_child.lua"
local derive = assert(loadfile(here .. "/crash_child.lua"))("--lib").derive

local long = (os.getenv("LONG") or "") ~= "" and os.getenv("LONG") ~= "0"
local rounds = tonumber(os.getenv("FAULT_ROUNDS") or "") or (long and 30 or 3)
local seed = tonumber(os.getenv("SEED") or "") or (os.time() % 1000003)
local lua = os.getenv("FAULT_LUA") or "luajit"
local kind = os.getenv("SPOOL_KIND") or "SQLite"
math.randomseed(seed)

local function sh_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local workdir = arg[2]
local own_workdir = false
if not workdir then
    local p = io.popen("mktemp -d \"${TMPDIR:-/tmp}/spool-faultshim-XXXXXX\"")
    workdir = p:read("*l")
    p:close()
    own_workdir = true
end
assert(workdir and workdir ~= "", "no work directory")

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

local n, failed = 0, 0
local function ok(cond, fmt, ...)
    n = n + 1
    if not cond then
        failed = failed + 1
    end
    print(("%sok %d - " .. fmt):format(cond and "" or "not ", n, ...))
    io.stdout:flush()
    return cond
end
local notes = 0
local function note(fmt, ...)
    notes = notes + 1
    if notes <= 30 then
        print("# " .. fmt:format(...))
    end
end

-- Writes the sentinel atomically (rename), or removes it (text nil).
local sentinel = workdir .. "/sentinel"
local function set_fault(text)
    if text == nil then
        os.remove(sentinel)
        return
    end
    local tmp = sentinel .. ".tmp"
    local f = assert(io.open(tmp, "w"))
    f:write(text, "\n")
    f:close()
    assert(os.rename(tmp, sentinel))
end

local function read_lines(path)
    local out = {}
    local f = io.open(path, "r")
    if f then
        for line in f:lines() do
            out[#out + 1] = line
        end
        f:close()
    end
    return out
end

local function integrity(dir)
    local p = io.popen("sqlite3 " .. sh_quote(dir .. "/spool.db") .. " 'PRAGMA integrity_check' 2>&1")
    local text = p:read("*a")
    p:close()
    return text:gsub("%s+$", "")
end

local fig = {
    stores_acked = 0, stores_failed = 0, fault_failures = 0, latches = 0, ambiguous = 0,
    ambiguous_present = 0, lockwait = 0, compacts = 0, compact_failures = 0, checked = 0,
    lost = 0, wrong = 0, slow_stores = 0, slow_min_ms = math.huge, fast_median_ms = 0,
}

local scenarios = {
    { name = "ENOSPC, flush = false, compact", fault = "ENOSPC", expect = "full", flush = false, compact = true },
    { name = "ENOSPC, flush = true", fault = "ENOSPC", expect = "full", flush = true },
    { name = "EIO, flush = false", fault = "EIO", expect = "io", flush = false },
    { name = "EIO, flush = true, compact", fault = "EIO", expect = "io", flush = true, compact = true },
    -- Only the syncs fail: the commit frame is in the WAL, so the failed
    -- store is ambiguous and may come back at the next open.
    { name = "EIO on syncs only, flush = true, compact", fault = "EIO sync", expect = "io", flush = true, compact = true },
    -- The same, but the storing process exits after each latch without
    -- closing the spool and a new one opens it: the open recovers the WAL
    -- from the file, so an ambiguous commit may now be present.
    { name = "EIO on syncs only, flush = true, exit after the latch", fault = "EIO sync", expect = "io",
      flush = true, exit_after = true },
    { name = "slow-sync 100 ms, flush = true, compact", fault = "slow-sync 100", slow = 100, flush = true, compact = true },
    { name = "slow-sync 100 ms, flush = false", fault = "slow-sync 100", slow = 100, flush = false },
}

if kind ~= "SQLite" then
    for _, sc in ipairs(scenarios) do
        sc.compact = nil
        sc.name = sc.name:gsub(", compact", "") .. " (" .. kind .. ")"
        -- A durable LocalDisk store syncs two to five times (the file and
        -- the directories): a shorter delay lets whole stores fit into
        -- the fault's window.
        if sc.slow then
            sc.slow = 15
            sc.fault = "slow-sync 15"
            sc.name = sc.name:gsub("100 ms", "15 ms")
        end
    end
end

local lockwait_kind = { backpressure_timeout = true, busy = true, caller_deadline_exceeded = true }

local function run(sc, index)
    local dir = ("%s/spool%d"):format(workdir, index)
    local journal = ("%s/journal%d"):format(workdir, index)
    local cjournal = ("%s/cjournal%d"):format(workdir, index)
    local stop = ("%s/stop%d"):format(workdir, index)
    os.remove(journal)
    os.remove(cjournal)
    os.remove(stop)
    set_fault(nil)
    -- The spool directory exists before the children start, so that the
    -- shim resolves it once at load.
    os.execute("mkdir -p " .. sh_quote(dir))
    local function start(mode, jpath, s)
        local cmd = ("LD_PRELOAD=%s SPOOL_FAULT_DIR=%s SPOOL_FAULT_SENTINEL=%s %s %s %s %s %s %s %s %d %s %s 2>&1"):format(
            sh_quote(shim), sh_quote(dir), sh_quote(sentinel), lua, sh_quote(child), mode, sh_quote(dir),
            sh_quote(jpath), sh_quote(sentinel), sh_quote(stop), s, sc.flush and "1" or "0",
            sc.exit_after and "exit" or "reopen")
        return assert(io.popen(cmd, "r"))
    end
    -- Waits until `want` processes in all have journaled READY in path.
    local function await_ready(path, want)
        local t0 = spool.monotonic()
        while spool.monotonic() - t0 < 20 do
            local got = 0
            for _, l in ipairs(read_lines(path)) do
                if l == "READY" then
                    got = got + 1
                end
            end
            if got >= want then
                return
            end
            sleep_ms(10)
        end
    end
    local outputs = {}
    local function finish(p)
        outputs[#outputs + 1] = p:read("*a")
        p:close()
    end
    local compactor
    if sc.compact then
        compactor = start("compact", cjournal, seed + 100 + index)
        await_ready(cjournal, 1)
    end
    local storer = start("store", journal, seed + index)
    await_ready(journal, 1)
    for r = 1, rounds do
        sleep_ms(math.random(200, 350))
        set_fault(sc.fault)
        sleep_ms(math.random(300, 450))
        set_fault(nil)
        if sc.exit_after then
            -- It exits once it has seen the latch and the sentinel gone
            -- (or at STOP, if the round caught no store).
            assert(io.open(stop, "w")):close()
            finish(storer)
            os.remove(stop)
            if r < rounds then
                storer = start("store", journal, seed + index + 1000 * r)
                await_ready(journal, r + 1)
            else
                storer = nil
            end
        end
    end
    sleep_ms(200)
    assert(io.open(stop, "w")):close()
    if storer then
        finish(storer)
    end
    if compactor then
        finish(compactor)
    end

    -- Read the store journal.
    local entries, order = {}, {}
    local fault_failures, fault_successes, bad_kind, latches, bad_latch = 0, 0, 0, 0, 0
    local slow_ms, untyped, reopen_fail, n_amb = {}, 0, 0, 0
    local fault_word = sc.fault:match("^(%S+)")
    local lines = read_lines(journal)
    for _, line in ipairs(lines) do
        local tag, rest = line:match("^(%S+) ?(.*)$")
        if tag == "S-" then
            local id, len, dseed = rest:match("^(%x+) (%d+) (%d+)$")
            entries[id] = { st = "doubt", len = tonumber(len), seed = tonumber(dseed) }
            order[#order + 1] = id
        elseif tag == "S" then
            local id, ms, before, after = rest:match("^(%x+) %d+ %d+ (%S+) (%S+) (%S+)$")
            entries[id].st = "acked"
            fig.stores_acked = fig.stores_acked + 1
            local whole = before == fault_word and after == fault_word
            if whole and sc.slow then
                slow_ms[#slow_ms + 1] = tonumber(ms)
            end
            if whole and sc.expect then
                fault_successes = fault_successes + 1
                note("%s: %s stored while %s was on throughout", sc.name, id, sc.fault)
            end
        elseif tag == "F" then
            local id, kind, amb_flag, _, before, after = rest:match("^(%x+) (%S+) (%d) (%S+) (%S+) (%S+)$")
            local e = entries[id]
            e.st, e.kind, e.amb = "failed", kind, amb_flag == "1"
            fig.stores_failed = fig.stores_failed + 1
            if e.amb then
                n_amb = n_amb + 1
                fig.ambiguous = fig.ambiguous + 1
            end
            if kind:match("^untyped") then
                untyped = untyped + 1
                note("%s: untyped failure %s", sc.name, kind)
            end
            if sc.expect and before == fault_word and after == fault_word and kind ~= "unhealthy" then
                if kind == sc.expect then
                    fault_failures = fault_failures + 1
                elseif lockwait_kind[kind] then
                    fig.lockwait = fig.lockwait + 1
                else
                    bad_kind = bad_kind + 1
                    note("%s: a store under %s failed with %s, not %s", sc.name, sc.fault, kind, sc.expect)
                end
            end
        elseif tag == "L" then
            local kind, latched, nextkind = rest:match("^(%S+) (%d) (%S+)$")
            latches = latches + 1
            if kind ~= sc.expect or latched ~= "1" or nextkind ~= "unhealthy" then
                bad_latch = bad_latch + 1
                note("%s: a store under %s answered %s (expected %s), the gate latched=%s, the next store answered %s",
                    sc.name, sc.fault, kind, tostring(sc.expect), latched, nextkind)
            end
        elseif tag == "O" and rest ~= "ok" then
            reopen_fail = reopen_fail + 1
        end
    end
    fig.fault_failures = fig.fault_failures + fault_failures
    fig.latches = fig.latches + latches

    -- The compactor's journal.
    local c_untyped, c_ok, c_fail = 0, 0, 0
    for _, line in ipairs(read_lines(cjournal)) do
        local what = line:match("^C (%S+)")
        if what == "ok" then
            c_ok = c_ok + 1
        elseif what == "untyped" then
            c_untyped = c_untyped + 1
            note("%s: compact raised %s", sc.name, line)
        elseif what then
            c_fail = c_fail + 1
        end
    end
    fig.compacts = fig.compacts + c_ok + c_fail
    fig.compact_failures = fig.compact_failures + c_fail

    -- Reopen without the shim and check every id.
    local lost, wrong, present_failed, amb_present, checked = 0, 0, 0, 0, 0
    local s, oerr = spool.open { path = dir, kind = kind, min_free_space = 0, min_free_inodes = 0 }
    local verified, enum_bad = false, 0
    if s then
        for _, id in ipairs(order) do
            local e = entries[id]
            local data, lerr = s:load(id)
            checked = checked + 1
            local good = data ~= nil and data == derive(e.len, e.seed)
            if data ~= nil and not good then
                wrong = wrong + 1
                note("%s: %s (%s) loads with wrong bytes", sc.name, id, e.st)
            elseif data == nil and lerr.kind ~= "not_found" then
                wrong = wrong + 1
                note("%s: %s (%s) load failed: %s", sc.name, id, e.st, tostring(lerr))
            elseif e.st == "acked" and not good then
                lost = lost + 1
                note("%s: acknowledged %s is lost", sc.name, id)
            elseif e.st == "failed" and good then
                if e.amb then
                    amb_present = amb_present + 1
                else
                    present_failed = present_failed + 1
                    note("%s: %s failed (%s, not ambiguous) but is present", sc.name, id, e.kind)
                end
            elseif e.st == "doubt" then
                note("%s: %s has no outcome in the journal", sc.name, id)
                wrong = wrong + 1
            end
        end
        local count, eerr = s:enumerate(function(en)
            if en.corrupt or not en.id or not entries[tostring(en.id)] then
                enum_bad = enum_bad + 1
            end
        end, { include_data = false })
        if not count then
            enum_bad = enum_bad + 1
            note("%s: enumerate failed: %s", sc.name, tostring(eerr))
        end
        local v = s:verify()
        verified = v and v.ok
        s:shutdown()
    end
    fig.checked = fig.checked + checked
    fig.lost = fig.lost + lost
    fig.wrong = fig.wrong + wrong
    fig.ambiguous_present = fig.ambiguous_present + amb_present

    local label = sc.name
    ok(s ~= nil, "%s: the spool reopens without the shim (%s)", label, tostring(oerr or "ok"))
    local child_out = table.concat(outputs)
    ok(child_out == "", "%s: the children printed nothing%s", label, child_out == "" and "" or ": " .. child_out:sub(1, 300))
    ok(lost == 0 and wrong == 0,
        "%s: every acknowledged store loads with its bytes, none wrong (%d checked, %d lost, %d wrong)",
        label, checked, lost, wrong)
    ok(present_failed == 0,
        "%s: every failed store is absent unless ambiguous (%d ambiguous, %d of them present)",
        label, n_amb, amb_present)
    ok(enum_bad == 0 and verified, "%s: enumerate finds only journaled, sound entries; verify() ok", label)
    if kind == "SQLite" then
        local ic = integrity(dir)
        ok(ic == "ok", "%s: integrity_check: %s", label, ic)
    end
    ok(untyped == 0 and c_untyped == 0, "%s: every failure is typed (compact: %d ok, %d failed)", label, c_ok, c_fail)
    if sc.compact then
        ok(c_ok + c_fail > 0, "%s: compact ran concurrently (%d runs)", label, c_ok + c_fail)
    end
    if sc.expect then
        ok(fault_successes == 0 and bad_kind == 0,
            "%s: no store succeeded under the fault; each answered %s (%d) or waited behind compact (%d wrong kinds)",
            label, sc.expect, fault_failures, bad_kind)
        ok(latches >= rounds and bad_latch == 0,
            "%s: each round failed a store with %s, latched the gate, and the next store answered unhealthy (%d latches, %d not)",
            label, sc.expect, latches, bad_latch)
    end
    if sc.slow then
        table.sort(slow_ms)
        if sc.flush then
            local min = slow_ms[1] or 0
            fig.slow_stores = fig.slow_stores + #slow_ms
            fig.slow_min_ms = math.min(fig.slow_min_ms, min)
            ok(#slow_ms >= rounds and min >= sc.slow * 0.95,
                "%s: every store under slow-sync took >= %d ms (%d stores, shortest %.1f ms)",
                label, sc.slow, #slow_ms, min)
        else
            local median = slow_ms[math.max(1, math.floor((#slow_ms + 1) / 2))] or math.huge
            fig.fast_median_ms = median
            ok(#slow_ms > 0 and median < sc.slow,
                "%s: without flush the commits do not sync: median store under slow-sync %.2f ms (%d stores)",
                label, median, #slow_ms)
        end
    end
    if reopen_fail > 0 then
        note("%s: %d reopen attempts failed while the fault was on", label, reopen_fail)
    end
end

print(("# faultshim: %d rounds per scenario, seed %d, children under %s"):format(rounds, seed, lua))
local started = spool.monotonic()
for i, sc in ipairs(scenarios) do
    run(sc, i)
end
set_fault(nil)
print(("# faultshim figures: %d scenarios x %d rounds in %.0f s: %d stores acknowledged, %d failed " ..
    "(%d with the fault's kind, %d lock waits behind compact), %d gate latches, %d ambiguous " ..
    "(%d present afterwards), %d ids checked: %d lost, %d wrong; %d compacts (%d failed); " ..
    "slow-sync: %d durable stores, shortest %.1f ms; without flush, median %.2f ms"):format(
    #scenarios, rounds, spool.monotonic() - started, fig.stores_acked, fig.stores_failed, fig.fault_failures,
    fig.lockwait, fig.latches, fig.ambiguous, fig.ambiguous_present, fig.checked, fig.lost, fig.wrong,
    fig.compacts, fig.compact_failures, fig.slow_stores, fig.slow_min_ms == math.huge and 0 or fig.slow_min_ms,
    fig.fast_median_ms))
print("1.." .. n)
if own_workdir then
    os.execute("rm -rf " .. sh_quote(workdir))
end
os.exit(failed == 0 and 0 or 1)
