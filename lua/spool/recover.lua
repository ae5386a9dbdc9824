-- spool.recover: the start-up rebuild of a server's queues.  Walks the
-- `meta` spool oldest first, pairs each entry with its `data` entry, and
-- hands each message to the policy; corrupt and incomplete messages go
-- where on_corrupt says; data entries without meta are reported.
local core = require "spool.core"
local errors = require "spool.errors"

local _M = { _VERSION = core.VERSION }

local type, tostring, error, pcall, setmetatable, ipairs = type, tostring, error, pcall, setmetatable, ipairs
local format = string.format
local monotonic = core.monotonic

local msg_mt = {}
msg_mt.__index = msg_mt

-- msg:data() -> bytes | nil, err: the message body, loaded on demand.
function msg_mt:data()
    return self._data_spool:load(self.id)
end

function msg_mt:__tostring()
    return "spool message " .. tostring(self.id)
end

-- The order the backend of `kind` enumerates in, as it declares it
-- ("created", "id_bytes"), or nil when it promises none.
local function enumerate_order(kind)
    for _, b in ipairs(core.backends()) do
        if b.kind == kind then return b.order end
    end
end

local corrupt_actions = { quarantine = true, remove = true, keep = true }
local known_opts = {
    meta = true, data = true, start_time = true, on_message = true, on_corrupt = true,
    on_orphan = true, on_progress = true, progress_interval = true,
}

-- Resolves a spool given by name or handle.
local function resolve(get, v, key)
    if type(v) == "string" then
        local s, err = get(v)
        if not s then
            error(format("spool.recover: %s: %s", key, tostring(err)), 3)
        end
        return s
    elseif core.is_spool(v) then
        return v
    end
    error(format("spool.recover: %s: expected a spool name or handle, got %s", key, type(v)), 3)
end

