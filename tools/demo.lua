-- The README's demo: a default spool, a thousand messages through their
-- whole life (store, load, enumerate, remove), then compact and stats.
--   make demo                       (spool in $SPOOL_DEMO_DIR or /tmp/spool-demo)
local spool = require "spool"

local dir = os.getenv("SPOOL_DEMO_DIR") or "/tmp/spool-demo"
local s = assert(spool.open { path = dir })
print(("spool %s, spool %s"):format(dir, spool.VERSION))

local N = 1000
local body = ("Subject: hello\r\n\r\n" .. ("x"):rep(4000))
local ids = {}
local t0 = spool.monotonic()
for i = 1, N do
    local id = spool.id.new()
    assert(s:store(id, body))
    ids[i] = id
end
local t1 = spool.monotonic()
for i = 1, N do
    assert(s:load(ids[i]) == body)
end
local t2 = spool.monotonic()
local seen = assert(s:enumerate(function() end))
print(("stored %d messages of %d bytes: %.0f stores/s, %.0f loads/s; enumerate saw %d")
    :format(N, #body, N / (t1 - t0), N / (t2 - t1), seen))

print("first id:", ids[1], "created", os.date("!%Y-%m-%d %H:%M:%S", math.floor(ids[1]:created())),
    "LocalDisk path", ids[1]:path(dir))
local removed = assert(s:remove_many(ids))
print(("removed %d"):format(removed))

local c = assert(s:compact())
print(("compact: %d -> %d bytes on disk in %.3f s (%s backend: %d pages freed)")
    :format(c.bytes_before, c.bytes_after, c.seconds, s:kind(), c.backend.pages_freed))
local st = assert(s:stats())
print(("stats: %d entries, %d stores, %d loads, %d removes, %d errors; healthy: %s")
    :format(st.entries, st.stores, st.loads, st.removes, st.errors, tostring(s:unhealthy_reason() == nil)))

local _, err = s:load(ids[1])
print("loading a removed id answers:", err.kind, "-", tostring(err))
s:shutdown()
