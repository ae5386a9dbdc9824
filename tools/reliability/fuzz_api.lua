-- fuzz_api.lua: a Lua-level fuzz of every entry of the spool API with
-- random argument types and values.  Bad input must always give a clear
-- error, never a crash, and never leave the spool unusable.
--
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/luajit/?.so;;" luajit tools/reliability/fuzz_api.lua
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/lua5.1/?.so;;" lua5.1 tools/reliability/fuzz_api.lua
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 tools/reliability/fuzz_api.lua
--
-- Environment: SEED=n replays a run (the seed is printed first), ITER=n
-- iterations (default 20000), TRACE=1 writes each call to stderr before
-- making it (to find the call that crashed the process), FUZZ_SKIP=a,b
-- leaves out value classes (only "huge_len": tables whose length is
-- around 2^60) while a bug they trigger is open.
--
-- Every call runs under pcall, with arguments drawn from nil, booleans,
-- numbers (NaN, infinities, huge, negative, fractions), strings (empty,
-- binary, long, valid-looking ids), tables (nested, cyclic, with
-- metamethods that raise), functions (that return anything, raise,
-- yield, re-enter the API or shut a spool down), userdata of the wrong
-- type and coroutines.  The checks:
--   - a call returns, or raises a non-empty string (a spool.Error may be
--     raised by iterators and recover; the fuzz's own sentinel may come
--     back from its callbacks and metamethods), never with "(null)" in it;
--   - a failure returned as nil, err carries a spool.Error whose kind is
--     one of spool.errors.kinds and whose message is not empty (or a
--     non-empty message string, for spool.id.parse & co.);
--   - entry points documented never to raise (spool.id.parse, from_bytes,
--     from_path, is, spool.errors.is) do not;
--   - a shut-down handle raises "shut down" on every use;
--   - the process survives, and the main spool (never shut down before
--     the end) keeps its entries: a store+load round trip after every
--     1000 iterations and at the end.
-- Output is TAP; the exit status is non-zero on any failure.
--
-- The script runs itself as a child process (same interpreter, same
-- environment): the parent makes the temporary directory, reports a
-- crash of the child (a signal, an abort of the C library) as a failed
-- test with the command that replays it, and removes the directory
-- whatever happened.

local ITER = tonumber(os.getenv("ITER") or "") or 20000
local SEED = tonumber(os.getenv("SEED") or "")
if not SEED then
    local t = os.time() * 1000 + math.floor((os.clock() * 1e6) % 1000)
    SEED = t % 2147483646 + 1
end
SEED = math.floor(SEED)
local TRACE = (os.getenv("TRACE") or "") ~= "" and os.getenv("TRACE") ~= "0"
local SKIP = {}
for w in (os.getenv("FUZZ_SKIP") or ""):gmatch("[%w_]+") do
    SKIP[w] = true
end

local newproxy = newproxy -- Lua 5.1 and LuaJIT only
local interp = type(jit) == "table" and jit.version or _VERSION

local function shell_quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end
local function shell_line(cmd)
    local f = assert(io.popen(cmd))
    local line = f:read("*l")
    f:close()
    return line
end
local function exists(path)
    return shell_line("test -e " .. shell_quote(path) .. " && echo yes || echo no") == "yes"
end

-- ------------------------------------------------------------------ TAP

local test_no, failures = 0, 0
local tmp = os.getenv("FUZZ_API_TMP") -- set in the child
local finished = false
-- Tells the parent how far the numbering went, and whether the child
-- reached its end.
local function note_progress()
    if tmp then
        local f = io.open(tmp .. "/.tap", "w")
        if f then
            f:write(test_no, " ", failures, finished and " finished" or "", "\n")
            f:close()
        end
    end
end
local function tap(ok, text)
    test_no = test_no + 1
    if not ok then
        failures = failures + 1
    end
    io.write(ok and "ok " or "not ok ", test_no, " - ", text, "\n")
    io.flush()
    note_progress()
end
local function diag(text)
    io.write("# ", (tostring(text):gsub("\n", "\n# ")), "\n")
end

-- ---------------------------------------------------------------- parent

if not tmp then
    local lua = arg and arg[-1] or "lua"
    local script = arg and arg[0] or "tools/reliability/fuzz_api.lua"
    tmp = shell_line("mktemp -d ${TMPDIR:-/tmp}/spool-fuzz-api.XXXXXX")
    assert(tmp and tmp:match("^/.+spool%-fuzz%-api%.[%w_]+$"), "mktemp -d failed")
    local replay = ("SEED=%d ITER=%d TRACE=1 %s %s"):format(SEED, ITER, lua, script)
    io.write(("# fuzz_api: SEED=%d ITER=%d under %s; replay: %s\n"):format(SEED, ITER, interp, replay))
    io.flush()
    local cmd = ("FUZZ_API_TMP=%s SEED=%d ITER=%d %s %s"):format(shell_quote(tmp), SEED, ITER, shell_quote(lua),
        shell_quote(script))
    -- Lua 5.1 / LuaJIT: a wait status; Lua 5.2+: ok, "exit" | "signal", n.
    local a, how, n = os.execute(cmd)
    local code
    if type(a) == "number" then
        code = a % 256 ~= 0 and 128 + a % 128 or math.floor(a / 256)
    else
        code = how == "signal" and 128 + n or n
    end
    local f = io.open(tmp .. "/.tap")
    local line = f and f:read("*l") or "0 0"
    if f then
        f:close()
    end
    local n_tests, n_failed, done = line:match("^(%d+) (%d+)( ?%a*)")
    test_no, failures = tonumber(n_tests) or 0, tonumber(n_failed) or 0
    local dir = tmp
    tmp = nil -- the parent writes no .tap file
    if done == " finished" and (code == 0 or code == 1) then
        tap(true, "the fuzz process survived (exit status " .. code .. ")")
    else
        tap(false, "the fuzz process died before its end (exit status " .. tostring(code)
            .. (code > 128 and (", signal " .. (code - 128)) or "") .. ")")
        diag("replay: " .. replay)
    end
    os.execute("rm -rf " .. shell_quote(dir))
    tap(not exists(dir), "temporary directory removed")
    print("1.." .. test_no)
    os.exit(failures == 0 and 0 or 1)
end

-- ----------------------------------------------------------------- child

local spool = require "spool"

-- ------------------------------------------------------------------ RNG
-- Park-Miller "minimal standard" generator: the same stream under every
-- interpreter (math.random differs between them), so a seed replays.

local state = SEED % 2147483647
if state == 0 then
    state = 1
end
local function rnd()
    state = state * 48271 % 2147483647
    return state
end
-- rand(n) -> 1..n; rand(a, b) -> a..b
local function rand(a, b)
    if b == nil then
        if a < 1 then
            return 0 -- pick({}) -> nil
        end
        return rnd() % a + 1
    end
    return a + rnd() % (b - a + 1)
end
local function chance(p)
    return rnd() / 2147483647 < p
