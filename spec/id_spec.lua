-- Specs for spool.id: UUID version 1 spool ids.

local spool = require "spool"
local helper = require "spec.helper"

local hex, unhex, hyphenate = helper.hex, helper.unhex, helper.hyphenate
local error_of, contains = helper.error_of, helper.contains

--[==[
Known vectors.

Every value below was computed independently of this project with
CPython 3 (/usr/bin/python3) and its standard `uuid` module:

  import uuid
  OFF = 0x01B21DD213814000        # 100-ns ticks from 1582-10-15 to 1970-01-01
  def mk(ts, cs, node):           # ts: 60-bit timestamp, cs: 14-bit clock_seq
      return uuid.UUID(fields=(ts & 0xffffffff,                  # time_low
                               (ts >> 32) & 0xffff,              # time_mid
                               ((ts >> 48) & 0x0fff) | 0x1000,   # time_hi_version
                               ((cs >> 8) & 0x3f) | 0x80,        # clock_seq_hi_variant
                               cs & 0xff,                        # clock_seq_low
                               node))
  # each result was checked with: u.version == 1, u.variant == uuid.RFC_4122,
  # u.time == ts, u.clock_seq == cs, u.node == node
  created = (u.time - OFF) / 10**7   # Python true division, correctly rounded
  path    = "dir/" + "/".join([u.hex[0:2], u.hex[2:4], u.hex[4:6], u.hex[6:8], u.hex[8:]])

  kumo: uuid.UUID("d7ef132b5d7711eea8c8000c29c33806")   (example from KumoMTA's docs)
        u.time = 139151407800324907
  A:  mk(17000000001234567 + OFF, 0x1234, 0x010203040506)  unix 1700000000.1234567
  B:  mk(123456789012 + OFF, 0x0000, 0xffffffffffff)         unix 12345.6789012
  C:  mk(0, 0x3fff, 0x0100000000ff)                          1582-10-15 00:00:00
  D:  mk(2**60 - 1, 0x2a2a, 0x0b0000000001)                  largest timestamp
  t = (0x1ee << 48) | (0x5d77 << 32) | 0xffffffff
  E1: mk(t, 0x0100, 0x030000000003)                time_low = ffffffff
  E2: mk(t + 1, 0x0100, 0x030000000003)            100 ns later, time_low wrapped to 0
  F:  mk(t + 1 + 10**7, 0x0100, 0x030000000003)    1 s after E2
  g = (0x1ee << 48) | (0x5d7f << 32) | 0xffffffff
      (the first time_mid >= 0x5d77 for which (g-OFF)/1e7 == (g+1-OFF)/1e7
       as doubles, i.e. created() cannot tell G1 and G2 apart)
  G1: mk(g, 0x0100, 0x030000000003)
  G2: mk(g + 1, 0x0100, 0x030000000003)
  T1: mk(17000000001234567 + OFF, 0x0001, 0x050000000005)   same time as A
  T2: mk(17000000001234567 + OFF, 0x0002, 0x050000000005)   same time as A

`exact` is fractions.Fraction(u.time - OFF, 10**7) written in decimal;
`tol` allows a couple of ulps at that magnitude.
]==]
local VECTORS = {
  { name = "kumo", hex = "d7ef132b5d7711eea8c8000c29c33806",
    hyphenated = "d7ef132b-5d77-11ee-a8c8-000c29c33806",
    created = 1695847980.0324907, tol = 1e-6,
    path = "dir/d7/ef/13/2b/5d7711eea8c8000c29c33806" },
  { name = "A", hex = "04c29687833b11ee9234010203040506",
    hyphenated = "04c29687-833b-11ee-9234-010203040506",
    created = 1700000000.1234567, tol = 1e-6,
    path = "dir/04/c2/96/87/833b11ee9234010203040506" },
  { name = "B", hex = "d21a5a141dee11b28000ffffffffffff",
    hyphenated = "d21a5a14-1dee-11b2-8000-ffffffffffff",
    -- near 1970 a double resolves ~1e-12 s, so 100-ns precision must survive
    created = 12345.6789012, tol = 1e-9,
    path = "dir/d2/1a/5a/14/1dee11b28000ffffffffffff" },
  { name = "C", hex = "0000000000001000bfff0100000000ff",
    hyphenated = "00000000-0000-1000-bfff-0100000000ff",
    -- exact: (0 - OFF) / 1e7 is an integer representable as a double;
    -- created() must be negative for a timestamp before 1970
    created = -12219292800, tol = 0,
    path = "dir/00/00/00/00/00001000bfff0100000000ff" },
  { name = "D", hex = "ffffffffffff1fffaa2a0b0000000001",
    hyphenated = "ffffffff-ffff-1fff-aa2a-0b0000000001",
    created = 103072857660.6846975, tol = 1e-4,
    path = "dir/ff/ff/ff/ff/ffff1fffaa2a0b0000000001" },
  { name = "E1", hex = "ffffffff5d7711ee8100030000000003",
    hyphenated = "ffffffff-5d77-11ee-8100-030000000003",
    created = 1695848047.2522751, tol = 1e-6,
    path = "dir/ff/ff/ff/ff/5d7711ee8100030000000003" },
  { name = "E2", hex = "000000005d7811ee8100030000000003",
    hyphenated = "00000000-5d78-11ee-8100-030000000003",
    created = 1695848047.2522752, tol = 1e-6,
    path = "dir/00/00/00/00/5d7811ee8100030000000003" },
  { name = "F", hex = "009896805d7811ee8100030000000003",
    hyphenated = "00989680-5d78-11ee-8100-030000000003",
    created = 1695848048.2522752, tol = 1e-6,
    path = "dir/00/98/96/80/5d7811ee8100030000000003" },
  { name = "G1", hex = "ffffffff5d7f11ee8100030000000003",
    hyphenated = "ffffffff-5d7f-11ee-8100-030000000003",
    created = 1695851483.2261119, tol = 1e-6,
    path = "dir/ff/ff/ff/ff/5d7f11ee8100030000000003" },
  { name = "G2", hex = "000000005d8011ee8100030000000003",
    hyphenated = "00000000-5d80-11ee-8100-030000000003",
    created = 1695851483.2261120, tol = 1e-6,
    path = "dir/00/00/00/00/5d8011ee8100030000000003" },
  { name = "T1", hex = "04c29687833b11ee8001050000000005",
    hyphenated = "04c29687-833b-11ee-8001-050000000005",
    created = 1700000000.1234567, tol = 1e-6,
    path = "dir/04/c2/96/87/833b11ee8001050000000005" },
  { name = "T2", hex = "04c29687833b11ee8002050000000005",
    hyphenated = "04c29687-833b-11ee-8002-050000000005",
    created = 1700000000.1234567, tol = 1e-6,
    path = "dir/04/c2/96/87/833b11ee8002050000000005" },
}

local V = {}
for _, v in ipairs(VECTORS) do
  V[v.name] = v
end

-- parse a vector, failing loudly (with the parser's message) if rejected
local function vid(name)
  local id, msg = spool.id.parse(V[name].hex)
  assert(id, "vector " .. name .. " rejected by parse: " .. tostring(msg))
  return id
end

-- Assert that fn(...) neither raises nor succeeds: it must return nil and
-- a non-empty message string.
local function assert_rejected(fn, ...)
  local ok, res, msg = pcall(fn, ...)
  assert.is_true(ok, "raised instead of returning nil, msg: " .. tostring(res))
  assert.is_nil(res)
  assert.is_string(msg)
  assert.is_true(#msg > 0, "empty error message")
end

describe("spool.id", function()

  describe("new()", function()

    it("returns a userdata with the spool.Id metatable", function()
      local id = spool.id.new()
      assert.are.equal("userdata", type(id))
      assert.is_table(getmetatable(id))
      assert.are.equal(debug.getregistry()["spool.Id"], getmetatable(id))
    end)

    it("formats as 32 lowercase hex digits", function()
      local s = tostring(spool.id.new())
      assert.are.equal(32, #s)
      assert.is_nil(s:find("[^0-9a-f]"), "unexpected character in " .. s)
    end)

    it("formats as the hex of its 16 bytes", function()
      local id = spool.id.new()
      local b = id:bytes()
      assert.are.equal(16, #b)
      assert.are.equal(hex(b), tostring(id))
    end)

    it("sets version 1 in the high nibble of byte 7", function()
      for _ = 1, 100 do
        local b = spool.id.new():bytes()
        assert.are.equal(1, math.floor(b:byte(7) / 16))
      end
    end)

    it("sets the RFC 4122 variant (10xx) in byte 9", function()
      for _ = 1, 100 do
        local b = spool.id.new():bytes()
        assert.are.equal(2, math.floor(b:byte(9) / 64))
      end
    end)

    it("sets the multicast bit of the first node byte (byte 11)", function()
      for _ = 1, 100 do
        local b = spool.id.new():bytes()
        assert.is_true(helper.has_bit(b:byte(11), 1),
          string.format("node byte 0x%02x lacks the multicast bit", b:byte(11)))
      end
    end)

    it("has created() within 1 second of os.time()", function()
      local before = os.time()
      local created = spool.id.new():created()
      local after = os.time()
      assert.is_number(created)
      assert.is_true(created > before - 1 and created < after + 1,
        string.format("created() = %.7f, os.time() in [%d, %d]", created, before, after))
    end)

    it("has a small age() measured against the wall clock", function()
      local age = spool.id.new():age()
      assert.is_number(age)
      assert.is_true(age > -1 and age < 1, "age() = " .. tostring(age))
    end)

    it("produces 1,000,000 distinct ids", function()
      local n = 1000000
      local seen = {}
      local distinct = 0
      local new = spool.id.new
      for i = 1, n do
        local b = new():bytes()
        if not seen[b] then
          seen[b] = true
          distinct = distinct + 1
        else
          error("duplicate id after " .. i .. " ids: " .. hex(b))
        end
      end
      seen = nil
      collectgarbage("collect")
      assert.are.equal(n, distinct)
    end)
  end)

  describe("known vectors", function()
    for _, v in ipairs(VECTORS) do
      local label = "vector " .. v.name .. " (" .. v.hex .. ")"

      it(label .. " parses and formats back identically", function()
        local id, msg = spool.id.parse(v.hex)
        assert.is_not_nil(id, msg)
        assert.are.equal(v.hex, tostring(id))
      end)

      it(label .. " parses from the hyphenated form", function()
        assert.are.equal(v.hyphenated, hyphenate(v.hex))
        local id, msg = spool.id.parse(v.hyphenated)
        assert.is_not_nil(id, msg)
        assert.are.equal(v.hex, tostring(id))
      end)

      it(label .. " parses from upper case", function()
        local id, msg = spool.id.parse(v.hex:upper())
        assert.is_not_nil(id, msg)
        assert.are.equal(v.hex, tostring(id))
        local id2, msg2 = spool.id.parse(v.hyphenated:upper())
        assert.is_not_nil(id2, msg2)
        assert.are.equal(v.hex, tostring(id2))
      end)

      it(label .. " has the expected bytes", function()
        assert.are.equal(unhex(v.hex), vid(v.name):bytes())
      end)

      it(label .. " is rebuilt by from_bytes()", function()
        local id, msg = spool.id.from_bytes(unhex(v.hex))
        assert.is_not_nil(id, msg)
        assert.are.equal(v.hex, tostring(id))
        assert.is_true(id == vid(v.name))
      end)

      it(label .. " has the created() time python's uuid gives", function()
        local created = vid(v.name):created()
        assert.is_number(created)
        assert.is_near(v.created, created, v.tol)
      end)

      it(label .. " has the expected path", function()
        assert.are.equal(v.path, vid(v.name):path("dir"))
      end)

      it(label .. " is rebuilt by from_path()", function()
        local id, msg = spool.id.from_path(v.path)
        assert.is_not_nil(id, msg)
        assert.are.equal(v.hex, tostring(id))
      end)
    end

    it("age(now) is now minus created()", function()
      local id = vid("A")
      assert.is_near(10, id:age(1700000010.1234567), 1e-6)
      assert.is_near(-0.1234567, id:age(1700000000), 1e-6)
    end)

    it("age() defaults to the current wall-clock time", function()
      local id = vid("kumo")
      local expected = os.time() - 1695847980.0324907
      local age = id:age()
      assert.is_number(age)
      assert.is_true(math.abs(age - expected) < 2,
        string.format("age() = %.3f, expected about %.3f", age, expected))
    end)
  end)

  describe("round trips of new ids", function()
    local ids
    before_each(function()
      ids = {}
      for i = 1, 200 do
        ids[i] = spool.id.new()
      end
    end)

    it("through the simple text form", function()
      for _, id in ipairs(ids) do
        local back, msg = spool.id.parse(tostring(id))
        assert.is_not_nil(back, msg)
        assert.is_true(back == id)
        assert.are.equal(id:bytes(), back:bytes())
      end
    end)

    it("through the hyphenated text form", function()
      for _, id in ipairs(ids) do
        local back, msg = spool.id.parse(hyphenate(tostring(id)))
        assert.is_not_nil(back, msg)
        assert.are.equal(id:bytes(), back:bytes())
      end
    end)

    it("through upper-case text", function()
      for _, id in ipairs(ids) do
        local back, msg = spool.id.parse(tostring(id):upper())
        assert.is_not_nil(back, msg)
        assert.are.equal(id:bytes(), back:bytes())
        local back2, msg2 = spool.id.parse(hyphenate(tostring(id)):upper())
        assert.is_not_nil(back2, msg2)
        assert.are.equal(id:bytes(), back2:bytes())
      end
    end)

    it("through bytes", function()
      for _, id in ipairs(ids) do
        local back, msg = spool.id.from_bytes(id:bytes())
        assert.is_not_nil(back, msg)
        assert.are.equal(tostring(id), tostring(back))
        assert.are.equal(id:created(), back:created())
      end
    end)

    it("through a path", function()
      for _, id in ipairs(ids) do
        local back, msg = spool.id.from_path(id:path("/var/spool/x"))
        assert.is_not_nil(back, msg)
        assert.are.equal(id:bytes(), back:bytes())
      end
    end)

    it("through a file created on disk at id:path(dir)", function()
      local dir = helper.tmpdir()
      local ok, err = pcall(function()
        for i = 1, 20 do
          local id = ids[i]
          local p = id:path(dir)
          local parent = p:match("^(.*)/[^/]+$")
          assert.are.equal(dir .. "/" .. tostring(id):sub(1, 2) .. "/"
            .. tostring(id):sub(3, 4) .. "/" .. tostring(id):sub(5, 6) .. "/"
            .. tostring(id):sub(7, 8), parent)
          assert.is_true(helper.mkdir_p(parent))
          local f = assert(io.open(p, "wb"))
          f:write("x")
          f:close()
          assert.is_true(helper.exists(p))
          local back, msg = spool.id.from_path(p)
          assert.is_not_nil(back, msg)
          assert.is_true(back == id)
        end
      end)
      helper.rm_rf(dir)
      assert(ok, err)
    end)
  end)

  describe("parse()", function()

    it("accepts mixed case", function()
      local id, msg = spool.id.parse("D7eF132b5D7711EEa8C8000c29C33806")
      assert.is_not_nil(id, msg)
      assert.are.equal("d7ef132b5d7711eea8c8000c29c33806", tostring(id))
    end)

    local kumo = "d7ef132b5d7711eea8c8000c29c33806"
    local kumo_h = "d7ef132b-5d77-11ee-a8c8-000c29c33806"

    local bad = {
      { "the empty string", "" },
      { "31 hex digits", kumo:sub(1, 31) },
      { "33 hex digits", kumo .. "0" },
      { "34 hex digits", kumo .. "00" },
      { "36 hex digits without hyphens", kumo .. "0000" },
      { "35 characters (hyphenated, one digit short)", kumo_h:sub(1, 35) },
      { "37 characters (hyphenated, one digit extra)", kumo_h .. "0" },
      { "a 'g' in the simple form", helper.set_char(kumo, 5, "g") },
      { "a 'z' at the end of the simple form", helper.set_char(kumo, 32, "z") },
      { "a space in the simple form", helper.set_char(kumo, 1, " ") },
      { "a leading space (33 chars)", " " .. kumo },
      { "a trailing newline (33 chars)", kumo .. "\n" },
      { "a '+' in the simple form", helper.set_char(kumo, 9, "+") },
      { "a non-ASCII byte in the simple form", helper.set_char(kumo, 16, "\200") },
      { "a non-hex char in the hyphenated form", helper.set_char(kumo_h, 36, "x") },
      { "a '0x' prefix", "0x" .. kumo:sub(3) },
      { "a hyphen inside the 32-char form", helper.set_char(kumo, 9, "-") },
      { "hyphens shifted left by one", "d7ef132-b5d77-11ee-a8c8-000c29c33806" },
      { "hyphens shifted right by one", "d7ef132b5-d771-1eea-8c80-00c29c33806" },
      { "underscores instead of hyphens", "d7ef132b_5d77_11ee_a8c8_000c29c33806" },
      { "spaces instead of hyphens", "d7ef132b 5d77 11ee a8c8 000c29c33806" },
      { "only the first hyphen missing (36 chars)", "d7ef132b05d77-11ee-a8c8-000c29c33806" },
      { "a hyphen where a digit should be", "d7ef132b-5d77-11ee-a8c8-000c29c3380-" },
      { "braces around the hyphenated form", "{" .. kumo_h .. "}" },
      { "a urn:uuid: prefix", "urn:uuid:" .. kumo_h },
      { "an embedded NUL in the simple form", helper.set_char(kumo, 17, "\0") },
      { "a NUL after 32 valid digits", kumo .. "\0" },
      { "a NUL followed by junk after 32 valid digits", kumo .. "\0abc" },
      { "an embedded NUL in the hyphenated form", helper.set_char(kumo_h, 9, "\0") },
      { "a NUL after a valid hyphenated form", kumo_h .. "\0" },
      { "only NULs (32)", string.rep("\0", 32) },
      { "version 4", helper.set_char(kumo, 13, "4") },
      { "version 0", helper.set_char(kumo, 13, "0") },
      { "version 2", helper.set_char(kumo, 13, "2") },
      { "version f", helper.set_char(kumo, 13, "f") },
      { "version 4 (hyphenated)", helper.set_char(kumo_h, 15, "4") },
      { "variant 0xxx (NCS)", helper.set_char(kumo, 17, "2") },
      { "variant 110x (Microsoft)", helper.set_char(kumo, 17, "c") },
      { "variant 111x (reserved)", helper.set_char(kumo, 17, "e") },
      { "variant 0xxx (hyphenated)", helper.set_char(kumo_h, 20, "7") },
      { "the nil UUID", string.rep("0", 32) },
      { "the max UUID", string.rep("f", 32) },
    }

    for _, case in ipairs(bad) do
      it("returns nil and a message for " .. case[1], function()
        assert_rejected(spool.id.parse, case[2])
      end)
    end

    local bad_types = {
      { "nil", nil },
      { "a number", 42 },
      { "a large number", 1e31 },
      { "a boolean", true },
      { "a table", {} },
      { "a function", print },
    }
    for _, case in ipairs(bad_types) do
      it("returns nil and a message for " .. case[1], function()
        assert_rejected(spool.id.parse, case[2])
      end)
    end

    it("returns nil and a message when called without arguments", function()
      assert_rejected(spool.id.parse)
    end)

    it("returns nil and a message for an id userdata", function()
      assert_rejected(spool.id.parse, spool.id.new())
    end)
  end)

  describe("from_bytes()", function()
    local kb = unhex("d7ef132b5d7711eea8c8000c29c33806")

    it("accepts 16 bytes that contain NULs", function()
      local b = unhex(V.C.hex)
      assert.is_not_nil(b:find("\0", 1, true))
      local id, msg = spool.id.from_bytes(b)
      assert.is_not_nil(id, msg)
      assert.are.equal(b, id:bytes())
    end)

    local bad = {
      { "15 bytes", kb:sub(1, 15) },
      { "17 bytes", kb .. "\0" },
      { "17 bytes (trailing 'x')", kb .. "x" },
      { "0 bytes", "" },
      { "the 32-char hex text", "d7ef132b5d7711eea8c8000c29c33806" },
      { "16 bytes with version 4", helper.set_byte(kb, 7, 0x41) },
      { "16 bytes with version 0", helper.set_byte(kb, 7, 0x01) },
      { "16 bytes with the NCS variant", helper.set_byte(kb, 9, 0x28) },
      { "16 bytes with the Microsoft variant", helper.set_byte(kb, 9, 0xc8) },
      { "nil", nil },
      { "a number", 16 },
      { "a table", {} },
    }
    for _, case in ipairs(bad) do
      it("returns nil and a message for " .. case[1], function()
        assert_rejected(spool.id.from_bytes, case[2])
      end)
    end
  end)

  describe("path()", function()

    it("uses the four time_low bytes as directories and 24 hex digits as the file name", function()
      local id = spool.id.new()
      local h = tostring(id)
      assert.are.equal("/x/" .. h:sub(1, 2) .. "/" .. h:sub(3, 4) .. "/" .. h:sub(5, 6)
        .. "/" .. h:sub(7, 8) .. "/" .. h:sub(9), id:path("/x"))
    end)

    local bad_dirs = {
      { "nil", function() return nil end },
      { "a table", function() return {} end },
      { "a boolean", function() return false end },
      { "a number", function() return 5 end },
      { "an id", function() return spool.id.new() end },
    }
    for _, case in ipairs(bad_dirs) do
      it("raises an error mentioning \"dir\" for " .. case[1], function()
        local id = spool.id.new()
        local err = error_of(id.path, id, case[2]())
        assert.is_not_nil(err, "path() accepted " .. case[1])
        assert.is_true(contains(err, "dir"), "message does not mention dir: " .. tostring(err))
      end)
    end

    it("raises an error mentioning \"dir\" when called without a dir", function()
      local id = spool.id.new()
      local err = error_of(function() return id:path() end)
      assert.is_not_nil(err)
      assert.is_true(contains(err, "dir"), "message does not mention dir: " .. tostring(err))
    end)
  end)

  describe("from_path()", function()
    local kumo = "d7ef132b5d7711eea8c8000c29c33806"

    it("accepts an absolute path", function()
      local id, msg = spool.id.from_path("/var/spool/kumomta/data/d7/ef/13/2b/5d7711eea8c8000c29c33806")
      assert.is_not_nil(id, msg)
      assert.are.equal(kumo, tostring(id))
    end)

    it("accepts a path of exactly five components", function()
      local id, msg = spool.id.from_path("d7/ef/13/2b/5d7711eea8c8000c29c33806")
      assert.is_not_nil(id, msg)
      assert.are.equal(kumo, tostring(id))
    end)

    it("accepts upper-case hex", function()
      local id, msg = spool.id.from_path("dir/D7/EF/13/2B/5D7711EEA8C8000C29C33806")
      assert.is_not_nil(id, msg)
      assert.are.equal(kumo, tostring(id))
    end)

    it("is the inverse of path() for any dir", function()
      local id = spool.id.new()
      for _, dir in ipairs({ "/", ".", "a", "/a/b/c/d/e/f", "/with space/x" }) do
        local back, msg = spool.id.from_path(id:path(dir))
        assert.is_not_nil(back, msg)
        assert.is_true(back == id, dir)
      end
    end)

    local bad = {
      { "the empty string", "" },
      { "four components", "ef/13/2b/5d7711eea8c8000c29c33806" },
      { "a bare 32-hex name", "dir/" .. kumo },
      { "a 23-digit file name", "dir/d7/ef/13/2b/5d7711eea8c8000c29c3380" },
      { "a 25-digit file name", "dir/d7/ef/13/2b/5d7711eea8c8000c29c338060" },
      { "a non-hex directory", "dir/d7/ef/1g/2b/5d7711eea8c8000c29c33806" },
      { "a non-hex file name", "dir/d7/ef/13/2b/5d7711eea8c8000c29c3380z" },
      { "a three-digit directory", "dir/d7/ef/130/2b/5d7711eea8c8000c29c33806" },
      { "a version 4 id", "dir/d7/ef/13/2b/5d7741eea8c8000c29c33806" },
      { "a non-RFC 4122 variant", "dir/d7/ef/13/2b/5d7711ee28c8000c29c33806" },
      { "a trailing NUL", "dir/d7/ef/13/2b/5d7711eea8c8000c29c33806\0" },
      { "an embedded NUL", "dir/d7/ef/13/2b/5d7711ee\0a8c8000c29c33806" },
      { "a hyphenated file name", "dir/d7/ef/13/2b/5d77-11ee-a8c8-000c29c33806" },
    }
    for _, case in ipairs(bad) do
      it("returns nil and a message for " .. case[1], function()
        assert_rejected(spool.id.from_path, case[2])
      end)
    end
  end)

  describe("derive_new_with_cloned_timestamp()", function()

    it("keeps created()", function()
      local id = spool.id.new()
      local d = id:derive_new_with_cloned_timestamp()
      assert.are.equal(id:created(), d:created())
    end)

    it("keeps the first 8 bytes", function()
      local id = spool.id.new()
      local d = id:derive_new_with_cloned_timestamp()
      assert.are.equal(id:bytes():sub(1, 8), d:bytes():sub(1, 8))
    end)

    it("returns a different id", function()
      for _ = 1, 100 do
        local id = spool.id.new()
        local d = id:derive_new_with_cloned_timestamp()
        assert.are.equal("userdata", type(d))
        assert.is_false(d == id)
        assert.are_not.equal(id:bytes(), d:bytes())
      end
    end)

    it("returns distinct ids when derived repeatedly from one id", function()
      local id = vid("kumo")
      local seen = { [id:bytes()] = true }
      for i = 1, 1000 do
        local b = id:derive_new_with_cloned_timestamp():bytes()
        assert.is_nil(seen[b], "derivation " .. i .. " repeated " .. hex(b))
        seen[b] = true
      end
    end)

    -- The 14-bit clock sequence alone wraps after 16,384; a store under a
    -- repeated id would replace an entry.
    it("never repeats an id over 100,000 derivations from one source", function()
      local id = vid("kumo")
      local seen = { [id:bytes()] = true }
      for i = 1, 100000 do
        local b = id:derive_new_with_cloned_timestamp():bytes()
        assert(seen[b] == nil, "derivation " .. i .. " repeated " .. hex(b))
        seen[b] = true
      end
    end)

    it("never derives an id that new() could give at the same timestamp", function()
      local id = spool.id.new()
      local node = id:bytes():sub(11, 16)
      for _ = 1, 20000 do
        assert.are_not.equal(node, id:derive_new_with_cloned_timestamp():bytes():sub(11, 16))
      end
    end)

    it("returns a valid version 1, RFC 4122 id", function()
      local d = spool.id.new():derive_new_with_cloned_timestamp()
      local b = d:bytes()
      assert.are.equal(1, math.floor(b:byte(7) / 16))
      assert.are.equal(2, math.floor(b:byte(9) / 64))
      local back, msg = spool.id.parse(tostring(d))
      assert.is_not_nil(back, msg)
      assert.is_true(back == d)
    end)

    it("keeps an old timestamp (vector A)", function()
      local d = vid("A"):derive_new_with_cloned_timestamp()
      assert.are.equal("04c29687833b11ee", tostring(d):sub(1, 16))
      assert.are_not.equal(V.A.hex, tostring(d))
      assert.is_near(1700000000.1234567, d:created(), 1e-6)
    end)
  end)

  describe("comparison", function()

    it("== is true for distinct objects with the same bytes", function()
      local a, b = vid("kumo"), vid("kumo")
      assert.is_false(rawequal(a, b))
      assert.is_true(a == b)
    end)

    it("== is false for different ids", function()
      assert.is_false(vid("T1") == vid("T2"))
      assert.is_false(spool.id.new() == spool.id.new())
    end)

    it("< follows creation time, not byte order", function()
      -- E1 is 1 s older than F, but its bytes (ffffffff...) sort after F's (00989680...)
      local e1, f = vid("E1"), vid("F")
      assert.is_true(e1:bytes() > f:bytes())
      assert.is_true(e1 < f)
      assert.is_false(f < e1)
    end)

    it("< follows creation time across a time_low wrap 100 ns apart", function()
      local e1, e2 = vid("E1"), vid("E2")
      assert.is_true(e1 < e2)
      assert.is_false(e2 < e1)
    end)

    it("< orders timestamps 100 ns apart that created() cannot separate", function()
      -- G1 and G2 have the same created() double, G2 is 100 ns later and its
      -- bytes sort first; byte order must not win over the timestamp.
      local g1, g2 = vid("G1"), vid("G2")
      assert.is_true(g1 < g2)
      assert.is_false(g2 < g1)
    end)

    it("<= follows creation time", function()
      local e1, f = vid("E1"), vid("F")
      assert.is_true(e1 <= f)
      assert.is_false(f <= e1)
    end)

    it("< and > compare pre-1970 and far-future ids correctly", function()
      local c, b, d = vid("C"), vid("B"), vid("D")
      assert.is_true(c < b)
      assert.is_true(b < d)
      assert.is_true(d > c)
      assert.is_false(d < c)
    end)

    it("breaks creation time ties by bytes", function()
      local t1, t2, a = vid("T1"), vid("T2"), vid("A")
      assert.are.equal(t1:created(), t2:created())
      assert.is_true(t1 < t2)
      assert.is_false(t2 < t1)
      assert.is_true(t2 < a)   -- ...8002... < ...9234...
      assert.is_true(t1 <= t2)
      assert.is_false(t2 <= t1)
    end)

    it("an id is <= but not < an equal id", function()
      local a, b = vid("kumo"), vid("kumo")
      assert.is_false(a < b)
      assert.is_false(b < a)
      assert.is_true(a <= b)
      assert.is_true(b <= a)
    end)

    it("table.sort puts vectors in chronological order", function()
      local expected = { "C", "B", "kumo", "E1", "E2", "F", "G1", "G2", "T1", "T2", "A", "D" }
      local shuffled = { "G2", "A", "E2", "D", "T2", "kumo", "C", "F", "T1", "B", "G1", "E1" }
      local list = {}
      for i, name in ipairs(shuffled) do
        list[i] = vid(name)
      end
      table.sort(list)
      local got = {}
      for i, id in ipairs(list) do
        got[i] = tostring(id)
      end
      local want = {}
      for i, name in ipairs(expected) do
        want[i] = V[name].hex
      end
      assert.are.same(want, got)
    end)
  end)

  describe("methods called with a wrong self", function()
    local methods = {
      bytes = {},
      created = {},
      age = { 0 },
      path = { "dir" },
      derive_new_with_cloned_timestamp = {},
    }
    local names = {}
    for name in pairs(methods) do
      names[#names + 1] = name
    end
    table.sort(names)

    for _, name in ipairs(names) do
      local selves = {
        { "a string", "x" },
        { "a table", {} },
        { "nil", nil },
        { "a number", 1 },
      }
      for _, s in ipairs(selves) do
        it(name .. "() raises an error mentioning spool.Id for " .. s[1], function()
          local id = spool.id.new()
          local m = id[name]
          assert.is_function(m)
          local extra = methods[name]
          local err = error_of(m, s[2], extra[1])
          assert.is_not_nil(err, name .. " accepted " .. s[1] .. " as self")
          assert.is_true(contains(err, "spool.Id"), "message: " .. tostring(err))
        end)
      end
    end
  end)
end)
