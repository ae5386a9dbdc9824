-- maintenance.lua: the periodic housekeeping a long-running server does.
--
-- cleanup() is bounded (a checkpoint when the WAL is large, a few free
-- pages reclaimed, free space re-read): call it every second or so.
-- compact() gives all free space back to the file system, in bounded
-- steps: call it after a large backlog drained, or from an admin command.
-- advise_low_memory() drops SQLite's caches when the host is short.
--
--   luajit policy-examples/maintenance.lua
local scratch = dofile(((arg and arg[0] or ""):match("^(.*)/") or ".") .. "/setup.lua")
local spool = require "spool"

local dir, cleanup_dir = scratch("maintenance")
local s = spool.define { name = "data", path = dir }

local function mib(n) return n / 2 ^ 20 end

-- A backlog arrives and drains: 2,000 messages of 8 KiB.
local ids, body = {}, ("x"):rep(8192)
for i = 1, 2000 do
    ids[i] = spool.id.new()
    assert(s:store(ids[i], body))
end
local st = s:stats()
print(("after the backlog: %d entries, database %.1f MiB, WAL %.1f MiB")
    :format(st.entries, mib(st.backend.db_bytes), mib(st.backend.wal_bytes)))
assert(s:remove_many(ids))

-- The periodic loop: here three rounds, a server would run it forever.
for round = 1, 3 do
    local c = assert(s:cleanup())
    print(("cleanup %d: checkpointed=%s, %d free pages reclaimed, WAL %.1f MiB")
        :format(round, tostring(c.backend.checkpointed), c.backend.pages_freed, mib(c.backend.wal_bytes)))
    local wait = spool.monotonic() + 0.1
    while spool.monotonic() < wait do end -- stand-in for the server's timer
end

local c = assert(s:compact())
print(("compact: database %.1f -> %.1f MiB, WAL peaked at %.1f MiB, %d pages freed in %d steps, %.3f s")
    :format(mib(c.backend.db_bytes_before), mib(c.backend.db_bytes_after), mib(c.backend.wal_bytes_max),
        c.backend.pages_freed, c.steps, c.seconds))
print(("advise_low_memory released %d bytes"):format(s:advise_low_memory()))

st = s:stats()
print(("stats: stores=%d removes=%d errors=%d freelist=%d pages"):format(st.stores, st.removes, st.errors,
    st.backend.freelist_count))
s:shutdown()
cleanup_dir()
