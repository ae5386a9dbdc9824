#!/bin/sh
# Starts or stops the example service.
#   policy-examples/openresty/run.sh start [PORT] [PREFIX] [SPOOL_DIR]
#   policy-examples/openresty/run.sh stop [PREFIX]
# Defaults: port 8980, prefix /tmp/spool-openresty, spools in PREFIX/spool.
# THREAD_POOL= (empty) runs everything inline, without the thread pool.
set -e
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cmd=${1:-start}
case $cmd in
start)
  port=${2:-8980}
  prefix=${3:-/tmp/spool-openresty}
  spool_dir=${4:-$prefix/spool}
  pool=${THREAD_POOL-spool}
  if [ ! -f "$repo/build/luajit/spool/core.so" ]; then
    echo "$repo/build/luajit/spool/core.so is missing: run make first" >&2
    exit 1
  fi
  mkdir -p "$prefix/logs" "$prefix/conf" "$spool_dir"
  # Started as root, nginx runs its workers as an unprivileged user, which
  # must own the spools; otherwise the workers run as the caller.
  user_line="# (not root: workers run as $(id -un))"
  if [ "$(id -u)" = 0 ]; then
    worker_user=${WORKER_USER:-nobody}
    worker_group=$(id -gn "$worker_user")
    chown -R "$worker_user:$worker_group" "$spool_dir"
    user_line="user $worker_user $worker_group;"
  fi
  sed -e "s|@REPO@|$repo|g" -e "s|@PORT@|$port|g" -e "s|@SPOOL_DIR@|$spool_dir|g" \
      -e "s|@THREAD_POOL@|$pool|g" -e "s|@USER_LINE@|$user_line|g" "$here/nginx.conf.in" >"$prefix/conf/nginx.conf"
  nginx -p "$prefix" -c conf/nginx.conf
  echo "listening on http://127.0.0.1:$port (prefix $prefix, spools in $spool_dir)"
  ;;
stop)
  prefix=${2:-/tmp/spool-openresty}
  # By its pid file: never by name, other nginx instances may be running.
  if [ -f "$prefix/logs/nginx.pid" ]; then
    pid=$(cat "$prefix/logs/nginx.pid")
    kill -QUIT "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  ;;
*)
  echo "usage: $0 start [PORT] [PREFIX] [SPOOL_DIR] | stop [PREFIX]" >&2
  exit 2
  ;;
esac
