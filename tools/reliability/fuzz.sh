#!/usr/bin/env bash
# Builds the libFuzzer targets (csrc/fuzz/) into build/fuzz/ and runs
# each for a bounded time over a copy of its corpus (csrc/fuzz/corpus/*,
# which a run never changes).  Prints TAP; exits non-zero when a target
# crashed, broke an invariant or failed to build.
#
#   tools/reliability/fuzz.sh                 20 s per target
#   LONG=1 tools/reliability/fuzz.sh          300 s per target
#   FUZZ_SECONDS=60 tools/reliability/fuzz.sh any duration
#   FUZZ_TARGETS="fuzz_id" tools/reliability/fuzz.sh   a subset
#   FUZZ_ARGS="-jobs=2 -workers=2" ...        more libFuzzer flags
#
# A crash leaves its input in build/fuzz/artifacts/; replay it with
#   build/fuzz/fuzz_id build/fuzz/artifacts/fuzz_id-crash-...
# (run fuzz_config from the repository root: it loads lua/spool/config.lua).
# Needs clang with libFuzzer (Debian: clang, libclang-rt-14-dev) and, for
# fuzz_config, the Lua 5.1 headers and library (liblua5.1-0-dev); without
# clang it prints a TAP skip and succeeds.
# Flags are kept in plain strings and split on purpose:
# shellcheck disable=SC2086
set -u
cd "$(dirname "$0")/../.." || exit 1

seconds=${FUZZ_SECONDS:-20}
if [ "${LONG:-0}" = 1 ] && [ -z "${FUZZ_SECONDS:-}" ]; then
  seconds=300
fi
targets=${FUZZ_TARGETS:-"fuzz_id fuzz_config"}
CC_FUZZ=${CC_FUZZ:-clang}
out=build/fuzz
artifacts=$out/artifacts
mkdir -p "$out" "$artifacts"
# Undefined behaviour aborts too, so that libFuzzer keeps the input.
san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
cflags="-g -O1 -fno-omit-frame-pointer -Wall -Wextra"

skip_all() {
  echo "ok 1 # SKIP $1"
  echo "1..1"
  exit 0
}

# clang and libFuzzer: build a trivial target.
command -v "$CC_FUZZ" >/dev/null 2>&1 || skip_all "clang with libFuzzer not installed"
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <stdint.h>' '#include <stddef.h>' \
  'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' >"$probe/p.c"
if ! "$CC_FUZZ" $san "$probe/p.c" -o "$probe/p" >"$probe/log" 2>&1; then
  skip_all "clang with libFuzzer not installed"
fi

lua_cflags=$(pkg-config --cflags lua5.1 2>/dev/null || echo "-I/usr/include/lua5.1")
lua_libs=$(pkg-config --libs lua5.1 2>/dev/null || echo "-llua5.1")

n=0
failed=0
tap() { n=$((n + 1)); echo "$1 $n - $2"; }
# Prints a file as TAP diagnostics.
diag() { sed -e 's/^/# /' "$@"; }

build() { # target -> 0 when built
  local t=$1 log=$out/$1.build.log
  case $t in
    fuzz_id)
      # The core as a library, instrumented for coverage and the sanitizers
      # (make libspool into build/fuzz/core), which the target links.
      make -s BUILD="$out/core" CC="$CC_FUZZ" ROCKSDB=0 \
        CFLAGS="$cflags -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
        "$out/core/libspool.a" >"$log" 2>&1 &&
      "$CC_FUZZ" $cflags $san -Icsrc/core csrc/fuzz/fuzz_id.c "$out/core/libspool.a" -lsqlite3 -lpthread -lm \
        -o "$out/$t" >>"$log" 2>&1 ;;
    fuzz_config)
      if ! printf '#include <lua.h>\n' | "$CC_FUZZ" $lua_cflags -E -x c - >/dev/null 2>&1; then
        echo "Lua 5.1 headers not installed" >"$log"
        return 2
      fi
      "$CC_FUZZ" $cflags $san $lua_cflags csrc/fuzz/fuzz_config.c $lua_libs -lm \
        -o "$out/$t" >"$log" 2>&1 ;;
    *)
      echo "unknown target $t" >"$log"
      return 1 ;;
  esac
}

for t in $targets; do
  build "$t"
  rc=$?
  if [ $rc = 2 ]; then
    n=$((n + 1))
    echo "ok $n # SKIP $t: $(cat "$out/$t.build.log")"
    continue
  elif [ $rc != 0 ]; then
    tap "not ok" "$t: build failed (log: $out/$t.build.log)"
    diag "$out/$t.build.log"
    failed=$((failed + 1))
    continue
  fi
  corpus=${t#fuzz_}
  work=$(mktemp -d "$out/corpus-$corpus.XXXXXX")
  if [ -d "csrc/fuzz/corpus/$corpus" ]; then
    cp -R "csrc/fuzz/corpus/$corpus/." "$work/"
  fi
  log=$out/$t.log
  "$out/$t" -max_len=512 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t-" ${FUZZ_ARGS:-} "$work" >"$log" 2>&1
  rc=$?
  rm -rf "$work"
  runs=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -n 1)
  [ -n "$runs" ] || runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  if [ $rc = 0 ] && [ -z "$artifact" ]; then
    tap "ok" "$t: ${runs:-?} runs, no crash (${seconds} s)"
  else
    tap "not ok" "$t: crash (exit $rc) after ${runs:-?} runs, artifact ${artifact:-none} (log: $log)"
    grep -E 'invariant violated|ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error|SUMMARY' \
      "$log" | head -n 10 | sed -e 's/^/# /'
    [ -n "$artifact" ] && echo "# replay: $out/$t $artifact"
    failed=$((failed + 1))
  fi
done

echo "1..$n"
[ $failed = 0 ]
