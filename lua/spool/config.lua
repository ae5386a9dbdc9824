-- spool.config: validates and normalises the parameter table of
-- spool.open / spool.define.  Every bad value raises an error that names
-- the key, the value and what was expected; nothing is opened before the
-- whole table passed.
local _M = { _VERSION = "0.1.0" }

local type, pairs, ipairs, tostring, tonumber, error = type, pairs, ipairs, tostring, tonumber, error
local format, floor = string.format, math.floor

local function show(v)
    if type(v) == "string" then
        return format("%q", v)
    end
    return tostring(v)
end

-- Raises without a position: normalize() re-raises at its caller's caller.
local function bad(where, key, value, expected)
    error(format("%s: %s: expected %s, got %s", where, key, expected, show(value)), 0)
end

-- Units as KumoMTA's policies write them too ("24 hours", "5min", "6h").
local duration_units = {
    us = 1e-6, usec = 1e-6, microsecond = 1e-6, microseconds = 1e-6,
    ms = 0.001, msec = 0.001, millisecond = 0.001, milliseconds = 0.001,
    s = 1, sec = 1, secs = 1, second = 1, seconds = 1,
    m = 60, min = 60, mins = 60, minute = 60, minutes = 60,
    h = 3600, hr = 3600, hrs = 3600, hour = 3600, hours = 3600,
    d = 86400, day = 86400, days = 86400,
}

-- Upper bounds, so that every value fits the C type it becomes: a
-- duration in int64 nanoseconds, a count in an unsigned int, a byte
-- size exactly in a double.
local MAX_SECONDS = 1e9            -- about 31 years
local MAX_COUNT = 2 ^ 31 - 1
local MAX_BYTES = 2 ^ 53

-- A duration: seconds as a number, or a string like "30s", "200ms", "5m".
local function duration(where, key, v, allow_zero)
    local secs
    if type(v) == "number" then
        secs = v
    elseif type(v) == "string" then
        local n, unit = v:match("^%s*([%d%.]+)%s*(%a*)%s*$")
        local scale = duration_units[unit ~= "" and unit or "s"]
        secs = n and scale and tonumber(n) and tonumber(n) * scale
    end
    if type(secs) ~= "number" or secs ~= secs or secs < 0 or secs > MAX_SECONDS
        or (not allow_zero and secs == 0) then
        bad(where, key, v, (allow_zero and "a duration >= 0" or "a duration > 0")
            .. " and at most 1e9 seconds (seconds, or a string like \"30s\", \"200ms\", \"5m\")")
    end
    return secs
end

-- A free-space minimum: a count, or a percentage string like "10%".
local function threshold(where, key, v)
    if type(v) == "number" then
        if v < 0 or v ~= v or v > MAX_BYTES then
            bad(where, key, v, "a count between 0 and 2^53 or a percentage like \"10%\"")
        end
        return nil, v
    elseif type(v) == "string" then
        local n = v:match("^%s*([%d%.]+)%s*%%%s*$")
        n = n and tonumber(n)
        if n and n >= 0 and n <= 100 then
            return n, nil
        end
        -- An unsuffixed string is a count, as KumoMTA reads it.
        local count = tonumber(v:match("^%s*(%d+)%s*$"))
        if count and count <= MAX_BYTES then
            return nil, count
        end
    end
    bad(where, key, v, "a count >= 0 or a percentage between \"0%\" and \"100%\"")
end

local function boolean(where, key, v)
    if type(v) ~= "boolean" then
        bad(where, key, v, "a boolean")
    end
    return v
end

-- A checker for integers in [lo, hi]; `what` names them in the message.
local function integer_in(lo, hi, what)
    local expected = ("%s between %d and %s"):format(what, lo, hi == MAX_COUNT and "2^31-1" or "2^53")
    return function(where, key, v)
        if type(v) ~= "number" or v < lo or v ~= floor(v) or v > hi then
            bad(where, key, v, expected)
        end
        return v
    end
end

