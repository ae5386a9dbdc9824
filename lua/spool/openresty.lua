-- spool.openresty: the spool inside nginx (OpenResty / lua-nginx-module).
--
--   init_worker_by_lua_block {
--     local openresty = require "spool.openresty"
--     openresty.define { name = "data", path = "/var/spool/app/data" }
--     openresty.configure { thread_pool = "spool" }   -- optional
--   }
--   content_by_lua_block {
--     local openresty = require "spool.openresty"
--     local ok, err = openresty.store("data", id, body, { force_sync = true })
--   }
--
-- Spools are opened per worker process, in init_worker_by_lua*: the
-- master runs init_by_lua* and then forks the workers, and a SQLite
-- connection must never cross a fork.  Operations that may wait on the
-- disk (durable stores, compact, cleanup) run in a thread of an nginx
-- thread pool through ngx.run_worker_thread when one is configured, so
-- that the worker's event loop keeps serving; without a pool they run
-- inline.  The worker thread's own Lua state reaches the worker's spool
-- by name through the process-wide registry.  See docs/openresty.md.
local spool = require "spool"

local _M = { _VERSION = spool.VERSION }

local ngx = ngx -- nil outside nginx: the thread-side functions need no ngx
local type, tostring, error, pairs = type, tostring, error, pairs

-- Names defined through define() in this worker: one that spool.get no
-- longer finds was shut down (a runtime state: 503), not mistyped.
local defined = {}
-- Names whose define() failed in this worker, and why: the requests that
-- use them answer that reason (a 503) instead of raising (a 500).
local failed = {}

local config = {
    thread_pool = nil,       -- name of an nginx thread_pool, or nil: inline
    threaded = { store_durable = true, compact = true, cleanup = true, store_many = true },
    metrics_dict = nil,      -- name of a lua_shared_dict for metrics across workers
}

-- Latency histogram buckets (seconds) for the Prometheus metrics.
local buckets = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 }
_M.buckets = buckets

-- configure{thread_pool=, metrics_dict=, threaded=} changes how
-- operations run.  thread_pool = false runs everything inline again (a
-- nil in a table constructor cannot be told from an absent key).  Raises
-- on unknown keys, and on a metrics_dict that nginx does not define.
function _M.configure(opts)
    for k, v in pairs(opts or {}) do
        if k == "thread_pool" then
            if v ~= false and type(v) ~= "string" then
                error("spool.openresty.configure: thread_pool: a thread_pool name, or false for inline, expected", 2)
            end
            config.thread_pool = v or nil
        elseif k == "metrics_dict" then
            if v ~= false and type(v) ~= "string" then
                error("spool.openresty.configure: metrics_dict: a lua_shared_dict name, or false, expected", 2)
            end
            if v and ngx and ngx.shared and ngx.shared[v] == nil then
                error(("spool.openresty.configure: metrics_dict: no lua_shared_dict named '%s' in nginx.conf"):format(v), 2)
            end
            config.metrics_dict = v or nil
        elseif k == "threaded" then
            for op, on in pairs(v) do config.threaded[op] = on and true or false end
        else
            error("spool.openresty.configure: unknown option " .. tostring(k), 2)
        end
    end
end

local function phase()
    return ngx and ngx.get_phase and ngx.get_phase() or "none"
end

-- define(params) -> spool.Spool: spool.define, refused in the master.
function _M.define(params)
    local p = phase()
    if p == "init" then
        error("spool.openresty.define: spools must be opened in init_worker_by_lua*, not init_by_lua*: "
            .. "nginx forks its workers after init_by_lua*, and a SQLite connection must not cross a fork", 2)
    end
    local ok, s = pcall(spool.define, params)
    if not ok then
        local why = tostring(s):gsub("^[^:]*:%d+: ", "")
        if type(params) == "table" and type(params.name) == "string" and not defined[params.name] then
            failed[params.name] = why
        end
        error(why, 2)
    end
    failed[params.name] = nil
    defined[params.name] = true
    return s
end

-- ------------------------------------------------------------ metrics

