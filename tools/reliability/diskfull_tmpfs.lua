-- diskfull_tmpfs.lua: a real full disk.  Mounts a 4 MiB tmpfs (needs
-- root; otherwise a visible TAP skip), fills it through the spool, and
-- checks: a store answers `full`, the gate latches, everything stored
-- earlier loads, the spool's reserve file is released so that removes
-- and compact work, and once space is back the gate unlatches, stores
-- succeed and the reserve is taken again.
--
--   luajit tools/reliability/diskfull_tmpfs.lua   (from the repo root)
--   SPOOL_KIND=LocalDisk luajit tools/reliability/diskfull_tmpfs.lua
local spool = require "spool"
local kind = os.getenv("SPOOL_KIND") or "SQLite"

local n = 0
local failed = 0
local function ok(cond, msg)
    n = n + 1
    if not cond then failed = failed + 1 end
    print(("%sok %d - %s"):format(cond and "" or "not ", n, msg))
end

local function sh(cmd)
    local r = os.execute(cmd)
    return r == true or r == 0
end

local mnt = os.tmpname()
os.remove(mnt)
assert(sh("mkdir -p " .. mnt))
local is_root = io.popen("id -u"):read("*l") == "0"
if not is_root or not sh("mount -t tmpfs -o size=4m tmpfs " .. mnt .. " 2>/dev/null") then
    print(("ok 1 # SKIP cannot mount a tmpfs (%s): the VFS disk-full test (rtest/diskfull) still runs")
        :format(is_root and "mount failed" or "not root"))
    print("1..1")
    sh("rmdir " .. mnt)
    os.exit(0)
end

local function finish()
    sh("umount " .. mnt)
    sh("rmdir " .. mnt)
    print("1.." .. n)
    os.exit(failed == 0 and 0 or 1)
end

local s = assert(spool.open {
    path = mnt .. "/spool", kind = kind, min_free_space = 0, min_free_inodes = 0,
    reserve_bytes = 1024 * 1024, error_unlatch_duration = 0.3,
    -- The reserve must hold what a checkpoint adds to the database: the
    -- WAL's autocheckpoint size (64 pages = 256 KiB here; the defaults
    -- are 8 MiB of reserve against 4 MiB of WAL).
    sqlite = kind == "SQLite" and { wal_autocheckpoint = 64 } or nil,
})
ok(s:health().reserve_held, "the spool took its 1 MiB reserve at open")

local body = ("z"):rep(16 * 1024)
local ids, err = {}, nil
for i = 1, 1000 do
    local id = spool.id.new()
    local stored
    stored, err = s:store(id, body)
    if not stored then break end
    ids[#ids + 1] = id
end
ok(err and err.kind == "full", ("after %d stores the disk is full and the store answers full (%s)")
    :format(#ids, tostring(err)))
-- Each backend names the failure in its own terms (its driver supplies them).
local full_code = ({ SQLite = "SQLITE_FULL", LocalDisk = "ENOSPC", RocksDB = "IOError" })[kind]
ok(err and err.code ~= nil and err.code:find(full_code, 1, true) ~= nil, "with code " .. tostring(err and err.code))
ok(s:unhealthy_reason() == "the spool is not accepting writes", "the gate latched")
local _, e2 = s:store(spool.id.new(), "x")
ok(e2 and e2.kind == "unhealthy", "stores now fail fast with unhealthy")
local loads = 0
for _, id in ipairs(ids) do
    if s:load(id) == body then loads = loads + 1 end
end
ok(loads == #ids, ("all %d entries stored before load (%d)"):format(#ids, loads))
ok(not s:health().reserve_held, "the reserve was released")

local removed = 0
for i = 1, #ids, 2 do
    if s:remove(ids[i]) then removed = removed + 1 end
end
ok(removed == math.ceil(#ids / 2), ("removes work on the full disk (%d)"):format(removed))
local c, cerr = s:compact()
-- SQLite frees pages; LocalDisk's removes freed their files and pruned
-- their directories already, so its compact has nothing left to free.
ok(c ~= nil and (kind ~= "SQLite" or c.backend.pages_freed > 0),
    ("compact works and frees %s pages (%s)"):format(c and c.backend.pages_freed or "no", tostring(cerr)))

local t = spool.monotonic() + 0.4
while spool.monotonic() < t do end
s:cleanup()
ok(s:unhealthy_reason() == nil, "after the unlatch period the gate is open again")
ok(s:store(spool.id.new(), "space is back") == true, "stores succeed")
ok(s:health().reserve_held, "the reserve was taken back")
s:shutdown()
finish()
