-- policy-examples/openresty/run.sh never uses a prefix it does not
-- safely own: a planted symlink or a directory others can write would
-- let another local user steer what nginx (perhaps as root) writes.
local helper = require "spec.helper"
local q = helper.shell_quote

local function run(args)
  local p = assert(io.popen("policy-examples/openresty/run.sh " .. args .. " 2>&1; echo \"exit:$?\""))
  local out = p:read("*a")
  p:close()
  local body, status = out:match("^(.-)exit:(%d+)%s*$")
  return status == "0", body
end

local function mode_of(path)
  local p = assert(io.popen("stat -c %a " .. q(path)))
  local m = p:read("*l")
  p:close()
  return m
end

describe("run.sh prefix", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rm_rf(dir) end)

  it("refuses a prefix that is a symlink", function()
    helper.mkdir_p(dir .. "/elsewhere")
    assert(helper.execute("ln -s " .. q(dir .. "/elsewhere") .. " " .. q(dir .. "/p")))
    local ok, out = run("prefix " .. q(dir .. "/p"))
    assert.is_false(ok)
    assert.is_truthy(out:find("symbolic link", 1, true), out)
  end)

  it("refuses a prefix writable by group or others", function()
    assert(helper.execute("mkdir -m 777 " .. q(dir .. "/p") .. " && chmod 777 " .. q(dir .. "/p")))
    local ok, out = run("prefix " .. q(dir .. "/p"))
    assert.is_false(ok)
    assert.is_truthy(out:find("writable by group or others", 1, true), out)
  end)

  it("refuses a prefix owned by another user", function()
    assert(helper.execute("mkdir -m 755 " .. q(dir .. "/p") .. " && chown 65534 " .. q(dir .. "/p")
      .. " 2>/dev/null || chmod 755 " .. q(dir .. "/p")))
    local owner = io.popen("stat -c %u " .. q(dir .. "/p")):read("*l")
    local me = io.popen("id -u"):read("*l")
    if owner == me then return end -- not root: cannot give it away, nothing to check
    local ok, out = run("prefix " .. q(dir .. "/p"))
    assert.is_false(ok)
    assert.is_truthy(out:find("belongs to uid", 1, true), out)
  end)

  it("creates a missing prefix private to the caller", function()
    local ok, out = run("prefix " .. q(dir .. "/new"))
    assert.is_true(ok, out)
    local me = io.popen("id -u"):read("*l")
    assert.are.equal(me == "0" and "711" or "700", mode_of(dir .. "/new"))
  end)

  it("defaults to a prefix under the caller's own directories, not /tmp", function()
    assert.is_true(helper.execute("HOME=" .. q(dir) .. " XDG_RUNTIME_DIR= policy-examples/openresty/run.sh prefix >/dev/null"))
    assert.is_true(helper.exists(dir .. "/.spool-openresty"))
    helper.mkdir_p(dir .. "/run")
    assert.is_true(helper.execute("chmod 700 " .. q(dir .. "/run") .. " && HOME=/nonexistent XDG_RUNTIME_DIR="
      .. q(dir .. "/run") .. " policy-examples/openresty/run.sh prefix >/dev/null"))
    assert.is_true(helper.exists(dir .. "/run/spool-openresty"))
  end)

  it("refuses a prefix in a directory others can write without the sticky bit", function()
    assert(helper.execute("mkdir -m 777 " .. q(dir .. "/open") .. " && chmod 777 " .. q(dir .. "/open")))
    local ok, out = run("prefix " .. q(dir .. "/open/p"))
    assert.is_false(ok)
    assert.is_truthy(out:find("without the sticky bit", 1, true), out)
    assert.is_false(helper.exists(dir .. "/open/p"), "the refused prefix was created")
  end)

  it("accepts a prefix in a sticky directory like /tmp", function()
    assert(helper.execute("mkdir -m 1777 " .. q(dir .. "/sticky") .. " && chmod 1777 " .. q(dir .. "/sticky")))
    local ok, out = run("prefix " .. q(dir .. "/sticky/p"))
    assert.is_true(ok, out)
  end)

  it("refuses a path that nginx.conf could not hold as it is", function()
    for _, bad in ipairs({ "/a|b", "/a b", "/a;b", "/a&b", "/a\\b" }) do
      local ok, out = run("prefix " .. q(dir .. bad))
      assert.is_false(ok, bad)
      assert.is_truthy(out:find("may hold only letters", 1, true), out)
    end
    local ok, out = run("start 8999 " .. q(dir .. "/p") .. " " .. q(dir .. "/spool|x"))
    assert.is_false(ok)
    assert.is_truthy(out:find("spool directory", 1, true), out)
  end)
end)

describe("run.sh stop", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rm_rf(dir) end)

  it("signals only an nginx process: a planted pid file is refused", function()
    local p = assert(io.popen("sleep 30 >/dev/null 2>&1 & echo $!"))
    local pid = p:read("*l")
    p:close()
    helper.mkdir_p(dir .. "/p/logs")
    assert(helper.execute("chmod 700 " .. q(dir .. "/p")))
    helper.write_file(dir .. "/p/logs/nginx.pid", pid .. "\n")
    local ok, out = run("stop " .. q(dir .. "/p"))
    assert.is_false(ok)
    assert.is_truthy(out:find("not an nginx process", 1, true), out)
    assert.is_true(helper.execute("kill -0 " .. pid), "the planted pid's process was signalled")
    helper.execute("kill " .. pid)
  end)

  it("refuses a prefix it would refuse to start in", function()
    assert(helper.execute("mkdir -m 777 " .. q(dir .. "/p") .. " && chmod 777 " .. q(dir .. "/p")))
    local ok, out = run("stop " .. q(dir .. "/p"))
    assert.is_false(ok)
    assert.is_truthy(out:find("writable by group or others", 1, true), out)
  end)

  it("does not create a missing prefix", function()
    local ok, out = run("stop " .. q(dir .. "/none"))
    assert.is_false(ok)
    assert.is_truthy(out:find("does not exist", 1, true), out)
    assert.is_false(helper.exists(dir .. "/none"))
  end)
end)