local function dict()
    return config.metrics_dict and ngx and ngx.shared[config.metrics_dict]
end

local function observe(op, seconds, err)
    local d = dict()
    if not d then return end
    d:incr("ops:" .. op, 1, 0)
    if err then
        d:incr("errors:" .. op .. ":" .. (type(err) == "table" and err.kind or "internal"), 1, 0)
    end
    for i = 1, #buckets do
        if seconds <= buckets[i] then
            d:incr("lat:" .. op .. ":" .. i, 1, 0)
            break
        end
    end
    d:incr("lat:" .. op .. ":inf", 1, 0)
    d:incr("latsum:" .. op, seconds, 0)
end

-- ---------------------------------------------------- the thread side
--
-- Called by ngx.run_worker_thread in a thread pool's own Lua state; only
-- strings, numbers, booleans and nil cross between the states.

-- thread_call(op, name, ...) -> true, summary
--   | false, kind, message, deadline, ambiguous, code, errno
-- A misuse raised in the thread comes back as kind "misuse" and is
-- raised again in the worker.
function _M.thread_call(op, name, a, b, c, d)
    local s, err = spool.get(name)
    if not s then
        return false, "closed", ("spool '%s' is not open: %s"):format(tostring(name), tostring(err))
    end
    local ok, r
    if op == "store" then
        -- d: the absolute deadline (spool.monotonic(): one clock for the
        -- whole process), so the wait for a thread counted against it.
        ok, r, err = pcall(s.store, s, a, b, { force_sync = c or false, deadline = d })
    elseif op == "compact" or op == "cleanup" then
        ok, r, err = pcall(s[op], s)
        if ok and r then
            return true, _M.summary(r)
        end
    else
        return false, "misuse", "unknown thread operation " .. tostring(op)
    end
    if not ok then
        return false, "misuse", tostring(r)
    end
    if r then
        return true
    end
    return false, err.kind, err.message, err.deadline, err.ambiguous, err.code, err.errno
end

-- ---------------------------------------------------- the worker side

-- The spool.Error a thread described with plain values.
local function rebuild_error(kind, message, deadline, ambiguous, code, errno)
    return spool.errors.new(kind or "internal", { message = message, deadline = deadline,
        ambiguous = ambiguous, code = code, errno = errno })
end

-- Runs op in the thread pool.  Returns true | nil, err.
local function in_thread(op, name, ...)
    local d = dict()
    if d then d:incr("threaded:" .. op, 1, 0) end
    local ok, done, kind, message, deadline, ambiguous, code, errno = ngx.run_worker_thread(config.thread_pool,
        "spool.openresty", "thread_call", op, name, ...)
    if not ok then -- the thread machinery itself failed (e.g. its queue is full)
        return nil, rebuild_error("internal", "ngx.run_worker_thread: " .. tostring(done))
    end
    if done then
        return true, kind
    end
    if kind == "misuse" then
        error(message, 3)
    end
    return nil, rebuild_error(kind, message, deadline, ambiguous, code, errno)
end

-- The open spool `name` | nil, err (kind closed) when it was defined
-- here and has been shut down since, or its define() failed here (the
-- message says why).  Raises for a name never defined.
local function get(name)
    local s, err = spool.get(name)
    if not s then
        if defined[name] then
            return nil, spool.errors.new("closed", { message = ("spool '%s' is shut down"):format(tostring(name)) })
        end
        if failed[name] then
            return nil, spool.errors.new("closed", { message = failed[name] })
        end
        error(("spool.openresty: %s (define it in init_worker_by_lua*)"):format(tostring(err)), 3)
    end
    return s
end

-- Runs f(...) -> result, err, timing it into the metrics.  A failure is
-- a nil result (or, for a load, anything but not_found).
local function timed(op, f, ...)
    ngx.update_time()
    local t0 = ngx.now()
    local r, err = f(...)
    ngx.update_time()
    local failed = r == nil and err and not (op == "load" and err.kind == "not_found")
    observe(op, ngx.now() - t0, failed and err)
    return r, err
