-- Small helpers shared by the busted specs.
--
-- Usage: local helper = require "spec.helper"
--
-- Everything here must work unchanged under LuaJIT, Lua 5.1 and Lua 5.4:
-- no goto, no integer division, no bit operators, no `bit` library.

local helper = {}

-- Quote a string for /bin/sh (single quotes, embedded quotes escaped).
function helper.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Run a shell command; true when it exited with status 0.
-- os.execute returns a number in Lua 5.1 / LuaJIT (without 5.2 compat)
-- and true|nil, "exit", code in Lua 5.2+ (and LuaJIT with 5.2 compat).
function helper.execute(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then
    return a == 0
  end
  if a == true then
    return c == nil or c == 0
  end
  return false
end

-- Create a fresh, empty, private temporary directory and return its path.
-- os.tmpname() creates (and so reserves) a unique file; it is replaced
-- by a directory of the same name.
function helper.tmpdir()
  local name = os.tmpname()
  assert(type(name) == "string" and name:sub(1, 1) == "/",
    "os.tmpname() returned an unexpected name: " .. tostring(name))
  os.remove(name)
  assert(helper.execute("mkdir -m 700 " .. helper.shell_quote(name)),
    "could not create temporary directory " .. name)
  return name
end

-- Remove a directory tree made by tmpdir(). Refuses obviously dangerous
-- arguments so that a bug in a spec cannot wipe something unrelated.
function helper.rm_rf(dir)
  assert(type(dir) == "string", "rm_rf: dir must be a string")
  assert(dir:sub(1, 1) == "/", "rm_rf: refusing a relative path: " .. dir)
  assert(not dir:find("%.%."), "rm_rf: refusing a path containing '..': " .. dir)
  assert(#dir > 5 and dir ~= "/tmp" and dir ~= "/tmp/",
    "rm_rf: refusing suspicious path: " .. dir)
  assert(helper.execute("rm -rf -- " .. helper.shell_quote(dir)),
    "rm_rf: could not remove " .. dir)
end

-- Create a directory and its parents.
function helper.mkdir_p(dir)
  return helper.execute("mkdir -p -- " .. helper.shell_quote(dir))
end

-- True when `path` names something that can be opened for reading.
function helper.exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
    return true
  end
  return false
end

-- Lower-case hex of a binary string.
function helper.hex(s)
  local out = {}
  for i = 1, #s do
    out[i] = string.format("%02x", s:byte(i))
  end
  return table.concat(out)
end

-- Inverse of hex(); raises on malformed input (a bug in the spec itself).
function helper.unhex(h)
  assert(#h % 2 == 0 and not h:find("[^0-9a-fA-F]"), "unhex: bad hex: " .. h)
  return (h:gsub("..", function(pair)
    return string.char(tonumber(pair, 16))
  end))
end

-- 8-4-4-4-12 form of a 32-hex-digit string.
function helper.hyphenate(h)
  return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-"
    .. h:sub(17, 20) .. "-" .. h:sub(21, 32)
end

-- Copy of `s` with the byte at 1-based position `i` replaced by `b`
-- (a number 0..255).
function helper.set_byte(s, i, b)
  return s:sub(1, i - 1) .. string.char(b) .. s:sub(i + 1)
end

-- Copy of `s` with the character at 1-based position `i` replaced by the
-- string `c`.
function helper.set_char(s, i, c)
  return s:sub(1, i - 1) .. c .. s:sub(i + 1)
end

-- Test a flag bit without bit operators: true when (n AND mask) ~= 0,
-- mask being a power of two.
function helper.has_bit(n, mask)
  return math.floor(n / mask) % 2 == 1
end

-- Call fn(...) in protected mode and return the error message (as a
-- string) when it raised, or nil when it returned normally.
function helper.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then
    return nil
  end
  return tostring(err)
end

-- Plain (non-pattern) substring test.
function helper.contains(haystack, needle)
  return type(haystack) == "string" and haystack:find(needle, 1, true) ~= nil
end

-- Number of keys in a table.
function helper.count(t)
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n
end

-- ------------------------------------------------------------------
-- Helpers added for the spool specs (spool, config, deadline,
-- corruption, gate).

-- Sleep for `seconds` (fractions allowed) with sleep(1).
function helper.sleep(seconds)
  assert(helper.execute(string.format("sleep %.3f", seconds)), "sleep failed")
end

-- The whole content of a file as a binary string, or nil when it cannot
-- be opened.
function helper.read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local data = f:read("*a")
  f:close()
  return data
end

-- Replace the content of a file with `bytes`.
function helper.write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  assert(f:write(bytes))
  assert(f:close())
end

-- Overwrite bytes in place, starting at the 1-based position `pos`,
-- without changing the file's length.
function helper.patch_file(path, pos, bytes)
  local f = assert(io.open(path, "r+b"))
  assert(f:seek("set", pos - 1))
  assert(f:write(bytes))
  assert(f:close())
end

-- Number of open file descriptors of this process.  The shell that
-- io.popen starts is a child of this process, so $PPID names it; the
-- pipe to that shell is counted too, the same on every call.
-- The process's open descriptors, one "fd -> target" line each.
function helper.list_fds()
  local p = assert(io.popen("ls -l /proc/$PPID/fd 2>/dev/null | sed -n 's/.* \\([0-9]*\\) -> /\\1 -> /p'"))
  local out = p:read("*a")
  p:close()
  return out
end

function helper.count_fds()
  local p = assert(io.popen("ls /proc/$PPID/fd | wc -l"))
  local out = p:read("*a")
  p:close()
  local n = tonumber((out:gsub("%s", "")))
  assert(n, "count_fds: unexpected output: " .. tostring(out))
  return n
end

-- Run the sqlite3 command-line shell on `db` with `sql`.  Returns
-- ok (exit status 0) and the shell's output (stdout and stderr).
function helper.sqlite3(db, sql)
  local p = assert(io.popen("sqlite3 -bail " .. helper.shell_quote(db) .. " "
    .. helper.shell_quote(sql) .. " 2>&1; echo \"exit:$?\""))
  local out = p:read("*a")
  p:close()
  local body, status = out:match("^(.-)exit:(%d+)%s*$")
  return status == "0", body or out
end

-- 32 hex digits of a UUID version 1 spool id created at `unix_seconds`
-- (fractions of a second kept to 100 ns), with the 14-bit `clock_seq`
-- (default 0) and the 12-hex-digit `node` (default "010203040506").
-- The 60-bit timestamp is more than a double holds exactly, so it is
-- computed as hi * 2^32 + lo, every intermediate below 2^53.
function helper.v1_id_hex(unix_seconds, clock_seq, node)
  clock_seq = clock_seq or 0
  node = node or "010203040506"
  assert(#node == 12 and not node:find("[^0-9a-fA-F]"), "v1_id_hex: bad node " .. node)
  assert(clock_seq >= 0 and clock_seq < 16384, "v1_id_hex: clock_seq out of range")
  local whole = math.floor(unix_seconds)
  local frac = math.floor((unix_seconds - whole) * 1e7 + 0.5)
  if frac >= 1e7 then
    whole = whole + 1
    frac = frac - 1e7
  end
  -- ticks since the Unix epoch = whole * 10^7 + frac = A * 2^16 + B
  local a = math.floor(whole / 65536)
  local A = a * 1e7
  local B = (whole - a * 65536) * 1e7 + frac
  A = A + math.floor(B / 65536)
  B = B % 65536
  local hi = math.floor(A / 65536)
  local lo = (A % 65536) * 65536 + B
  -- add the Gregorian offset 0x01B21DD213814000 (100 ns ticks from
  -- 1582-10-15 to 1970-01-01)
  lo = lo + 0x13814000
  hi = hi + 0x01B21DD2 + math.floor(lo / 4294967296)
  lo = lo % 4294967296
  local time_hi = math.floor(hi / 65536)
  assert(hi >= 0 and time_hi < 4096, "v1_id_hex: time out of range")
  return string.format("%04x%04x%04x%04x%04x",
    math.floor(lo / 65536), lo % 65536, hi % 65536, 4096 + time_hi, 32768 + clock_seq)
    .. node:lower()
end

-- Hold the write lock of the SQLite database `db` from another process
-- (the sqlite3 shell in a BEGIN IMMEDIATE transaction) until released.
--   local holder = helper.hold_write_lock(db)
--   assert(holder:wait_locked())   -- true once the lock is held
--   ...
--   holder:release()               -- commits, reaps the process; idempotent
-- The shell gives up by itself after `max_seconds` (default 20), so a
-- spec that dies before release() cannot leave it running for long.
-- With `exclusive` the shell takes the whole file (locking_mode
-- EXCLUSIVE, BEGIN EXCLUSIVE): no other connection can even read; it
-- can only get that lock while no other connection has the file open.
function helper.hold_write_lock(db, max_seconds, exclusive)
  local q = helper.shell_quote
  local flags = helper.tmpdir()
  local locked, release = flags .. "/locked", flags .. "/release"
  local loops = math.floor((max_seconds or 20) / 0.05)
  local begin = exclusive and "echo 'PRAGMA locking_mode=EXCLUSIVE;'; echo 'BEGIN EXCLUSIVE;'; "
    .. "echo 'SELECT count(*) FROM sqlite_schema;'; "
    or "echo 'BEGIN IMMEDIATE;'; "
  local script = "( echo '.timeout 5000'; " .. begin .. "echo "
    .. q(".shell touch " .. q(locked)) .. "; i=0; while [ ! -e " .. q(release)
    .. " ] && [ $i -lt " .. loops .. " ]; do sleep 0.05; i=$((i+1)); done; "
    .. "echo 'COMMIT;' ) | sqlite3 -bail " .. q(db) .. " >/dev/null 2>&1; echo done"
  local pipe = assert(io.popen(script, "r"))
  local holder = { released = false }

  -- Wait (up to `timeout` seconds, default 5) until the shell holds the
  -- lock; true when it does.
  function holder:wait_locked(timeout)
    local tries = math.floor((timeout or 5) / 0.02)
    for _ = 1, tries do
      if helper.exists(locked) then
        return true
      end
      helper.sleep(0.02)
    end
    return helper.exists(locked)
  end

  -- Have the lock given up `seconds` from now, without waiting: a
  -- background shell creates the release file.  release() still reaps
  -- the sqlite3 shell; the sqlite3 shell ends only after that file exists,
  -- so the background shell is done by then.
  function holder:release_after(seconds)
    assert(helper.execute(string.format("(sleep %.3f; touch %s) >/dev/null 2>&1 &", seconds, q(release))))
  end

  -- Let the shell commit and exit, and wait for it: when this returns
  -- the process is gone and the lock is free.
  function holder:release()
    if self.released then
      return
    end
    self.released = true
    helper.write_file(release, "")
    pipe:read("*a")
    pipe:close()
    helper.rm_rf(flags)
  end

  return holder
end

-- Run the Lua source `code` in a new interpreter (the one the specs run
-- under: $SPOOL_TEST_LUA, else luajit; LUA_PATH and LUA_CPATH are
-- inherited), killed after `seconds` (default 30).  Returns ok (exit
-- status 0), its output (stdout and stderr) and timed_out.  For calls
-- that might block for good: a spec then fails instead of hanging.
function helper.run_lua(code, seconds)
  local q = helper.shell_quote
  local tmp = helper.tmpdir()
  local file = tmp .. "/script.lua"
  helper.write_file(file, code)
  local lua = os.getenv("SPOOL_TEST_LUA") or "luajit"
  local p = assert(io.popen("timeout -k 2 " .. (seconds or 30) .. " " .. q(lua) .. " " .. q(file)
    .. " 2>&1; echo \"exit:$?\""))
  local out = p:read("*a")
  p:close()
  helper.rm_rf(tmp)
  local body, status = out:match("^(.-)exit:(%d+)%s*$")
  return status == "0", body or out, status == "124" or status == "137"
end

-- The backend the contract specs run against: SPOOL_TEST_KIND, else
-- SQLite.  tools/run-tests runs the contract specs once per built kind.
helper.kind = os.getenv("SPOOL_TEST_KIND") or "SQLite"

-- Parameters for a spool of helper.kind: `params` with kind added, and
-- without the `sqlite` table for another kind (its tuning is SQLite's).
function helper.params(params)
  local p = {}
  for k, v in pairs(params) do p[k] = v end
  if p.kind == nil then p.kind = helper.kind end
  if p.kind ~= "SQLite" then p.sqlite = nil end
  return p
end

-- spool.open / spool.define of a spool of helper.kind.
function helper.open(params)
  return require("spool").open(helper.params(params))
end

function helper.define(params)
  return require("spool").define(helper.params(params))
end

-- Whether helper.kind is SQLite.  A contract spec marks a behaviour that
-- only the SQLite backend has (its files, its tuning, several handles or
-- processes on one path, oldest-first order) with
--   local sqlite_it = helper.sqlite and it or pending
-- so that under another kind it is reported as pending, not run.
helper.sqlite = helper.kind == "SQLite"

-- The order in which a spool of helper.kind enumerates `ids`, as its
-- backend declares it (spool.core.backends()): "created" (SQLite: by
-- creation time, then bytes) or "id_bytes" (LocalDisk, RocksDB: the
-- order of their hex text).  Returns a sorted copy.
function helper.in_order(ids)
  local sorted = {}
  for i, id in ipairs(ids) do sorted[i] = id end
  local order
  for _, b in ipairs(require("spool.core").backends()) do
    if b.kind == helper.kind then order = b.order end
  end
  assert(order, helper.kind .. " declares no enumerate order")
  if order == "created" then
    table.sort(sorted, function(a, b) return a < b end)
  else
    table.sort(sorted, function(a, b) return tostring(a) < tostring(b) end)
  end
  return sorted
end

-- The number of live entries in spool s: stats().entries where the
-- backend counts them, else a count of an ids-only enumeration.
function helper.entry_count(s)
  local n = s:stats().entries
  if n == nil then
    n = assert(s:enumerate(function() end, { include_data = false, start_time = 1e11 }))
  end
  return n
end

-- The test-only fault VFS (csrc/test/faultvfs_lua.c), registered under
-- the name "faultvfs" and reset; `make ctest` builds it beside the
-- module (tools/run-tests puts it on LUA_CPATH).  Raises when it is not
-- built: a spec that needs it must fail, not pass by skipping.
function helper.faultvfs()
  local ok, fv = pcall(require, "spool_test.faultvfs")
  assert(ok, "spool_test.faultvfs is not built (make ctest): " .. tostring(fv))
  fv.register()
  fv.reset()
  return fv
end

return helper
