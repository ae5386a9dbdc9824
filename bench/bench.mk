# bench/bench.mk: the benchmark suite (bench/README.md).  Run from the top
# Makefile, which builds the module first:
#
#   make bench          short run (< 3 min): tables on stdout,
#                       $(BUILD)/bench-results.tsv and $(BUILD)/bench-results.txt
#   make bench-full     larger counts, plus the 1 GiB enumerate-RSS check
#
# BENCH_DIR=/some/dir puts the scratch files there instead of under
# $(BUILD) (a fresh subdirectory, removed after the run).
# HAVE_ROCKSDB=0 builds without RocksDB even when its headers are there.

LUA ?= luajit
LUA_NAME = $(notdir $(LUA))
BUILD ?= build/$(LUA_NAME)
CC ?= cc
CFLAGS ?= -O2 -g
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
SQLITE_CFLAGS := $(shell pkg-config --cflags sqlite3 2>/dev/null)
SQLITE_LIBS := $(or $(shell pkg-config --libs sqlite3 2>/dev/null),-lsqlite3)

# RocksDB is optional: a header check decides.  Without it the RocksDB
# rows say "skipped (librocksdb-dev not installed)".
HAVE_ROCKSDB ?= $(shell printf '\043include <rocksdb/c.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1 || echo 0)
ifeq ($(HAVE_ROCKSDB),1)
ROCKSDB_CFLAGS = -DHAVE_ROCKSDB
ROCKSDB_LIBS = $(or $(shell pkg-config --libs rocksdb 2>/dev/null),-lrocksdb)
endif

# The C core as the top Makefile builds it (make libspool).
LIBSPOOL = $(BUILD)/libspool.a
BENCH_SRC = bench/bench_main.c bench/bench_engines.c bench/bench_util.c
BENCH_BIN = $(BUILD)/bench/spool-bench
# The binary's flavour, so that toggling HAVE_ROCKSDB relinks it.
BENCH_FLAVOUR = $(BUILD)/bench/.rocksdb-$(HAVE_ROCKSDB)

.PHONY: bench bench-full bench-bin
bench-bin: $(BENCH_BIN)

$(BENCH_FLAVOUR):
	@mkdir -p $(dir $@)
	@rm -f $(BUILD)/bench/.rocksdb-*
	@touch $@

$(BENCH_BIN): $(BENCH_SRC) bench/bench.h $(LIBSPOOL) $(wildcard csrc/*/*.h) $(BENCH_FLAVOUR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -std=gnu11 $(WARN) -Icsrc/core $(SQLITE_CFLAGS) $(ROCKSDB_CFLAGS) -o $@ \
	    $(BENCH_SRC) $(LIBSPOOL) $(ROCKSDB_LIBS) $(SQLITE_LIBS) -lpthread -lm

bench: $(BENCH_BIN)
	@BENCH_PROFILE=short BENCH_BIN=$(BENCH_BIN) BUILD=$(BUILD) LUA=$(LUA) bench/run.sh

bench-full: $(BENCH_BIN)
	@BENCH_PROFILE=full BENCH_BIN=$(BENCH_BIN) BUILD=$(BUILD) LUA=$(LUA) bench/run.sh