end

local function store_in_thread(name, id, data, deadline)
    return in_thread("store", name, tostring(id), data, true, deadline)
end

local store_opts = { force_sync = "boolean", timeout = "number", deadline = "number" }

-- store(name, id, data, opts) -> true | nil, err.  opts as s:store's:
-- force_sync, timeout, deadline (the earlier of the two applies).  A
-- durable store runs in the thread pool when configured; the time spent
-- waiting for a thread counts against its deadline.  Raises on unknown
-- options, as s:store does.
function _M.store(name, id, data, opts)
    local deadline
    for k, v in pairs(opts or {}) do
        if not store_opts[k] or type(v) ~= store_opts[k] then
            error(("spool.openresty.store: option %s: expected one of force_sync (boolean), timeout, "
                .. "deadline (numbers)"):format(tostring(k)), 2)
        end
    end
    if opts and opts.timeout then deadline = spool.monotonic() + opts.timeout end
    if opts and opts.deadline and (deadline == nil or opts.deadline < deadline) then deadline = opts.deadline end
    local s, err = get(name)
    if not s then
        observe("store", 0, err)
        return nil, err
    end
    local force = opts and opts.force_sync or false
    if config.thread_pool and config.threaded.store_durable and force then
        return timed("store", store_in_thread, name, id, data, deadline)
    end
    return timed("store", s.store, s, id, data, { force_sync = force, deadline = deadline })
end

-- load(name, id [, opts]) -> bytes | nil, err; opts as s:load's ({ into
-- = buf }: appended to a string.buffer, which is returned).  Inline: a
-- load reads pages the OS usually has cached, faster than a hop to a
-- thread.
function _M.load(name, id, opts)
    local s, err = get(name)
    if not s then return nil, err end
    return timed("load", s.load, s, id, opts)
end

-- remove(name, id) -> true | false | nil, err.  Inline (no sync).
function _M.remove(name, id)
    local s, err = get(name)
    if not s then return nil, err end
    return timed("remove", s.remove, s, id)
end

