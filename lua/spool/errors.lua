-- spool.errors: the kinds of runtime failure, and what a server should
-- answer for each.  Error objects come from the C core as tables with the
-- metatable "spool.Error": err.kind, err.message, and where they apply
-- err.code, err.errno, err.deadline, err.retryable, err.ambiguous.
local core = require "spool.core"

local _M = { _VERSION = core.VERSION }

local error_mt = core.error_mt
local type, getmetatable = type, getmetatable

-- Kind constants: spool.errors.NOT_FOUND == "not_found", ...
_M.kinds = {}
for i, kind in ipairs(core.kinds) do
    _M.kinds[i] = kind
    _M[kind:upper()] = kind
end

-- new(kind, fields) -> a spool.Error.  fields: message, deadline, code,
-- errno, ambiguous.  Raises on an unknown kind.
_M.new = core.error

-- format_duration(seconds) -> "30s", "200ms", "1.5s": the text Rust's
-- Duration debug format gives, which the reference messages use.
_M.format_duration = core.format_duration

-- is(err, kind) -> true when err is a spool error (of that kind, if given).
function _M.is(err, kind)
    if type(err) ~= "table" or getmetatable(err) ~= error_mt then
        return false
    end
    return kind == nil or err.kind == kind
end

return _M
