# spool: build, test and install the Lua module spool.core (+ lua/).
#
#   make                 build/luajit/spool/core.so
#   make LUA=lua5.1      build/lua5.1/spool/core.so (also lua5.4)
#   make test            specs under luajit, lua5.1, lua5.4 + C tests
#   make asan            the suite with AddressSanitizer + UBSan
#   make valgrind        the suite under valgrind with lua5.1
#   make tsan            the threaded C tests under ThreadSanitizer (clang)
#   make libspool        build/luajit/libspool.a: the core without Lua
#   make install         honours PREFIX, DESTDIR and LuaRocks' variables
#   make deps            installs the Debian packages (tools/install-deps)

LUA ?= luajit
# LuaRocks passes LUA as a full path; the build directory uses its name.
LUA_NAME = $(notdir $(LUA))
# pkg-config name of the interpreter's headers.
LUA_PC_luajit = luajit
LUA_PC_lua5.1 = lua5.1
LUA_PC_lua5.4 = lua5.4
LUA_PC ?= $(or $(LUA_PC_$(LUA_NAME)),$(LUA_NAME))
LUA_VERSION_luajit = 5.1
LUA_VERSION_lua5.1 = 5.1
LUA_VERSION_lua5.4 = 5.4
LUA_VERSION ?= $(or $(LUA_VERSION_$(LUA_NAME)),5.1)

PREFIX ?= /usr/local
LUA_INCDIR ?= $(patsubst -I%,%,$(firstword $(shell pkg-config --cflags-only-I $(LUA_PC) 2>/dev/null)))
INST_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
LIBFLAG ?= -shared

CC ?= cc
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
SQLITE_CFLAGS := $(shell pkg-config --cflags sqlite3)
SQLITE_LIBS := $(shell pkg-config --libs sqlite3)
# Only luaopen_spool_core leaves the module; Lua's own library is never
# linked in: the interpreter provides it.
MODCFLAGS = -std=gnu11 -fPIC -fvisibility=hidden $(WARN) $(INCLUDES) $(BACKEND_DEFS) $(if $(LUA_INCDIR),-I$(LUA_INCDIR)) $(SQLITE_CFLAGS)
LIBS = $(BACKEND_LIBS) $(SQLITE_LIBS) -lpthread -lm

BUILD ?= build/$(LUA_NAME)
# The tree shows the layers: csrc/core/ knows no storage engine and no
# Lua; csrc/backends/ holds one file per backend (spool_<word>.c, listed
# in BACKENDS and in csrc/backends/spool_backends.c); csrc/lua/ is the
# binding, one file per class.
CORE_SRC = $(addprefix csrc/core/,spool_fork.c spool_id.c spool_error.c spool_checksum.c spool_gate.c \
           spool_deadline.c spool_group.c spool_file.c spool_options.c spool.c spool_registry.c)
BACKENDS = sqlite localdisk
# RocksDB when its headers are there (librocksdb-dev); ROCKSDB=0 leaves
# it out, and kind = "RocksDB" then answers a clear error.
HAVE_ROCKSDB := $(shell printf '\043include <rocksdb/c.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1 || echo 0)
# (Empty, as LuaRocks passes an unset variable: decided by the headers.)
ROCKSDB ?=
WITH_ROCKSDB = $(if $(ROCKSDB),$(ROCKSDB),$(HAVE_ROCKSDB))
ifeq ($(WITH_ROCKSDB)$(HAVE_ROCKSDB),10)
$(error ROCKSDB=1, but <rocksdb/c.h> is not found: apt-get install librocksdb-dev)
endif
ifeq ($(WITH_ROCKSDB),1)
BACKENDS += rocksdb
# Its version tells the backend which table formats the library reads.
ROCKSDB_VERSION = $(or $(shell pkg-config --modversion rocksdb 2>/dev/null),unknown)
BACKEND_DEFS = -DSPOOL_HAVE_ROCKSDB -DSPOOL_ROCKSDB_VERSION='"$(ROCKSDB_VERSION)"'
BACKEND_LIBS = $(or $(shell pkg-config --libs rocksdb 2>/dev/null),-lrocksdb)
endif
BACKEND_SRC = $(patsubst %,csrc/backends/spool_%.c,$(BACKENDS)) csrc/backends/spool_backends.c
LIB_SRC = $(CORE_SRC) $(BACKEND_SRC)
BINDING_SRC = $(wildcard csrc/lua/*.c)
MOD_SRC = $(LIB_SRC) $(BINDING_SRC)
HEADERS = $(wildcard csrc/*/*.h)
INCLUDES = -Icsrc/core
OBJS = $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(MOD_SRC))
LIB_OBJS = $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
CORE_SO = $(BUILD)/spool/core.so
# The core and its backends without Lua, for C programs: the C tests,
# the benchmarks and the fuzzers link it; headers under csrc/core/
# (spool.h is the entry point; compile with -Icsrc/core).
LIBSPOOL = $(BUILD)/libspool.a

