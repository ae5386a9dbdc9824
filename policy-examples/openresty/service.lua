-- service.lua: a small message-injection service on nginx + spool.
--
--   POST   /messages          store a message (body = the message); 202 + id
--                             ?durable=1: force_sync, run in the thread pool
--   GET    /messages/<id>     the message; 404 if absent, 400 if <id> is malformed
--   DELETE /messages/<id>     204; 404 if absent
--   GET    /health            200 "ok" or 503 with the reason
--   GET    /metrics           Prometheus text
--
-- Like a mail server it keeps two spools: `data` (bodies) and `meta`
-- (envelopes).  See README.md beside this file.
local spool = require "spool"
local openresty = require "spool.openresty"

local _M = {}

local ngx = ngx
local RETRY_AFTER = "30"
-- GET loads into this worker's buffer and sends it in CHUNK-byte pieces:
-- no Lua string the size of the message is made.
local body = require("string.buffer").new()
local CHUNK = 65536

-- Called from init_worker_by_lua_block: each worker opens the spools.
function _M.init_worker(dir, thread_pool)
    openresty.define { name = "data", path = dir .. "/data" }
    openresty.define { name = "meta", path = dir .. "/meta" }
    openresty.configure { thread_pool = thread_pool, metrics_dict = "spool_metrics" }
    -- Periodic maintenance, off the event loop when a pool is configured.
    ngx.timer.every(1, function(premature)
        if premature then return end
        openresty.cleanup("data")
        openresty.cleanup("meta")
    end)
end

local function reply(status, text, headers)
    ngx.status = status
    ngx.header["Content-Type"] = "text/plain"
    for k, v in pairs(headers or {}) do ngx.header[k] = v end
    ngx.print(text, "\n")
    return ngx.exit(status)
end

-- Answers a spool error with its HTTP mapping (503 + Retry-After).
local function fail(err)
    local status, text = spool.errors.http(err)
    ngx.log(ngx.ERR, "spool: ", tostring(err))
    return reply(status, text, status == 503 and { ["Retry-After"] = RETRY_AFTER } or nil)
end

local function unhealthy()
    return openresty.unhealthy_reason("data") or openresty.unhealthy_reason("meta")
end

local function post_message()
    local reason = unhealthy()
    if reason then
        return reply(503, reason, { ["Retry-After"] = RETRY_AFTER })
    end
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if body == nil then
        if ngx.req.get_body_file() then -- cannot happen with the buffer sized to the limit
            return reply(413, "message too large")
        end
        return reply(400, "empty message: the request body is the message")
    end
    local id = spool.id.new()
    local durable = ngx.var.arg_durable == "1"
    local opts = { force_sync = durable, timeout = 10 }
    local ok, err = openresty.store("data", id, body, opts)
    if not ok then return fail(err) end
    -- Header values are the client's: percent-encoded, so that a space or
    -- an "=" in them cannot forge a field of the record.
    local envelope = ("from=%s to=%s received=%.3f size=%d"):format(
        ngx.escape_uri(ngx.var.http_x_mail_from or ""), ngx.escape_uri(ngx.var.http_x_rcpt_to or ""),
        ngx.now(), #body)
    ok, err = openresty.store("meta", id, envelope, opts)
    if not ok then
        openresty.remove("data", id) -- leave no half message
        return fail(err)
    end
    return reply(202, tostring(id))
end

local function with_id(text, f)
    local id, why = spool.id.parse(text)
    if not id then
        return reply(400, "malformed id: " .. why)
    end
    return f(id)
end

function _M.handle()
    local method, uri = ngx.req.get_method(), ngx.var.uri
    if uri == "/messages" or uri == "/messages/" then
        if method == "POST" then return post_message() end
        return reply(405, "use POST to store a message", { Allow = "POST" })
    end
    local text = uri:match("^/messages/([^/]+)$")
    if text then
        if method == "GET" then
            return with_id(text, function(id)
                body:reset()
                local ok, err = openresty.load("data", id, { into = body })
                if not ok then
                    if err.kind == "not_found" then return reply(404, "no message " .. tostring(id)) end
                    return fail(err)
                end
                ngx.header["Content-Type"] = "application/octet-stream"
                -- In pieces under LuaJIT's 128 KiB large-string size;
                -- nothing yields until the buffer is empty.
                while #body > 0 do ngx.print(body:get(CHUNK)) end
                return ngx.exit(200)
            end)
        elseif method == "DELETE" then
            return with_id(text, function(id)
                local m, err = openresty.remove("meta", id)
                if m == nil then return fail(err) end
                local d, err2 = openresty.remove("data", id)
                if d == nil then return fail(err2) end
                if not (m or d) then return reply(404, "no message " .. tostring(id)) end
                return ngx.exit(204)
            end)
        end
        return reply(405, "use GET or DELETE", { Allow = "GET, DELETE" })
    end
    if uri == "/health" then
        local reason = unhealthy()
        if reason then return reply(503, reason, { ["Retry-After"] = RETRY_AFTER }) end
        return reply(200, "ok")
    end
    if uri == "/metrics" then
        ngx.header["Content-Type"] = "text/plain; version=0.0.4"
        ngx.print(openresty.metrics({ "data", "meta" }))
        return ngx.exit(200)
    end
    return reply(404, "not found: try POST /messages")
end

return _M
