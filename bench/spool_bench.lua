-- bench/spool_bench.lua: the spool through its Lua binding, for `make bench`.
--
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/luajit/?.so;;" luajit bench/spool_bench.lua MODE ...
--
--   run DIR SIZE N NDUR PAYLOAD [main|durable]
--                                   the workload sequence of `spool-bench run`
--                                   (bench/bench_main.c, cmd_run), step by step
--   enum-rss DIR                    RSS while enumerating the spool at DIR
--   child OP DIR PAYLOAD COUNT FLUSH GO IDS
--                                   one of the 8 writer processes (internal)
--
-- Rows are printed as TSV in the format of bench/bench.h.  Eight
-- concurrent writers are eight processes (io.popen), each with its own
-- handle on the same spool: they start together when the parent creates
-- the GO file, and report their timings, I/O and peak RSS; the parent
-- sums them.  Written for LuaJIT; runs under Lua 5.1 and 5.4 as well.
local spool = require "spool"

local monotonic = spool.monotonic
local format = string.format
local floor = math.floor
local WRITERS = 8
local SEED_ORDER = 4242

local function die(msg)
    io.stderr:write("spool_bench.lua: ", msg, "\n")
    os.exit(1)
end

local function check(ok, err, what)
    if not ok then
        die(what .. ": " .. tostring(err))
    end
    return ok
end

-- ------------------------------------------------------------- /proc

local function status_kib(field)
    local f = io.open("/proc/self/status")
    if not f then
        return -1
    end
    for line in f:lines() do
        local v = line:match("^" .. field .. ":%s*(%d+)")
        if v then
            f:close()
            return tonumber(v)
        end
    end
    f:close()
    return -1
end

local function hwm_reset()
    local f = io.open("/proc/self/clear_refs", "w")
    if f then
        f:write("5")
        f:close()
    end
end

local function write_bytes()
    local f = io.open("/proc/self/io")
    if not f then
        return 0
    end
    local s = f:read("*a")
    f:close()
    return tonumber(s:match("write_bytes:%s*(%d+)")) or 0
end

local function du(path)
    local p = io.popen("du -s -B1 '" .. path .. "' 2>/dev/null")
    local out = p:read("*a")
    p:close()
    return tonumber(out:match("^(%d+)")) or -1
end

