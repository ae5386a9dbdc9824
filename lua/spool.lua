-- spool: a durable message spool (SQLite, KumoMTA's LocalDisk, RocksDB).
--
--   local spool = require "spool"
--   local s = assert(spool.open { path = "/var/spool/app/data" })
--   local id = spool.id.new()
--   assert(s:store(id, "message bytes"))
--
-- The C core (spool.core) does the storage; this module validates the
-- configuration and gathers the API in one table.  See docs/API.md.
local core = require "spool.core"
local config = require "spool.config"
local errors = require "spool.errors"
local recover = require "spool.recover"

local _M = {
    _VERSION = core.VERSION,
    VERSION = core.VERSION,
    id = core.id,
    errors = errors,
    monotonic = core.monotonic,
}

-- open(params) -> spool.Spool | nil, err.  Bad parameters raise (naming
-- the key); a failure to open the storage returns nil, err.
function _M.open(params)
    local p = config.normalize(params, "spool.open")
    return core.open(p)
end

-- Handles of this Lua state on named spools.  The registry itself lives
-- in C and is process-wide; these references keep a spool defined here
-- open for as long as this state lives (or until shutdown).
local handles = {}

-- define(params) -> spool.Spool.  Opens the spool and registers it under
-- params.name for every Lua state and thread of the process.  Raises on
-- bad parameters, on a name already defined, and when the storage
-- cannot be opened: a policy cannot run without its spools.
function _M.define(params)
    local p = config.normalize(params, "spool.define")
    if p.name == nil then
        error("spool.define: name: a non-empty string is required", 2)
    end
    local ok, s, err = pcall(core.define, p.name, p)
    if not ok then -- the name is taken: say so at the caller's line
        error("spool.define: " .. tostring(s):gsub("^[^:]*:%d+: ", ""), 2)
    end
    if not s then
        error(("spool.define: cannot open spool '%s' at %s: %s"):format(p.name, p.path, tostring(err)), 2)
    end
    handles[p.name] = s
    return s
end

-- get(name) -> spool.Spool | nil, err.  The spool defined under `name` by
-- any Lua state of this process.
function _M.get(name)
    if type(name) ~= "string" then
        error(("bad argument #1 to 'get' (spool name expected, got %s)"):format(type(name)), 2)
    end
    local s = handles[name]
    if s and not s:is_closed() then
        return s
    end
    handles[name] = nil
    s = core.lookup(name)
    if not s then
        return nil, errors.new("not_found", { message = ("no spool named '%s' is defined"):format(name) })
    end
    handles[name] = s
    return s
end

-- data(), meta(): the two spools a mail server keeps.
function _M.data()
    return _M.get("data")
end

function _M.meta()
    return _M.get("meta")
end

-- recover{meta=, data=, start_time=, on_message=, on_corrupt=,
-- on_orphan=, on_progress=} -> counts.  See lua/spool/recover.lua.
function _M.recover(opts)
    return recover.recover(opts, _M.get)
end

return _M
