-- The example service under load while its workers, and then its master,
-- are killed with SIGKILL: every message answered 202 is in the spool,
-- exactly once, with its bytes and its meta record (checked with plain
-- LuaJIT once every nginx process is gone).  Runs under LuaJIT only.
local helper = require "spec.helper"
local spool = require "spool"

local lua = os.getenv("SPOOL_TEST_LUA") or "luajit"
if lua ~= "luajit" then return end

local clean_env = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LUA_PATH -u LUA_CPATH "
local q = helper.shell_quote

local function capture(cmd)
  local p = io.popen(clean_env .. "sh -c " .. q(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

describe("OpenResty service under SIGKILL", function()
  local prefix, port, pids = nil, nil, {}
  local run = "policy-examples/openresty/run.sh"

  setup(function()
    assert(helper.execute(clean_env .. "make -s LUA=luajit all >/dev/null"), "cannot build the LuaJIT module")
    prefix = os.tmpname()
    os.remove(prefix)
    assert(helper.execute("mkdir -m 755 " .. q(prefix)))
    local busy = {}
    for line in io.lines("/proc/net/tcp") do
      local hex = line:match("^%s*%d+: %x+:(%x+) ")
      if hex then busy[tonumber(hex, 16)] = true end
    end
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
    repeat port = math.random(20000, 60000) until not busy[port]
  end)

  teardown(function()
    for pid in pairs(pids) do helper.execute("kill -9 " .. pid .. " 2>/dev/null") end
    if prefix then helper.rm_rf(prefix) end
  end)

  -- The master's pid and its workers' pids, as numbers.
  local function processes()
    local master = tonumber(capture("cat " .. q(prefix .. "/logs/nginx.pid") .. " 2>/dev/null"))
    local workers = {}
    if master then
      for w in capture("pgrep -P " .. master):gmatch("%d+") do workers[#workers + 1] = tonumber(w) end
    end
    return master, workers
  end

  it("loses no message answered 202 while workers and then the master are killed", function()
    assert.is_true(helper.execute(clean_env .. ("%s start %d %s >/dev/null"):format(run, port, prefix)))
    local up = false
    for _ = 1, 50 do
      if capture(("curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/health"):format(port)) == "200" then
        up = true
        break
      end
      helper.execute("sleep 0.1")
    end
    assert.is_true(up, "nginx did not come up")
    -- 4 posting loops for ~5 s, each line "<n> <id> <status>".
    local out = prefix .. "/posts"
    local stop = prefix .. "/stop-posting"
    local loop = ([[i=0; while [ ! -e %s ]; do i=$((i+1)); q=""; [ $((i %% 2)) -eq 0 ] && q="?durable=1";
      r=$(printf 'body %%s-%%s' "$1" "$i" | curl --max-time 5 -s -w ' %%{http_code}' -X POST --data-binary @- "http://127.0.0.1:%d/messages$q");
      echo "$1-$i $r"; done]]):format(q(stop), port)
    helper.write_file(prefix .. "/loop.sh", loop)
    assert(helper.execute(clean_env .. "sh -c " .. q(("for w in 1 2 3 4; do sh %s $w >> %s.$w 2>/dev/null & done; wait")
      :format(q(prefix .. "/loop.sh"), q(out))) .. " >/dev/null 2>&1 &"))
    local killed = 0
    for round = 1, 8 do
      helper.sleep(0.5)
      local master, workers = processes()
      assert.is_truthy(master, "no master")
      for _, w in ipairs(workers) do pids[w] = true end
      if #workers > 0 then
        helper.execute("kill -9 " .. workers[(round % #workers) + 1])
        killed = killed + 1
      end
    end
    helper.sleep(0.5)
    -- Stopped first, so that it cannot fork a new worker meanwhile.
    local master = processes()
    pids[master] = true
    helper.execute("kill -STOP " .. master)
    local _, workers = processes()
    helper.execute("kill -9 " .. master)
    for _, w in ipairs(workers) do pids[w] = true; helper.execute("kill -9 " .. w) end
    helper.write_file(stop, "")
    helper.sleep(1.5)
    -- Every process of this nginx is gone before the spool is read.
    -- (a zombie not yet reaped is gone for this purpose)
    for pid in pairs(pids) do
      local st = io.open("/proc/" .. pid .. "/status")
      local state = st and st:read("*a"):match("State:%s+(%a)")
      if st then st:close() end
      assert.is_true(state == nil or state == "Z", "process " .. pid .. " survived")
    end
    local acked = {}
    local n202 = 0
    for w = 1, 4 do
      local f = io.open(out .. "." .. w)
      if f then
        -- the reply body ends with a newline: "<tag> <id>\n <status>"
        for tag, id, status in f:read("*a"):gmatch("(%d+%-%d+) (%x+)%s+(%d%d%d)") do
          if status == "202" then
            acked[#acked + 1] = { tag = tag, id = id }
            n202 = n202 + 1
          end
        end
        f:close()
      end
    end
    assert.is_true(killed >= 4, "killed only " .. killed .. " workers")
    assert.is_true(n202 > 50, "only " .. n202 .. " messages were accepted: "
      .. capture("head -3 " .. q(out .. ".1") .. "; tail -5 " .. q(prefix .. "/logs/error.log")))
    local data = assert(spool.open { path = prefix .. "/spool/data" })
    local meta = assert(spool.open { path = prefix .. "/spool/meta" })
    local seen = {}
    for e in data:entries() do
      assert.is_nil(e.corrupt, e.error)
      local key = tostring(e.id)
      assert.is_nil(seen[key], "stored twice: " .. key)
      seen[key] = e.data
    end
    for _, a in ipairs(acked) do
      assert.are.equal("body " .. a.tag, seen[a.id], "a 202 was lost: " .. a.id)
      assert.is_truthy(meta:load(a.id), "the meta record of a 202 was lost: " .. a.id)
    end
    assert.is_true(data:verify().ok)
    data:shutdown()
    meta:shutdown()
  end)
end)