-- recover(opts, get) -> counts.  `get` resolves spool names (spool.get).
-- Raises on bad options, when on_message (or an on_corrupt function)
-- raises (naming the id), and when a spool fails to enumerate.
function _M.recover(opts, get)
    if type(opts) ~= "table" then
        error("spool.recover: expected a table of options, got " .. type(opts), 2)
    end
    for k in pairs(opts) do
        if not known_opts[k] then
            error(format("spool.recover: unknown option %s", tostring(k)), 2)
        end
    end
    local meta = resolve(get, opts.meta or "meta", "meta")
    local data = resolve(get, opts.data or "data", "data")
    local on_message = opts.on_message
    if type(on_message) ~= "function" then
        error("spool.recover: on_message: a function is required", 2)
    end
    local on_corrupt = opts.on_corrupt or "quarantine"
    if not (corrupt_actions[on_corrupt] or type(on_corrupt) == "function") then
        error(format("spool.recover: on_corrupt: expected \"quarantine\", \"remove\", \"keep\" or a function, got %s",
            tostring(on_corrupt)), 2)
    end
    local on_orphan, on_progress = opts.on_orphan, opts.on_progress
    if on_orphan ~= nil and type(on_orphan) ~= "function" then
        error("spool.recover: on_orphan: a function expected", 2)
    end
    if on_progress ~= nil and type(on_progress) ~= "function" then
        error("spool.recover: on_progress: a function expected", 2)
    end
    local interval = opts.progress_interval or 1
    if type(interval) ~= "number" or interval < 0 then
        error("spool.recover: progress_interval: seconds >= 0 expected", 2)
    end
    -- One start time for both spools, precise (os.time() would drop the
    -- messages of the current second).
    local start_time = opts.start_time or core.now()
    if type(start_time) ~= "number" then
        error("spool.recover: start_time: Unix seconds expected, got " .. type(start_time), 2)
    end

    local counts = { messages = 0, corrupt = 0, quarantined = 0, removed = 0, orphans = 0, seconds = 0 }
    local t0 = monotonic()
    local next_progress = t0 + interval
    local done = 0

    -- Disposes of a corrupt or incomplete message per on_corrupt.
    local function corrupt(id, why)
        counts.corrupt = counts.corrupt + 1
        if type(on_corrupt) == "function" then
            local ok, e = pcall(on_corrupt, id, why)
            if not ok then
                error(format("spool.recover: on_corrupt failed for %s: %s", tostring(id), tostring(e)), 0)
            end
        elseif id == nil or on_corrupt == "keep" then
            return -- an entry whose id itself is damaged cannot be moved by id
        elseif on_corrupt == "quarantine" then
            local moved = false
            for _, s in ipairs({ meta, data }) do
                local ok, err = s:quarantine(id, why)
                if ok then
                    moved = true
                elseif not errors.is(err, "not_found") then
                    error(format("spool.recover: cannot quarantine %s: %s", tostring(id), tostring(err)), 0)
                end
            end
            if moved then counts.quarantined = counts.quarantined + 1 end
        else -- "remove"
            local ok1, err1 = meta:remove(id)
            local ok2, err2 = data:remove(id)
            if ok1 == nil or ok2 == nil then
                error(format("spool.recover: cannot remove %s: %s", tostring(id), tostring(err1 or err2)), 0)
            end
            counts.removed = counts.removed + 1
        end
    end

    local function orphan(id)
        counts.orphans = counts.orphans + 1
        if on_orphan then
            local ok, e = pcall(on_orphan, id)
            if not ok then
                error(format("spool.recover: on_orphan failed for %s: %s", tostring(id), tostring(e)), 0)
            end
        end
    end

    -- Two spools of one kind enumerate in the same order, which their
    -- backend declares (by creation time, or by the ids' bytes), so one
    -- pass over each pairs them: a merge join on ids, reading only the
    -- data spool's key index.  Spools of different kinds, or of a kind
    -- that promises no order, have no common one: each message's data is
    -- then looked up (and orphans go unreported).
    local kind = meta:kind()
    local order = enumerate_order(kind)
    local before
    if order == "created" then
        before = function(a, b) return a < b end
    else
        before = function(a, b) return tostring(a) < tostring(b) end
    end
    local joined = order ~= nil and kind == data:kind()
    local data_ids = joined and data:entries({ start_time = start_time, ids_only = true }) or function() end
    local pending = data_ids()
    local function advance_to(id)
        if not joined then
            local bytes, err = data:load(id)
            if bytes == nil and not errors.is(err, "not_found") then
                error(format("spool.recover: cannot read the data of %s: %s", tostring(id), tostring(err)), 0)
            end
            return bytes ~= nil
        end
        while pending and (pending.id == nil or before(pending.id, id)) do
            if pending.id then orphan(pending.id) else counts.corrupt = counts.corrupt + 1 end
            pending = data_ids()
        end
        if pending and pending.id == id then
            pending = data_ids()
            return true
        end
        return false
    end

    for entry in meta:entries({ start_time = start_time }) do
        if entry.corrupt then
            if entry.id then advance_to(entry.id) end
            corrupt(entry.id, entry.error)
        elseif not advance_to(entry.id) then
            corrupt(entry.id, "no data entry for this message")
        else
            local msg = setmetatable({ id = entry.id, meta = entry.data, _data_spool = data }, msg_mt)
            local ok, e = pcall(on_message, msg)
            if not ok then
                error(format("spool.recover: on_message failed for %s: %s", tostring(entry.id), tostring(e)), 0)
            end
            counts.messages = counts.messages + 1
        end
        done = done + 1
        if on_progress and monotonic() >= next_progress then
            on_progress(done)
            next_progress = monotonic() + interval
        end
    end
    while pending do
        if pending.id then orphan(pending.id) else counts.corrupt = counts.corrupt + 1 end
        pending = data_ids()
    end
    if on_progress then on_progress(done) end
    counts.seconds = monotonic() - t0
    return counts
end

return _M
