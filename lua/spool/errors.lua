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

-- What a server answers for each kind.  Every kind is transient (SMTP
-- 4xx, HTTP 503): a failure of the spool must never make a server reject
-- mail permanently; the client keeps the message and retries.  The texts
-- are bland on purpose: a peer learns nothing of paths or internals.
-- The reasoning behind each row is in docs/ERRORS.md.
local replies = {
    --                          SMTP  enhanced  HTTP  text
    unhealthy                = { 421, "4.3.2", 503, "the spool is not accepting writes" },
    caller_deadline_exceeded = { 451, "4.3.0", 503,
        "the caller-provided deadline was reached before the spool accepted the write" },
    backpressure_timeout     = { 451, "4.4.5", 503, nil }, -- the error's own text names the deadline
    full                     = { 452, "4.3.1", 503, "insufficient system storage" },
    busy                     = { 451, "4.4.5", 503, "the spool is busy, try again later" },
    not_found                = { 451, "4.3.0", 404, "local error in processing" },
    corrupt                  = { 451, "4.3.0", 503, "local error in processing" },
    io                       = { 451, "4.3.0", 503, "local error in processing" },
    closed                   = { 421, "4.3.2", 503, "the spool is not accepting writes" },
    internal                 = { 451, "4.3.0", 503, "local error in processing" },
    conflict                 = { 451, "4.3.0", 409, "local error in processing" },
}
local unknown = { 451, "4.3.0", 503, "local error in processing" }
_M.replies = replies

local function reply_for(err)
    local r = type(err) == "table" and replies[err.kind] or unknown
    local text = r[4]
    if text == nil then
        text = type(err) == "table" and type(err.message) == "string" and err.message
            or "the spool did not accept the write in time"
    end
    return r, text
end

-- smtp(err) -> code, enhanced_code, text: the reply to send for a spool
-- error (RFC 5321 reply code, RFC 3463 enhanced status).  Anything that
-- is not a spool error gets 451 4.3.0.
function _M.smtp(err)
    local r, text = reply_for(err)
    return r[1], r[2], text
end

-- http(err) -> status, text.  404 only for not_found (a lookup by id),
-- 409 for conflict (an operator's quarantine or restore of an id in the
-- way); everything else 503, which clients retry.
function _M.http(err)
    local r, text = reply_for(err)
    return r[3], text
end

return _M
