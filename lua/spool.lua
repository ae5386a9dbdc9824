-- spool: a durable message spool on SQLite.
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

return _M
