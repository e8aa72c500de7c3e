#!/usr/bin/env bash
# Throwaway PostgreSQL cluster on loopback for tests and local runs (Debian packages, no Docker).
#
# Usage: deploy/local/postgres.sh start|stop|status
#   start   install PostgreSQL if missing (root only), initdb once, start, create database `verity`;
#           last stdout line: VERITY_DATABASE_URL=postgresql://verity@127.0.0.1:<port>/verity
#   stop    fast shutdown; harmless if not running
#   status  exit 0 if running, 1 otherwise
# Environment:
#   VERITY_RUN_DIR      state dir (default <repo>/.run); PostgreSQL uses $VERITY_RUN_DIR/postgres
#   VERITY_PG_PORT      TCP port on 127.0.0.1 (default 15432)
#   VERITY_PG_OS_USER   unprivileged OS user the server runs as when invoked as root (default verity,
#                       created as a system user if missing). PostgreSQL refuses to run as root.
# Auth is `trust`: acceptable only because the cluster is throwaway and listens on loopback only.
# Progress messages go to stderr so that stdout carries only the result line.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

PORT=${VERITY_PG_PORT:-15432}
if ! [[ $PORT =~ ^[0-9]+$ ]] || (( PORT < 1 || PORT > 65535 )); then
  echo "postgres.sh: bad VERITY_PG_PORT=$PORT" >&2; exit 2
fi
OS_USER=${VERITY_PG_OS_USER:-verity}
DB_USER=verity
DB_NAME=verity

RUN=${VERITY_RUN_DIR:-$ROOT/.run}
mkdir -p "$RUN"; RUN=$(cd "$RUN" && pwd)   # absolute: it ends up in the server config
PGRUN=$RUN/postgres
DATA=$PGRUN/data
SOCK=$PGRUN/sock
LOG=$PGRUN/postgres.log

say() { echo "postgres.sh: $*" >&2; }
die() { say "$*"; exit 1; }

IS_ROOT=0; [[ $(id -u) == 0 ]] && IS_ROOT=1

# Highest /usr/lib/postgresql/<ver>/bin (Debian puts initdb/pg_ctl there, not on PATH), else PATH.
find_bin() {
  local d
  PGBIN=
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -V -r); do
    if [[ -x $d/pg_ctl && -x $d/initdb ]]; then PGBIN=$d; return 0; fi
  done
  if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
    PGBIN=$(dirname "$(command -v pg_ctl)"); return 0
  fi
  return 1
}

ensure_bin() {
  find_bin && return 0
  (( IS_ROOT )) || die "initdb/pg_ctl not found; install PostgreSQL (as root: apt-get install -y postgresql)"
  say "PostgreSQL not found; installing the Debian package"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
  find_bin || die "PostgreSQL installed but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
}

ensure_os_user() {
  (( IS_ROOT )) || return 0
  id -u "$OS_USER" >/dev/null 2>&1 && return 0
  say "creating system user $OS_USER (PostgreSQL refuses to run as root)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER"
}

# Run a server-side command as the unprivileged user when we are root. cd first: the caller's cwd
# (e.g. /root) may be unreadable for that user, which initdb/postgres complain about.
as_pg() {
  if (( IS_ROOT )); then (cd "$PGRUN" && runuser -u "$OS_USER" -- "$@")
  else "$@"
  fi
}

prepare_dirs() {
  mkdir -p "$PGRUN" "$SOCK"
  touch "$PGRUN/.lock"
  if (( IS_ROOT )); then
    # The server writes data, socket and log here, so the tree belongs to the unprivileged user.
    [[ $(stat -c %U "$PGRUN") == "$OS_USER" && $(stat -c %U "$SOCK") == "$OS_USER" ]] \
      || chown -R "$OS_USER:" "$PGRUN"
    as_pg test -w "$PGRUN" \
      || die "$OS_USER cannot write $PGRUN (a parent dir is not traversable?); set VERITY_RUN_DIR elsewhere, e.g. /tmp/verity-run"
  fi
  # Unix socket paths are limited to 107 bytes.
  (( ${#SOCK} + 18 <= 107 )) || die "socket dir path too long: $SOCK; set a shorter VERITY_RUN_DIR"
}

# A process that exists and is not a zombie. (kill -0 succeeds on zombies; where PID 1 reaps
# slowly, a killed postmaster would otherwise look alive to pg_ctl.)
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n $st && $st != Z* ]]; }

