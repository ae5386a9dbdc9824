#!/bin/sh
# Throughput of the example message-injection service (policy-examples/
# openresty) under wrk: 4 KiB messages, durable (?durable=1) and not,
# with the nginx thread pool and without (everything inline).  Needs
# nginx with the Lua module and wrk (apt-get install wrk).
#   bench/openresty.sh [SECONDS] [CONNECTIONS]
set -e
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
port=${PORT:-18980}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
make -s all
script=$(mktemp)
cat >"$script" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 4096)
LUA
printf '%-34s %12s %10s %10s\n' "configuration" "messages/s" "p50" "p99"
for pool in spool ""; do
  for durable in 0 1; do
    prefix=$(mktemp -d)
    chmod 755 "$prefix"
    THREAD_POOL=$pool policy-examples/openresty/run.sh start "$port" "$prefix" >/dev/null
    sleep 0.5
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$script" "http://127.0.0.1:$port/messages?durable=$durable")
    policy-examples/openresty/run.sh stop "$prefix"
    rate=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    errors=$(echo "$out" | grep -E "Non-2xx|Socket errors" || true)
    label="$( [ -n "$pool" ] && echo "thread pool" || echo "inline")$( [ "$durable" = 1 ] && echo ", durable" || echo ", default")"
    printf '%-34s %12s %10s %10s %s\n' "$label" "$rate" "$p50" "$p99" "$errors"
    rm -rf "$prefix"
  done
done
rm -f "$script"
