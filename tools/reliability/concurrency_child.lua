-- concurrency_child.lua: one worker process of tools/reliability/concurrency.sh,
-- or the check that follows them.
--
--   luajit concurrency_child.lua init DIR
--   luajit concurrency_child.lua worker DIR INDEX START_AT SECONDS LEDGER
--   luajit concurrency_child.lua verify DIR SECONDS LEDGER...
--
-- init creates the spool.  A worker waits until START_AT (Unix seconds,
-- so that all of them start together), opens the spool at DIR (without
-- init first, the workers race to create it) and for SECONDS stores new entries, loads and removes its own, with
-- short deadlines (timeout 0.05-0.2 s on nine writes in ten,
-- store_deadline 0.5 s on all; the gate's latch duration is an hour, so
-- it never latches), and now and then enumerates.  It keeps a ledger of
-- its own ids - acknowledged stores, acknowledged removes, failed stores,
-- ambiguous failures - and counts every failure by kind; a failure that
-- is not a spool.Error of a known kind is "untyped".  At the end it
-- writes the ledger to LEDGER (through a rename: a ledger is whole or
-- absent).
--
-- verify reads every ledger, opens the spool in this fresh process and
-- checks: every live entry loads with its exact bytes (0 lost); every
-- acknowledged remove and every failed store is absent; enumerate yields
-- each id once, no corrupt entry, and exactly the live entries plus the
-- ambiguous ones found present; 0 untyped failures; PRAGMA
-- integrity_check (sqlite3 CLI) says ok.  Prints TAP (numbered from 1)
-- and a "# concurrency figures (processes):" line.
local spool = require "spool"
local core = require "spool.core"

local mode = ...
local random, floor = math.random, math.floor

-- Bytes of an entry: `len` bytes of the Park-Miller generator from `seed`.
local has_ffi, ffi = pcall(require, "ffi")
local derive
if has_ffi then
    local buf, cap = nil, 0
    derive = function(len, seed)
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
    ffi.cdef "int poll(void *fds, unsigned long nfds, int timeout);"
else
    local char, concat, unpack = string.char, table.concat, unpack or table.unpack
    derive = function(len, seed)
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

local function sleep_ms(ms)
    if has_ffi then
        ffi.C.poll(nil, 0, ms)
    else
        os.execute(("sleep %.3f"):format(ms / 1000))
    end
end

local known_kind = {}
for _, k in ipairs(spool.errors.kinds) do
    known_kind[k] = true
end

local params = {
    min_free_space = 0, min_free_inodes = 0,
    store_deadline = 0.5, error_latch_duration = 3600,
}