.PHONY: libspool print-libs test-reliability all test asan valgrind tsan tsan-build install uninstall clean deps demo ctest bench bench-full bench-layout
all: $(CORE_SO)

# What the objects were built with: a change (librocksdb-dev installed
# since, ROCKSDB=0, other CFLAGS) rewrites it, and the objects follow.
# Rewritten only by a build (not by make -n, clean or print-libs), and
# only when it differs, so that an unchanged one keeps its time.
CONFIG_STAMP = $(BUILD)/config
CONFIG_NOW = $(CC) | $(CFLAGS) | $(BACKENDS) $(ROCKSDB_VERSION)
$(CONFIG_STAMP): FORCE
	@mkdir -p $(@D); printf '%s\n' '$(CONFIG_NOW)' | cmp -s - $@ || printf '%s\n' '$(CONFIG_NOW)' > $@
.PHONY: FORCE
FORCE:

$(BUILD)/obj/%.o: csrc/%.c $(HEADERS) $(CONFIG_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MODCFLAGS) -c $< -o $@

$(CORE_SO): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIBFLAG) -o $@ $(OBJS) $(LIBS)

libspool: $(LIBSPOOL)
# The libraries a program linking libspool.a needs (make -s print-libs).
print-libs:
	@echo $(LIBS)
$(LIBSPOOL): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $(LIB_OBJS)

# C test programs, linked against the core (no Lua).
CTESTS = id_threads core_api group_commit fork limits backend_table localdisk_threads localdisk_syncs checksum group_wait remove_races open_races
# Helper programs the specs run (not TAP tests).
CHELPERS = $(if $(filter rocksdb,$(BACKENDS)),rocks_kumo_write)
$(BUILD)/test/%: csrc/test/%.c $(LIBSPOOL) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=gnu11 $(WARN) $(INCLUDES) $(SQLITE_CFLAGS) -o $@ $< $(LIBSPOOL) $(LIBS) $(TEST_LDFLAGS)
# It counts the library's syncs by wrapping them.
$(BUILD)/test/localdisk_syncs: TEST_LDFLAGS = -Wl,--wrap=fsync -Wl,--wrap=fdatasync
# It deletes a -wal or -shm file as the spool checks it.
$(BUILD)/test/open_races: TEST_LDFLAGS = -Wl,--wrap=faccessat

