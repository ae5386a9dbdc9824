#!/usr/bin/env bash
# crash.sh: the SIGKILL test (tools/reliability/crash.lua drives
# tools/reliability/crash_child.lua).  Prints TAP; exits non-zero on
# failure.
#
#   tools/reliability/crash.sh              50 rounds (CI, well under 90 s)
#   LONG=1 tools/reliability/crash.sh       1000 rounds
#   CRASH_ROUNDS=N SEED=S tools/reliability/crash.sh
#
# Uses build/$CRASH_LUA (default luajit): run `make` first.
set -u
cd "$(dirname "$0")/../.." || exit 1
lua=${CRASH_LUA:-luajit}
export CRASH_LUA=$lua
export LUA_PATH="lua/?.lua;;" LUA_CPATH="build/$lua/?.so;;"
if [ ! -f "build/$lua/spool/core.so" ]; then
  echo "not ok 1 - build/$lua/spool/core.so is missing: run make (LUA=$lua) first"
  echo "1..1"
  exit 1
fi
if ! command -v sqlite3 >/dev/null; then
  echo "not ok 1 - the sqlite3 CLI is needed for PRAGMA integrity_check"
  echo "1..1"
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/spool-crash-XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP
"$lua" tools/reliability/crash.lua "$work"
