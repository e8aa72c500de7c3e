#!/usr/bin/env bash
# Throwaway S3-compatible server on loopback (moto's server, from the project's environment), for
# tests and for trying VERITY_BLOB_STORE=s3 by hand. No Docker. Everything is kept in memory:
# buckets and objects are gone after `stop`.
#
# Usage: deploy/local/s3.sh start|stop|status
#   start   start the server, wait until it answers, create $VERITY_S3_BUCKET if that is set;
#           last stdout line: VERITY_S3_ENDPOINT=http://127.0.0.1:<port>
#   stop    SIGTERM, SIGKILL after 10 s; harmless if not running
#   status  exit 0 if running, 1 otherwise
# Environment:
#   VERITY_RUN_DIR         state dir (default <repo>/.run); the server uses $VERITY_RUN_DIR/s3
#   VERITY_S3_PORT         TCP port on 127.0.0.1 (default 19000)
#   VERITY_S3_BUCKET       a bucket to create at start (optional)
#   VERITY_PYTHON          the interpreter with moto[server] (default <repo>/.venv/bin/python,
#                          which `uv sync` makes)
#   VERITY_S3_START_TIMEOUT  seconds (default 30)
# Any access key and secret are accepted (moto checks no signatures).
# Progress messages go to stderr so that stdout carries only the result line.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

PORT=${VERITY_S3_PORT:-19000}
if ! [[ $PORT =~ ^[0-9]+$ ]] || (( PORT < 1 || PORT > 65535 )); then
  echo "s3.sh: bad VERITY_S3_PORT=$PORT" >&2; exit 2
fi
RUN=${VERITY_RUN_DIR:-$ROOT/.run}
mkdir -p "$RUN"; RUN=$(cd "$RUN" && pwd)
SRUN=$RUN/s3
PIDFILE=$SRUN/moto.pid
PORTFILE=$SRUN/port
LOG=$SRUN/moto.log
PYTHON=${VERITY_PYTHON:-$ROOT/.venv/bin/python}
TIMEOUT=${VERITY_S3_START_TIMEOUT:-30}

say() { echo "s3.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# Serialize start/stop on one lock per run dir; fd 9 must not leak into the server.
take_lock() { mkdir -p "$SRUN"; exec 9>"$SRUN/.lock"; flock 9; }

alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n $st && $st != Z* ]]; }

# Pid of our server if it is running; clears a stale pid file.
running_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" \
     && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'moto\.server'; then
    echo "$pid"; return 0
  fi
  rm -f "$PIDFILE"; return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

answers() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null; }

create_bucket() {
  local port=$1 code
  [[ -n ${VERITY_S3_BUCKET:-} ]] || return 0
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$port/$VERITY_S3_BUCKET")
  [[ $code == 200 || $code == 409 ]] || die "creating bucket $VERITY_S3_BUCKET: HTTP $code"
  say "bucket $VERITY_S3_BUCKET ready"
}

start() {
  take_lock
  local pid
  if pid=$(running_pid); then
    local rport; rport=$(cat "$PORTFILE" 2>/dev/null || echo "$PORT")
    [[ $rport == "$PORT" ]] || say "note: running server listens on $rport, not VERITY_S3_PORT=$PORT"
    say "already running (pid $pid)"
    create_bucket "$rport"
    echo "VERITY_S3_ENDPOINT=http://127.0.0.1:$rport"; return 0
  fi
  port_busy "$PORT" && die "port $PORT on 127.0.0.1 is already in use (set VERITY_S3_PORT)"
  command -v curl >/dev/null || die "curl not found"
  [[ -x $PYTHON ]] || die "no $PYTHON: run 'uv sync' (or set VERITY_PYTHON)"
  "$PYTHON" -c 'import moto.server' 2>/dev/null || die "$PYTHON lacks moto[server]: run 'uv sync'"
  [[ -f $LOG ]] && mv -f "$LOG" "$LOG.prev"
  local t0=$SECONDS
  # setsid: own session, so a Ctrl-C aimed at the caller does not take the server down mid-run
  setsid "$PYTHON" -m moto.server -H 127.0.0.1 -p "$PORT" < /dev/null > "$LOG" 2>&1 9>&- &
  pid=$!
  echo "$pid" > "$PIDFILE"; echo "$PORT" > "$PORTFILE"
  while (( SECONDS - t0 < TIMEOUT )); do
    if ! alive "$pid"; then
      rm -f "$PIDFILE"
      say "server exited during startup; last lines of $LOG:"; tail -n 20 "$LOG" >&2 || true
      exit 1
    fi
    if answers "$PORT"; then
      say "started (pid $pid) in $((SECONDS - t0)) s; log in $LOG"
      create_bucket "$PORT"
      echo "VERITY_S3_ENDPOINT=http://127.0.0.1:$PORT"; return 0
    fi
    sleep 0.25
  done
  say "not ready after $TIMEOUT s; stopping it. Last lines of $LOG:"; tail -n 20 "$LOG" >&2 || true
  stop_locked; exit 1
}

stop_locked() {
  local pid i
  if ! pid=$(running_pid); then say "not running"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do alive "$pid" || break; sleep 0.25; done
  if alive "$pid"; then
    say "still alive after 10 s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  say "stopped (pid $pid)"
}

stop() { take_lock; stop_locked; }

status() {
  local pid
  if pid=$(running_pid); then
    echo "s3 (moto) running (pid $pid) on 127.0.0.1:$(cat "$PORTFILE" 2>/dev/null || echo "?")"
    return 0
  fi
  echo "s3 (moto) not running"; return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
