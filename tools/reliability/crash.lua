-- crash.lua: SIGKILL at random moments, then check that no acknowledged
-- write was lost or undone.  Run through tools/reliability/crash.sh.
--
--   luajit tools/reliability/crash.lua WORKDIR
--
-- Each round starts tools/reliability/crash_child.lua on one spool
-- directory (kept across rounds: the data accumulates as across real
-- restarts), kills it with SIGKILL after a random 50-800 ms, then reopens
-- the spool here and checks it against the child's journal (which also
-- accumulates):
--   - every id whose last record is "S" (store acknowledged) loads with
--     exactly its derived bytes;
--   - every id whose last record is "R" (remove acknowledged) is absent,
--     then and in every later round;
--   - an id whose last record is "S-" or "R-" (killed during the call)
--     may be either; when present its bytes are exact, and from then on
--     it is held to what was found;
--   - enumerate finds no corrupt entry, no id twice, and nothing that
--     was never journaled;
--   - after the spool is closed, `PRAGMA integrity_check` through the
--     sqlite3 CLI says ok.
-- Prints TAP and a "# crash figures:" line; exits non-zero on failure.
--
-- Environment: CRASH_ROUNDS (default 50; LONG=1: 1000), SEED (random
-- seed, printed), CRASH_LUA (interpreter for the child, default luajit),
-- CRASH_TARGET (live entries the child aims at, default 200).
local spool = require "spool"

local workdir = assert(arg[1], "usage: crash.lua WORKDIR")
local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
local child = here .. "/crash_child.lua"
local derive = assert(loadfile(child))("--lib").derive

local long = (os.getenv("LONG") or "") ~= "" and os.getenv("LONG") ~= "0"
local rounds = tonumber(os.getenv("CRASH_ROUNDS") or "") or (long and 1000 or 50)
local seed = tonumber(os.getenv("SEED") or "") or (os.time() % 1000003)
local lua = os.getenv("CRASH_LUA") or "luajit"
local target = tonumber(os.getenv("CRASH_TARGET") or "") or 200
math.randomseed(seed)

local dir = workdir .. "/spool"
local journal_path = workdir .. "/journal"
local live_path = workdir .. "/live"
local childlog = workdir .. "/child.log"
assert(io.open(journal_path, "w")):close()

local function sh_quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