pg_running() {
  local pid
  [[ -f $DATA/PG_VERSION && -f $DATA/postmaster.pid ]] || return 1
  pid=$(head -n 1 "$DATA/postmaster.pid")
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

# Port of the running server: 4th line of postmaster.pid.
running_port() { sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true; }

# Postmaster gone (or a zombie) but its lock files left behind: postgres itself refuses to start
# while the pid in them still exists, even as a zombie. The socket dir is ours alone.
clear_stale_locks() {
  local f pid
  for f in "$DATA/postmaster.pid" "$SOCK"/.s.PGSQL.*.lock; do
    [[ -f $f ]] || continue
    pid=$(head -n 1 "$f")
    if ! { [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; }; then
      say "removing stale $f (pid $pid)"; rm -f "$f" "${f%.lock}"
    fi
  done
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

initdb_once() {
  [[ -f $DATA/PG_VERSION ]] && return 0
  rm -rf "$DATA"   # leftovers of an interrupted initdb
  local loc=C
  locale -a 2>/dev/null | grep -qix 'c\.utf-\?8' && loc=C.UTF-8   # Unicode-aware upper()/lower()
  say "initdb $DATA (superuser $DB_USER, UTF8, locale $loc)"
  if ! as_pg "$PGBIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust --encoding=UTF8 --locale="$loc" \
       > "$PGRUN/initdb.log" 2>&1; then
    cat "$PGRUN/initdb.log" >&2; die "initdb failed"
  fi
  (( IS_ROOT )) && chown "$OS_USER:" "$PGRUN/initdb.log"
  # Our settings live in verity.conf, rewritten on every start (port may change between runs).
  printf "\n# deploy/local/postgres.sh\ninclude 'verity.conf'\n" >> "$DATA/postgresql.conf"
}

write_conf() {
  # Durability off: a throwaway test cluster, speed matters more than crash safety.
  cat > "$DATA/verity.conf" <<EOF
# Written by deploy/local/postgres.sh on every start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  (( IS_ROOT )) && chown "$OS_USER:" "$DATA/verity.conf"
  return 0
}

psql_admin() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$1" -U "$DB_USER" -d postgres "${@:2}"; }

ensure_db() {
  local port=$1
  if [[ -z $(psql_admin "$port" -tAc "select 1 from pg_database where datname = '$DB_NAME'") ]]; then
    say "creating database $DB_NAME"
    psql_admin "$port" -c "create database $DB_NAME"
  fi
}

url() { echo "VERITY_DATABASE_URL=postgresql://$DB_USER@127.0.0.1:$1/$DB_NAME"; }

# Serialize start/stop (e.g. parallel test workers). fd 9 must not leak into the postmaster,
# or it would hold the lock for its lifetime.
take_lock() { exec 9>"$PGRUN/.lock"; flock 9; }

start() {
  ensure_bin; ensure_os_user; prepare_dirs; take_lock
  if pg_running; then
    local rport; rport=$(running_port); rport=${rport:-$PORT}
    [[ $rport == "$PORT" ]] || say "note: running server listens on $rport, not VERITY_PG_PORT=$PORT"
    say "already running (data $DATA)"
    ensure_db "$rport"; url "$rport"; return 0
  fi
  clear_stale_locks
  port_busy "$PORT" && die "port $PORT on 127.0.0.1 is already in use (set VERITY_PG_PORT)"
  initdb_once
  write_conf
  local t0=$SECONDS logsize=0
  [[ -f $LOG ]] && logsize=$(stat -c %s "$LOG")
  if ! as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null 9>&-; then
    say "start failed; $LOG since this attempt:"; tail -c +$((logsize + 1)) "$LOG" | tail -n 30 >&2 || true
    exit 1
  fi
  ensure_db "$PORT"
  say "started in $((SECONDS - t0)) s ($("$PGBIN/postgres" --version)); log $LOG"
  url "$PORT"
}

stop() {
  find_bin || { say "not running (PostgreSQL not installed)"; return 0; }
  [[ -d $PGRUN ]] || { say "not running"; return 0; }
  take_lock
  if ! pg_running; then say "not running"; return 0; fi
  as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  say "stopped"
}

status() {
  if find_bin && [[ -d $PGRUN ]] && pg_running; then
    echo "postgres running on 127.0.0.1:$(running_port) (data $DATA)"; return 0
  fi
  echo "postgres not running"; return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