local function read_file(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

-- ------------------------------------------------------------- rows

-- The Park-Miller sequence and the permutation of bench/bench_util.c
-- (0-based values).
local function permutation(n, seed)
    local state = seed % 2147483646 + 1
    local p = {}
    for i = 1, n do
        p[i] = i - 1
    end
    for i = n, 2, -1 do
        state = state * 16807 % 2147483647
        local j = state % i + 1
        p[i], p[j] = p[j], p[i]
    end
    return p
end

local function pct(sorted, p)
    local n = #sorted
    local k = floor(p / 100 * n + 0.999999)
    if k < 1 then
        k = 1
    end
    if k > n then
        k = n
    end
    return sorted[k]
end

local function meas_begin()
    collectgarbage("collect")
    hwm_reset()
    return { rss0 = status_kib("VmRSS"), wb0 = write_bytes(), t0 = monotonic() }
end

local function meas_end(m, r)
    r.seconds = monotonic() - m.t0
    r.wbytes = write_bytes() - m.wb0
    r.rss_peak = status_kib("VmHWM")
    r.rss_growth = (r.rss_peak >= 0 and m.rss0 >= 0) and r.rss_peak - m.rss0 or -1
    return r
end

local function na_or(fmt, v)
    if v == nil then
        return "NA"
    end
    return format(fmt, v)
end

-- r: engine, workload, size, writers, ops, seconds, bytes, lat (list of
-- seconds), rss_peak, rss_growth, wbytes, size_bytes, status, extra
local function print_row(r)
    local p50, p99
    if r.lat and #r.lat > 0 then
        table.sort(r.lat)
        p50, p99 = pct(r.lat, 50) * 1e6, pct(r.lat, 99) * 1e6
    end
    local ops_s, mb_s, wb
    if r.seconds and r.seconds > 0 and r.ops > 0 then
        ops_s, mb_s = r.ops / r.seconds, (r.bytes or 0) / r.seconds / 1e6
    end
    if r.ops > 0 and r.wbytes then
        wb = r.wbytes / r.ops
    end
    local sz = (r.size_bytes and r.size_bytes >= 0) and r.size_bytes or nil
    io.stdout:write(table.concat({
        r.engine or "spool-lua", r.workload, format("%.0f", r.size), format("%.0f", r.writers),
        format("%.0f", r.ops), format("%.6f", r.seconds or 0), na_or("%.1f", ops_s), na_or("%.2f", mb_s),
        na_or("%.1f", p50), na_or("%.1f", p99), format("%.0f", r.rss_peak or -1),
        format("%.0f", r.rss_growth or -1), na_or("%.0f", wb), na_or("%.0f", sz),
        r.status or "ok", (r.extra and r.extra ~= "") and r.extra or "-",
    }, "\t"), "\n")
    io.stdout:flush()
end

-- ------------------------------------------------------------- one process

local function new_ids(n)
    local ids = {}
    for i = 1, n do
        ids[i] = spool.id.new()
    end
    return ids
end

local function open(dir, flush)
    local s, err = spool.open { path = dir, flush = flush }
    return check(s, err, "open " .. dir)
end

local force_opts = { force_sync = true }

-- Payload files (`spool-bench payloads`) hold size + PAYLOAD_SLACK random
-- bytes; message k (0-based, across all processes) stores the size bytes
-- at (k * 8) % PAYLOAD_SLACK, as bench.h bench_payload_off: every message
-- distinct (equal strings would be interned once, flattering LuaJIT).
local PAYLOAD_SLACK = 1048576

-- The payloads of messages first .. first + count - 1 as data[1 ..
-- count], with data.size; made before a phase, outside its timing.
local function payloads(file, size, first, count)
    local data = { size = size }
    for k = 1, count do
        local off = ((first + k - 1) * 8) % PAYLOAD_SLACK
        data[k] = file:sub(off + 1, off + size)
    end
    return data
end

-- LuaJIT's string.buffer, for the "load-into" workload (nil elsewhere).
local has_buffer, string_buffer = pcall(require, "string.buffer")
local buf = has_buffer and string_buffer.new() or nil
local into_opts = { into = buf }

-- Runs op over ids (in `order`, 0-based indices, when given) and returns
-- the latencies.  op: "store", "store-force_sync", "load", "load-into",
-- "remove", "lifecycle".
local function loop(s, op, ids, order, data)
    local lat, size = {}, data.size
    local n = order and #order or #ids
    for k = 1, n do
        local idx = order and order[k] + 1 or k
        local id = ids[idx]
        local t0 = monotonic()
        if op == "store" then
            check(s:store(id, data[idx]))
        elseif op == "store-force_sync" then
            check(s:store(id, data[idx], force_opts))
        elseif op == "load" then
            local got = check(s:load(id))
            if #got ~= size then
                die(format("loaded %d bytes, stored %d", #got, size))
            end
        elseif op == "load-into" then
            buf:reset()
            check(s:load(id, into_opts))
            if #buf ~= size then
                die(format("loaded %d bytes into the buffer, stored %d", #buf, size))
            end
        elseif op == "remove" then
            local ok, err = s:remove(id)
            if ok ~= true then
                die("remove: " .. tostring(err or "no such entry"))
            end
        else
            check(s:store(id, data[idx]))
            local got = check(s:load(id))
            if #got ~= size then
                die(format("loaded %d bytes, stored %d", #got, size))
            end
            check(s:remove(id))
        end
        lat[k] = monotonic() - t0
    end
    return lat
end

local function phase(s, dir, workload, op, ids, order, data, want_size)
    local n = order and #order or #ids
    local m = meas_begin()
    local lat = loop(s, op, ids, order, data)
    local r = meas_end(m, {
        workload = workload, size = data.size, writers = 1, ops = n, bytes = n * data.size, lat = lat,
    })
    if want_size then
        r.size_bytes = du(dir)
    end
    print_row(r)
end

-- ------------------------------------------------------------- 8 processes

local function quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sleep_fn()
    local ok, ffi = pcall(require, "ffi")
    if ok then
        pcall(ffi.cdef, "int usleep(unsigned int usec);")
        return function()
            ffi.C.usleep(100)
        end
    end
    return function() end -- busy wait without LuaJIT
end

local function file_exists(path)
    local f = io.open(path)
    if f then
        f:close()
        return true
    end
    return false
end

-- child OP DIR PAYLOAD COUNT FLUSH GO IDS FIRST (FIRST: the index of its
-- first message among all the processes', for the payloads' offsets)
local function child(op, dir, payload, count, flush, go, idsfile, first)
    local s = open(dir, flush == "1")
    count = tonumber(count)
    local file = read_file(payload)
    local data = payloads(file, #file - PAYLOAD_SLACK, tonumber(first), op == "load" and 0 or count)
    file = nil
    local ids, order
    if op == "load" then
        ids = {}
        for line in io.lines(idsfile) do
            ids[#ids + 1] = line
        end
        for i = 1, #ids do
            ids[i] = assert(spool.id.parse(ids[i]))
        end
        order = permutation(#ids, SEED_ORDER)
    else
        ids = new_ids(count)
    end
    collectgarbage("collect")
    io.stdout:write("ready\n")
    io.stdout:flush()
    local sleep, give_up = sleep_fn(), monotonic() + 120
    while not file_exists(go) do
        if monotonic() > give_up then
            die("no start signal after 120 s (the parent is gone?)")
        end
        sleep()
    end
    hwm_reset()
    local rss0, wb0, t0 = status_kib("VmRSS"), write_bytes(), monotonic()
    local lat = loop(s, op, ids, order, data)
    local t1 = monotonic()
    local wb, hwm = write_bytes() - wb0, status_kib("VmHWM")
    if op == "store" and idsfile ~= "-" then
        local f = assert(io.open(idsfile, "w"))
        for i = 1, #ids do
            f:write(tostring(ids[i]), "\n")
        end
        f:close()
    end
    s:shutdown()
    for i = 1, #lat do
        lat[i] = format("%.9f", lat[i])
    end
    io.stdout:write(format("done %.9f %.9f %d %.0f %d %d\n", t0, t1, #ids, wb, hwm, hwm - rss0))
    io.stdout:write("lat ", table.concat(lat, " "), "\n")
    io.stdout:flush()
end

local interpreter = arg and arg[-1] or "luajit"
local script = arg and arg[0] or "bench/spool_bench.lua"

-- Runs op in WRITERS processes, `total` operations between them.
-- ids: prefix of the files through which the "store" writers hand their
-- ids to the "load" readers, or nil.
local function multi(dir, workload, op, total, flush, payload, size, ids)
    local go = dir .. ".go"
    os.remove(go)
    local pipes = {}
    local first = 0
    for k = 1, WRITERS do
        local share = floor((total + WRITERS - k) / WRITERS)
        local cmd = table.concat({
            quote(interpreter), quote(script), "child", op, quote(dir), quote(payload), share,
            flush and "1" or "0", quote(go), quote(ids and ids .. k or "-"), first,
        }, " ")
        first = first + share
        pipes[k] = assert(io.popen(cmd, "r"))
    end
    for k = 1, WRITERS do
        local line = pipes[k]:read("*l")
        if line ~= "ready" then
            die("writer " .. k .. " did not start: " .. tostring(line))
        end
    end
    local t_go = monotonic()
    assert(io.open(go, "w")):close()
    local r = { workload = workload, size = size, writers = WRITERS, ops = 0, wbytes = 0, lat = {},
                rss_peak = -1, rss_growth = -1 }
    local t_end = t_go
    for k = 1, WRITERS do
        local done = pipes[k]:read("*l")
        local lat = pipes[k]:read("*l")
        pipes[k]:close()
        local t0, t1, n, wb, hwm, growth = (done or ""):match("^done (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$")
        if not t0 then
            die("writer " .. k .. " failed")
        end
        t_end = math.max(t_end, tonumber(t1))
        r.ops = r.ops + tonumber(n)
        r.wbytes = r.wbytes + tonumber(wb)
        r.rss_peak = math.max(r.rss_peak, tonumber(hwm))
        r.rss_growth = math.max(r.rss_growth, tonumber(growth))
        for v in lat:gmatch("[%d%.e%-]+") do
            r.lat[#r.lat + 1] = tonumber(v)
        end
    end
    os.remove(go)
    r.seconds = t_end - t_go
    r.bytes = r.ops * size
    r.extra = "8 processes; RSS: the largest process"
    print_row(r)
end

-- ------------------------------------------------------------- modes

-- The sections of bench_main.c cmd_run, in the same order: "durable"
-- (store-durable with 1 and 8 writers, store-force_sync), "main" (store,
-- load, enumerate, remove, compact, lifecycle; 8 writers: store, load,
-- lifecycle), or both.
local function run(dir, size, n, ndur, payload, section)
    size, n, ndur = tonumber(size), tonumber(n), tonumber(ndur)
    section = section or "all"
    local file = read_file(payload)
    if #file ~= size + PAYLOAD_SLACK then
        die(format("%s holds %d bytes, expected %d (spool-bench payloads writes it)", payload, #file,
            size + PAYLOAD_SLACK))
    end
    local data = payloads(file, size, 0, math.max(n, ndur))
    file = nil
    local s

    if section ~= "main" then
        -- Durable (flush = true): 1 writer, then 8 processes; then
        -- force_sync among unsynced stores.
        s = open(dir, true)
        phase(s, dir, "store-durable", "store", new_ids(ndur), nil, data)
        multi(dir, "store-durable", "store", ndur, true, payload, size)
        s:shutdown()
        s = open(dir, false)
        phase(s, dir, "store-force_sync", "store-force_sync", new_ids(ndur), nil, data)
        s:shutdown()
    end
    if section == "durable" then
        return
    end

    local perm = permutation(n, SEED_ORDER)
    s = open(dir, false)
    local a = new_ids(n)
    phase(s, dir, "store", "store", a, nil, data, true)
    phase(s, dir, "load", "load", a, perm, data)
    if buf then
        phase(s, dir, "load-into", "load-into", a, perm, data)
    end
    do
        local m = meas_begin()
        local count, bytes = 0, 0
        local visited, err = s:enumerate(function(e)
            if e.corrupt then
                die("corrupt entry: " .. tostring(e.error))
            end
            count = count + 1
            bytes = bytes + #e.data
        end)
        check(visited, err, "enumerate")
        local r = meas_end(m, { workload = "enumerate", size = size, writers = 1, ops = count, bytes = bytes })
        if count ~= n or bytes ~= n * size then
            die(format("enumerate saw %d entries (%d bytes), expected %d", count, bytes, n))
        end
        print_row(r)
    end
    phase(s, dir, "remove", "remove", a, perm, data)
    do
        local m = meas_begin()
        local st = check(s:compact())
        local r = meas_end(m, { workload = "compact", size = size, writers = 1, ops = n, bytes = 0 })
        r.seconds = st.seconds
        r.size_bytes = du(dir)
        r.extra = format("before=%.0f after=%.0f wal_max=%.0f pages=%.0f steps=%.0f",
            st.db_bytes_before + st.wal_bytes_before, st.db_bytes_after + st.wal_bytes_after,
            st.wal_bytes_max, st.pages_freed, st.steps)
        print_row(r)
    end
    a = nil
    phase(s, dir, "lifecycle", "lifecycle", new_ids(n), nil, data)
    multi(dir, "store", "store", n, false, payload, size, dir .. ".ids-")
    multi(dir, "load", "load", n, false, payload, size, dir .. ".ids-")
    for k = 1, WRITERS do
        os.remove(dir .. ".ids-" .. k)
    end
    multi(dir, "lifecycle", "lifecycle", n, false, payload, size)
    s:shutdown()
end

-- RSS while enumerating a large spool (filled by `spool-bench fill`).
local function enum_rss(dir)
    local s = open(dir, false)
    local m = meas_begin()
    local count, bytes = 0, 0
    check(s:enumerate(function(e)
        if e.corrupt then
            die("corrupt entry: " .. tostring(e.error))
        end
        count = count + 1
        bytes = bytes + #e.data
    end))
    local r = meas_end(m, { workload = "enumerate-rss", size = 65536, writers = 1, ops = count, bytes = bytes })
    r.size_bytes = du(dir)
    r.extra = format("spool_mib=%.0f rss_before_kib=%d", bytes / 1048576, r.rss_peak - r.rss_growth)
    print_row(r)
    s:shutdown()
end

local mode = arg and arg[1]
if mode == "run" then
    run(arg[2], arg[3], arg[4], arg[5], arg[6], arg[7])
elseif mode == "enum-rss" then
    enum_rss(arg[2])
elseif mode == "child" then
    child(arg[2], arg[3], arg[4], arg[5], arg[6], arg[7], arg[8], arg[9])
else
    io.stderr:write("usage: spool_bench.lua run DIR SIZE N NDUR PAYLOAD [main|durable] | enum-rss DIR\n")
    os.exit(2)
end