local fig = {
    stores_acked = 0, removes_acked = 0, checked = 0, lost = 0, undone = 0, corrupt = 0,
    phantom = 0, dup = 0, mismatch_in_doubt = 0, load_errors = 0, in_doubt_stores = 0,
    in_doubt_stores_present = 0, in_doubt_removes = 0, in_doubt_removes_done = 0,
    child_errors = 0, early_exits = 0, open_failures = 0, integrity_failures = 0,
    enum_errors = 0, partial_lines = 0, entries_seen = 0,
    kill_in_store = 0, kill_in_remove = 0, kill_between = 0, kill_at_start = 0,
}
local notes, n_notes = {}, 0
local function note(fmt, ...)
    n_notes = n_notes + 1
    if n_notes <= 40 then
        notes[#notes + 1] = "# " .. fmt:format(...)
        print(notes[#notes])
    elseif n_notes == 41 then
        print("# (further details left out)")
    end
end

-- The model: id -> {st = "S" | "S-" | "R" | "R-", len, seed}.  Ids that
-- are known absent (removed, or an in-doubt store found absent) move to
-- `gone`: seeing one of them again is an undone remove.
local model, gone, phantoms = {}, {}, {}
local offset = 0

-- Reads the journal lines the last child appended.  A line cut short by
-- the kill (none expected: each line is one write) is counted, ignored
-- and terminated, so that the next child's lines start clean.
local function read_journal(round)
    local f = assert(io.open(journal_path, "rb"))
    f:seek("set", offset)
    local text = f:read("*a") or ""
    f:close()
    local last_nl = text:match(".*()\n")
    local complete = last_nl and text:sub(1, last_nl) or ""
    if #complete < #text then
        fig.partial_lines = fig.partial_lines + 1
        note("round %d: journal ends in a partial line %q (ignored)", round, text:sub(#complete + 1))
        local a = assert(io.open(journal_path, "ab"))
        a:write("\n")
        a:close()
        offset = offset + #text + 1
    else
        offset = offset + #text
    end
    local last_kind = nil
    for line in complete:gmatch("([^\n]*)\n") do
        local tag, rest = line:match("^(%S+) ?(.*)$")
        if tag == "S-" or tag == "S" then
            local id, len, dseed = rest:match("^(%x+) (%d+) (%d+)$")
            assert(id, "bad journal line: " .. line)
            local m = model[id]
            if tag == "S" then
                fig.stores_acked = fig.stores_acked + 1
            end
            if m == nil then
                m = {}
                model[id] = m
            end
            m.st, m.len, m.seed = tag, tonumber(len), tonumber(dseed)
            last_kind = tag
        elseif tag == "R-" or tag == "R" or tag == "RF" then
            local m = model[rest]
            if m == nil or (tag == "R-" and m.st ~= "S") then
                note("round %d: journal removes %s, which was not live (%s)", round, rest,
                    m and m.st or gone[rest] and "gone" or "unknown")
                fig.child_errors = fig.child_errors + 1
            elseif tag == "RF" then
                -- Acknowledged, verified present at the last check, and
                -- nothing touched it since: the remove found nothing.
                fig.lost = fig.lost + 1
                note("round %d: %s was verified present, then the child's remove found nothing", round, rest)
                m.st = "R"
            else
                m.st = tag
                if tag == "R" then
                    fig.removes_acked = fig.removes_acked + 1
                end
            end
            last_kind = tag
        elseif tag == "E" then
            fig.child_errors = fig.child_errors + 1
            note("round %d: child error: %s", round, rest)
        elseif line ~= "" then
            error("bad journal line: " .. line)
        end
    end
    if last_kind == "S-" then
        fig.kill_in_store = fig.kill_in_store + 1
    elseif last_kind == "R-" then
        fig.kill_in_remove = fig.kill_in_remove + 1
    elseif last_kind == nil then
        fig.kill_at_start = fig.kill_at_start + 1
    else
        fig.kill_between = fig.kill_between + 1
    end
end

-- Starts the child, kills it with SIGKILL after `delay` seconds, waits.
-- Returns its exit status as the shell reports it (137 = SIGKILL).
local function run_child(round, delay)
    local cmd = table.concat({
        ("%s %s %s %s %s %d %d >>%s 2>&1 &"):format(sh_quote(lua), sh_quote(child), sh_quote(dir),
            sh_quote(journal_path), sh_quote(live_path), seed * 10007 + round, target, sh_quote(childlog)),
        "pid=$!",
        "trap 'kill -9 $pid 2>/dev/null; exit 1' INT TERM HUP",
        ("sleep %.3f"):format(delay),
        "kill -9 $pid 2>/dev/null",
        "wait $pid 2>/dev/null",
        "echo \"rc=$?\"",
    }, "\n")
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("*a")
    p:close()
    return tonumber(out:match("rc=(%d+)"))
end

local kind = os.getenv("SPOOL_KIND") or "SQLite"

local function integrity_ok()
    if kind ~= "SQLite" then
        return true, "ok" -- LocalDisk: files, no database to check
    end
    local p = assert(io.popen("sqlite3 " .. sh_quote(dir .. "/spool.db") .. " 'PRAGMA integrity_check' 2>&1"))
    local out = p:read("*a")
    p:close()
    return out:gsub("%s+$", "") == "ok", out
end

-- Reopens the spool and checks it against the model.
local function verify(round)
    local s, err = spool.open { path = dir, kind = kind, min_free_space = 0, min_free_inodes = 0 }
    if not s then
        fig.open_failures = fig.open_failures + 1
        note("round %d: reopening failed: %s (%s)", round, tostring(err), err and err.kind)
        return false
    end
    local loaded, n_live = {}, 0
    for id, m in pairs(model) do
        local data, lerr = s:load(id)
        fig.checked = fig.checked + 1
        if data == nil and not (spool.errors.is(lerr) and lerr.kind == "not_found") then
            fig.load_errors = fig.load_errors + 1
            note("round %d: load %s (%s) failed: %s (%s)", round, id, m.st, tostring(lerr), lerr and lerr.kind)
        end
        local want = nil
        if data ~= nil then
            want = derive(m.len, m.seed)
        end
        if m.st == "S" then
            if data == nil then
                fig.lost = fig.lost + 1
                note("round %d: acknowledged store %s (%d bytes) is missing", round, id, m.len)
            elseif data ~= want then
                fig.lost = fig.lost + 1
                note("round %d: acknowledged store %s has wrong bytes (%d, expected %d)", round, id, #data, m.len)
            end
        elseif m.st == "R" then
            if data ~= nil then
                fig.undone = fig.undone + 1
                note("round %d: acknowledged remove of %s was undone%s", round, id,
                    data == want and "" or " (and its bytes are wrong)")
                m.st = "S" -- counted once; from now on it is held to being there
            end
        else -- "S-" or "R-": killed during the call
            local is_store = m.st == "S-"
            if is_store then
                fig.in_doubt_stores = fig.in_doubt_stores + 1
            else
                fig.in_doubt_removes = fig.in_doubt_removes + 1
            end
            if data ~= nil and data ~= want then
                fig.mismatch_in_doubt = fig.mismatch_in_doubt + 1
                note("round %d: in-doubt %s %s is present with wrong bytes (%d, expected %d)", round,
                    is_store and "store" or "remove", id, #data, m.len)
            end
            if data ~= nil then
                m.st = "S"
                if is_store then
                    fig.in_doubt_stores_present = fig.in_doubt_stores_present + 1
                end
            elseif not is_store then
                fig.in_doubt_removes_done = fig.in_doubt_removes_done + 1
            end
        end
        if m.st == "S" and data ~= nil and data == want then
            loaded[id] = data
            n_live = n_live + 1
        else
            model[id] = nil
            m.gone = round
            m.counted = data ~= nil -- present but wrong: reported above, once
            gone[id] = m
        end
    end

    local seen, n_seen = {}, 0
    local visited, eerr = s:enumerate(function(e)
        n_seen = n_seen + 1
        local id = e.id and tostring(e.id)
        if e.corrupt then
            fig.corrupt = fig.corrupt + 1
            note("round %d: enumerate: corrupt entry %s: %s", round, tostring(id), tostring(e.error))
        end
        if id == nil then
            return
        end
        if seen[id] then
            fig.dup = fig.dup + 1
            note("round %d: enumerate: %s seen twice", round, id)
        end
        seen[id] = true
        if loaded[id] then
            if not e.corrupt and e.data ~= loaded[id] then
                fig.lost = fig.lost + 1
                note("round %d: enumerate: %s has other bytes than load gave", round, id)
            end
        elseif gone[id] and not gone[id].counted then
            -- Counted once (the next rounds see it again).
            gone[id].counted = true
            fig.undone = fig.undone + 1
            note("round %d: enumerate: %s, absent since round %d, is back", round, id, gone[id].gone)
        elseif not gone[id] and not phantoms[id] then
            phantoms[id] = true
            fig.phantom = fig.phantom + 1
            note("round %d: enumerate: %s was never journaled", round, id)
        end
    end)
    if visited == nil then
        fig.enum_errors = fig.enum_errors + 1
        note("round %d: enumerate failed: %s (%s)", round, tostring(eerr), eerr and eerr.kind)
    elseif n_seen ~= n_live and n_notes < 40 then
        -- Each missing one was counted as lost by its load already;
        -- extra ones as phantoms or undone removes.
        note("round %d: enumerate saw %d entries, %d expected", round, n_seen, n_live)
    end
    fig.entries_seen = fig.entries_seen + n_seen
    s:shutdown()

    local iok, out = integrity_ok()
    if not iok then
        fig.integrity_failures = fig.integrity_failures + 1
        note("round %d: integrity_check: %s", round, (out:gsub("\n", " | ")))
    end
    return true
end

local function write_live()
    local f = assert(io.open(live_path, "w"))
    for id, m in pairs(model) do
        if m.st == "S" then
            f:write(id, "\n")
        end
    end
    f:close()
end

print(("# crash: %d rounds, seed %d, spool %s"):format(rounds, seed, dir))
local clock0 = io.popen("date +%s.%N"):read("*l")
local killed, done = 0, 0
for round = 1, rounds do
    write_live()
    local delay = 0.05 + math.random() * 0.75
    local rc = run_child(round, delay)
    if rc == 137 then
        killed = killed + 1
    else
        fig.early_exits = fig.early_exits + 1
        note("round %d: the child ended with status %s before the kill (log: %s)", round, tostring(rc), childlog)
        local lf = io.open(childlog)
        if lf then
            for l in lf:read("*a"):gmatch("[^\n]+") do
                note("  child: %s", l)
            end
            lf:close()
        end
    end
    read_journal(round)
    done = round
    if not verify(round) then
        break
    end
end
local clock1 = io.popen("date +%s.%N"):read("*l")
local seconds = tonumber(clock1) - tonumber(clock0)
local live_end = 0
for _, m in pairs(model) do
    if m.st == "S" then
        live_end = live_end + 1
    end
end

local n, failed = 0, 0
local function ok(cond, msg, ...)
    n = n + 1
    if not cond then
        failed = failed + 1
    end
    print(("%sok %d - " .. msg):format(cond and "" or "not ", n, ...))
end

ok(done == rounds and fig.lost == 0 and fig.undone == 0 and fig.integrity_failures == 0 and fig.open_failures == 0,
    "%d SIGKILL rounds: %d acknowledged stores lost (of %d), %d removes undone (of %d), integrity %s",
    done, fig.lost, fig.stores_acked, fig.undone, fig.removes_acked,
    fig.integrity_failures == 0 and fig.open_failures == 0 and "ok" or
    ("FAILED in %d rounds, %d reopen failures"):format(fig.integrity_failures, fig.open_failures))
ok(fig.corrupt == 0 and fig.dup == 0 and fig.phantom == 0 and fig.enum_errors == 0 and fig.load_errors == 0,
    "after each restart: %d corrupt entries, %d ids twice, %d never journaled, %d load/enumerate errors (%d entries enumerated)",
    fig.corrupt, fig.dup, fig.phantom, fig.load_errors + fig.enum_errors, fig.entries_seen)
ok(fig.mismatch_in_doubt == 0,
    "calls cut by the kill: %d stores (%d present), %d removes (%d done); %d present with wrong bytes",
    fig.in_doubt_stores, fig.in_doubt_stores_present, fig.in_doubt_removes, fig.in_doubt_removes_done,
    fig.mismatch_in_doubt)
ok(killed == done and fig.child_errors == 0 and fig.stores_acked > 0 and fig.removes_acked > 0,
    "every child ran until SIGKILL (%d/%d), %d errors in the children", killed, done, fig.child_errors)
print(("# crash figures: rounds=%d stores_acked=%d removes_acked=%d checked=%d lost=%d undone=%d "
    .. "in_doubt_stores=%d in_doubt_removes=%d live_at_end=%d kills: in_store=%d in_remove=%d between=%d "
    .. "before_first_op=%d partial_journal_lines=%d seconds=%.1f seed=%d")
    :format(done, fig.stores_acked, fig.removes_acked, fig.checked, fig.lost, fig.undone, fig.in_doubt_stores,
        fig.in_doubt_removes, live_end, fig.kill_in_store, fig.kill_in_remove, fig.kill_between,
        fig.kill_at_start, fig.partial_lines, seconds, seed))
print("1.." .. n)
os.exit(failed == 0 and 0 or 1)