local positive_integer = integer_in(1, MAX_COUNT, "an integer")   -- pages, rows, operations
local byte_size = integer_in(0, MAX_BYTES, "a byte count")

-- The gate and deadline settings, which KumoMTA keeps in rocks_params.
local tuning = {
    store_deadline = function(w, k, v) return duration(w, k, v, false) end,
    error_latch_duration = function(w, k, v) return duration(w, k, v, true) end,
    error_unlatch_duration = function(w, k, v) return duration(w, k, v, true) end,
    allow_error_unlatch = boolean,
    limit_concurrent_stores = positive_integer,
    limit_concurrent_loads = positive_integer,
    limit_concurrent_removes = positive_integer,
}

-- The kinds built into spool.core (the default first) and each one's
-- tuning table, read from the backends' own option declarations.
local core = require "spool.core"

-- The checker of one declared option.
local function option_checker(o)
    if o.type == "boolean" then
        return boolean
    elseif o.type == "one of" then
        -- Any case ("lz4" for "Lz4"): the canonical spelling goes on.
        local ok = {}
        for v in o.values:gmatch("[^,]+") do ok[v:lower()] = v end
        local expected = "one of " .. o.values:gsub(",", ", ")
        return function(where, key, v)
            local canonical = type(v) == "string" and ok[v:lower()]
            if not canonical then bad(where, key, v, expected) end
            return canonical
        end
    elseif o.type == "duration" then
        return function(where, key, v)
            local secs = duration(where, key, v, o.min == 0)
            if secs < o.min or secs > o.max then
                bad(where, key, v, ("a duration between %d and %d seconds"):format(o.min, o.max))
            end
            return secs
        end
    elseif o.type == "string" then
        return function(where, key, v)
            if type(v) ~= "string" or v == "" or v:find("\0", 1, true) then
                bad(where, key, v, "a non-empty string (" .. o.doc .. ")")
            end
            return v
        end
    end
    local max_text = o.max >= MAX_BYTES and "2^53" or o.max == MAX_COUNT and "2^31-1" or tostring(o.max)
    local pow2 = o.type == "power of two"
    local expected = ("%s between %d and %s"):format(pow2 and "a power of two" or "an integer", o.min, max_text)
    return function(where, key, v)
        if type(v) ~= "number" or v ~= floor(v) or v < o.min or v > o.max then
            bad(where, key, v, expected)
        end
        if pow2 then
            local p = 1
            while p < v do p = p * 2 end
            if p ~= v then bad(where, key, v, expected) end
        end
        return v
    end
end

local backends, built_list, option_tables = {}, {}, {}
for i, b in ipairs(core.backends()) do
    backends[b.kind] = true
    built_list[i] = b.kind
    if b.options_key then
        local checks, names = {}, {}
        for j, o in ipairs(b.options) do
            checks[o.name] = option_checker(o)
            names[j] = o.name
        end
        table.sort(names)
        option_tables[b.options_key] = { kind = b.kind, checks = checks, names = table.concat(names, ", ") }
    end
