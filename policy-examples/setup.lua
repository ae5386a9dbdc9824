-- Lets an example run from a checkout, from any directory, before
-- `make install`: puts this checkout's lua/ and build/<interpreter>/ in
-- front of the search paths.  An installed spool is used otherwise.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local interp = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
package.path = here .. "/../lua/?.lua;" .. package.path
package.cpath = here .. "/../build/" .. interp .. "/?.so;" .. package.cpath

-- A scratch directory for the example's spools: $SPOOL_EXAMPLE_DIR, or a
-- new one under /tmp.  Returns the path and a function removing it.
return function(name)
    local dir = os.getenv("SPOOL_EXAMPLE_DIR")
    if dir then
        return dir, function() end
    end
    dir = os.tmpname()
    os.remove(dir)
    dir = dir .. "-" .. name
    return dir, function() os.execute("rm -rf '" .. dir .. "'") end
end
