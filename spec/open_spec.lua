-- What open refuses to trust: foreign schemas, links among the spool's
-- files, files it cannot write, a second spool in one directory, an
-- exclusive holder; and the modes of what it creates.
local spool = require "spool"
local helper = require "spec.helper"

local q = helper.shell_quote

-- The octal permission bits of path, as a string ("600").
local function mode_of(path)
  local p = assert(io.popen("stat -c %a " .. q(path) .. " 2>/dev/null"))
  local m = p:read("*l")
  p:close()
  return m
end

local function is_root()
  local p = assert(io.popen("id -u"))
  local u = p:read("*l")
  p:close()
  return u == "0"
end

describe("open", function()
  local dir, s
  before_each(function() dir = helper.tmpdir() end)
  after_each(function()
    if s then s:shutdown() end
    s = nil
    helper.rm_rf(dir)
  end)

  local function make_spool(path)
    local h = assert(spool.open { path = path })
    local id = spool.id.new()
    assert(h:store(id, "body"))
    h:shutdown()
    return id
  end

  describe("the schema", function()
    it("refuses a spool database carrying a trigger, naming it, and leaves it untouched", function()
      make_spool(dir)
      assert(helper.sqlite3(dir .. "/spool.db",
        "CREATE TABLE elsewhere(k, v); CREATE TRIGGER steal AFTER INSERT ON entries BEGIN "
        .. "INSERT INTO elsewhere VALUES (new.key, new.data); DELETE FROM entries WHERE rowid = new.rowid; END;"))
      local before = helper.read_file(dir .. "/spool.db")
      local h, err = spool.open { path = dir }
      assert.is_nil(h)
      assert.are.equal("corrupt", err.kind)
      assert.is_truthy(err.message:find("schema", 1, true), err.message)
      assert.is_truthy(err.message:find("elsewhere", 1, true) or err.message:find("steal", 1, true), err.message)
      assert.are.equal(before, helper.read_file(dir .. "/spool.db"))
    end)

    it("verify() reports an object added while the spool is open", function()
      s = assert(spool.open { path = dir })
      assert(s:store(spool.id.new(), "x"))
      assert(helper.sqlite3(dir .. "/spool.db",
        "CREATE TRIGGER steal AFTER INSERT ON entries BEGIN DELETE FROM entries WHERE rowid = new.rowid; END;"))
      local r = assert(s:verify())
      assert.is_false(r.ok)
      assert.is_truthy(r.storage:find("steal", 1, true), r.storage)
    end)

    it("opens and upgrades a version-1 spool, keeping its entries", function()
      local id = make_spool(dir)
      assert(helper.sqlite3(dir .. "/spool.db", "DROP TABLE info; PRAGMA user_version=1;"))
      s = assert(spool.open { path = dir })
      assert.are.equal("body", s:load(id))
      local _, out = helper.sqlite3(dir .. "/spool.db", "PRAGMA user_version;")
      assert.are.equal("2", out:match("%d+"))
      assert.is_true(s:verify().ok)
    end)
  end)

  describe("links", function()
    it("never grows or cuts the target of a symlink planted as the reserve file", function()
      local victim = dir .. "/victim"
      helper.write_file(victim, "precious")
      helper.mkdir_p(dir .. "/s")
      assert(helper.execute("ln -s " .. q(victim) .. " " .. q(dir .. "/s/reserve")))
      s = assert(spool.open { path = dir .. "/s", reserve_bytes = 1024 * 1024 })
      assert(s:store(spool.id.new(), "x"))
      assert.are.equal("precious", helper.read_file(victim))
      assert.is_false(s:health().reserve_held)
    end)

    for _, name in ipairs({ "spool.db", "spool.db-wal", "spool.db-shm" }) do
      it("refuses a spool whose " .. name .. " is a symlink, naming it", function()
        local elsewhere = dir .. "/elsewhere"
        make_spool(elsewhere)
        helper.mkdir_p(dir .. "/s")
        local target = elsewhere .. "/" .. name
        if not helper.exists(target) then helper.write_file(target, "") end
        assert(helper.execute("ln -s " .. q(target) .. " " .. q(dir .. "/s/" .. name)))
        local h, err = spool.open { path = dir .. "/s" }
        assert.is_nil(h)
        assert.are.equal("io", err.kind)
        assert.is_truthy(err.message:find(name, 1, true), err.message)
        assert.is_truthy(err.message:find("symbolic link", 1, true), err.message)
      end)
    end

    it("still opens through a symlinked directory (the operator's choice)", function()
      local id = make_spool(dir .. "/real")
      assert(helper.execute("ln -s " .. q(dir .. "/real") .. " " .. q(dir .. "/alias")))
      s = assert(spool.open { path = dir .. "/alias" })
      assert.are.equal("body", s:load(id))
    end)
  end)

  describe("modes", function()
    -- Runs a script under umask 022, the common default.
    local function under_umask(code)
      local file = dir .. "/script.lua"
      helper.write_file(file, code)
      local lua = os.getenv("SPOOL_TEST_LUA") or "luajit"
      return helper.execute("umask 022 && " .. q(lua) .. " " .. q(file))
    end

    it("creates directories 0700 and the database, -wal and -shm 0600 under umask 022", function()
      assert.is_true(under_umask(([[
        local spool = require "spool"
        local s = assert(spool.open { path = %q })
        assert(s:store(spool.id.new(), "x"))
        os.execute("cp -p %s/spool.db-wal %s/wal-copy; cp -p %s/spool.db-shm %s/shm-copy")
        s:shutdown()
      ]]):format(dir .. "/a/b", dir .. "/a/b", dir, dir .. "/a/b", dir)))
      assert.are.equal("700", mode_of(dir .. "/a"))
      assert.are.equal("700", mode_of(dir .. "/a/b"))
      assert.are.equal("600", mode_of(dir .. "/a/b/spool.db"))
      assert.are.equal("600", mode_of(dir .. "/a/b/reserve"))
      assert.are.equal("600", mode_of(dir .. "/wal-copy"))
      assert.are.equal("600", mode_of(dir .. "/shm-copy"))
    end)

    it("with group_access creates directories 0750 and files 0640", function()
      assert.is_true(under_umask(([[
        local spool = require "spool"
        local s = assert(spool.open { path = %q, group_access = true })
        assert(s:store(spool.id.new(), "x"))
        os.execute("cp -p %s/spool.db-wal %s/wal-copy")
        s:shutdown()
      ]]):format(dir .. "/g", dir .. "/g", dir)))
      assert.are.equal("750", mode_of(dir .. "/g"))
      assert.are.equal("640", mode_of(dir .. "/g/spool.db"))
      assert.are.equal("640", mode_of(dir .. "/wal-copy"))
    end)

    it("refuses a group_access that is not a boolean", function()
      local msg = helper.error_of(spool.open, { path = dir, group_access = "yes" })
      assert.is_truthy(msg:find("group_access", 1, true), msg)
    end)
  end)

  describe("permissions", function()
    -- As root, permissions do not stop open(): the check runs as nobody.
    local function open_as_other(path)
      local lua = os.getenv("SPOOL_TEST_LUA") or "luajit"
      local file = dir .. "/open.lua"
      helper.write_file(file, ([[
        local spool = require "spool"
        local t0 = spool.monotonic()
        local s, err = spool.open { path = %q }
        print(s and "opened" or (err.kind .. ": " .. err.message), spool.monotonic() - t0)
      ]]):format(path))
      assert(helper.execute("chmod 755 " .. q(dir) .. " && chmod 644 " .. q(file)))
      local run = q(lua) .. " " .. q(file)
      if is_root() then
        run = "setpriv --reuid=65534 --regid=65534 --clear-groups " .. run
      end
      local cwd = assert(os.getenv("PWD"))
      local env = "LUA_PATH=" .. q(cwd .. "/lua/?.lua;" .. cwd .. "/lua/?/init.lua;;")
        .. " LUA_CPATH=" .. q((os.getenv("SPOOL_TEST_CPATH") or (cwd .. "/build/luajit/?.so")) .. ";;")
      local p = assert(io.popen("cd / && env " .. env .. " " .. run .. " 2>&1"))
      local out = p:read("*a")
      p:close()
      return out
    end

    it("fails at once, naming the file and the missing permission, on a database it cannot write", function()
      make_spool(dir .. "/s")
      assert(helper.execute("chmod 755 " .. q(dir .. "/s") .. " && chmod 644 " .. q(dir .. "/s/spool.db")))
      if not is_root() then
        assert(helper.execute("chmod 444 " .. q(dir .. "/s/spool.db")))
      end
      local out = open_as_other(dir .. "/s")
      assert.is_truthy(out:find("^io: "), out)
      assert.is_truthy(out:find("spool.db", 1, true) or out:find("/s:", 1, true), out)
      assert.is_truthy(out:find("write access", 1, true), out)
    end)

    it("fails at once on a database it cannot read", function()
      make_spool(dir .. "/s")
      assert(helper.execute("chmod 755 " .. q(dir .. "/s") .. " && chmod 600 " .. q(dir .. "/s/spool.db")))
      if not is_root() then
        assert(helper.execute("chmod 200 " .. q(dir .. "/s/spool.db")))
      end
      local out = open_as_other(dir .. "/s")
      assert.is_truthy(out:find("^io: "), out)
      assert.is_truthy(out:find("read access", 1, true), out)
    end)
  end)

  describe("one spool per directory", function()
    after_each(function()
      for _, n in ipairs({ "data", "meta" }) do
        local h = spool.get(n)
        if h then h:shutdown() end
      end
    end)

    it("refuses a second name for a directory in this process, naming the first", function()
      s = spool.define { name = "data", path = dir }
      local msg = helper.error_of(spool.define, { name = "meta", path = dir })
      assert.is_truthy(msg:find("'data'", 1, true), msg)
      assert.is_truthy(msg:find("one spool", 1, true), msg)
      s = nil
    end)

    it("compares directories by identity, not by spelling", function()
      helper.mkdir_p(dir .. "/real")
      assert(helper.execute("ln -s " .. q(dir .. "/real") .. " " .. q(dir .. "/alias")))
      spool.define { name = "data", path = dir .. "/real" }
      local msg = helper.error_of(spool.define, { name = "meta", path = dir .. "/alias/" })
      assert.is_truthy(msg:find("'data'", 1, true), msg)
    end)

    it("refuses in another process a name other than the one recorded, and allows the same name", function()
      spool.define { name = "data", path = dir }
      local ok, out = helper.run_lua(([[
        local spool = require "spool"
        local ok, err = pcall(spool.define, { name = "meta", path = %q })
        assert(not ok, "a second name was accepted")
        assert(tostring(err):find("'data'", 1, true), err)
        local s = spool.define { name = "data", path = %q }
        s:shutdown()
        print("ok")
      ]]):format(dir, dir), 30)
      assert.is_true(ok, out)
    end)

    it("keeps the recorded name after every handle closed", function()
      spool.define { name = "data", path = dir }
      spool.get("data"):shutdown()
      local msg = helper.error_of(spool.define, { name = "meta", path = dir })
      assert.is_truthy(msg:find("'data'", 1, true), msg)
    end)

    it("still lets spool.open use a named directory", function()
      spool.define { name = "data", path = dir }
      s = assert(spool.open { path = dir })
    end)

    it("refuses a NUL inside a spool name", function()
      local msg = helper.error_of(spool.define, { name = "da\0ta", path = dir })
      assert.is_truthy(msg:find("NUL", 1, true), msg)
      assert.is_nil(spool.get("da"))
    end)
  end)

  describe("an exclusive holder", function()
    it("in another process: answered at once with busy, naming the exclusive lock", function()
      make_spool(dir)
      local holder = helper.hold_write_lock(dir .. "/spool.db", 30, true)
      finally(function() holder:release() end)
      assert.is_true(holder:wait_locked())
      local t0 = spool.monotonic()
      local h, err = spool.open { path = dir, store_deadline = 10 }
      local took = spool.monotonic() - t0
      assert.is_nil(h)
      assert.are.equal("busy", err.kind)
      assert.is_truthy(err.message:find("exclusive", 1, true), err.message)
      assert.is_true(took < 2, "took " .. took .. " s")
    end)

    it("in this process: a second handle is refused at once", function()
      s = assert(spool.open { path = dir, sqlite = { exclusive = true } })
      local t0 = spool.monotonic()
      local h, err = spool.open { path = dir, store_deadline = 10 }
      assert.is_nil(h)
      assert.are.equal("busy", err.kind)
      assert.is_truthy(err.message:find("exclusive", 1, true), err.message)
      assert.is_true(spool.monotonic() - t0 < 1)
    end)
  end)
end)
