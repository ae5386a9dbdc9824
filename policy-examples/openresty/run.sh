#!/bin/sh
# Starts or stops the example service.
#   policy-examples/openresty/run.sh start [PORT] [PREFIX] [SPOOL_DIR]
#   policy-examples/openresty/run.sh stop [PREFIX]
#   policy-examples/openresty/run.sh prefix [PREFIX]   (check/create it only)
# Defaults: port 8980, prefix $XDG_RUNTIME_DIR/spool-openresty (else
# $HOME/.spool-openresty), spools in PREFIX/spool.
# THREAD_POOL= (empty) runs everything inline, without the thread pool.
#
# The prefix holds nginx's configuration, logs and the spools: it must be
# the caller's own. A prefix that is a symlink, belongs to someone else,
# is writable by group or others, or sits in a directory others can write
# without the sticky bit (they could swap it) is refused (in a shared /tmp
# another user could have planted it); a missing one is created 0700 (0711
# when run as root, so that the unprivileged workers can reach their
# spools). Paths are written into nginx.conf: only letters, digits and
# ._/+@:=- are accepted in them. stop signals only an nginx process.
set -e
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cmd=${1:-start}
default_prefix=${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/spool-openresty}
default_prefix=${default_prefix:-$HOME/.spool-openresty}

# Refuses a path that nginx.conf could not hold as it is.
check_chars() {
  case $2 in
    *[!A-Za-z0-9._/+@:=-]*|'')
      echo "$1 '$2' may hold only letters, digits and ._/+@:=- (it is written into nginx.conf): refused" >&2
      exit 1 ;;
  esac
}

# Refuses a prefix this user does not safely own; creates a missing one
# unless $2 is "existing".
check_prefix() {
  p=$1
  check_chars prefix "$p"
  parent=$(dirname "$p")
  if [ -d "$parent" ]; then
    case $(stat -L -c %A "$parent") in
      ?????w???[!tT]|????????w[!tT])
        echo "prefix $p is in $parent, which others can write without the sticky bit: refused" >&2; exit 1 ;;
    esac
  fi
  if [ -L "$p" ]; then
    echo "prefix $p is a symbolic link: refused" >&2; exit 1
  fi
  if [ ! -e "$p" ] && [ "${2:-}" = existing ]; then
    echo "prefix $p does not exist" >&2; exit 1
  fi
  if [ ! -e "$p" ]; then
    mode=700; [ "$(id -u)" = 0 ] && mode=711
    (umask 077 && mkdir -p "$(dirname "$p")" && mkdir -m "$mode" "$p") || exit 1
  fi
  if [ ! -d "$p" ]; then
    echo "prefix $p is not a directory: refused" >&2; exit 1
  fi
  if [ "$(stat -c %u "$p")" != "$(id -u)" ]; then
    echo "prefix $p belongs to uid $(stat -c %u "$p"), not to this user: refused" >&2; exit 1
  fi
  case $(stat -c %A "$p") in
    ?????w????|????????w?) echo "prefix $p is writable by group or others: refused" >&2; exit 1 ;;
  esac
}
case $cmd in
start)
  port=${2:-8980}
  prefix=${3:-$default_prefix}
  check_prefix "$prefix"
  spool_dir=${4:-$prefix/spool}
  check_chars "spool directory" "$spool_dir"
  pool=${THREAD_POOL-spool}
  if [ ! -f "$repo/build/luajit/spool/core.so" ]; then
    echo "$repo/build/luajit/spool/core.so is missing: run make first" >&2
    exit 1
  fi
  mkdir -p "$prefix/logs" "$prefix/conf" "$prefix/temp" "$spool_dir"
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
  prefix=${2:-$default_prefix}
  check_prefix "$prefix" existing
  # By its pid file: never by name, other nginx instances may be running.
  if [ -f "$prefix/logs/nginx.pid" ]; then
    pid=$(cat "$prefix/logs/nginx.pid")
    case $pid in
      ''|*[!0-9]*) echo "$prefix/logs/nginx.pid does not hold a pid: refused" >&2; exit 1 ;;
    esac
    # /proc, not ps: ps hangs under an LD_PRELOADed sanitizer runtime.
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != nginx ]; then
      echo "pid $pid in $prefix/logs/nginx.pid is not an nginx process: refused" >&2; exit 1
    fi
    kill -QUIT "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  ;;
prefix)
  # Checks (creating if missing) the prefix and prints it: what start does first.
  prefix=${2:-$default_prefix}
  check_prefix "$prefix"
  echo "$prefix"
  ;;
*)
  echo "usage: $0 start [PORT] [PREFIX] [SPOOL_DIR] | stop [PREFIX] | prefix [PREFIX]" >&2
  exit 2
  ;;
esac
