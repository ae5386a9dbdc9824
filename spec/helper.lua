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

return helper
