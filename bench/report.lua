-- bench/report.lua: prints the tables of a benchmark run from its TSV
-- rows (bench/run.sh writes them to $(BUILD)/bench-results.tsv).
--
--   luajit bench/report.lua build/luajit/bench-results.tsv
--
-- Every ratio compares figures of the same run: "x raw" is the row's
-- ops/s over the raw SQLite C loop's for the same workload, payload size
-- and writer count; "x rocks" the same over RocksDB's.  Plain Lua 5.1+.
local format = string.format

local path = arg[1] or "build/luajit/bench-results.tsv"
local rows, header = {}, nil
for line in io.lines(path) do
    local f = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do
        f[#f + 1] = field
    end
    if not header then
        header = f
    else
        local r = {}
        for i, k in ipairs(header) do
            r[k] = f[i]
        end
        for _, k in ipairs { "size", "writers", "ops", "seconds", "ops_s", "mb_s", "p50_us", "p99_us",
                             "rss_peak_kib", "rss_growth_kib", "wbytes_per_op", "size_bytes" } do
            r[k] = tonumber(r[k]) -- "NA" becomes nil
        end
        r.x = {}
        for k, v in (r.extra or ""):gmatch("([%w_]+)=([%-%d%.]+)") do
            r.x[k] = tonumber(v)
        end
        rows[#rows + 1] = r
    end
end

-- The row of a workload; where bench/run.sh ran it in several rounds,
-- the round with the median ops/s (a failed round counts as slowest).
local function find(engine, workload, size, writers)
    local found = {}
    for _, r in ipairs(rows) do
        if r.engine == engine and r.workload == workload and (size == nil or r.size == size)
            and (writers == nil or r.writers == writers) then
            found[#found + 1] = r
        end
    end
    table.sort(found, function(a, b)
        return (a.status == "ok" and a.ops_s or -1) < (b.status == "ok" and b.ops_s or -1)
    end)
    return found[math.floor((#found + 1) / 2)]
end

local function ok(r)
    return r and r.status == "ok"
end

-- ------------------------------------------------------------- formatting

local function num(v)
    if v == nil then
        return "-"
    end
    local a = math.abs(v)
    if a >= 1e6 then
        return format("%.2fM", v / 1e6)
    elseif a >= 1e4 then
        return format("%.1fk", v / 1e3)
    elseif a >= 100 then
        return format("%.0f", v)
    elseif a >= 10 then
        return format("%.1f", v)
    end
    return format("%.2f", v)
end

local function mib(bytes)
    if bytes == nil or bytes < 0 then
        return "-"
    end
    return format("%.1f", bytes / 1048576)
end

local function ratio(a, b)
    if a == nil or b == nil or b == 0 then
        return "-"
    end
    return format("%.2fx", a / b)
end

local function size_name(n)
    if n >= 1048576 then
        return format("%dM", n / 1048576)
    elseif n >= 1024 then
        return format("%dK", n / 1024)
    end
    return tostring(n)
end

-- Prints rows of cells with columns padded; first row is the header.  A
-- row with a `msg` field prints its first two cells and then the message,
-- without widening the other columns.
local function table_print(t)
    local w = {}
    for _, row in ipairs(t) do
        for i, c in ipairs(row) do
            if not row.msg or i <= 2 then
                w[i] = math.max(w[i] or 0, #c)
            end
        end
    end
    for n, row in ipairs(t) do
        local out = {}
        for i, c in ipairs(row) do
            out[i] = (i <= 2 and c .. string.rep(" ", w[i] - #c)) or string.rep(" ", w[i] - #c) .. c
        end
        if row.msg then
            out[#out + 1] = row.msg
        end
        print((("  " .. table.concat(out, "  ")):gsub("%s+$", "")))
        if n == 1 then
            local rule = {}
            for i = 1, #w do
                rule[i] = string.rep("-", w[i])
            end
            print("  " .. table.concat(rule, "  "))
        end
    end
    print()
end

-- "peak (+growth)" in MiB; a growth below zero is measurement noise.
local function rss(r)
    if not r.rss_peak_kib or r.rss_peak_kib < 0 then
        return "-"
    end
    return format("%s (+%s)", mib(r.rss_peak_kib * 1024), mib(math.max(r.rss_growth_kib or 0, 0) * 1024))
end

-- ------------------------------------------------------------- tables

local ENGINES = { "raw-sqlite", "spool-c", "spool-c-nowait", "spool-c-mmap", "spool-lua", "rocksdb", "rocksdb-snappy",
    "spool-rocksdb", "localdisk", "spool-localdisk" }
local SIZES = {}
do
    local seen = {}
    for _, r in ipairs(rows) do
        if not r.engine:match("^disk@") and not r.workload:match("^compact%-scale")
            and r.workload ~= "enumerate-rss" and r.size and not seen[r.size] then
            seen[r.size] = true
            SIZES[#SIZES + 1] = r.size
        end
    end
    table.sort(SIZES)
end

local function failed_row(engine, size)
    local r = find(engine, "all", size)
    return r and r.status
end

print("Legend: ops/s and MB/s (payload bytes, 10^6) over the phase's wall time; p50/p99: per-operation")
print("latency in microseconds; RSS: peak resident set of the process during the phase (VmHWM, MiB),")
print("with its growth over the phase's start in brackets; wr/op: bytes the process wrote to the device")
print("per operation (/proc/self/io write_bytes, KiB); log/op: bytes the process handed to write calls per")
print("operation (wchar, KiB; C engines); x raw / x rocks: ops/s against raw-sqlite /")
print("rocksdb in the same row group.  Payloads are random (incompressible) and distinct per message; ids are SpoolIds, keys")
print("their time-ordered 16 bytes.  spool-c-mmap = the spool with sqlite.mmap_size = 1 GiB (mapped")
print("file pages count in its RSS); spool-c-nowait = the spool with commit_wait = 0 (no leader wait).  spool-lua with 8 writers = 8 interpreter processes on one spool, each")
print("with its own handle (RSS: the largest process); spool-c with 8 writers = 8 threads, one handle.")
print("rocksdb = RocksDB's defaults without compression; rocksdb-snappy = with KumoMTA's Snappy (the RocksDB")
print("backend's default); spool-rocksdb = the backend with compression_type = None, as the rocksdb row.")
print("Each workload ran in BENCH_ROUNDS rounds (bench/run.sh), the engines in the opposite order each round;")
print("every figure is the median round's.")
print()

-- Disk limits: at the start, before each size's durable section, at the end.
do
    print("== disk: the device's own limits (at the start, before each durable section, at the end) ==")
    local t = { { "when", "workload", "ops/s", "MB/s", "p50", "p99", "note" } }
    for _, r in ipairs(rows) do
        if r.engine:match("^disk@") then
            local w = r.workload
            t[#t + 1] = { r.engine:sub(6), w, w == "seq-write" and "-" or num(r.ops_s), num(r.mb_s), num(r.p50_us),
                          num(r.p99_us), r.extra ~= "-" and r.extra or "" }
        end
    end
    table_print(t)
end

local WORKLOADS = {
    { "store", 1, "store, 1 writer (default durability: survives a process crash)" },
    { "store", 8, "store, 8 concurrent writers" },
    { "store-durable", 1, "durable store, 1 writer (spool flush=true, SQLite FULL, RocksDB sync, fdatasync)" },
    { "store-durable", 8, "durable store, 8 concurrent writers" },
    { "store-force_sync", 1, "store with force_sync, 1 writer (x raw: against raw-sqlite's durable store)" },
    { "load", 1, "load, random order, 1 reader" },
    { "load", 8, "load, random order, 8 concurrent readers" },
    { "load-into", 1, "load into a reused string.buffer, random order, 1 reader (Lua; x raw, x rocks: their load)" },
    { "enumerate", 1, "enumerate all (with data), 1 reader" },
    { "remove", 1, "remove, random order, 1 writer" },
    { "lifecycle", 1, "lifecycle (store, load, remove per message), 1 writer" },
    { "lifecycle", 8, "lifecycle, 8 concurrent writers" },
}

for _, wl in ipairs(WORKLOADS) do
    local workload, writers, title = wl[1], wl[2], wl[3]
    print(format("== %s ==", title))
    local with_size = workload == "store" and writers == 1
    local head = { "size", "engine", "ops/s", "MB/s", "p50", "p99", "RSS", "wr/op", "log/op", "x raw", "x rocks" }
    if with_size then
        head[#head + 1] = "disk MiB"
    end
    local t = { head }
    for _, size in ipairs(SIZES) do
        local raw = find("raw-sqlite", workload, size, writers)
        if workload == "store-force_sync" then
            raw = find("raw-sqlite", "store-durable", size, 1)
        end
        local rocks = find("rocksdb", workload, size, writers)
        if workload == "load-into" then
            raw, rocks = find("raw-sqlite", "load", size, 1), find("rocksdb", "load", size, 1)
        end
        for _, engine in ipairs(ENGINES) do
            local r = find(engine, workload, size, writers)
            local why = failed_row(engine, size)
            if ok(r) then
                local row = {
                    size_name(size), engine, num(r.ops_s), num(r.mb_s), num(r.p50_us), num(r.p99_us),
                    rss(r),
                    r.wbytes_per_op and format("%.1f", r.wbytes_per_op / 1024) or "-",
                    r.x.wchar and format("%.1f", r.x.wchar / 1024) or "-",
                    ok(raw) and ratio(r.ops_s, raw.ops_s) or "-",
                    ok(rocks) and ratio(r.ops_s, rocks.ops_s) or "-",
                }
                if with_size then
                    row[#row + 1] = mib(r.size_bytes)
                end
                t[#t + 1] = row
            elseif r or why then
                t[#t + 1] = { size_name(size), engine, msg = (r and r.status) or why }
            end
        end
    end
    table_print(t)
end

-- Compact after removing everything.
do
    print("== compact after removing every entry (spool compact(); raw SQLite checkpoint + one")
    print("   incremental_vacuum; RocksDB CompactRange) -- x raw: raw seconds / engine seconds ==")
    local t = { { "size", "engine", "seconds", "entries", "pages", "before MiB", "after MiB", "WAL max MiB",
                  "disk MiB", "RSS", "x raw" } }
    for _, size in ipairs(SIZES) do
        local raw = find("raw-sqlite", "compact", size, 1)
        for _, engine in ipairs(ENGINES) do
            local r = find(engine, "compact", size, 1)
            if ok(r) then
                t[#t + 1] = {
                    size_name(size), engine, format("%.3f", r.seconds), num(r.ops),
                    r.x.pages and r.x.pages >= 0 and num(r.x.pages) or "-", mib(r.x.before), mib(r.x.after),
                    mib(r.x.wal_max), mib(r.size_bytes), rss(r),
                    ok(raw) and r.seconds > 0 and ratio(raw.seconds, r.seconds) or "-",
                }
            elseif r then
                t[#t + 1] = { size_name(size), engine, msg = r.status .. (r.extra ~= "-" and ": " .. r.extra or "")
                              .. (r.size_bytes and format(" (disk after removal: %s MiB)", mib(r.size_bytes)) or "") }
            elseif failed_row(engine, size) then
                t[#t + 1] = { size_name(size), engine, msg = failed_row(engine, size) }
            end
        end
    end
    table_print(t)
end

-- Compact scaling.
local scale = {}
do
    print("== compact time against freed pages (4 KiB entries; removed in random order or oldest first) ==")
    local t = { { "engine", "removal", "entries", "pages freed", "seconds", "us/page", "vs smallest",
                  "WAL max MiB", "steps", "after MiB" } }
    for _, series in ipairs { { "spool-c", "random" }, { "raw-sqlite", "random" }, { "spool-c", "fifo" } } do
        local engine, order = series[1], series[2]
        local key, first = engine .. " " .. order, nil
        for _, r in ipairs(rows) do
            if r.engine == engine and r.workload == "compact-scale-" .. order then
                first = first or r
                scale[key] = scale[key] or {}
                table.insert(scale[key], r)
                t[#t + 1] = { engine, order == "fifo" and "oldest first" or "random", num(r.ops), num(r.x.pages),
                              format("%.3f", r.seconds), format("%.1f", r.x.us_per_page or 0),
                              ratio(r.x.us_per_page, first.x.us_per_page), mib(r.x.wal_max), tostring(r.x.steps),
                              mib(r.x.after) }
            end
        end
    end
    table_print(t)
end

-- Checksums.
do
    print("== CRC-32C in memory, MB/s (median of alternating rounds; x: against one crc32 stream) ==")
    local t = { { "implementation", "4 KiB", "64 KiB", "1 MiB", "x (4K / 64K / 1M)" } }
    for _, engine in ipairs { "crc-1-stream", "crc-3-streams", "crc-sw" } do
        local row, x = { engine }, {}
        for _, size in ipairs { 4096, 65536, 1048576 } do
            local r, base = find(engine, "checksum", size, 1), find("crc-1-stream", "checksum", size, 1)
            row[#row + 1] = ok(r) and num(r.mb_s) or "-"
            x[#x + 1] = ok(r) and ok(base) and ratio(r.mb_s, base.mb_s) or "-"
        end
        row[#row + 1] = table.concat(x, " / ")
        if find(engine, "checksum") then t[#t + 1] = row end
    end
    table_print(t)
end

-- Enumerate RSS.
do
    print("== RSS while enumerating a large spool (64 KiB entries, with data) ==")
    local t = { { "engine", "entries", "spool MiB", "seconds", "MB/s", "RSS before", "RSS peak", "growth" } }
    for _, r in ipairs(rows) do
        if r.workload == "enumerate-rss" then
            t[#t + 1] = { r.engine, num(r.ops), mib(r.size_bytes), format("%.2f", r.seconds), num(r.mb_s),
                          mib((r.x.rss_before_kib or 0) * 1024), mib((r.rss_peak_kib or 0) * 1024),
                          mib((r.rss_growth_kib or 0) * 1024) }
        end
    end
    table_print(t)
end

-- ------------------------------------------------------------- targets

print("== targets ==")
local t = { { "target", "case", "measured", "verdict" } }
local function verdict(v, goal)
    if v == nil then
        return "n/a"
    end
    if v >= goal then
        return "met"
    end
    local p = 100 * v / goal
    return format(p >= 99.5 and "MISSED (%.1f%% of goal)" or "MISSED (%.0f%% of goal)", p)
end
local function check_ratio(name, case, a, b, goal)
    local v = ok(a) and ok(b) and b.ops_s and b.ops_s > 0 and a.ops_s and a.ops_s / b.ops_s or nil
    t[#t + 1] = { name, case, v and format("%.2fx", v) or "-", verdict(v, goal) }
end
-- Issue 13's targets (per size: 4 KiB, 64 KiB, 1 MiB) and issue 12's
-- (the RocksDB backend's layer: >= 0.9x raw RocksDB with its options).
local GOALS = {
    [4096] = { life = 0.9, load = 1.0, lua = 0.85, durable = 1.0 },
    [65536] = { life = 1.5, load = 1.3, lua = 0.85, durable = 2.0 },
    [1048576] = { life = 2.5, load = 2.0, lua = 0.75, durable = 3.0 },
}
for _, size in ipairs(SIZES) do
    local s, g = size_name(size), GOALS[size]
    check_ratio("Lua store >= 0.85x raw SQLite", s, find("spool-lua", "store", size, 1),
        find("raw-sqlite", "store", size, 1), 0.85)
    if g then
        check_ratio(format("8-writer lifecycle >= %.1fx RocksDB", g.life), s .. " spool-c",
            find("spool-c", "lifecycle", size, 8), find("rocksdb", "lifecycle", size, 8), g.life)
        check_ratio(format("1-reader load >= %.1fx RocksDB", g.load), s .. " spool-c",
            find("spool-c", "load", size, 1), find("rocksdb", "load", size, 1), g.load)
        local lua_load = find("spool-lua", "load-into", size, 1)
        check_ratio(format("Lua load >= %.2fx the loop from C", g.lua), s .. (ok(lua_load) and " into" or ""),
            ok(lua_load) and lua_load or find("spool-lua", "load", size, 1), find("spool-c", "load", size, 1), g.lua)
        check_ratio(format("durable, 8 writers >= %.1fx RocksDB's 8", g.durable), s .. " spool-c",
            find("spool-c", "store-durable", size, 8), find("rocksdb", "store-durable", size, 8), g.durable)
    end
    for _, w in ipairs { { "store", 8 }, { "lifecycle", 8 }, { "load", 1 }, { "store-durable", 8 } } do
        check_ratio("RocksDB backend >= 0.9x raw RocksDB", format("%s %s, %d", s, w[1], w[2]),
            find("spool-rocksdb", w[1], size, w[2]), find("rocksdb", w[1], size, w[2]), 0.9)
    end
end
for _, size in ipairs(SIZES) do
    for _, e in ipairs { "spool-c", "spool-lua" } do
        check_ratio("durable: 8 writers >= 5x 1 writer", size_name(size) .. " " .. e,
            find(e, "store-durable", size, 8), find(e, "store-durable", size, 1), 5.0)
    end
end
for _, order in ipairs { "fifo", "random" } do
    local sc = scale["spool-c " .. order]
    if sc and #sc >= 2 then
        local a, b = sc[1], sc[#sc]
        local grow = b.x.us_per_page / a.x.us_per_page
        local case = format("%s removal, %s -> %s pages", order == "fifo" and "oldest-first" or "random",
                            num(a.x.pages), num(b.x.pages))
        t[#t + 1] = { "compact linear in freed pages", case, format("us/page x%.2f", grow),
                      grow <= 1.25 and "met" or "MISSED (superlinear)" }
        local walgrow = b.x.wal_max / math.max(a.x.wal_max, 1)
        t[#t + 1] = { "compact: WAL bounded", case, format("WAL max %s -> %s MiB", mib(a.x.wal_max), mib(b.x.wal_max)),
                      walgrow <= 1.25 and "met" or "MISSED (grows with the spool)" }
    end
end
for _, r in ipairs(rows) do
    if r.workload == "enumerate-rss" then
        local g = (r.rss_growth_kib or 0) / 1024
        t[#t + 1] = { "RSS flat (< 16 MiB growth) enumerating", format("%s, %s MiB spool", r.engine,
                      mib(r.size_bytes)), format("+%.1f MiB", g), g < 16 and "met" or "MISSED" }
    end
end
table_print(t)