# C test programs that embed Lua (the module's own objects, linked with
# the interpreter's library: only the test program links Lua).
LUA_LIBS := $(shell pkg-config --libs $(LUA_PC) 2>/dev/null)
LUA_CTESTS = registry_lua
$(BUILD)/test/registry_lua: csrc/test/registry_lua.c $(OBJS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=gnu11 $(WARN) $(INCLUDES) -Icsrc/lua $(if $(LUA_INCDIR),-I$(LUA_INCDIR)) -o $@ $< $(OBJS) $(LUA_LIBS) $(LIBS) -ldl

# Reliability programs (make test-reliability): fault injection through a
# test-only SQLite VFS.
RTESTS = powerloss ioerr diskfull corruption groupfail slowcommit syncs
$(addprefix $(BUILD)/rtest/,$(RTESTS)): $(BUILD)/rtest/%: csrc/test/%.c csrc/test/faultvfs.c csrc/test/faultvfs.h \
        $(LIBSPOOL) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=gnu11 $(WARN) $(INCLUDES) -Icsrc/test $(SQLITE_CFLAGS) -o $@ $< csrc/test/faultvfs.c \
	    $(LIBSPOOL) $(LIBS)

# The LD_PRELOAD shim of tools/reliability/faultshim.lua: real syscalls
# failing or stalling under one directory while a sentinel file exists.
$(BUILD)/rtest/faultshim.so: csrc/test/faultshim.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=gnu11 $(WARN) -fPIC -shared -o $@ $< -ldl -lpthread

# The fault VFS as a Lua module for the specs (spec/helper.lua: faultvfs).
FAULTVFS_LUA = $(BUILD)/spool_test/faultvfs.so
$(FAULTVFS_LUA): csrc/test/faultvfs_lua.c csrc/test/faultvfs.c csrc/test/faultvfs.h csrc/lua/compat.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=gnu11 -fPIC $(WARN) -Icsrc/test -Icsrc/lua $(if $(LUA_INCDIR),-I$(LUA_INCDIR)) $(SQLITE_CFLAGS) \
	    $(LIBFLAG) -o $@ csrc/test/faultvfs_lua.c csrc/test/faultvfs.c $(LIBS)

ctest: $(addprefix $(BUILD)/test/,$(CTESTS) $(LUA_CTESTS)) $(addprefix $(BUILD)/helper/,$(CHELPERS)) $(FAULTVFS_LUA)
$(BUILD)/helper/%: csrc/test/%.c $(LIBSPOOL) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=gnu11 $(WARN) $(INCLUDES) -o $@ $< $(LIBSPOOL) $(LIBS)

test:
	@tools/run-tests

asan:
	@SPOOL_SANITIZE=asan tools/run-tests

valgrind:
	@SPOOL_SANITIZE=valgrind tools/run-tests

# ThreadSanitizer over the C programs that run threads, built with clang
# into build/tsan/ (its own objects, whatever BUILD is).  Neither gcc 12's
# nor clang 14's TSan models pthread_mutex_clocklock: the test-only
# csrc/test/tsan_clocklock.c replaces it with pthread_mutex_timedlock,
# which TSan does model.  `make tsan` runs them (tools/run-tests, TAP);
# any TSan report fails the run.
TSAN_CC ?= clang
TSAN_BUILD = build/tsan
TSAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=thread
TSAN_TESTS = $(addprefix $(TSAN_BUILD)/test/,id_threads core_api group_commit group_wait remove_races fork localdisk_threads registry_lua) \
             $(addprefix $(TSAN_BUILD)/rtest/,groupfail concurrency_threads)
TSAN_CORE_OBJS = $(patsubst csrc/%.c,$(TSAN_BUILD)/obj/%.o,$(LIB_SRC)) $(TSAN_BUILD)/obj/tsan_clocklock.o
$(TSAN_BUILD)/obj/%.o: csrc/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(TSAN_CFLAGS) $(MODCFLAGS) -c $< -o $@
$(TSAN_BUILD)/obj/tsan_clocklock.o: csrc/test/tsan_clocklock.c
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(TSAN_CFLAGS) -std=gnu11 $(WARN) -c $< -o $@
$(TSAN_BUILD)/rtest/groupfail: TSAN_EXTRA = csrc/test/faultvfs.c
TSAN_BINDING_OBJS = $(patsubst csrc/%.c,$(TSAN_BUILD)/obj/%.o,$(BINDING_SRC))
$(TSAN_BUILD)/test/registry_lua: TSAN_EXTRA = $(TSAN_BINDING_OBJS) $(LUA_LIBS) -ldl
$(TSAN_BUILD)/test/registry_lua: $(TSAN_BINDING_OBJS)
$(TSAN_BUILD)/test/% $(TSAN_BUILD)/rtest/%: csrc/test/%.c csrc/test/faultvfs.c $(TSAN_CORE_OBJS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(TSAN_CFLAGS) -std=gnu11 $(WARN) $(INCLUDES) -Icsrc/lua -Icsrc/test $(if $(LUA_INCDIR),-I$(LUA_INCDIR)) \
	    $(SQLITE_CFLAGS) -o $@ $< $(TSAN_CORE_OBJS) $(TSAN_EXTRA) $(LIBS)
tsan-build: $(TSAN_CORE_OBJS) $(TSAN_TESTS)

tsan:
	@SPOOL_SANITIZE=tsan tools/run-tests

# Power loss, I/O errors, full disks, corruption, crashes, concurrency,
# fuzzing (short; LONG=1 for long runs).  `make test` runs it too.
test-reliability:
	@tools/run-reliability

demo: all
	@LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$(BUILD)/?.so;;" $(LUA) tools/demo.lua

deps:
	@tools/install-deps

install: $(CORE_SO)
	install -d $(DESTDIR)$(INST_LIBDIR)/spool $(DESTDIR)$(INST_LUADIR)/spool
	install -m 0755 $(CORE_SO) $(DESTDIR)$(INST_LIBDIR)/spool/core.so
	install -m 0644 lua/spool.lua $(DESTDIR)$(INST_LUADIR)/spool.lua
	for f in lua/spool/*.lua; do [ -e "$$f" ] || continue; \
	    install -m 0644 "$$f" $(DESTDIR)$(INST_LUADIR)/spool/; done

uninstall:
	rm -f $(DESTDIR)$(INST_LIBDIR)/spool/core.so $(DESTDIR)$(INST_LUADIR)/spool.lua
	rm -rf $(DESTDIR)$(INST_LUADIR)/spool

clean:
	rm -rf build

# Benchmarks (bench/): figures and ratios measured in one run.  The rules
# live in bench/bench.mk; `make bench` runs the short version.
bench: all $(LIBSPOOL)
	@$(MAKE) --no-print-directory -f bench/bench.mk LUA=$(LUA) BUILD=$(BUILD) bench
bench-full: all $(LIBSPOOL)
	@$(MAKE) --no-print-directory -f bench/bench.mk LUA=$(LUA) BUILD=$(BUILD) bench-full

N ?= 20000
bench-layout: $(BUILD)/bench/layout
	$(BUILD)/bench/layout $(N) $(BUILD)
$(BUILD)/bench/layout: bench/layout.c $(LIBSPOOL)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=gnu11 $(WARN) $(INCLUDES) $(SQLITE_CFLAGS) -o $@ bench/layout.c $(LIBSPOOL) $(LIBS)
