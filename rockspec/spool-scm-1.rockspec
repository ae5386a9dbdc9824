-- Installs offline: it depends on nothing but Lua, and builds with the
-- project's Makefile (which links SQLite through pkg-config).
--   luarocks make rockspec/spool-scm-1.rockspec LUA=luajit LUA_INCDIR=/usr/include/luajit-2.1
-- The RocksDB backend (kind = "RocksDB") is built when RocksDB's headers
-- are installed (Debian: apt-get install librocksdb-dev); pass ROCKSDB=0
-- to leave it out, ROCKSDB=1 to insist on it:
--   luarocks make rockspec/spool-scm-1.rockspec ROCKSDB=0
rockspec_format = "3.0"
package = "spool"
version = "scm-1"
source = {
   url = "git+file:///dev/null",  -- not fetched: `luarocks make` builds the checkout it runs in
}
description = {
   summary = "A durable message spool on SQLite, for Lua policy scripts",
   detailed = [[
      A spool maps 16-byte UUID v1 ids to opaque blobs and keeps every
      acknowledged store: the storage a mail server or queueing service
      keeps accepted messages in until they are delivered.  C core on
      SQLite (WAL), compatible with KumoMTA's Spool contract.
   ]],
   license = "Apache-2.0",
}
dependencies = {
   "lua >= 5.1",
}
external_dependencies = {
   SQLITE = { header = "sqlite3.h" },
}
build = {
   type = "make",
   build_target = "all",
   build_variables = {
      CFLAGS = "$(CFLAGS)",
      LIBFLAG = "$(LIBFLAG)",
      LUA_INCDIR = "$(LUA_INCDIR)",
      LUA = "$(LUA)",
      ROCKSDB = "$(ROCKSDB)",
   },
   install_target = "install",
   install_variables = {
      INST_PREFIX = "$(PREFIX)",
      INST_LIBDIR = "$(LIBDIR)",
      INST_LUADIR = "$(LUADIR)",
      LUA = "$(LUA)",
      LUA_INCDIR = "$(LUA_INCDIR)",
      -- as built: install must not rebuild with other settings
      CFLAGS = "$(CFLAGS)",
      LIBFLAG = "$(LIBFLAG)",
      ROCKSDB = "$(ROCKSDB)",
   },
}
