#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft) on loopback, run from Maven Central jars (no Docker, no tarball).
#
# Usage: deploy/local/kafka.sh start|stop|status|fetch|reset
#   fetch   download the broker classpath once into the cache (needs Maven Central)
#   start   fetch if needed, format storage once, start the broker, wait until ready;
#           last stdout line: VERITY_KAFKA_BOOTSTRAP=127.0.0.1:<port>
#   stop    SIGTERM (controlled shutdown), SIGKILL after 30 s
#   status  exit 0 if running, 1 otherwise
#   reset   stop and wipe the data dir (a throwaway cluster)
# Environment:
#   VERITY_RUN_DIR        state dir (default <repo>/.run); Kafka uses $VERITY_RUN_DIR/kafka
#   VERITY_KAFKA_PORT     client port (default 19092); controller port = port + 1
#   VERITY_KAFKA_FRESH=1  start on an empty data dir (stops a running broker first)
#   VERITY_CACHE          jar cache (default $HOME/.cache/verity)
#   VERITY_KAFKA_HEAP_OPTS, VERITY_KAFKA_START_TIMEOUT (s, default 90), JAVA_HOME / JAVA
# Progress messages go to stderr so that stdout carries only the result line.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CONF=$HERE/kafka

# Single source of truth for the version: the pom.
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$CONF/pom.xml")
[[ -n $KAFKA_VERSION ]] || { echo "kafka.sh: no <kafka.version> in $CONF/pom.xml" >&2; exit 1; }
CACHE=${VERITY_CACHE:-$HOME/.cache/verity}
LIB=$CACHE/kafka-libs-$KAFKA_VERSION
MARKER=$LIB/.complete

PORT=${VERITY_KAFKA_PORT:-19092}
if ! [[ $PORT =~ ^[0-9]+$ ]] || (( PORT < 1 || PORT > 65534 )); then
  echo "kafka.sh: bad VERITY_KAFKA_PORT=$PORT" >&2; exit 2
fi
CPORT=$((PORT + 1))
RUN=${VERITY_RUN_DIR:-$ROOT/.run}
KRUN=$RUN/kafka
DATA=$KRUN/data
LOGS=$KRUN/logs
PIDFILE=$KRUN/kafka.pid
PORTFILE=$KRUN/port
TIMEOUT=${VERITY_KAFKA_START_TIMEOUT:-90}

if [[ -n ${JAVA:-} ]]; then :
elif [[ -n ${JAVA_HOME:-} ]]; then JAVA=$JAVA_HOME/bin/java
else JAVA=java
fi
read -r -a HEAP <<< "${VERITY_KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
# What bin/kafka-run-class.sh uses (minus GC logging and JMX).
PERF=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
      -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true)

say() { echo "kafka.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# Absolute paths: they end up in the broker config and JVM flags.
abs_run() {
  mkdir -p "$RUN"; RUN=$(cd "$RUN" && pwd)
  KRUN=$RUN/kafka; DATA=$KRUN/data; LOGS=$KRUN/logs; PIDFILE=$KRUN/kafka.pid; PORTFILE=$KRUN/port
}

# Serialize start/stop/reset (e.g. parallel test workers) on one lock per run dir.
# fd 9 must not leak into the broker, or the lock would be held for its lifetime.
take_lock() { mkdir -p "$KRUN"; exec 9>"$KRUN/.lock"; flock 9; }

# Pid of our broker if it is running; clears a stale pid file (pid reused or process gone).
running_pid() {
  local pid
  [[ -f $PIDFILE ]] || return 1
  pid=$(<"$PIDFILE")
  if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" \
     && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'; then
    echo "$pid"; return 0
  fi
  rm -f "$PIDFILE"; return 1
}

# A process that exists and is not a zombie (kill -0 succeeds on zombies, and the broker's parent
# after `start` returns is PID 1, which may reap late).
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n $st && $st != Z* ]]; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fetch() {
  local sum
  # The marker holds the pom's hash: written only after a complete copy, so a half-finished
  # download (or a changed pom) is redone.
  sum=$(sha256sum "$CONF/pom.xml" | cut -d' ' -f1)
  [[ -f $MARKER && $(<"$MARKER") == "$sum" ]] && return 0
  mkdir -p "$CACHE"
  exec 8>"$LIB.lock"; flock 8
  if [[ -f $MARKER && $(<"$MARKER") == "$sum" ]]; then exec 8>&-; return 0; fi
  say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIB"
  rm -rf "$LIB"; mkdir -p "$LIB"
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  mvn -B -q -Dstyle.color=never -f "$CONF/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIB" >&2
  [[ -f $LIB/kafka_2.13-$KAFKA_VERSION.jar ]] || die "fetch incomplete: no kafka_2.13-$KAFKA_VERSION.jar in $LIB"
  compgen -G "$LIB/log4j-slf4j-impl-*.jar" >/dev/null || die "fetch incomplete: no log4j-slf4j-impl in $LIB"
  echo "$sum" > "$MARKER"
  exec 8>&-
  say "fetched $(find "$LIB" -name '*.jar' | wc -l) jars"
}

