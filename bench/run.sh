#!/usr/bin/env bash
# bench/run.sh: the benchmark driver behind `make bench` / `make bench-full`
# (bench/bench.mk).  One invocation measures every engine on the same
# disk, in one scratch directory, with the same payload files, and prints
# the tables with ratios against the raw SQLite loop of the same run.
#
#   BENCH_PROFILE  short (default) or full
#   BUILD          build directory (build/luajit); results go there:
#                  bench-results.tsv (rows) and bench-results.txt (tables)
#   LUA            interpreter for bench/spool_bench.lua and the report
#   BENCH_BIN      the spool-bench binary
#   BENCH_DIR      where the scratch directory goes (default: $BUILD)
#   BENCH_ENGINES  subset of engines, e.g. "raw-sqlite spool-c"
#   BENCH_SIZES    subset of sizes, e.g. "4096"
#   BENCH_ROUNDS   rounds of each section, engines in alternating order
#                  (default 3; the report shows each row's median)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${BENCH_PROFILE:-short}
build=${BUILD:-build/luajit}
lua=${LUA:-luajit}
bin=${BENCH_BIN:-$build/bench/spool-bench}
base=${BENCH_DIR:-$build}
engines=${BENCH_ENGINES:-raw-sqlite spool-c spool-c-nowait spool-c-mmap spool-lua rocksdb rocksdb-snappy spool-rocksdb localdisk spool-localdisk}
rounds=${BENCH_ROUNDS:-3}

# size:N:NDUR -- N operations per workload, NDUR per durable workload.
case $profile in
  short)
    plan="4096:10000:400 65536:2000:200 1048576:160:32"
    nsync=500 nsync_probe=200 seq_mb=256 compact_base=8192 enum_mb=256 ;;
  full)
    plan="4096:50000:4000 65536:10000:1000 1048576:800:160"
    nsync=2000 nsync_probe=500 seq_mb=1024 compact_base=32768 enum_mb=1024 ;;
  *) echo "BENCH_PROFILE must be short or full" >&2; exit 2 ;;
esac

mkdir -p "$base"
work=$(mktemp -d "$base/spool-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

tsv=$build/bench-results.tsv
txt=$build/bench-results.txt
export LUA_PATH="lua/?.lua;;" LUA_CPATH="$build/?.so;;"

t_start=$(date +%s)
note() { printf '[%4ds] %s\n' $(($(date +%s) - t_start)) "$*" >&2; }

machine() {
  echo "profile:  $profile ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo "machine:  $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'),"\
       "$(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)"
  echo "disk:     $(df -T "$work" | awk 'NR == 2 {printf "%s %s, %.0f GiB, %.0f GiB available", $1, $2, $3 / 1048576, $5 / 1048576}')"
  echo "kernel:   $(uname -sr)"
  local rocks
  if "$bin" version | grep -q 'rocksdb built in'; then
    rocks="RocksDB $(pkg-config --modversion rocksdb 2>/dev/null || echo '(version unknown)')"
  else
    rocks="RocksDB not built in (librocksdb-dev not installed, or HAVE_ROCKSDB=0)"
  fi
  echo "versions: SQLite $("$bin" version | sed -n 's/^sqlite \([^,]*\).*/\1/p'); $rocks;"\
       "$("$lua" -v 2>&1 | head -1 | cut -d' ' -f1-2)"
  local rev changed
  rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  changed=$(git status --porcelain csrc 2>/dev/null | wc -l)
  echo "spool:    git $rev, $changed uncommitted change(s) under csrc/"
  echo "rounds:   $rounds per section, engines in alternating order (figures: the median round)"
  echo "scratch:  $work (removed after the run)"
}

machine > "$txt.head"
note "$profile run; scratch directory $work"
"$bin" header > "$tsv"
"$bin" payloads "$work"

# One section ("durable" or "main") of one engine's workloads.  A failed
# run leaves a row saying so instead of stopping the whole run.
run_engine() { # section engine size n ndur
  local section=$1 engine=$2 size=$3 n=$4 ndur=$5 dir=$work/$2-$3 rc=0
  note "  $engine"
  if [ "$engine" = spool-lua ]; then
    "$lua" bench/spool_bench.lua run "$dir" "$size" "$n" "$ndur" "$work/payload-$size.bin" "$section" \
      >> "$tsv" 2> "$work/stderr" || rc=$?
  else
    "$bin" run "$engine" "$size" "$n" "$ndur" "$dir" "$work/payload-$size.bin" "$section" \
      >> "$tsv" 2> "$work/stderr" || rc=$?
  fi
  if [ $rc -ne 0 ]; then
    local why
    why=$(tail -1 "$work/stderr" | tr '\t' ' ')
    note "  FAILED: $why"
    printf '%s\tall\t%s\t1\t0\t0\tNA\tNA\tNA\tNA\t-1\t-1\tNA\tNA\tfailed (%s section): %s\t-\n' \
      "$engine" "$size" "$section" "$why" >> "$tsv"
  fi
  rm -rf "$dir" "$dir".*
}

note "disk limits (start)"
"$bin" disk disk@start "$work/disk" "$nsync" "$seq_mb" >> "$tsv"

for p in $plan; do
  IFS=: read -r size n ndur <<< "$p"
  case " ${BENCH_SIZES:-$size} " in *" $size "*) ;; *) continue ;; esac
  # The durable section of every engine back to back, right after a
  # probe of the disk's sync rate: the rate drifts over minutes, so
  # durable figures are only comparable when taken close together.
  # Each section runs $rounds times, the engines in the opposite order
  # each round, so that no engine always runs first (a fresh page cache,
  # a quiet disk) or last; the report takes each row's median.
  for section in durable main; do
    count=$n
    [ $section = durable ] && count=$ndur
    note "$size-byte payloads, $section section (N=$count), all engines, $rounds round(s)"
    [ $section = durable ] && "$bin" disk-sync "disk@durable-$size" "$work/disk" "$nsync_probe" >> "$tsv"
    order=$engines
    for _ in $(seq "$rounds"); do
      for engine in $order; do
        run_engine $section "$engine" "$size" "$n" "$ndur"
      done
      order=$(echo $order | tr ' ' '\n' | tac | tr '\n' ' ')
    done
  done
done

note "compact scaling: $compact_base, $((2 * compact_base)), $((4 * compact_base)) entries of 4 KiB"
"$bin" compact-scale "$work/compact" "$compact_base" >> "$tsv"

note "enumerate RSS: filling a $enum_mb MiB spool"
"$bin" fill "$work/enum" "$enum_mb" 2> >(sed 's/^/         /' >&2)
note "enumerate RSS: C API, then Lua"
"$bin" enum-rss "$work/enum" >> "$tsv"
"$lua" bench/spool_bench.lua enum-rss "$work/enum" >> "$tsv"
rm -rf "$work/enum"

note "CRC-32C: one stream against three, in memory"
"$bin" checksum >> "$tsv"

note "disk limits (end)"
"$bin" disk disk@end "$work/disk" "$nsync" "$seq_mb" >> "$tsv"

elapsed=$(($(date +%s) - t_start))
{
  cat "$txt.head"
  echo "elapsed:  ${elapsed}s"
  echo
  "$lua" bench/report.lua "$tsv"
} > "$txt"
rm -f "$txt.head"
cat "$txt"
note "done in ${elapsed}s: $tsv, $txt"
