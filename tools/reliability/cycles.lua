-- cycles.lua: open / store / load / close many times over, with failing
-- opens and failing calls mixed in: file descriptors and RSS stay flat.
--   CYCLES=100000 luajit tools/reliability/cycles.lua    (default 3,000; LONG=1: 100,000)
local spool = require "spool"

local cycles = tonumber(os.getenv("CYCLES") or (os.getenv("LONG") and 100000 or 3000))
local n, failed = 0, 0
local function ok(cond, msg)
    n = n + 1
    if not cond then failed = failed + 1 end
    print(("%sok %d - %s"):format(cond and "" or "not ", n, msg))
end

-- This process's pid, as the kernel sees it (/proc/self opened by us).
local f = io.open("/proc/self/stat")
local pid = f:read("*n")
f:close()

local function fd_count()
    local p = io.popen("ls /proc/" .. pid .. "/fd | wc -l")
    local c = p:read("*n")
    p:close()
    return c
end

-- "fd -> target" lines of this process's descriptors, for a failure.
local function fd_list()
    local p = io.popen("ls -l /proc/" .. pid .. "/fd | sed -n 's/.* \\([0-9]*\\) -> /\\1 -> /p'")
    local out = p:read("*a")
    p:close()
    return out
end

local function rss_kib()
    local st = io.open("/proc/" .. pid .. "/status")
    local kib = st:read("*a"):match("VmRSS:%s*(%d+)")
    st:close()
    return tonumber(kib)
end

local dir = os.tmpname()
os.remove(dir)
local bad = dir .. "-file"
io.open(bad, "w"):close() -- a file where a directory is expected: open fails

local function cycle(i)
    local s = assert(spool.open { path = dir, reserve_bytes = 0 })
    local id = spool.id.new()
    assert(s:store(id, "cycle " .. i))
    assert(s:load(id) == "cycle " .. i)
    assert(s:remove(id))
    local _, err = s:load(id) -- a failing call
    assert(err.kind == "not_found")
    for _ in s:entries() do break end -- an abandoned iterator
    s:shutdown()
    assert(spool.open { path = bad } == nil) -- a failing open
end

for i = 1, 200 do cycle(i) end -- warm up caches and the allocator
collectgarbage()
collectgarbage()
local fd0, rss0, list0 = fd_count(), rss_kib(), fd_list()
local t0 = spool.monotonic()
for i = 1, cycles do
    cycle(i)
    if i % 1000 == 0 then collectgarbage("step") end
end
collectgarbage()
collectgarbage()
local fd1, rss1 = fd_count(), rss_kib()
-- A leak per cycle adds thousands of descriptors; one fewer is a
-- descriptor of the interpreter's that the collector closed meanwhile
-- (seen once in about twenty runs).  One more was seen twice in CI in
-- December 2026 (here and in spool_spec's open/shutdown cycles), not
-- reproduced since: up to two more pass, and a failure lists both sets.
ok(fd1 <= fd0 + 2, ("%d open/store/load/remove/close cycles with failing calls: file descriptors %d -> %d")
    :format(cycles, fd0, fd1))
if fd1 ~= fd0 then
    io.write("# descriptors before:\n", (list0:gsub("[^\n]+", "#   %0")), "# after:\n",
        (fd_list():gsub("[^\n]+", "#   %0")))
end
ok(rss1 - rss0 < 16 * 1024, ("RSS %d -> %d KiB (growth under 16 MiB)"):format(rss0, rss1))
print(("# cycles figures: cycles=%d seconds=%.1f fds=%d->%d rss_kib=%d->%d")
    :format(cycles, spool.monotonic() - t0, fd0, fd1, rss0, rss1))
os.execute("rm -rf '" .. dir .. "' '" .. bad .. "'")
print("1.." .. n)
os.exit(failed == 0 and 0 or 1)
