-- quarantine.lua: find, inspect and restore quarantined entries.
--
-- Quarantine moves an entry aside with a reason: it is no longer loaded
-- or enumerated (so it cannot block a queue rebuild), and it is never
-- lost.  spool.recover quarantines damaged messages by default; an
-- operator looks at them and restores those worth keeping.
--
--   luajit policy-examples/quarantine.lua
local scratch = dofile(((arg and arg[0] or ""):match("^(.*)/") or ".") .. "/setup.lua")
local spool = require "spool"

local dir, cleanup = scratch("quarantine")
local s = spool.define { name = "meta", path = dir }

local ids = {}
for i = 1, 4 do
    ids[i] = spool.id.new()
    assert(s:store(ids[i], "envelope " .. i))
end

-- A policy decides two messages need a human.
assert(s:quarantine(ids[2], "recipient domain does not resolve"))
assert(s:quarantine(ids[4], "policy script raised while enumerating"))

local live = 0
for _ in s:entries() do live = live + 1 end
print(("enumerate sees %d live entries"):format(live))
local _, err = s:load(ids[2])
print(("load of a quarantined id: %s"):format(err.kind))

-- The operator's view: what is in quarantine, why, since when.
for q in s:quarantined() do
    print(("quarantined %s at %s: %s (%d bytes: %q)"):format(
        tostring(q.id), os.date("!%H:%M:%S", math.floor(q.time)), q.reason, #q.data, q.data))
end

-- Restore the one that was fixed; it is a normal entry again.
assert(s:restore(ids[2]))
print(("restored %s: load gives %q"):format(tostring(ids[2]), s:load(ids[2])))

local left = 0
for _ in s:quarantined() do left = left + 1 end
print(("%d entry left in quarantine"):format(left))
s:shutdown()
cleanup()
