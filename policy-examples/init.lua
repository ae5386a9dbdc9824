-- init.lua: an MTA-like policy.
--
-- It defines the two spools a mail server keeps (message bodies in
-- `data`, envelopes in `meta`), rebuilds its queue from them at start-up,
-- accepts messages through a small simulated SMTP transaction, and
-- delivers them.  Half-way it "crashes" (drops everything it holds in
-- memory) and starts again, to show that what was accepted survives.
--
--   luajit policy-examples/init.lua
local scratch = dofile(((arg and arg[0] or ""):match("^(.*)/") or ".") .. "/setup.lua")
local spool = require "spool"

local dir, cleanup = scratch("init")

-- The queue the server keeps in memory: rebuilt from the spool at start.
local queue

-- Start-up: define the spools and rebuild the queue.  KumoMTA does the
-- same with define_spool and its spool_message_enumerated event.
local function start()
    spool.define { name = "data", path = dir .. "/data", flush = false }
    spool.define { name = "meta", path = dir .. "/meta", flush = false }
    queue = {}
    local counts = spool.recover {
        -- Called once per message accepted before this start.
        on_message = function(msg)
            queue[#queue + 1] = { id = msg.id, envelope = msg.meta }
        end,
        -- A message whose meta or data is damaged or missing is moved
        -- aside, never deleted: an operator can look at it later.
        on_corrupt = "quarantine",
    }
    print(("start-up: %d messages recovered, %d corrupt, %d orphaned data entries (%.3f s)")
        :format(counts.messages, counts.corrupt, counts.orphans, counts.seconds))
end

-- One SMTP transaction, after DATA: store the body, then the envelope,
-- each with the deadline the server gives DATA processing.  The reply
-- is what the client sees; on any spool error it is a 4xx, so the
-- client keeps the message and tries again later.
local function accept(mail_from, rcpt_to, body)
    local id = spool.id.new()
    local opts = { timeout = 5 } -- seconds; the store answers by then
    local ok, err = spool.data():store(id, body, opts)
    if ok then
        ok, err = spool.meta():store(id, ("MAIL FROM:<%s> RCPT TO:<%s>"):format(mail_from, rcpt_to), opts)
        if not ok then
            spool.data():remove(id) -- do not leave half a message behind
        end
    end
    if not ok then
        local code, enhanced, text = spool.errors.smtp(err)
        return ("%d %s %s"):format(code, enhanced, text)
    end
    queue[#queue + 1] = { id = id }
    return ("250 2.0.0 OK queued as %s"):format(tostring(id))
end

-- Delivery: load the body, hand it on, then remove both entries.
local function deliver_all()
    local delivered = 0
    for _, item in ipairs(queue) do
        local body, err = spool.data():load(item.id)
        if body then
            -- (a real server would now talk to the next hop)
            assert(spool.meta():remove(item.id) ~= nil)
            assert(spool.data():remove(item.id) ~= nil)
            delivered = delivered + 1
        else
            print(("cannot load %s: %s"):format(tostring(item.id), tostring(err)))
        end
    end
    queue = {}
    return delivered
end

-- The crash: the process forgets everything in memory.
local function crash()
    spool.data():shutdown()
    spool.meta():shutdown()
    queue = nil
end

start()
for i = 1, 5 do
    print(accept("sender@example.com", ("rcpt%d@example.net"):format(i), "Subject: test " .. i .. "\r\n\r\nHello\r\n"))
end
print("-- crash before delivery, then restart --")
crash()
start()
print(("delivered %d messages"):format(deliver_all()))
print(("spool now holds %d data and %d meta entries"):format(spool.data():stats().entries, spool.meta():stats().entries))
spool.data():shutdown()
spool.meta():shutdown()
cleanup()
