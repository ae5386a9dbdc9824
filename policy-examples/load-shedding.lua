-- load-shedding.lua: refuse work before it is accepted, while the spool
-- cannot take it.
--
-- unhealthy_reason() is cheap (no I/O, no lock), so a server asks it for
-- every new connection.  When it answers, the SMTP banner is 421 and an
-- HTTP injector answers 503 with Retry-After: the client keeps the
-- message and comes back later.  Nothing is lost, nothing is half-taken.
--
--   luajit policy-examples/load-shedding.lua
local scratch = dofile(((arg and arg[0] or ""):match("^(.*)/") or ".") .. "/setup.lua")
local spool = require "spool"

local dir, cleanup = scratch("shedding")

-- The greeting a new SMTP connection gets.
local function banner(s)
    local reason = s:unhealthy_reason()
    if reason then
        local code, enhanced, text = spool.errors.smtp(spool.errors.new("unhealthy"))
        return ("%d %s %s"):format(code, enhanced, text), reason
    end
    return "220 mx.example.com ESMTP ready"
end

-- A healthy spool: the banner is 220.
local healthy = spool.define { name = "data", path = dir .. "/healthy" }
print("healthy spool:  " .. banner(healthy))

-- A spool that demands more free space than the disk has ("100%" can
-- never be met) is unhealthy from the start, as a full disk would make it.
local starved = spool.open { path = dir .. "/starved", min_free_space = "100%" }
print("starved spool:  " .. banner(starved))

-- A store on it fails at once, with the kind and the reference text.
local ok, err = starved:store(spool.id.new(), "message")
print(("store answers:  %s, %s (%s)"):format(tostring(ok), err.kind, tostring(err)))
local status, text = spool.errors.http(err)
print(("HTTP injection: %d %s, Retry-After: 30"):format(status, text))

-- What an operator sees.
local h = starved:health()
print(("health: healthy=%s space_low=%s free=%.1f GiB of %.1f GiB")
    :format(tostring(h.healthy), tostring(h.space_low), h.free_bytes / 2 ^ 30, h.total_bytes / 2 ^ 30))

healthy:shutdown()
starved:shutdown()
cleanup()