end
-- Kinds a build may lack, and how to get them: named, they get that
-- answer rather than "unknown".
local HOW_TO_BUILD = {
    RocksDB = "it is built when RocksDB's headers are installed (apt-get install librocksdb-dev, then make)",
}
-- The kinds `kind` accepts, as an error message lists them: the built
-- ones in the build's order, then those it could have.
local kinds_text
do
    local names = {}
    for i, k in ipairs(built_list) do names[i] = format("%q", k) end
    for k in pairs(HOW_TO_BUILD) do
        if not backends[k] then names[#names + 1] = format("%q", k) end
    end
    kinds_text = #names == 1 and names[1]
        or table.concat(names, ", ", 1, #names - 1) .. " or " .. names[#names]
end

-- The validation proper; raises messages without a position.
local function normalize(params, where)
    if type(params) ~= "table" then
        error(format("%s: expected a table of parameters, got %s", where, type(params)), 0)
    end
    local out = {}
    for key, v in pairs(params) do
        if type(key) ~= "string" then
            error(format("%s: unknown parameter %s (keys are strings)", where, show(key)), 0)
        elseif key == "name" then
            if type(v) ~= "string" or v == "" or v:find("\0", 1, true) then
                bad(where, key, v, "a non-empty string without NUL bytes")
            end
            out.name = v
        elseif key == "path" then
            if type(v) ~= "string" or v == "" or v:find("\0", 1, true) then
                bad(where, key, v, "a directory path (non-empty string)")
            end
            out.path = v
        elseif key == "kind" then
            if type(v) ~= "string" or not (backends[v] or HOW_TO_BUILD[v]) then
                bad(where, key, v, kinds_text)
            end
            if not backends[v] then
                -- How to get it, where there is a way.
                local how = HOW_TO_BUILD[v] and "; " .. HOW_TO_BUILD[v] or ""
                error(format("%s: kind: the %s backend is not built into this spool (built in: %s)%s",
                    where, v, table.concat(built_list, ", "), how), 0)
            end
            out.kind = v
        elseif key == "flush" then
            out.flush = boolean(where, key, v)
        elseif key == "group_access" then
            out.group_access = boolean(where, key, v)
        elseif key == "min_free_space" then
            out.min_free_space_percent, out.min_free_space_bytes = threshold(where, key, v)
        elseif key == "min_free_inodes" then
            out.min_free_inodes_percent, out.min_free_inodes_count = threshold(where, key, v)
        elseif key == "reserve_bytes" then
            out.reserve_bytes = byte_size(where, key, v)
        elseif key == "commit_wait" then
            local secs = duration(where, key, v, true)
            if secs > 0.1 then bad(where, key, v, "a duration between 0 and 0.1 seconds (\"100ms\")") end
            out.commit_wait = secs
        elseif tuning[key] then
            out[key] = tuning[key](where, key, v)
        elseif option_tables[key] then
            local tbl = option_tables[key]
            if type(v) ~= "table" then
                bad(where, key, v, "a table of " .. tbl.kind .. " settings")
            end
            local out_t = {}
            for k2, v2 in pairs(v) do
                local check = type(k2) == "string" and tbl.checks[k2]
                if key == "rocks_params" and type(k2) == "string" and tuning[k2] then
                    -- KumoMTA keeps the gate and deadline settings here:
                    -- they apply unless given at the top level.
                    if params[k2] == nil then
                        out[k2] = tuning[k2](where, "rocks_params." .. k2, v2)
                    end
                elseif not check then
                    error(format("%s: %s: unknown setting %s (known: %s)", where, key, show(k2), tbl.names), 0)
                else
                    out_t[k2] = check(where, key .. "." .. k2, v2)
                end
            end
            out[key] = out_t
        elseif key == "rocks_params" then
            -- Accepted as KumoMTA policies write it; its gate and deadline
            -- settings apply unless given at the top level, the rest tunes
            -- RocksDB only.
            if type(v) ~= "table" then
                bad(where, key, v, "a table")
            end
            for k2, v2 in pairs(v) do
                if type(k2) == "string" and tuning[k2] and params[k2] == nil then
                    out[k2] = tuning[k2](where, "rocks_params." .. k2, v2)
                end
            end
        else
            error(format("%s: unknown parameter %s", where, show(key)), 0)
        end
    end
    if out.path == nil then
        error(format("%s: path: a directory path is required", where), 0)
    end
    if out.allow_error_unlatch ~= false and out.error_unlatch_duration == 0 then
        error(format("%s: error_unlatch_duration (top level or in rocks_params): expected a duration > 0 "
            .. "while allow_error_unlatch is true (0 would unlatch the gate at once), got 0", where), 0)
    end
    return out
end

-- normalize(params, where) -> the table spool.core.open reads.  Raises
-- on the first bad key or value, naming it; `where` ("spool.open",
-- "spool.define") prefixes the message, and the error points at the line
-- that called spool.open / spool.define.
function _M.normalize(params, where)
    local ok, res = pcall(normalize, params, where or "spool.open")
    if not ok then
        error(res, 3)
    end
    return res
end

return _M
