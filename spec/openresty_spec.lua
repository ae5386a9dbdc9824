-- A real nginx with the Lua module, 2 workers and a thread pool, running
-- policy-examples/openresty: messages posted concurrently (half of them
-- durable, through ngx.run_worker_thread) are all in the spool exactly
-- once, checked with plain LuaJIT after nginx stopped; after a restart
-- GET and DELETE find them.  Runs once, under LuaJIT.
local helper = require "spec.helper"
local spool = require "spool"

local lua = os.getenv("SPOOL_TEST_LUA") or "luajit"
if lua ~= "luajit" then return end

-- nginx and curl run without the sanitizer runtime that `make asan`
-- preloads into the interpreter (nginx hangs with it), and curl gives up
-- after a few seconds instead of hanging the suite.
-- LUA_PATH and LUA_CPATH go too: nginx's ";;" would take the test run's
-- paths (under `make asan`, a sanitizer build nginx cannot load).
local clean_env = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LUA_PATH -u LUA_CPATH "

local function capture(cmd)
  cmd = cmd:gsub("curl %-s", "curl --max-time 20 -s")
  local p = io.popen(clean_env .. "sh -c " .. helper.shell_quote(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local function have(cmd) return helper.execute("command -v " .. cmd .. " >/dev/null 2>&1") end

describe("OpenResty service (policy-examples/openresty)", function()
  local prefix, port, run = nil, nil, "policy-examples/openresty/run.sh"
  local N = 200

  setup(function()
    assert(have("nginx") and helper.exists("/usr/lib/nginx/modules/ngx_http_lua_module.so"),
      "nginx with the Lua module is not installed: run tools/install-deps")
    assert(have("curl"), "curl is not installed: run tools/install-deps")
    -- The service loads build/luajit, whichever build this run tests.
    assert(helper.execute(clean_env .. "make -s LUA=luajit all >/dev/null"), "cannot build the LuaJIT module")
    prefix = os.tmpname()
    os.remove(prefix)
    assert(helper.execute("mkdir -p -m 755 " .. prefix))
    -- A port nothing listens on (per /proc/net/tcp), picked at random.
    local busy = {}
    for line in io.lines("/proc/net/tcp") do
      local hex = line:match("^%s*%d+: %x+:(%x+) ")
      if hex then busy[tonumber(hex, 16)] = true end
    end
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
    repeat port = math.random(20000, 60000) until not busy[port]
  end)

  teardown(function()
    if prefix then
      helper.execute(clean_env .. run .. " stop " .. prefix .. " >/dev/null 2>&1")
      helper.rm_rf(prefix)
    end
  end)

  local function start()
    assert.is_true(helper.execute(clean_env .. ("%s start %d %s >/dev/null"):format(run, port, prefix)))
    for _ = 1, 50 do
      if capture(("curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/health"):format(port)) == "200" then
        return
      end
      helper.execute("sleep 0.1")
    end
    error("nginx did not come up:\n" .. capture("cat " .. prefix .. "/logs/error.log"))
  end

  local function stop()
    assert.is_true(helper.execute(clean_env .. run .. " stop " .. prefix))
    assert.is_false(helper.exists(prefix .. "/logs/nginx.pid") and
      helper.execute("kill -0 $(cat " .. prefix .. "/logs/nginx.pid) 2>/dev/null"), "nginx still running")
  end

  local acked = {}

  it("accepts N concurrent posts, half of them durable through the thread pool", function()
    start()
    -- One line per request: "<index> <status> <body>", 16 at a time.
    local script = prefix .. "/post.sh"
    local f = assert(io.open(script, "w"))
    f:write(([[
i=$1
q=""; [ $((i %% 2)) -eq 0 ] && q="?durable=1"
out=$(printf 'Subject: %%s\r\n\r\nbody %%s' "$i" "$i" | curl --max-time 20 -s -w ' %%{http_code}' -X POST --data-binary @- "http://127.0.0.1:%d/messages$q")
echo "$i $out"
]]):format(port))
    f:close()
    local out = capture(("seq 1 %d | xargs -P 16 -I{} sh %s {}"):format(N, script))
    local count = 0
    for i, id, status in out:gmatch("(%d+) (%x+)%s+(%d+)\n") do
      assert.equal("202", status)
      acked[#acked + 1] = { i = tonumber(i), id = id }
      count = count + 1
    end
    assert.equal(N, count, out)
    local metrics = capture(("curl -s http://127.0.0.1:%d/metrics"):format(port))
    local threaded = tonumber(metrics:match('spool_thread_operations_total{op="store"} (%d+)'))
    -- Each durable message is two stores (data and meta).
    assert.equal(N, threaded, metrics)
    stop()
  end)

  it("has every acknowledged message in the spool exactly once (checked with plain LuaJIT)", function()
    assert.equal(N, #acked)
    local data = assert(spool.open { path = prefix .. "/spool/data" })
    local meta = assert(spool.open { path = prefix .. "/spool/meta" })
    local seen = {}
    for e in data:entries() do
      assert.is_nil(e.corrupt)
      local key = tostring(e.id)
      assert.is_nil(seen[key], "duplicate " .. key)
      seen[key] = e.data
    end
    for _, a in ipairs(acked) do
      assert.equal(("Subject: %d\r\n\r\nbody %d"):format(a.i, a.i), seen[a.id])
      assert.matches("size=", meta:load(a.id))
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.equal(N, n)
    data:shutdown()
    meta:shutdown()
  end)

  it("after a restart, GET returns a message and DELETE removes it", function()
    start()
    local a = acked[1]
    local body = capture(("curl -s http://127.0.0.1:%d/messages/%s"):format(port, a.id))
    assert.equal(("Subject: %d\r\n\r\nbody %d"):format(a.i, a.i), body, capture("cat " .. prefix .. "/logs/error.log"))
    assert.equal("204", capture(("curl -s -o /dev/null -w '%%{http_code}' -X DELETE http://127.0.0.1:%d/messages/%s"):format(port, a.id)))
    assert.equal("404", capture(("curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/messages/%s"):format(port, a.id)))
  end)

  it("returns a message of several 64 KiB pieces whole", function()
    local file = prefix .. "/big.txt"
    local f = assert(io.open(file, "wb"))
    for i = 1, 30000 do f:write(("line %05d\n"):format(i)) end -- 330,000 bytes
    f:close()
    local r = capture(("curl -s -w ' %%{http_code}' -X POST --data-binary @%s http://127.0.0.1:%d/messages"):format(file, port))
    local id = r:match("^(%x+)%s+202$")
    assert.is_truthy(id, r)
    local body = capture(("curl -s http://127.0.0.1:%d/messages/%s"):format(port, id))
    assert.equal(330000, #body)
    assert.is_true(body == helper.read_file(file))
  end)

  it("answers a malformed id with 400 and an oversized body with 413, storing nothing", function()
    local before = capture(("curl -s http://127.0.0.1:%d/metrics"):format(port)):match('spool_entries{spool="data"} (%d+)')
    local r = capture(("curl -s -w ' %%{http_code}' http://127.0.0.1:%d/messages/not-an-id"):format(port))
    assert.matches("^malformed id: .* 400$", r)
    r = capture(("head -c 2000000 /dev/zero | curl -s -w ' %%{http_code}' -X POST --data-binary @- http://127.0.0.1:%d/messages"):format(port))
    assert.matches("message too large.* 413$", r)
    local after = capture(("curl -s http://127.0.0.1:%d/metrics"):format(port)):match('spool_entries{spool="data"} (%d+)')
    assert.equal(before, after)
    stop()
  end)

  it("escapes what the meta record copies from headers", function()
    start()
    local r = capture(("printf 'x' | curl -s -w ' %%{http_code}' -H 'X-Mail-From: a@b to=forged size=0' "
      .. "-H 'X-Rcpt-To: c@d' -X POST --data-binary @- http://127.0.0.1:%d/messages"):format(port))
    local id = r:match("^(%x+)%s+202$")
    assert.is_truthy(id, r)
    stop()
    local meta = assert(spool.open { path = prefix .. "/spool/meta" })
    local record = assert(meta:load(id))
    meta:shutdown()
    local _, tos = record:gsub(" to=", "")
    assert.equal(1, tos, record)
    assert.matches("^from=a%%40b%%20to%%3Dforged%%20size%%3D0 to=c%%40d ", record)
  end)
end)