end
local function pick(list)
    return list[rand(#list)]
end

-- A regular file, and a directory holding a database that is not a spool.
do
    local f = assert(io.open(tmp .. "/afile", "w"))
    f:write("not a directory\n")
    f:close()
    os.execute("mkdir -p " .. shell_quote(tmp .. "/notadb"))
    f = assert(io.open(tmp .. "/notadb/spool.db", "w"))
    f:write(("this is not an SQLite database\n"):rep(200))
    f:close()
end

-- ---------------------------------------------------------- the spools

-- The main spool: never shut down before the end.  Its gate settings
-- keep it healthy whatever the disk and the fuzz do (no free-space
-- minimum; error streaks would take an hour to latch).
local MAIN_PARAMS = {
    path = tmp .. "/main", min_free_space = 0, min_free_inodes = 0, reserve_bytes = 0,
    error_latch_duration = 3600, store_deadline = 10,
}
local main = assert(spool.open(MAIN_PARAMS))

-- Victims: other spools, which the fuzz may shut down, garbage-collect
-- and reopen.  `sd` is the one that always exists (open or shut down).
local SD_PARAMS = { path = tmp .. "/sd", min_free_space = 0, min_free_inodes = 0, reserve_bytes = 0 }
local sd = assert(spool.open(SD_PARAMS))
local victims = { sd }
local MAX_VICTIMS = 6

local function add_victim(s)
    victims[#victims + 1] = s
    while #victims > MAX_VICTIMS do
        local old = table.remove(victims, 2) -- keep sd at 1
        pcall(old.shutdown, old)
    end
end

-- ----------------------------------------------------------- the checks

local RAISE = setmetatable({}, { __tostring = function() return "FUZZ-RAISE (sentinel table)" end })
local RAISE_TEXT = "FUZZ-RAISE"

local KINDS = {}
for _, k in ipairs(spool.errors.kinds) do
    KINDS[k] = true
end

local ERR_MT = getmetatable(spool.errors.new("internal", { message = "x" }))
local function is_spool_error(v)
    return type(v) == "table" and getmetatable(v) == ERR_MT
end

local violations = {}   -- of the current block of iterations
local called = {}       -- entry name -> calls
local errors_seen = {}  -- real spool.Errors, reused as arguments
local recent = {}       -- ring of the last calls, for diagnostics
local current = "?"
local by_call = {} -- call name -> { returned, failed, raised }
local iteration = 0

-- Short, printable description of a value.
local function show(v, depth)
    local t = type(v)
    if t == "string" then
        local s = v
        if #s > 40 then
            s = s:sub(1, 40) .. ("...(%d bytes)"):format(#v)
        end
        return ("%q"):format(s):gsub("\n", "n"):gsub("[%z\1-\31\127-\255]", function(c)
            return ("\\%d"):format(c:byte())
        end)
    elseif t == "number" then
        if v ~= v then
            return "nan"
        end
        return ("%.17g"):format(v)
    elseif t == "table" then
        if rawequal(v, RAISE) then
            return "RAISE"
        end
        if is_spool_error(v) then
            return ("spool.Error{kind=%s, message=%s}"):format(tostring(rawget(v, "kind")),
                show(rawget(v, "message"), 1))
        end
        depth = (depth or 0) + 1
        if depth > 2 then
            return "{...}"
        end
        local parts, n = {}, 0
        for k, x in next, v do
            n = n + 1
            if n > 4 then
                parts[#parts + 1] = "..."
                break
            end
            parts[#parts + 1] = "[" .. show(k, depth) .. "]=" .. show(x, depth)
        end
        return "{" .. table.concat(parts, ", ") .. "}" .. (getmetatable(v) and "+mt" or "")
    elseif t == "userdata" then
        local ok, s = pcall(tostring, v)
        return ok and type(s) == "string" and ("userdata<" .. s .. ">") or "userdata"
    end
    return t
end

local function show_args(args)
    local parts = {}
    for i = 1, args.n or #args do
        parts[i] = show(args[i])
    end
    return table.concat(parts, ", ")
end

local function violation(what, args)
    local text = ("iteration %d, %s(%s): %s"):format(iteration, current, args and show_args(args) or "", what)
    violations[#violations + 1] = text
    if TRACE then
        io.stderr:write("VIOLATION ", text, "\n")
    end
end

local function pack(...)
    return { n = select("#", ...), ... }
end

-- Checks a raised error value.  The fuzz's own sentinel may come back
-- from anywhere its callbacks or metamethods ran; allow.spool_error says
-- whether this call may raise a spool.Error (iterators, recover).
local function check_raise(e, args, allow)
    if rawequal(e, RAISE) then
        return
    end
    if type(e) == "string" then
        if e == "" then
            violation("raised an empty message", args)
        elseif e:find("(null)", 1, true) then
            violation("raised a message with (null) in it: " .. show(e), args)
        end
        return
    end
    if is_spool_error(e) then
        if not (allow and allow.spool_error) then
            violation("raised a spool.Error where a string was expected: " .. show(e), args)
        elseif not KINDS[rawget(e, "kind")] or type(rawget(e, "message")) ~= "string" or rawget(e, "message") == "" then
            violation("raised a malformed spool.Error: " .. show(e), args)
        end
        return
    end
    violation("raised a " .. type(e) .. " value: " .. show(e), args)
end

-- Checks an error object returned as nil, err.
local function check_err_object(err, args)
    if not is_spool_error(err) then
        violation("returned nil and " .. show(err) .. " instead of nil, spool.Error", args)
        return
    end
    local kind, msg = rawget(err, "kind"), rawget(err, "message")
    if not KINDS[kind] then
        violation("returned an error of unknown kind " .. show(kind), args)
    end
    if type(msg) ~= "string" or msg == "" then
        violation("returned an error with no message", args)
    elseif tostring(err) ~= msg then
        violation("tostring(err) differs from err.message", args)
    elseif msg:find("(null)", 1, true) then
        violation("returned an error message with (null) in it: " .. show(msg), args)
    end
    if rawget(err, "retryable") ~= true and rawget(err, "retryable") ~= false then
        violation("returned an error without a boolean retryable", args)
    end
    if #errors_seen < 32 then
        errors_seen[#errors_seen + 1] = err
    else
        errors_seen[rand(32)] = err
    end
end

-- Calls f(...) under pcall and applies the common checks.
--   how.fails: "err" (nil, spool.Error), "msg" (nil, string), "none"
--   how.raises: false when the entry is documented never to raise
--   how.allow: {spool_error = true} when the call may raise a spool.Error
--   how.closed: the self argument is a shut-down spool: must raise
-- Returns ok, results (packed).
local function call(name, how, f, ...)
    current = name
    called[name] = (called[name] or 0) + 1
    local args = pack(...)
    recent[iteration % 16 + 1] = name
    if TRACE then
        io.stderr:write(("%d %s(%s)\n"):format(iteration, name, show_args(args)))
        io.stderr:flush()
    end
    local r = pack(pcall(f, ...))
    current = name
    local outcome = not r[1] and 3 or (r[2] == nil and r.n >= 3 and 2) or 1
    local o = by_call[name]
    if not o then
        o = { 0, 0, 0 }
        by_call[name] = o
    end
    o[outcome] = o[outcome] + 1
    if not r[1] then
        if how.raises == false and not rawequal(r[2], RAISE) then
            violation("raised although documented never to: " .. show(r[2]), args)
        else
            check_raise(r[2], args, how.allow)
        end
        if how.closed and not (type(r[2]) == "string" and r[2]:find("shut down", 1, true)) then
            violation("on a shut-down spool, raised " .. show(r[2]) .. " instead of a 'shut down' error", args)
        end
        return false, r
    end
    if how.closed then
        violation("a shut-down spool answered instead of raising", args)
    end
    if r[2] == nil and r.n >= 3 then
        if how.fails == "err" then
            check_err_object(r[3], args)
        elseif how.fails == "msg" then
            if type(r[3]) ~= "string" or r[3] == "" then
                violation("returned nil and " .. show(r[3]) .. " instead of nil, message", args)
            end
        end
    elseif r[2] == nil and how.fails == "err" and not how.nil_ok then
        violation("returned nil without an error", args)
    end
    return true, r
end

-- ------------------------------------------------------- the generators

local ID_MT = getmetatable(spool.id.new())
local ID_METHODS = ID_MT.__index

local NUMBERS = {
    0, -0.0, 1, -1, 0.5, -0.5, 1 / 3, 2, 7, 15, 16, 30, 32, 36, 37, 100, 255, 256, 1000, 4096, 65536,
    1e9, 1e15, 2 ^ 31 - 1, 2 ^ 31, -2 ^ 31, 2 ^ 32, 2 ^ 53, 2 ^ 53 + 2, 2 ^ 63, -2 ^ 63, 2 ^ 64, 2 ^ 70,
    1e300, -1e300, 1.7976931348623157e308, 5e-324, 1e-300, math.huge, -math.huge, 0 / 0, -(0 / 0),
    1700000000, 1700000000.5, -1700000000, 12219292800,
}
if math.maxinteger then
    NUMBERS[#NUMBERS + 1] = math.maxinteger
    NUMBERS[#NUMBERS + 1] = math.mininteger
    NUMBERS[#NUMBERS + 1] = math.maxinteger - 1
end

local WORDS = {
    "", " ", "nil", "true", "0", "-1", "10%", "100%", "30s", "200ms", "nan", "inf", "1e999", "0x10",
    "%s%s%s%n", "%d", "\0", "a\0b", "force_sync", "deadline", "timeout", "start_time", "include_data",
    "ids_only", "SQLite", "LocalDisk", "RocksDB", "data", "meta", "path", "name", "not_found", "closed",
    "internal", "unhealthy", "quarantine", "remove", "keep", "spool.Id", "spool.Spool", "spool.Error",
    "/", "//", "/tmp", "..", "aa/bb/cc/dd/eeeeeeeeeeeeeeeeeeeeeeee",
}

local stored_ids = {} -- ids stored in the main spool by the fuzz (may since be removed)
local function remember(id)
    if #stored_ids < 64 then
        stored_ids[#stored_ids + 1] = id
    else
        stored_ids[rand(64)] = id
    end
end

local function random_bytes(n)
    local t = {}
    for i = 1, n do
        t[i] = string.char(rand(0, 255))
    end
    return table.concat(t)
end

local HEX = "0123456789abcdef"
local function random_hex(n)
    local t = {}
    for i = 1, n do
        local k = rand(16)
        t[i] = HEX:sub(k, k)
    end
    return table.concat(t)
end

-- Strings that look like ids, good or bad.
local function id_string()
    local c = rand(14)
    local id = spool.id.new()
    if c == 1 then
        return tostring(id)
    elseif c == 2 then
        return id:hyphenated()
    elseif c == 3 then
        return tostring(id):upper()
    elseif c == 4 then
        return id:bytes()
    elseif c == 5 then
        return id:path(pick({ "", "/var/spool", tmp, "x" }))
    elseif c == 6 then -- version 4
        local s = tostring(id)
        return s:sub(1, 12) .. "4" .. s:sub(14)
    elseif c == 7 then -- wrong variant
        local s = tostring(id)
        return s:sub(1, 16) .. "2" .. s:sub(18)
    elseif c == 8 then
        return random_hex(32)
    elseif c == 9 then
        return random_hex(8) .. "-" .. random_hex(4) .. "-1" .. random_hex(3) .. "-a" .. random_hex(3) .. "-" .. random_hex(12)
    elseif c == 10 then
        return tostring(id):sub(1, rand(0, 31))
    elseif c == 11 then
        return tostring(id) .. pick({ "0", " ", "\0", "-" })
    elseif c == 12 then
        local s = tostring(id)
        local k = rand(32)
        return s:sub(1, k - 1) .. pick({ "g", "G", " ", "\0", "-", "\255" }) .. s:sub(k + 1)
    elseif c == 13 and #stored_ids > 0 then
        return tostring(pick(stored_ids))
    end
    return random_bytes(pick({ 16, 32, 36, 37 }))
end

local function random_string()
    local c = rand(12)
    if c <= 3 then
        return id_string()
    elseif c == 4 then
        return random_bytes(rand(0, 64))
    elseif c == 5 then
        local n = chance(0.02) and 1048576 or pick({ 4096, 65536, 65537 })
        return ("x"):rep(chance(0.3) and n or 300)
    elseif c == 6 then
        return ""
    elseif c == 7 then
        return random_hex(rand(0, 40))
    end
    return pick(WORDS)
end

local function random_number()
    local c = rand(4)
    if c == 1 then
        return rand(-1000, 1000)
    elseif c == 2 then
        return (rnd() - 1073741823) / rand(1, 1000)
    end
    return pick(NUMBERS)
end

-- Tables whose length operator answers ~2^60 (Lua 5.4) or ~2^30 (5.1,
-- LuaJIT): only a few entries are really there.
local function huge_len_table(first)
    local t = {}
    for k = 1, 60 do
        t[2 ^ k] = true
    end
    t[1] = first
    return t
end

local function hostile_table()
    local function raise()
        error(RAISE)
    end
    return setmetatable({}, {
        __index = raise, __newindex = raise, __len = raise, __call = raise, __concat = raise,
        __eq = raise, __lt = raise, __le = raise, __tostring = raise, __pairs = raise,
        __ipairs = raise, __name = "spool.Spool",
    })
end

local random_value -- forward
local make_callback -- forward

local CURSORS = {} -- cursor userdata seen (4th value of entries())
local function random_userdata()
    local c = rand(8)
    if c == 1 then
        return io.stdout
    elseif c == 2 and newproxy then
        return newproxy(chance(0.5))
    elseif c == 3 then
        return spool.id.new()
    elseif c == 4 then
        return pick(victims)
    elseif c == 5 and #CURSORS > 0 then
        return pick(CURSORS)
    elseif c == 6 then
        return sd
    end
    return io.stderr
end

local function random_thread()
    local c = rand(3)
    if c == 1 then
        return coroutine.create(function() end)
    elseif c == 2 then
        local co = coroutine.create(function() end)
        coroutine.resume(co)
        return co -- dead
    end
    return coroutine.create(function() coroutine.yield() end)
end

local function random_table(depth)
    local c = rand(12)
    if c == 1 then
        return {}
    elseif c == 2 then -- array
        local t = {}
        for i = 1, rand(0, 6) do
            t[i] = random_value(depth + 1)
        end
        return t
    elseif c == 3 then -- map
        local t = {}
        for _ = 1, rand(0, 6) do
            local k = random_value(depth + 1)
            if k ~= nil and k == k then
                t[k] = random_value(depth + 1)
            end
        end
        return t
    elseif c == 4 then -- cycle
        local t = { random_value(depth + 1) }
        t[2] = t
        t.self = t
        return t
    elseif c == 5 then
        return hostile_table()
    elseif c == 6 then -- option names with random values
        local t = {}
        for _ = 1, rand(1, 3) do
            t[pick({ "force_sync", "deadline", "timeout", "start_time", "include_data", "ids_only",
                "message", "code", "errno", "ambiguous", "kind" })] = random_value(depth + 1)
        end
        return t
    elseif c == 7 then -- {id, data} pairs
        return { { spool.id.new(), random_string() }, { random_value(depth + 1), random_value(depth + 1) } }
    elseif c == 8 and not SKIP.huge_len and chance(0.2) then
        return huge_len_table(random_value(depth + 1))
    elseif c == 9 then
        return spool.errors.new(pick(spool.errors.kinds), { message = "fuzz" })
    elseif c == 10 and #errors_seen > 0 then
        return pick(errors_seen)
    elseif c == 11 then -- sparse
        return { [1] = 1, [3] = 3, [100] = 100, [-1] = -1, [0] = 0, [1.5] = 1.5 }
    end
    return { random_value(depth + 1), random_value(depth + 1) }
end

function random_value(depth)
    depth = depth or 0
    local c = rand(depth > 2 and 9 or 12)
    if c == 1 then
        return nil
    elseif c == 2 then
        return chance(0.5)
    elseif c <= 4 then
        return random_number()
    elseif c <= 7 then
        return random_string()
    elseif c == 8 then
        return random_userdata()
    elseif c == 9 then
        return spool.id.new()
    elseif c == 10 then
        return random_table(depth)
    elseif c == 11 then
        return make_callback(depth + 1)
    end
    return random_thread()
end

-- An id argument: mostly usable ones.
local function id_arg()
    local c = rand(10)
    if c <= 3 then
        return spool.id.new()
    elseif c <= 5 and #stored_ids > 0 then
        return pick(stored_ids)
    elseif c <= 8 then
        return id_string()
    end
    return random_value()
end

-- Data: mostly short, now and then long (the main spool stays small).
local function data_arg()
    local c = rand(20)
    if c == 1 then
        return ("d"):rep(chance(0.05) and 1048576 or 65536)
    elseif c == 2 then
        return ""
    elseif c <= 16 then
        return random_bytes(rand(0, 200))
    end
    return random_value()
end

local function write_opts_arg()
    local c = rand(10)
    if c <= 3 then
        return nil
    elseif c == 4 then
        return { force_sync = chance(0.5) }
    elseif c == 5 then
        return { deadline = spool.monotonic() + pick({ 5, 0, -1, 1e-9, 1e300 }) }
    elseif c == 6 then
        return { timeout = pick({ 5, 0, 0.001, 1e300, math.huge }) }
    elseif c == 7 then
        return { [pick({ "force_sync", "deadline", "timeout", "bogus", 1 })] = random_value() }
    end
    return random_value()
end

local function enum_opts_arg()
    local c = rand(8)
    if c <= 2 then
        return nil
    elseif c == 3 then
        return { start_time = pick({ os.time() + 10, 0, -1, 1e300, math.huge, -math.huge, 0 / 0, 2 ^ 63 }) }
    elseif c == 4 then
        return { include_data = chance(0.5), ids_only = chance(0.3) }
    elseif c == 5 then
        return { [pick({ "start_time", "include_data", "ids_only", "bogus", 1 })] = random_value() }
    end
    return random_value()
end

-- A spool to call methods on: the main one mostly.
local function self_arg()
    local c = rand(10)
    if c <= 6 then
        return main
    elseif c <= 8 then
        return pick(victims)
    end
    return random_value()
end

local function is_closed_spool(v)
    if v == main then
        return false
    end
    for _, s in ipairs(victims) do
        if v == s then
            return s:is_closed()
        end
    end
    return false
end

-- Checks an enumerated entry.
local function check_entry(e, where)
    if type(e) ~= "table" then
        violation(where .. ": entry is a " .. type(e))
        return
    end
    if e.id ~= nil and not spool.id.is(e.id) then
        violation(where .. ": entry.id is not a spool.Id")
    end
    if e.corrupt then
        if type(e.error) ~= "string" then
            violation(where .. ": corrupt entry without an error string")
        end
    elseif e.data ~= nil and type(e.data) ~= "string" then
        violation(where .. ": entry.data is a " .. type(e.data))
    end
end

-- ---------------------------------------------------------- callbacks
-- Functions passed where the API calls back (enumerate, recover).

local cb_depth = 0
local api_entry -- forward: runs one random API entry (re-entrance)

local make_callback_body -- forward

-- Every callback gives up (returns false: enumerate stops) after a few
-- calls, so that a callback that re-enters the API stays cheap.
function make_callback(depth)
    local f = make_callback_body(depth)
    local left = rand(1, 12)
    return function(...)
        left = left - 1
        if left < 0 then
            return false
        end
        return f(...)
    end
end

function make_callback_body(depth)
    local c = rand(12)
    if c == 1 then
        return function() end
    elseif c == 2 then
        return function() return false end
    elseif c == 3 then
        local v = random_value(depth or 1)
        return function() return v end
    elseif c == 4 then
        return function() error(RAISE_TEXT .. ": raised by a callback") end
    elseif c == 5 then
        return function() error(RAISE) end
    elseif c == 6 then
        return function() coroutine.yield(1) end
    elseif c == 7 then
        return function() collectgarbage() end
    elseif c == 8 then -- re-enters the API
        return function()
            if cb_depth < 2 then
                cb_depth = cb_depth + 1
                local saved = current
                local ok, e = pcall(api_entry)
                current = saved
                if not ok then
                    violation("an error escaped the API calls of a callback: " .. show(e))
                end
                cb_depth = cb_depth - 1
            end
        end
    elseif c == 9 then -- shuts a victim down (perhaps the one enumerating)
        return function()
            local v = pick(victims)
            v:shutdown()
        end
    elseif c == 10 then -- checks what it is given
        local where = current
        return function(e, ...)
            -- enumerate's entries are plain tables (recover's messages are not)
            if type(e) == "table" and not getmetatable(e) then
                check_entry(e, where .. " callback")
            end
            return chance(0.8)
        end
    elseif c == 11 then -- loads the message body (recover's msg:data())
        return function(msg)
            if type(msg) == "table" and type(msg.data) == "function" then
                local ok, d, err = pcall(msg.data, msg)
                if ok and d == nil and not is_spool_error(err) then
                    violation("msg:data() returned nil without a spool.Error")
                end
            end
        end
    end
    return function(...) return select("#", ...) end
end

-- ------------------------------------------------------------ entries

local CALLBACK = {}
local ITERATOR = { spool_error = true }
local ERR = { fails = "err" }
local MSG = { fails = "msg", raises = false }

local live_iters = {} -- iterators kept for later calls
local opened = 0

-- Makes a parameter table for open/define: sane values mostly, random
-- ones now and then.  Paths always stay inside the temporary directory.
local function random_params(for_define)
    local p = {}
    local fresh = false
    local c = rand(12)
    if c <= 6 then
        opened = opened + 1
        p.path = tmp .. "/o" .. opened
        fresh = true
    elseif c == 7 then
        p.path = tmp .. "/afile"
    elseif c == 8 then
        p.path = tmp .. "/notadb"
    elseif c == 9 then
        p.path = tmp .. "/afile/sub"
    elseif c == 10 then
        p.path = tmp .. "/" .. ("n"):rep(pick({ 255, 256, 5000 }))
    elseif c == 11 then
        opened = opened + 1
        p.path = tmp .. "/r" .. opened .. random_bytes(rand(0, 12)):gsub("[%z/%.]", "_")
        fresh = true
    else
        p.path = random_value() -- not a string, or a string that is rejected before any directory is made
        if type(p.path) == "string" then
            p.path = pick({ "", "\0", tmp .. "/x\0y" })
        end
    end
    local keys = {
        flush = function() return chance(0.5) end,
        min_free_space = function() return pick({ 0, "0%", "5%", 1024, "100%", "1e999" }) end,
        min_free_inodes = function() return pick({ 0, "0%", "10%", 100 }) end,
        store_deadline = function() return pick({ 5, "5s", "200ms", 1e-9, 1e300 }) end,
        error_latch_duration = function() return pick({ 0, 15, "1m" }) end,
        error_unlatch_duration = function() return pick({ 0, 300, "1h", 1e12 }) end,
        allow_error_unlatch = function() return chance(0.5) end,
        limit_concurrent_stores = function() return pick({ 1, 2, 64, 2 ^ 32, 1e300 }) end,
        limit_concurrent_loads = function() return pick({ 1, 2, 64, 2 ^ 32 + 1 }) end,
        limit_concurrent_removes = function() return pick({ 1, 2, 64 }) end,
        -- Never a large reserve: it would be allocated on disk.
        reserve_bytes = function() return pick({ 0, 1, 4096, 65536, 2 ^ 63, 1e300, -1, 0.5, "8M" }) end,
        kind = function() return pick({ "SQLite", "SQLite", "LocalDisk", "RocksDB", "sqlite" }) end,
        rocks_params = function()
            return { store_deadline = pick({ 5, "1s" }), limit_concurrent_loads = pick({ 1, 8 }), log_parallelism = 4 }
        end,
        sqlite = function()
            return {
                page_size = pick({ 512, 1024, 4096, 65536, 3000 }),
                cache_kib = pick({ 1, 64, 2048, 2 ^ 53 }),
                mmap_size = pick({ 0, 1048576, 2 ^ 62 }),
                wal_autocheckpoint = pick({ 0, 1, 1000 }),
                checkpoint_wal_bytes = pick({ 1, 4096, 2 ^ 40 }),
                vacuum_step_pages = pick({ 1, 1024 }),
                cleanup_vacuum_pages = pick({ 1, 256 }),
                enumerate_chunk_rows = pick({ 1, 2, 256 }),
                enumerate_chunk_bytes = pick({ 1, 4096, 2 ^ 40 }),
                -- Exclusive locking only where no other handle will look.
                exclusive = fresh and chance(0.3) or nil,
                secure_delete = chance(0.5),
                vfs = chance(0.2) and pick({ "unix", "unix-none", "no-such-vfs" }) or nil,
            }
        end,
    }
    local names = {}
    for k in pairs(keys) do
        names[#names + 1] = k
    end
    table.sort(names) -- pairs order differs between runs: keep replays exact
    for _ = 1, rand(0, 5) do
        local k = pick(names)
        if chance(0.85) then
            p[k] = keys[k]()
        elseif k ~= "reserve_bytes" then
            p[k] = random_value()
        end
    end
    if for_define then
        p.name = chance(0.9) and pick({ "fz_a", "fz_b", "data", "meta" }) or random_value()
    end
    if chance(0.05) then
        p[pick({ "bogus", 1, "Path" })] = random_value()
    end
    if chance(0.03) then
        return random_value()
    end
    return p
end

local ENTRIES = {}
local function entry(name, weight, fn)
    ENTRIES[#ENTRIES + 1] = { name = name, weight = weight, fn = fn }
end

-- spool.id -------------------------------------------------------------

entry("spool.id.new", 2, function()
    local ok, r = call("spool.id.new", {}, spool.id.new, random_value())
    if ok and not spool.id.is(r[2]) then
        violation("spool.id.new returned no id")
    end
end)

entry("spool.id.parse", 6, function()
    local s = chance(0.7) and id_string() or random_value()
    local ok, r = call("spool.id.parse", MSG, spool.id.parse, s)
    if ok and r[2] ~= nil then
        if not spool.id.is(r[2]) then
            violation("spool.id.parse returned a " .. type(r[2]), { n = 1, s })
        elseif type(s) == "string" and #s == 32 and tostring(r[2]) ~= s:lower() then
            violation("parse(s) does not format back to s in lower case", { n = 1, s })
        elseif type(s) == "string" and #s == 36 and r[2]:hyphenated() ~= s:lower() then
            violation("parse(s) does not format back hyphenated", { n = 1, s })
        elseif spool.id.parse(tostring(r[2])) ~= r[2] then
            violation("parse(tostring(id)) ~= id", { n = 1, s })
        end
    end
end)

entry("spool.id.from_bytes", 3, function()
    local b = chance(0.5) and (chance(0.5) and spool.id.new():bytes() or random_bytes(16)) or random_value()
    local ok, r = call("spool.id.from_bytes", MSG, spool.id.from_bytes, b)
    if ok and spool.id.is(r[2]) and r[2]:bytes() ~= b then
        violation("from_bytes(b):bytes() ~= b", { n = 1, b })
    end
end)

entry("spool.id.from_path", 3, function()
    local id = spool.id.new()
    local p = chance(0.5) and id:path(pick({ tmp, "", "rel", "/" })) or random_value()
    if type(p) == "string" and chance(0.3) then
        local k = rand(#p + 1)
        p = p:sub(1, k - 1) .. pick({ "/", "", "x", "\0", "//" }) .. p:sub(k + 1)
    end
    local ok, r = call("spool.id.from_path", MSG, spool.id.from_path, p)
    if ok and spool.id.is(r[2]) and type(p) == "string" and r[2]:path(""):sub(2) ~= p:sub(-36):lower() then
        violation("from_path(p):path('') is not the end of p", { n = 1, p })
    end
end)

entry("spool.id.is", 1, function()
    call("spool.id.is", { raises = false }, spool.id.is, random_value())
end)

local ID_METHOD_NAMES = { "bytes", "created", "age", "path", "hyphenated", "derive_new_with_cloned_timestamp" }
entry("id methods", 8, function()
    local m = pick(ID_METHOD_NAMES)
    local self = chance(0.8) and spool.id.new() or random_value()
    local a
    if chance(0.8) then
        a = pick({ tmp, 0, 1e300, 0 / 0, -1, random_value() }) -- a nil last leaves # valid
    end
    local ok, r = call("id:" .. m, {}, ID_METHODS[m], self, a, random_value())
    if ok and spool.id.is(self) then
        local v = r[2]
        if m == "bytes" and (type(v) ~= "string" or #v ~= 16) then
            violation("id:bytes() is not 16 bytes")
        elseif m == "created" and (type(v) ~= "number" or v ~= v) then
            violation("id:created() is not a number")
        elseif m == "derive_new_with_cloned_timestamp" and (not spool.id.is(v) or v == self) then
            violation("derive_new_with_cloned_timestamp gave no new id")
        end
    end
end)

entry("id metamethods", 4, function()
    local mm = pick({ "__tostring", "__eq", "__lt", "__le" })
    local a = chance(0.7) and spool.id.new() or random_value()
    local b = chance(0.5) and spool.id.new() or random_value()
    call("id." .. mm, {}, ID_MT[mm], a, b)
    -- and through the operators
    call("id operators", {}, function()
        local _ = tostring(a), a == b
        if chance(0.5) then
            return a < b
        end
        return a <= b
    end)
end)

-- spool.open / define / get / recover -----------------------------------

entry("spool.open", 3, function()
    local p = random_params(false)
    local ok, r = call("spool.open", { fails = "err", allow = CALLBACK }, spool.open, p, random_value())
    if ok and r[2] ~= nil then
        if not (type(r[2]) == "userdata" and tostring(r[2]):find("^spool%.Spool%(")) then
            violation("spool.open returned " .. show(r[2]))
        else
            add_victim(r[2])
        end
    end
end)

entry("spool.define", 2, function()
    local p = random_params(true)
    local ok, r = call("spool.define", { allow = CALLBACK }, spool.define, p)
    if ok then
        if type(r[2]) ~= "userdata" then
            violation("spool.define returned " .. show(r[2]) .. " instead of a spool")
        else
            add_victim(r[2])
            local got = spool.get(p.name)
            if got ~= r[2] and not (got and got:path() == r[2]:path()) then
                violation("spool.get(name) does not give the spool just defined")
            end
        end
    end
end)

entry("spool.get", 2, function()
    local name = chance(0.6) and pick({ "fz_a", "fz_b", "data", "meta", "nope", "" }) or random_value()
    local ok, r = call("spool.get", ERR, spool.get, name)
    if ok and r[2] ~= nil and type(r[2]) ~= "userdata" then
        violation("spool.get returned " .. show(r[2]))
    end
    if ok and r[2] == nil and is_spool_error(r[3]) and r[3].kind ~= "not_found" then
        violation("spool.get failed with kind " .. tostring(r[3].kind) .. ", not not_found")
    end
end)

entry("spool.data/meta", 1, function()
    call("spool.data", ERR, spool.data, random_value())
    call("spool.meta", ERR, spool.meta)
end)

local function spool_or_name()
    local c = rand(6)
    if c <= 2 then
        return main
    elseif c == 3 then
        return pick(victims)
    elseif c == 4 then
        return pick({ "data", "meta", "fz_a", "nope" })
    elseif c == 5 then
        return nil
    end
    return random_value()
end

entry("spool.recover", 2, function()
    local opts
    if chance(0.9) then
        -- Each option is valid most of the time, so that whole
        -- recoveries run too.
        local function valid(p)
            return chance(p or 0.85)
        end
        opts = {
            meta = valid(0.95) and pick({ main, main, pick(victims) }) or spool_or_name(),
            data = valid(0.95) and pick({ main, main, pick(victims) }) or spool_or_name(),
            on_message = valid(0.95) and make_callback() or random_value(),
            on_corrupt = valid() and pick({ "quarantine", "remove", "keep", make_callback() }) or
                pick({ "explode", random_value() }),
            on_orphan = valid() and pick({ make_callback(), false }) or random_value(),
            on_progress = valid() and pick({ make_callback(), false }) or random_value(),
            progress_interval = valid() and pick({ 0, 1, 0.001, 1e300 }) or pick({ -1, 0 / 0, math.huge, random_value() }),
            start_time = valid() and pick({ os.time() + 10, os.time() - 3600, 0, 1e300 })
                or pick({ -1, math.huge, 0 / 0, random_value() }),
        }
        for k, v in pairs(opts) do
            if v == false then -- "left out"
                opts[k] = nil
            end
        end
        if chance(0.1) then
            opts[pick({ "bogus", 1 })] = true
        end
    else
        opts = random_value()
    end
    local ok, r = call("spool.recover", { allow = ITERATOR }, spool.recover, opts)
    if ok and type(r[2]) ~= "table" then
        violation("spool.recover returned " .. show(r[2]) .. " instead of counts")
    end
end)

-- spool methods --------------------------------------------------------

local SPOOL_METHODS = getmetatable(main).__index

-- Calls method m of `self` with args; checks the shut-down rule.
local function method_call(m, how, self, ...)
    local closed = is_closed_spool(self)
    local h = {}
    for k, v in pairs(how) do
        h[k] = v
    end
    -- unhealthy_reason and health answer on a shut-down spool (a service
    -- asking whether to accept must hear "no", not fail).
    local always_ok = m == "shutdown" or m == "is_closed" or m == "path" or m == "kind"
        or m == "unhealthy_reason" or m == "health"
    h.closed = closed and not always_ok or nil
    return call("s:" .. m, h, SPOOL_METHODS[m], self, ...)
end

entry("s:store", 10, function()
    local self, id, data, opts = self_arg(), id_arg(), data_arg(), write_opts_arg()
    local ok, r = method_call("store", ERR, self, id, data, opts)
    if ok and r[2] == true and self == main then
        local want = id
        if type(want) == "string" then
            want = spool.id.parse(want)
        end
        if want then
            remember(want)
            local got, err = main:load(want)
            if got ~= data then
                violation(("a stored entry loads back as %s (%s)"):format(show(got), tostring(err)),
                    { n = 3, self, id, data })
            end
        end
    elseif ok and r[2] ~= true and r[2] ~= nil then
        violation("store returned " .. show(r[2]))
    end
end)

entry("s:load", 8, function()
    local ok, r = method_call("load", ERR, self_arg(), id_arg(), random_value())
    if ok and r[2] ~= nil and type(r[2]) ~= "string" then
        violation("load returned a " .. type(r[2]))
    end
end)

entry("s:remove", 5, function()
    local ok, r = method_call("remove", ERR, self_arg(), id_arg(), write_opts_arg())
    if ok and r[2] ~= nil and type(r[2]) ~= "boolean" then
        violation("remove returned a " .. type(r[2]))
    end
end)

local function list_arg(item)
    local c = rand(8)
    if c <= 5 then
        local t = {}
        for i = 1, rand(0, 8) do
            t[i] = item()
        end
        return t
    elseif c == 6 and not SKIP.huge_len then
        return huge_len_table(item())
    end
    return random_value()
end

entry("s:store_many", 5, function()
    local list = list_arg(function()
        if chance(0.85) then
            return { id_arg(), data_arg() }
        end
        return random_value()
    end)
    local ok, r = method_call("store_many", ERR, self_arg(), list, write_opts_arg())
    if ok and r[2] ~= true and r[2] ~= nil then
        violation("store_many returned " .. show(r[2]))
    end
end)

entry("s:remove_many", 4, function()
    local ok, r = method_call("remove_many", ERR, self_arg(), list_arg(id_arg), write_opts_arg())
    if ok and r[2] ~= nil and type(r[2]) ~= "number" then
        violation("remove_many returned " .. show(r[2]))
    end
end)

entry("s:enumerate", 4, function()
    local fn = chance(0.85) and make_callback() or random_value()
    local ok, r = method_call("enumerate", { fails = "err", allow = CALLBACK }, self_arg(), fn, enum_opts_arg())
    if ok and r[2] ~= nil and type(r[2]) ~= "number" then
        violation("enumerate returned " .. show(r[2]))
    end
end)

-- Drives an iterator a few steps; keeps some for later.
local function drive(name, it, steps)
    for _ = 1, steps do
        local ok, r = call(name .. " iterator", { allow = ITERATOR }, it, random_value(), random_value())
        if not ok or r[2] == nil then
            return
        end
        check_entry(r[2], name)
    end
    if #live_iters < 8 then
        live_iters[#live_iters + 1] = { name, it }
    else
        live_iters[rand(8)] = { name, it }
    end
end

entry("s:entries", 4, function()
    local ok, r = method_call("entries", {}, self_arg(), enum_opts_arg())
    if ok then
        if type(r[2]) ~= "function" then
            violation("entries returned a " .. type(r[2]) .. " instead of an iterator")
            return
        end
        if r[5] ~= nil then
            CURSORS[#CURSORS < 4 and #CURSORS + 1 or rand(4)] = r[5]
        end
        drive("entries", r[2], rand(0, 5))
    end
end)

entry("s:quarantined", 2, function()
    local ok, r = method_call("quarantined", {}, self_arg(), random_value())
    if ok then
        if type(r[2]) ~= "function" then
            violation("quarantined returned a " .. type(r[2]) .. " instead of an iterator")
            return
        end
        drive("quarantined", r[2], rand(0, 5))
    end
end)

entry("old iterators", 2, function()
    if #live_iters > 0 then
        local k = rand(#live_iters)
        local name, it = live_iters[k][1], live_iters[k][2]
        call(name .. " iterator (later)", { allow = ITERATOR }, it)
        if chance(0.3) then
            table.remove(live_iters, k)
        end
    end
end)

entry("cursor metamethods", 1, function()
    if #CURSORS > 0 then
        local cur = pick(CURSORS)
        local mt = getmetatable(cur)
        if type(mt) == "table" then
            local mm = pick({ "__gc", "__close" })
            if mt[mm] then
                call("cursor." .. mm, {}, mt[mm], chance(0.8) and cur or random_value(), random_value())
            end
        end
    end
end)

entry("s:quarantine", 3, function()
    local reason = chance(0.7) and pick({ "bad", "", ("r"):rep(5000), "\0x" }) or random_value()
    method_call("quarantine", ERR, self_arg(), id_arg(), reason)
end)

entry("s:restore", 3, function()
    method_call("restore", ERR, self_arg(), id_arg(), random_value())
end)

local SIMPLE = { "compact", "cleanup", "advise_low_memory", "health", "stats", "is_closed", "path", "kind" }
if SPOOL_METHODS.verify then
    SIMPLE[#SIMPLE + 1] = "verify"
end
entry("s:maintenance", 4, function()
    local m = pick(SIMPLE)
    local self = self_arg()
    local ok, r = method_call(m, ERR, self, random_value())
    if ok and r[2] ~= nil then
        local t = type(r[2])
        local want = (m == "advise_low_memory" and "number") or (m == "is_closed" and "boolean")
            or ((m == "path" or m == "kind") and "string") or "table"
        if t ~= want then
            violation(m .. " returned a " .. t .. ", not a " .. want)
        elseif m == "verify" and self == main and r[2].ok ~= true then
            violation("verify finds the main spool damaged: " .. show(r[2]))
        end
    end
end)

entry("s:unhealthy_reason", 2, function()
    local self = self_arg()
    local ok, r = method_call("unhealthy_reason", { fails = "none" }, self)
    if ok and r[2] ~= nil and r[2] ~= "the spool is not accepting writes" then
        violation("unhealthy_reason returned " .. show(r[2]))
    end
    if ok and self == main and r[2] ~= nil then
        violation("the main spool became unhealthy: " .. tostring(r[2]))
    end
end)

entry("tostring(spool)", 1, function()
    local self = chance(0.8) and pick(victims) or self_arg()
    local ok, r = call("tostring(spool)", {}, tostring, self)
    if ok and type(r[2]) ~= "string" then
        violation("tostring returned a " .. type(r[2]))
    end
end)

-- Shutdown: never of the main spool.
entry("s:shutdown", 2, function()
    local self = chance(0.8) and pick(victims) or random_value()
    if self == main then
        return
    end
    local ok, r = call("s:shutdown", {}, SPOOL_METHODS.shutdown, self)
    if ok then
        if r[2] ~= true then
            violation("shutdown returned " .. show(r[2]))
        end
        local ok2, closed = pcall(SPOOL_METHODS.is_closed, self)
        if not ok2 or closed ~= true then
            violation("a spool is not closed after shutdown returned")
        end
    end
end)

entry("shut-down spool", 3, function()
    if not sd:is_closed() then
        if chance(0.5) then
            sd:shutdown()
        else
            return
        end
    end
    local m = pick({ "store", "load", "remove", "store_many", "remove_many", "enumerate", "entries",
        "quarantine", "quarantined", "restore", "compact", "cleanup", "advise_low_memory",
        "unhealthy_reason", "health", "stats" })
    method_call(m, ERR, sd, id_arg(), data_arg())
    local ok, r = call("s:shutdown (again)", {}, SPOOL_METHODS.shutdown, sd)
    if not ok or r[2] ~= true then
        violation("shutdown of a shut-down spool is not idempotent")
    end
end)

entry("reopen sd", 2, function()
    if sd:is_closed() then
        local s, err = spool.open(SD_PARAMS)
        if not s then
            violation("cannot reopen the shut-down spool: " .. tostring(err))
            return
        end
        sd = s
        victims[1] = s
    end
end)

entry("__gc on a victim", 1, function()
    if #victims > 1 then
        local k = rand(2, #victims)
        local v = victims[k]
        call("spool.__gc", {}, getmetatable(v).__gc, v)
        -- still a handle, now closed: every use raises
        local ok, r = call("s:store after __gc", { allow = CALLBACK }, SPOOL_METHODS.store, v, spool.id.new(), "x")
        if ok then
            violation("a handle whose __gc ran still stores")
        elseif type(r[2]) ~= "string" or not r[2]:find("shut down", 1, true) then
            violation("a handle whose __gc ran raised " .. show(r[2]) .. " instead of 'shut down'")
        end
        table.remove(victims, k)
    end
end)

entry("wrong self", 2, function()
    local names = {}
    for k in pairs(SPOOL_METHODS) do
        names[#names + 1] = k
    end
    table.sort(names)
    local m = pick(names)
    if m == "shutdown" then
        return
    end
    local self = random_value()
    if self == main then
        return
    end
    call("s:" .. m .. " (wrong self)", { fails = "err", nil_ok = true }, SPOOL_METHODS[m], self, random_value(),
        random_value())
end)

-- Methods this fuzz has no entry of its own for (added since it was
-- written): random arguments, on victims only.
local KNOWN_METHODS = {
    store = 1, load = 1, remove = 1, store_many = 1, remove_many = 1, enumerate = 1, entries = 1,
    quarantine = 1, quarantined = 1, restore = 1, compact = 1, cleanup = 1, advise_low_memory = 1,
    unhealthy_reason = 1, health = 1, stats = 1, shutdown = 1, is_closed = 1, path = 1, verify = 1,
}
local OTHER_METHODS = {}
for k, v in pairs(SPOOL_METHODS) do
    if not KNOWN_METHODS[k] and type(v) == "function" then
        OTHER_METHODS[#OTHER_METHODS + 1] = k
    end
end
table.sort(OTHER_METHODS)
entry("other methods", 1, function()
    if #OTHER_METHODS > 0 then
        local m = pick(OTHER_METHODS)
        method_call(m, { fails = "err", nil_ok = true }, pick(victims), random_value(), random_value())
    end
end)

-- spool.errors ---------------------------------------------------------

entry("spool.errors.new", 3, function()
    local kind = chance(0.7) and pick(spool.errors.kinds) or random_value()
    local fields = chance(0.5) and {
        message = chance(0.7) and random_string() or random_value(),
        deadline = chance(0.5) and random_number() or random_value(),
        code = random_value(), errno = random_number(), ambiguous = random_value(),
    } or random_value()
    local ok, r = call("spool.errors.new", { allow = CALLBACK }, spool.errors.new, kind, fields)
    local args = { n = 2, kind, fields }
    if ok then
        if not spool.errors.is(r[2]) then
            violation("errors.new returned " .. show(r[2]) .. ", not a spool.Error", args)
        elseif r[2].kind ~= kind then
            violation("errors.new gave kind " .. show(r[2].kind), args)
        elseif type(r[2].message) ~= "string" then
            violation("errors.new gave an error without a message", args)
        elseif type(fields) == "table" and not getmetatable(fields) then
            -- The message it must carry: the reference's fixed texts,
            -- the deadline's, or the one given (a C string: up to a NUL,
            -- at most 511 bytes), or else the kind's default.
            local want, m, d = nil, rawget(fields, "message"), rawget(fields, "deadline")
            if kind == "unhealthy" then
                want = "the spool is not accepting writes"
            elseif kind == "caller_deadline_exceeded" then
                want = "the caller-provided deadline was reached before the spool accepted the write"
            elseif kind == "backpressure_timeout" and d ~= nil and tonumber(d) then
                d = tonumber(d) -- the binding converts numeric strings
                if not (d > 0) then
                    want = "the spool did not accept the write within 0ns"
                elseif d < 2 ^ 64 then
                    want = "the spool did not accept the write within " .. spool.errors.format_duration(d)
                end
            elseif type(m) == "string" then
                want = m -- kept whole, NULs included
            elseif type(m) == "number" then
                want = tostring(m):sub(1, 511)
            end
            if want and r[2].message ~= want then
                violation(("errors.new gave the message %s, expected %s"):format(show(r[2].message), show(want)), args)
            elseif not want and r[2].message == "" then
                violation("errors.new gave an empty default message", args)
            end
        else
            errors_seen[#errors_seen < 32 and #errors_seen + 1 or rand(32)] = r[2]
        end
    end
end)

local function error_arg()
    local c = rand(4)
    if c <= 2 and #errors_seen > 0 then
        return pick(errors_seen)
    end
    return random_value()
end

entry("spool.errors.is", 2, function()
    call("spool.errors.is", { raises = false }, spool.errors.is, error_arg(),
        chance(0.5) and pick(spool.errors.kinds) or random_value())
end)

entry("spool.errors.smtp", 3, function()
    local e = error_arg()
    local ok, r = call("spool.errors.smtp", { allow = CALLBACK }, spool.errors.smtp, e)
    if ok then
        local code, enh, text = r[2], r[3], r[4]
        if type(code) ~= "number" or code < 400 or code > 499 or type(enh) ~= "string" or not enh:match("^4%.%d+%.%d+$")
            or type(text) ~= "string" or text == "" then
            violation(("errors.smtp gave %s, %s, %s"):format(show(code), show(enh), show(text)), { n = 1, e })
        end
    end
end)

entry("spool.errors.http", 2, function()
    local e = error_arg()
    local ok, r = call("spool.errors.http", { allow = CALLBACK }, spool.errors.http, e)
    if ok then
        local status, text = r[2], r[3]
        if (status ~= 503 and status ~= 404 and status ~= 409) or type(text) ~= "string" or text == "" then
            violation(("errors.http gave %s, %s"):format(show(status), show(text)), { n = 1, e })
        end
    end
end)

entry("spool.errors.format_duration", 2, function()
    local d = chance(0.7) and random_number() or random_value()
    local ok, r = call("spool.errors.format_duration", {}, spool.errors.format_duration, d)
    if ok and (type(r[2]) ~= "string" or not r[2]:match("^%d+%.?%d*[mn\194\181]*s$")) then
        violation("format_duration gave " .. show(r[2]), { n = 1, d })
    end
end)

entry("spool.monotonic", 1, function()
    local ok, r = call("spool.monotonic", {}, spool.monotonic, random_value())
    if ok and type(r[2]) ~= "number" then
        violation("monotonic returned a " .. type(r[2]))
    end
end)

-- The whole entry in a coroutine: the binding then runs on another
-- lua_State, and yields inside callbacks meet C boundaries.
entry("in a coroutine", 3, function()
    local co = coroutine.create(function()
        api_entry()
        coroutine.yield("mid")
        api_entry()
    end)
    local ok, e = coroutine.resume(co)
    if ok and coroutine.status(co) == "suspended" then
        ok, e = coroutine.resume(co)
    end
    -- Every API call inside is under pcall: nothing may escape.
    if not ok then
        violation("a coroutine running the API died: " .. show(e))
    end
end)

-- Weighted choice over ENTRIES.
local total_weight = 0
for _, e in ipairs(ENTRIES) do
    total_weight = total_weight + e.weight
end
local in_coroutine_depth = 0
function api_entry()
    local x = rand(total_weight)
    for _, e in ipairs(ENTRIES) do
        x = x - e.weight
        if x <= 0 then
            called[e.name] = (called[e.name] or 0) + 1
            if e.name == "in a coroutine" then
                if in_coroutine_depth > 0 then
                    return
                end
                in_coroutine_depth = in_coroutine_depth + 1
                local ok, err = pcall(e.fn)
                in_coroutine_depth = in_coroutine_depth - 1
                if not ok then
                    error(err, 0)
                end
                return
            end
            return e.fn()
        end
    end
end

-- -------------------------------------------------------------- the run

-- A store+load round trip on the main spool.
local function round_trip()
    local id = spool.id.new()
    local data = "round trip " .. tostring(id) .. random_bytes(rand(0, 100))
    local ok, err = main:store(id, data, { force_sync = chance(0.5) })
    if not ok then
        return false, "store failed: " .. tostring(err)
    end
    local got, err2 = main:load(id)
    if got ~= data then
        return false, "load gave " .. show(got) .. " (" .. tostring(err2) .. ")"
    end
    local reason = main:unhealthy_reason()
    if reason then
        return false, "main spool unhealthy: " .. reason
    end
    return true
end

print("# temporary directory: " .. tmp)

-- Facts checked once.
do
    local kinds = spool.errors.kinds
    local ok = type(kinds) == "table" and #kinds == 11
    for _, k in ipairs(kinds or {}) do
        ok = ok and type(k) == "string" and spool.errors[k:upper()] == k
    end
    tap(ok, "spool.errors.kinds lists the 11 kinds, each with its constant")
end

-- Keeps the main spool small (enumerate and recover walk all of it).
local function trim_main()
    local st = main:stats()
    if type(st) ~= "table" or (st.entries or 0) <= 300 then
        return
    end
    local ids = {}
    for e in main:entries({ ids_only = true }) do
        if e.id then
            ids[#ids + 1] = e.id
        end
        if #ids >= st.entries - 200 then
            break
        end
    end
    local n, err = main:remove_many(ids)
    if not n then
        violation("trimming the main spool failed: " .. tostring(err))
    end
end

local block_start = 1
local function end_block(last)
    current = "checkpoint"
    collectgarbage()
    trim_main()
    local ok, why = round_trip()
    local text = ("iterations %d-%d: no crash, %d violations, store+load round trip"):format(block_start, last,
        #violations)
    tap(ok and #violations == 0, text)
    if not ok then
        diag("round trip: " .. why)
    end
    for i = 1, math.min(#violations, 10) do
        diag(violations[i])
    end
    if #violations > 10 then
        diag(("... and %d more"):format(#violations - 10))
    end
    violations = {}
    block_start = last + 1
end

local run_ok, run_err = xpcall(function()
    for i = 1, ITER do
        iteration = i
        api_entry()
        if i % 1000 == 0 or i == ITER then
            end_block(i)
        end
    end
end, debug.traceback)
if not run_ok then
    tap(false, "the fuzz loop itself raised (a harness bug, or an error escaping pcall)")
    diag(run_err)
    diag("last calls: " .. table.concat(recent, ", "))
end

-- Every entry was reached.
local missing = {}
for _, e in ipairs(ENTRIES) do
    if not called[e.name] then
        missing[#missing + 1] = e.name
    end
end
if ITER >= 2000 then
    tap(#missing == 0, "every API entry was called" .. (#missing > 0 and (" (not: " .. table.concat(missing, ", ") .. ")") or ""))
else
    diag("entries not called in this short run: " .. (#missing > 0 and table.concat(missing, ", ") or "none"))
end

-- The final round trip, then shut everything down and clean up.
do
    local ok, why = round_trip()
    tap(ok, "final store+load round trip on the main spool")
    if not ok then
        diag(why)
    end
    local n = main:stats()
    tap(type(n) == "table" and type(n.entries) == "number", "main spool stats readable at the end"
        .. (type(n) == "table" and (" (" .. tostring(n.entries) .. " entries)") or ""))
end
for _, v in ipairs(victims) do
    pcall(v.shutdown, v)
end
main:shutdown()
tap(main:is_closed(), "main spool shut down at the end")
victims, live_iters, CURSORS, errors_seen, stored_ids = nil, nil, nil, nil, nil
collectgarbage()
collectgarbage()

-- What the calls did: returned / returned nil, err / raised.
local names, total = {}, { 0, 0, 0 }
for name, o in pairs(by_call) do
    names[#names + 1] = name
    for i = 1, 3 do
        total[i] = total[i] + o[i]
    end
end
table.sort(names)
local parts = {}
for _, name in ipairs(names) do
    local o = by_call[name]
    parts[#parts + 1] = ("%s %d/%d/%d"):format(name, o[1], o[2], o[3])
    if #parts == 6 then
        diag(table.concat(parts, ", "))
        parts = {}
    end
end
if #parts > 0 then
    diag(table.concat(parts, ", "))
end
diag(("calls: %d returned, %d returned nil + error, %d raised (per call above: returned/nil+error/raised)")
    :format(total[1], total[2], total[3]))
-- The parent goes on with the numbering, and prints the plan.
finished = true
note_progress()
os.exit(failures == 0 and 0 or 1)
