-- backend-options.lua: prints the table of each backend's options, as
-- docs/BACKENDS.md holds it between its "options:begin" and
-- "options:end" markers, from the one declaration of them in the C
-- backends (spool.core.backends()).  spec/options_spec.lua checks that
-- the docs hold exactly this.
--
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/luajit/?.so;;" luajit tools/backend-options.lua
local core = require "spool.core"

local _M = { _VERSION = "0.1.0" }

local function range(o)
    if o.values then return (o.values:gsub(",", ", ")) end
    if o.min == nil then return "" end
    local function show(n)
        if n >= 2 ^ 53 then return "2^53" end
        if n == 2 ^ 31 - 1 then return "2^31-1" end
        return ("%d"):format(n)
    end
    return show(o.min) .. " to " .. show(o.max)
end

-- The markdown text of one backend's table (empty without options).
function _M.section(b)
    if not (b.options_key and #b.options > 0) then return "" end
    local out = {}
    out[#out + 1] = ("`%s` (%s):"):format(b.options_key, b.kind)
    out[#out + 1] = ""
    out[#out + 1] = "| option | type | range | default | |"
    out[#out + 1] = "|---|---|---|---|---|"
    for _, o in ipairs(b.options) do
        out[#out + 1] = ("| `%s` | %s | %s | %s | %s |"):format(o.name, o.type, range(o), o.default, o.doc)
    end
    out[#out + 1] = ""
    return table.concat(out, "\n") .. "\n"
end

-- The markdown text, one table per built backend with options.
function _M.markdown()
    local out = {}
    for _, b in ipairs(core.backends()) do out[#out + 1] = _M.section(b) end
    return table.concat(out)
end

if arg and arg[0] and arg[0]:find("backend%-options%.lua$") then
    io.write(_M.markdown())
end

return _M