-- "k=v k=v" of a compact/cleanup stats table: the form that crosses
-- from a worker thread's Lua state.  A nested table (the backend's
-- figures) is written as "backend.k=v".
local function summary(stats)
    local parts = {}
    for k, v in pairs(stats) do
        if type(v) == "table" then
            for k2, v2 in pairs(v) do parts[#parts + 1] = k .. "." .. k2 .. "=" .. tostring(v2) end
        else
            parts[#parts + 1] = k .. "=" .. tostring(v)
        end
    end
    table.sort(parts)
    return table.concat(parts, " ")
end
_M.summary = summary

-- Runs compact or cleanup, in the thread pool when configured.
local function maintenance(op, name)
    if config.thread_pool and config.threaded[op] then
        local ok, res = in_thread(op, name)
        if ok then return res end -- the summary, as inline
        return nil, res
    end
    local s, err = get(name)
    if not s then return nil, err end
    local r
    r, err = s[op](s)
    if not r then return nil, err end
    return summary(r)
end

-- compact(name), cleanup(name) -> summary string | nil, err.
function _M.compact(name) return maintenance("compact", name) end
function _M.cleanup(name) return maintenance("cleanup", name) end

-- unhealthy_reason(name) -> nil (healthy) | reason.  Cheap; a spool
-- shut down is not accepting writes, and says so (a 503, not a 500).
function _M.unhealthy_reason(name)
    local s = get(name)
    if not s then return failed[name] or "the spool is not accepting writes" end
    return s:unhealthy_reason()
end

-- metrics(names) -> Prometheus text exposition for the named spools and
-- the operations counted in the metrics dict (all workers).
function _M.metrics(names)
    local out = {}
    local function line(s) out[#out + 1] = s end
    local gauges = {}
    -- stats() reads a live count, not a count(*): cheap on every scrape.
    -- A spool shut down reports zeros and unhealthy.
    local closed = { st = { entries = 0, bytes = 0, backend = {} },
                     h = { healthy = false, error_latched = false, space_low = false, free_bytes = 0 } }
    for _, name in ipairs(names) do
        local s = get(name)
        local st = s and s:stats()
        local h = s and s:health()
        gauges[name] = st and h and { st = st, h = h } or closed
    end
    -- One gauge; a spool for which f answers nil (a figure its backend
    -- does not keep: LocalDisk counts no entries) has no sample.
    local function gauge(metric, help, f)
        line("# HELP " .. metric .. " " .. help)
        line("# TYPE " .. metric .. " gauge")
        for _, name in ipairs(names) do
            local v = f(gauges[name])
            if v ~= nil then line(('%s{spool="%s"} %s'):format(metric, name, v)) end
        end
    end
    local function count(v) return v and ("%d"):format(v) end
    gauge("spool_entries", "Entries in the spool.", function(g) return count(g.st.entries) end)
    gauge("spool_bytes", "Bytes the spool's files occupy.", function(g) return count(g.st.bytes) end)
    gauge("spool_database_bytes", "Size of the database file (SQLite).",
        function(g) return count(g.st.backend.db_bytes) end)
    gauge("spool_wal_bytes", "Size of the WAL file (SQLite).", function(g) return count(g.st.backend.wal_bytes) end)
    gauge("spool_healthy", "1 when the spool accepts writes.", function(g) return g.h.healthy and "1" or "0" end)
    gauge("spool_gate_latched", "1 while the health gate is latched by errors.",
        function(g) return g.h.error_latched and "1" or "0" end)
    gauge("spool_space_low", "1 while free space or inodes are under their minimum.",
        function(g) return g.h.space_low and "1" or "0" end)
    gauge("spool_free_bytes", "Free bytes on the spool's file system.", function(g) return ("%d"):format(g.h.free_bytes) end)
    local d = dict()
    if d then
        local keys = d:get_keys(0)
        table.sort(keys)
        line("# HELP spool_operations_total Operations through spool.openresty, all workers.")
        line("# TYPE spool_operations_total counter")
        for _, k in ipairs(keys) do
            local op = k:match("^ops:(.+)$")
            if op then line(('spool_operations_total{op="%s"} %d'):format(op, d:get(k))) end
        end
        line("# HELP spool_thread_operations_total Operations run in the nginx thread pool, all workers.")
        line("# TYPE spool_thread_operations_total counter")
        for _, k in ipairs(keys) do
            local op = k:match("^threaded:(.+)$")
            if op then line(('spool_thread_operations_total{op="%s"} %d'):format(op, d:get(k))) end
        end
        line("# HELP spool_errors_total Failed operations by kind, all workers.")
        line("# TYPE spool_errors_total counter")
        for _, k in ipairs(keys) do
            local op, kind = k:match("^errors:([^:]+):(.+)$")
            if op then line(('spool_errors_total{op="%s",kind="%s"} %d'):format(op, kind, d:get(k))) end
        end
        line("# HELP spool_operation_seconds Latency of operations, all workers.")
        line("# TYPE spool_operation_seconds histogram")
        local ops = {}
        for _, k in ipairs(keys) do
            local op = k:match("^ops:(.+)$")
            if op then ops[#ops + 1] = op end
        end
        for _, op in ipairs(ops) do
            local cum = 0
            for i = 1, #buckets do
                cum = cum + (d:get("lat:" .. op .. ":" .. i) or 0)
                line(('spool_operation_seconds_bucket{op="%s",le="%s"} %d'):format(op, tostring(buckets[i]), cum))
            end
            line(('spool_operation_seconds_bucket{op="%s",le="+Inf"} %d'):format(op, d:get("lat:" .. op .. ":inf") or 0))
            line(('spool_operation_seconds_sum{op="%s"} %.6f'):format(op, d:get("latsum:" .. op) or 0))
            line(('spool_operation_seconds_count{op="%s"} %d'):format(op, d:get("ops:" .. op) or 0))
        end
    end
    return table.concat(out, "\n") .. "\n"
end

return _M