-- ------------------------------------------------------------- worker
if mode == "worker" then
    local _, dir, index, start_at, seconds, ledger_path = ...
    index, start_at, seconds = tonumber(index), tonumber(start_at), tonumber(seconds)
    math.randomseed((tonumber(os.getenv("SEED") or "") or os.time()) * 131 + index)
    local count, notes, noted = {}, {}, {}
    local function bump(k, by)
        count[k] = (count[k] or 0) + (by or 1)
    end
    local function note(fmt, ...)
        if #notes < 20 then
            notes[#notes + 1] = fmt:format(...):gsub("\n", " ")
        end
    end
    -- Classifies a failed call: err must be a spool.Error of a known kind.
    local function failed(op, err)
        if spool.errors.is(err) and known_kind[err.kind] then
            bump("fail_" .. op .. "_" .. err.kind)
            if not (err.kind == "caller_deadline_exceeded" or err.kind == "backpressure_timeout"
                    or err.kind == "busy") and not noted[op .. err.kind] then
                noted[op .. err.kind] = true
                note("%s failed: %s (%s)", op, tostring(err), err.kind)
            end
            if err.ambiguous then
                bump("ambiguous_" .. op)
            end
            return err.kind
        end
        bump("untyped")
        note("untyped %s failure: %s (%s)", op, tostring(err), type(err))
        return nil
    end

    while core.now() < start_at do
        sleep_ms(2)
    end
    params.path = dir
    local s
    for _ = 1, 50 do
        local ok, h, err = pcall(spool.open, params)
        if ok and h then
            s = h
            break
        end
        failed("open", ok and err or h)
    end
    if not s then
        note("could not open the spool in 50 attempts")
    end

    local recs, live, n_live, done = {}, {}, 0, {} -- recs[id] = {len, seed, st}
    local stop = start_at + seconds
    local function size()
        if random() < 0.5 then
            return random(1, 16384)
        end
        return floor(2 ^ (random() * 16))
    end
    local function take_live(i)
        local id = live[i]
        live[i] = live[n_live]
        live[n_live] = nil
        n_live = n_live - 1
        return id
    end
    local function pcall_op(op, f, ...)
        local ok, a, b = pcall(f, ...)
        if not ok then
            bump("untyped")
            note("%s raised: %s", op, tostring(a))
            return nil, nil, true
        end
        return a, b
    end

    while s and core.now() < stop do
        local r = random()
        -- Mostly a caller's timeout of 0.05-0.2 s; one write in ten only
        -- store_deadline (0.5 s), whose expiry is backpressure_timeout.
        local opts = random() < 0.9 and { timeout = 0.05 + random() * 0.15 } or {}
        if r < 0.45 or n_live == 0 then
            bump("op_store")
            local id = tostring(spool.id.new())
            local rec = { len = size(), seed = random(1, 2147483646) }
            recs[id] = rec
            opts.force_sync = random() < 0.5
            local ok, err, raised = pcall_op("store", s.store, s, id, derive(rec.len, rec.seed), opts)
            if ok == true then
                bump("ok_store")
                rec.st = "L"
                n_live = n_live + 1
                live[n_live] = id
            elseif raised then
                rec.st = "A"
            else
                failed("store", err)
                rec.st = err and err.ambiguous and "A" or "F"
            end
        elseif r < 0.75 then
            bump("op_load")
            local id
            if #done > 0 and random() < 0.1 then
                id = done[random(1, #done)]
            else
                id = live[random(1, n_live)]
            end
            local rec = recs[id]
            local data, err = pcall_op("load", s.load, s, id)
            if data ~= nil then
                bump("ok_load")
                if rec.st == "G" then
                    bump("undone_inflight")
                    note("load of removed %s gave %d bytes", id, #data)
                elseif data ~= derive(rec.len, rec.seed) then
                    bump("wrong_bytes_inflight")
                    note("load of %s gave other bytes (%d, expected %d)", id, #data, rec.len)
                end
            elseif rec.st == "G" and spool.errors.is(err, "not_found") then
                bump("ok_load") -- removed, and absent: right
            elseif err ~= nil then
                local kind = failed("load", err)
                if kind == "not_found" then
                    bump("lost_inflight")
                    note("load of live %s: not_found", id)
                end
            end
        elseif r < 0.99 then
            bump("op_remove")
            local i = random(1, n_live)
            local id = live[i]
            local ok, err, raised = pcall_op("remove", s.remove, s, id, opts)
            if ok == true then
                bump("ok_remove")
                take_live(i)
                recs[id].st = "G"
                done[#done + 1] = id
            elseif ok == false then
                bump("lost_inflight")
                note("remove of live %s found nothing", id)
                take_live(i)
                recs[id].st = "G"
            elseif raised then
                take_live(i)
                recs[id].st = "A"
            else
                failed("remove", err)
                if err and err.ambiguous then
                    take_live(i)
                    recs[id].st = "A"
                end
            end
        else
            bump("op_enumerate")
            local n_corrupt = 0
            local visited, err = pcall_op("enumerate", s.enumerate, s, function(e)
                if e.corrupt then
                    n_corrupt = n_corrupt + 1
                end
            end, { include_data = false })
            if visited ~= nil then
                bump("ok_enumerate")
            elseif err ~= nil then
                failed("enumerate", err)
            end
            if n_corrupt > 0 then
                bump("corrupt_inflight", n_corrupt)
                note("enumerate found %d corrupt entries", n_corrupt)
            end
        end
    end
    if s then
        s:shutdown()
    end

    local tmp = ledger_path .. ".tmp"
    local f = assert(io.open(tmp, "w"))
    for k, v in pairs(count) do
        f:write("C ", k, " ", v, "\n")
    end
    for _, text in ipairs(notes) do
        f:write("N ", text, "\n")
    end
    for id, rec in pairs(recs) do
        if rec.st == "L" or rec.st == "A" then
            f:write(rec.st, " ", id, " ", rec.len, " ", rec.seed, "\n")
        else
            f:write(rec.st, " ", id, "\n")
        end
    end
    f:close()
    assert(os.rename(tmp, ledger_path))
    os.exit(0)
end

-- --------------------------------------------------------------- init
-- Creates the spool before the workers start (see concurrency.sh).
if mode == "init" then
    params.path = select(2, ...)
    local s, err = spool.open(params)
    if not s then
        print(("cannot create the spool: %s (%s)"):format(tostring(err), err and err.kind))
        os.exit(1)
    end
    s:shutdown()
    os.exit(0)
end

-- ------------------------------------------------------------- verify
assert(mode == "verify", "usage: concurrency_child.lua init|worker|verify ...")
local args = { ... }
local dir, seconds = args[2], tonumber(args[3])
local n, failures = 0, 0
local function ok(cond, fmt, ...)
    n = n + 1
    if not cond then
        failures = failures + 1
    end
    print(("%sok %d - " .. fmt):format(cond and "" or "not ", n, ...))
end
local function diag(fmt, ...)
    print("# " .. fmt:format(...))
end

local count, recs, n_ledgers, workers = {}, {}, 0, 0
for i = 4, #args do
    workers = workers + 1
    local f = io.open(args[i])
    if f then
        n_ledgers = n_ledgers + 1
        for line in f:lines() do
            local tag, rest = line:match("^(%S+) (.*)$")
            if tag == "C" then
                local k, v = rest:match("^(%S+) (%d+)$")
                count[k] = (count[k] or 0) + tonumber(v)
            elseif tag == "N" then
                diag("worker %d: %s", i - 3, rest)
            elseif tag == "L" or tag == "A" then
                local id, len, seed = rest:match("^(%x+) (%d+) (%d+)$")
                recs[id] = { st = tag, len = tonumber(len), seed = tonumber(seed) }
            elseif tag == "G" or tag == "F" then
                recs[rest] = { st = tag }
            end
        end
        f:close()
    else
        diag("worker %d left no ledger (%s): it crashed, hung or was killed", i - 3, args[i])
    end
end
local function c(k)
    return count[k] or 0
end

ok(n_ledgers == workers, "%d processes x %gs on one spool: %d/%d finished and wrote their ledgers",
    workers, seconds, n_ledgers, workers)

params.path = dir
local s, oerr = spool.open(params)
if not s then
    ok(false, "the spool reopens after the run: %s (%s)", tostring(oerr), oerr and oerr.kind)
    print("1.." .. n)
    os.exit(1)
end

local n_live, lost, gone_present, failed_present, amb, amb_present, amb_wrong, load_err = 0, 0, 0, 0, 0, 0, 0, 0
local present = {}
for id, rec in pairs(recs) do
    local data, err
    for _ = 1, 20 do -- nothing else runs now, but a load may still meet a busy moment
        data, err = s:load(id)
        if data ~= nil or (err and err.kind == "not_found") then
            break
        end
    end
    if data == nil and not (err and err.kind == "not_found") then
        load_err = load_err + 1
        diag("load %s: %s (%s)", id, tostring(err), err and err.kind)
    end
    if rec.st == "L" then
        n_live = n_live + 1
        if data == nil or data ~= derive(rec.len, rec.seed) then
            lost = lost + 1
            diag("acknowledged store %s: %s", id, data and "wrong bytes" or tostring(err))
        end
    elseif rec.st == "A" then
        amb = amb + 1
        if data ~= nil then
            amb_present = amb_present + 1
            if data ~= derive(rec.len, rec.seed) then
                amb_wrong = amb_wrong + 1
                diag("ambiguous %s is present with wrong bytes", id)
            end
        end
    elseif data ~= nil then
        if rec.st == "G" then
            gone_present = gone_present + 1
            diag("acknowledged remove of %s undone", id)
        else
            failed_present = failed_present + 1
            diag("store of %s failed (not ambiguous), yet it is there", id)
        end
    end
    if data ~= nil then
        present[id] = true
    end
end

local seen, n_seen, dup, corrupt, stray = {}, 0, 0, 0, 0
local visited, eerr = s:enumerate(function(e)
    n_seen = n_seen + 1
    local id = e.id and tostring(e.id)
    if e.corrupt then
        corrupt = corrupt + 1
        diag("corrupt entry %s: %s", tostring(id), tostring(e.error))
    end
    if id then
        if seen[id] then
            dup = dup + 1
            diag("%s enumerated twice", id)
        end
        seen[id] = true
        local rec = recs[id]
        if not rec or not (rec.st == "L" or (rec.st == "A" and present[id])) then
            stray = stray + 1
            diag("enumerated %s, which is %s", id, rec and ("in state " .. rec.st) or "in no ledger")
        end
    end
end)
if visited == nil then
    diag("enumerate failed: %s (%s)", tostring(eerr), eerr and eerr.kind)
end
s:shutdown()

local p = io.popen("sqlite3 '" .. dir .. "/spool.db' 'PRAGMA integrity_check' 2>&1")
local integrity = p:read("*a"):gsub("%s+$", "")
p:close()

ok(lost == 0 and c("lost_inflight") == 0 and c("wrong_bytes_inflight") == 0 and load_err == 0,
    "0 lost: %d acknowledged stores not removed load with their exact bytes (%d lost; in flight: %d lost, %d wrong bytes)",
    n_live, lost, c("lost_inflight"), c("wrong_bytes_inflight"))
ok(visited ~= nil and dup == 0 and stray == 0 and corrupt == 0 and n_seen == n_live + amb_present,
    "0 duplicated: enumerate yields each id once, %d entries = %d live + %d of %d ambiguous failures present (%d twice, %d stray, %d corrupt)",
    n_seen, n_live, amb_present, amb, dup, stray, corrupt)
ok(gone_present == 0 and failed_present == 0 and c("undone_inflight") == 0 and amb_wrong == 0
    and c("corrupt_inflight") == 0,
    "acknowledged removes stay removed (%d undone), failed stores left nothing (%d present), ambiguous ones exact (%d wrong)",
    gone_present + c("undone_inflight"), failed_present, amb_wrong)

local kinds, unexpected, total_fail = {}, 0, 0
local expected = { caller_deadline_exceeded = true, backpressure_timeout = true, busy = true }
for k, v in pairs(count) do
    local op, kind = k:match("^fail_(%a+)_(.+)$")
    if op then
        kinds[kind] = (kinds[kind] or 0) + v
        total_fail = total_fail + v
        if not expected[kind] and not (op == "load" and kind == "not_found") then
            unexpected = unexpected + v
            diag("unexpected kind: %s failed %d times with %s", op, v, kind)
        end
    end
end
local kind_text = {}
for k, v in pairs(kinds) do
    kind_text[#kind_text + 1] = k .. "=" .. v
end
table.sort(kind_text)
ok(c("untyped") == 0 and unexpected == 0,
    "0 untyped failures (%d), 0 of unexpected kinds (%d); %d failures: %s",
    c("untyped"), unexpected, total_fail, #kind_text > 0 and table.concat(kind_text, " ") or "none")
ok(integrity == "ok", "PRAGMA integrity_check: %s", (integrity:gsub("\n", " | ")))

local ops = c("op_store") + c("op_load") + c("op_remove") + c("op_enumerate")
print(("# concurrency figures (processes): workers=%d seconds=%g ops=%d (%.0f/s) store=%d/%d load=%d/%d remove=%d/%d "
    .. "enumerate=%d/%d (ok/attempted) live=%d ambiguous=%d failures: %s")
    :format(workers, seconds, ops, ops / seconds, c("ok_store"), c("op_store"), c("ok_load"), c("op_load"),
        c("ok_remove"), c("op_remove"), c("ok_enumerate"), c("op_enumerate"), n_live, amb,
        #kind_text > 0 and table.concat(kind_text, " ") or "none"))
print("1.." .. n)
os.exit(failures == 0 and 0 or 1)