render_config() {
  # '|' as sed delimiter; escape what sed treats specially in the replacement.
  local data_esc
  data_esc=$(printf '%s' "$DATA" | sed 's/[\\|&]/\\&/g')
  sed -e "s|@KAFKA_PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CPORT|g" -e "s|@DATA_DIR@|$data_esc|g" \
      "$CONF/server.properties" > "$KRUN/server.properties"
}

format_once() {
  [[ -f $DATA/meta.properties ]] && return 0
  local cid
  # Cluster id = 16 random bytes, URL-safe base64 without padding (what `kafka-storage random-uuid`
  # prints). Generated outside the JVM so that no log line can end up in it. Kafka never hands
  # out ids starting with '-' (they look like flags), so neither do we.
  while :; do
    if command -v python3 >/dev/null; then
      cid=$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
    else
      cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    fi
    [[ $cid != -* ]] && break
  done
  mkdir -p "$DATA"
  say "formatting $DATA (cluster id $cid)"
  # Static voter in server.properties => no --standalone.
  if ! "$JAVA" "${HEAP[@]}" -Dlog4j2.configurationFile="$CONF/log4j2.properties" -Dkafka.logs.dir="$LOGS" \
       -cp "$LIB/*" kafka.tools.StorageTool format -t "$cid" -c "$KRUN/server.properties" --ignore-formatted \
       > "$LOGS/format.log" 2>&1 9>&-; then
    cat "$LOGS/format.log" >&2
    die "storage format failed"
  fi
}

wipe_data() { say "wiping $DATA"; rm -rf "$DATA"; }

start() {
  abs_run; take_lock
  local pid
  if [[ ${VERITY_KAFKA_FRESH:-0} == 1 ]] && running_pid >/dev/null; then
    say "VERITY_KAFKA_FRESH=1: stopping the running broker first"; stop_locked
  fi
  if pid=$(running_pid); then
    local rport; rport=$(cat "$PORTFILE" 2>/dev/null || echo "$PORT")
    [[ $rport == "$PORT" ]] || say "note: running broker listens on $rport, not VERITY_KAFKA_PORT=$PORT"
    say "already running (pid $pid)"
    echo "VERITY_KAFKA_BOOTSTRAP=127.0.0.1:$rport"; return 0
  fi
  [[ ${VERITY_KAFKA_FRESH:-0} == 1 ]] && wipe_data
  for p in "$PORT" "$CPORT"; do port_busy "$p" && die "port $p on 127.0.0.1 is already in use (set VERITY_KAFKA_PORT)"; done
  fetch
  mkdir -p "$LOGS" "$DATA"
  render_config
  format_once
  # Fresh log files per start, so the readiness grep cannot match an earlier run.
  local f; for f in server.log stdout.log; do [[ -f $LOGS/$f ]] && mv -f "$LOGS/$f" "$LOGS/$f.prev"; done
  local t0=$SECONDS
  # setsid: own session, so a Ctrl-C / process-group kill aimed at the caller does not take the
  # broker down mid-run; `stop` is the way to end it.
  setsid "$JAVA" "${HEAP[@]}" "${PERF[@]}" -Dlog4j2.configurationFile="$CONF/log4j2.properties" \
    -Dkafka.logs.dir="$LOGS" -cp "$LIB/*" kafka.Kafka "$KRUN/server.properties" \
    < /dev/null > "$LOGS/stdout.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" > "$PIDFILE"; echo "$PORT" > "$PORTFILE"
  while (( SECONDS - t0 < TIMEOUT )); do
    if ! alive "$pid"; then
      rm -f "$PIDFILE"
      say "broker exited during startup; last lines of $LOGS/stdout.log and server.log:"
      tail -n 40 "$LOGS/stdout.log" >&2 || true; tail -n 40 "$LOGS/server.log" >&2 2>/dev/null || true
      exit 1
    fi
    if grep -qs 'Kafka Server started' "$LOGS/server.log" && port_busy "$PORT"; then
      say "started (pid $pid) in $((SECONDS - t0)) s; logs in $LOGS"
      echo "VERITY_KAFKA_BOOTSTRAP=127.0.0.1:$PORT"; return 0
    fi
    sleep 0.25
  done
  say "not ready after $TIMEOUT s; stopping it. Last lines of server.log:"
  tail -n 40 "$LOGS/server.log" >&2 2>/dev/null || true
  stop_locked; exit 1
}

stop_locked() {
  local pid i
  if ! pid=$(running_pid); then say "not running"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true   # SIGTERM = controlled shutdown
  for ((i = 0; i < 120; i++)); do alive "$pid" || break; sleep 0.25; done
  if alive "$pid"; then
    say "still alive after 30 s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  say "stopped (pid $pid)"
}

stop() { abs_run; take_lock; stop_locked; }

status() {
  abs_run
  local pid
  if pid=$(running_pid); then
    echo "kafka running (pid $pid) on 127.0.0.1:$(cat "$PORTFILE" 2>/dev/null || echo "?")"; return 0
  fi
  echo "kafka not running"; return 1
}

reset() { abs_run; take_lock; stop_locked; wipe_data; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  fetch) fetch ;;
  reset) reset ;;
  *) echo "usage: $0 start|stop|status|fetch|reset" >&2; exit 2 ;;
esac
