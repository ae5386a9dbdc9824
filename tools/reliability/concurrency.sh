#!/usr/bin/env bash
# concurrency.sh: several users of one spool path at once.
#   1. 8 LuaJIT processes (tools/reliability/concurrency_child.lua) store,
#      load and remove on one spool with short deadlines, each keeping a
#      ledger; a fresh process then checks the spool against the ledgers.
#   2. 8 threads (csrc/test/concurrency_threads.c, built here into
#      build/$lua/rtest/concurrency_threads) do the same, on one handle and
#      then on four handles of one path.
# Prints one TAP stream and "# concurrency figures" lines; exits non-zero
# on failure.  A worker that does not finish in time is killed and
# reported (a hang).
#
#   tools/reliability/concurrency.sh             4 s per part (CI: ~20 s)
#   LONG=1 tools/reliability/concurrency.sh      30 s per part
#   CONCURRENCY_SECONDS=N CONCURRENCY_WORKERS=N SEED=S ...
#   CONCURRENCY_CREATE_RACE=0 ...               create the spool before the workers start
set -u
cd "$(dirname "$0")/../.." || exit 1
lua=${CONCURRENCY_LUA:-luajit}
build=build/$lua
export LUA_PATH="lua/?.lua;;" LUA_CPATH="$build/?.so;;"
if [ -n "${LONG:-}" ] && [ "${LONG:-}" != 0 ]; then
  seconds=${CONCURRENCY_SECONDS:-30}
else
  seconds=${CONCURRENCY_SECONDS:-4}
fi
workers=${CONCURRENCY_WORKERS:-8}
export SEED=${SEED:-$(date +%s)}

work=$(mktemp -d "${TMPDIR:-/tmp}/spool-concurrency-XXXXXX") || exit 1
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# One TAP stream out of several parts: renumbered, one plan at the end.
n=0
failed=0
emit() { # emit FILE
  local line
  while IFS= read -r line; do
    if [[ $line =~ ^(not\ )?ok\ [0-9]+(.*)$ ]]; then
      n=$((n + 1))
      [ -n "${BASH_REMATCH[1]}" ] && failed=$((failed + 1))
      echo "${BASH_REMATCH[1]}ok $n${BASH_REMATCH[2]}"
    elif [[ $line =~ ^1\.\.[0-9]+$ ]]; then
      :
    else
      echo "$line"
    fi
  done <"$1"
}
fail() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }

echo "# concurrency: $workers processes, then $workers threads, ${seconds} s each, seed $SEED"
if ! make -s LUA="$lua" all libspool >"$work/build.log" 2>&1; then
  sed 's/^/# /' "$work/build.log"
  fail "make LUA=$lua"
  echo "1..$n"
  exit 1
fi
mkdir -p "$build/rtest"
# shellcheck disable=SC2046
if ! cc -O2 -g -std=gnu11 -Wall -Wextra -Werror -Icsrc/core csrc/test/concurrency_threads.c "$build/libspool.a" \
    $(make -s LUA="$lua" print-libs) -o "$build/rtest/concurrency_threads" >"$work/cc.log" 2>&1; then
  sed 's/^/# /' "$work/cc.log"
  fail "build $build/rtest/concurrency_threads"
fi

# ------------------------------------------------------------- processes
# The workers create the spool together (opening a new spool from several
# processes at once must work), unless CONCURRENCY_CREATE_RACE=0.  They
# open it together at start_at and stop `seconds` later; each gets a
# generous limit before it counts as hung.
if [ "${CONCURRENCY_CREATE_RACE:-1}" = 0 ]; then
  if ! "$lua" tools/reliability/concurrency_child.lua init "$work/spool" >"$work/init.log" 2>&1; then
    sed 's/^/# /' "$work/init.log"
    fail "create the spool for the processes"
  fi
fi
start_at=$(awk -v t="$(date +%s.%N)" 'BEGIN { printf "%.3f", t + 1.0 }')
limit=$(awk -v s="$seconds" 'BEGIN { printf "%d", s + 60 }')
ledgers=()
for i in $(seq 1 "$workers"); do
  ledger="$work/ledger.$i"
  ledgers+=("$ledger")
  timeout -s KILL "$limit" "$lua" tools/reliability/concurrency_child.lua worker "$work/spool" "$i" \
    "$start_at" "$seconds" "$ledger" >"$work/worker.$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$workers"); do
  wait "${pids[$((i - 1))]}"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "# worker $i exited with status $rc$([ $rc -eq 137 ] && echo " (killed after ${limit} s: hung?)")"
    sed "s/^/#   worker $i: /" "$work/worker.$i.log"
  fi
done
pids=()
timeout -s KILL 120 "$lua" tools/reliability/concurrency_child.lua verify "$work/spool" "$seconds" \
  "${ledgers[@]}" >"$work/verify.tap" 2>&1
rc=$?
emit "$work/verify.tap"
if [ $rc -ne 0 ] && ! grep -q '^not ok' "$work/verify.tap"; then
  fail "the process check exited with status $rc"
fi

# --------------------------------------------------------------- threads
if [ -x "$build/rtest/concurrency_threads" ]; then
  limit=$(awk -v s="$seconds" 'BEGIN { printf "%d", 2 * s + 120 }')
  TMPDIR="$work" timeout -s KILL "$limit" "$build/rtest/concurrency_threads" "$seconds" >"$work/threads.tap" 2>&1
  rc=$?
  emit "$work/threads.tap"
  if [ $rc -ne 0 ] && ! grep -q '^not ok' "$work/threads.tap"; then
    fail "concurrency_threads exited with status $rc$([ $rc -eq 137 ] && echo " (killed after ${limit} s: hung?)")"
  fi
fi

echo "1..$n"
[ "$failed" -eq 0 ] && [ "$n" -gt 0 ]
