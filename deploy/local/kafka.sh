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
#
# Secure mode (opt-in, VERITY_KAFKA_SECURE=1; needs openssl): what a cluster's TLS + SCRAM
# listener looks like, on loopback. Besides the PLAINTEXT listener (still on <port>; the
# controller and inter-broker traffic stay plain on loopback) the broker gets
#   SASL_SSL on <port>+2: TLS with a broker certificate from a local CA, SCRAM-SHA-512 users
#   SSL      on <port>+3: mutual TLS (client certificate signed by the same CA required)
# (listener config: deploy/local/kafka/secure.properties). The CA, the broker's PKCS12 keystore
# (SAN IP:127.0.0.1, DNS:localhost), a truststore and a client certificate are generated once
# into $VERITY_RUN_DIR/kafka/tls/. The SCRAM user is created when the storage is formatted, so a
# data dir formatted in plain mode (or with another password) is refused: VERITY_KAFKA_FRESH=1.
#   VERITY_KAFKA_SCRAM_USERNAME  default verity
#   VERITY_KAFKA_SCRAM_PASSWORD  default: generated once, kept in tls/scram-password
#                                ([A-Za-z0-9._~-] only: --add-scram's syntax has no escaping)
# In secure mode `start` prints these lines BEFORE the usual last line (which stays
# VERITY_KAFKA_BOOTSTRAP=<the PLAINTEXT listener>). They are named VERITY_KAFKA_SECURE_* and
# VERITY_KAFKA_MTLS_*, not like the services' settings, so that exporting every line never mixes
# a PLAINTEXT bootstrap with TLS settings:
#   VERITY_KAFKA_SECURE_BOOTSTRAP=127.0.0.1:<port+2>     SASL_SSL, SCRAM-SHA-512
#   VERITY_KAFKA_SECURE_USERNAME=verity
#   VERITY_KAFKA_SECURE_PASSWORD_FILE=<tls>/scram-password
#   VERITY_KAFKA_SECURE_CA_FILE=<tls>/ca.pem             PEM: the CA of both TLS listeners
#   VERITY_KAFKA_MTLS_BOOTSTRAP=127.0.0.1:<port+3>       SSL, client certificate required
#   VERITY_KAFKA_MTLS_CERT_FILE=<tls>/client.pem
#   VERITY_KAFKA_MTLS_KEY_FILE=<tls>/client.key
# A service then runs with VERITY_KAFKA_BOOTSTRAP=<secure bootstrap>,
# VERITY_KAFKA_SECURITY_PROTOCOL=SASL_SSL, VERITY_KAFKA_USERNAME, VERITY_KAFKA_PASSWORD and
# VERITY_KAFKA_CA_FILE. Java tools: --command-config <tls>/client.properties (SASL_SSL).
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
SECURE=0; [[ ${VERITY_KAFKA_SECURE:-0} == 1 ]] && SECURE=1
SPORT=$((PORT + 2))   # SASL_SSL (secure mode only)
MPORT=$((PORT + 3))   # SSL with client certificates (secure mode only)
if (( SECURE && MPORT > 65535 )); then
  echo "kafka.sh: VERITY_KAFKA_PORT=$PORT too high for secure mode (it uses port + 3)" >&2; exit 2
fi
SCRAM_USER=${VERITY_KAFKA_SCRAM_USERNAME:-verity}
SCRAM_PASSWORD=
RUN=${VERITY_RUN_DIR:-$ROOT/.run}
KRUN=$RUN/kafka
DATA=$KRUN/data
LOGS=$KRUN/logs
PIDFILE=$KRUN/kafka.pid
PORTFILE=$KRUN/port
TLS=$KRUN/tls
SECUREFILE=$KRUN/secure        # exists while the running broker has the secure listeners
SCRAMMARK=$KRUN/scram.formatted
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
  TLS=$KRUN/tls; SECUREFILE=$KRUN/secure; SCRAMMARK=$KRUN/scram.formatted
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
  if (( SECURE )); then render_secure_config; fi
}

# Secure mode: the base config without its listener lines, plus secure.properties (which has
# its own listeners, advertised.listeners and protocol map). It holds passwords: mode 0600.
render_secure_config() {
  local tls_esc pass tmp
  tls_esc=$(printf '%s' "$TLS" | sed 's/[\\|&]/\\&/g')
  pass=$(<"$TLS/store-password")
  tmp=$KRUN/server.properties.tmp
  ( umask 077
    { grep -v -E '^(listeners|advertised\.listeners|listener\.security\.protocol\.map)=' \
        "$KRUN/server.properties"
      echo
      sed -e "s|@KAFKA_PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CPORT|g" \
          -e "s|@SASL_SSL_PORT@|$SPORT|g" -e "s|@SSL_PORT@|$MPORT|g" \
          -e "s|@TLS_DIR@|$tls_esc|g" -e "s|@STORE_PASSWORD@|$pass|g" "$CONF/secure.properties"
    } > "$tmp" )
  mv -f "$tmp" "$KRUN/server.properties"
}

# keytool next to the java we run (JAVA may be a bare name on PATH).
keytool_bin() {
  local j; j=$(command -v "$JAVA" || true)
  if [[ -n $j && -x $(dirname "$(readlink -f "$j")")/keytool ]]; then
    echo "$(dirname "$(readlink -f "$j")")/keytool"
  else echo keytool
  fi
}

rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# openssl extensions of the local CA, the broker certificate and the client certificate.
TLS_EXTENSIONS='[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[broker]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid'

# CA, broker keystore, truststore and a client certificate, once per run dir. Made in a scratch
# dir that is renamed into place, so an interrupted run leaves nothing half-made behind.
# Keys are unencrypted PEM (0600); the PKCS12 stores share one generated password.
make_tls() {
  local pass=$1 who cn
  printf '%s\n' "$pass" > store-password
  printf '%s\n' "$TLS_EXTENSIONS" > ext.cnf
  openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=verity-local-kafka-ca" \
    -config ext.cnf -extensions ca -keyout ca.key -out ca.pem
  for who in broker client; do
    cn=localhost; [[ $who == client ]] && cn=verity-client
    openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=$cn" -config ext.cnf \
      -keyout "$who.key" -out "$who.csr"
    openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
      -extfile ext.cnf -extensions "$who" -out "$who.pem"
  done
  openssl pkcs12 -export -name broker -in broker.pem -inkey broker.key -certfile ca.pem \
    -passout "pass:$pass" -out broker.p12
  # A trusted-certificate entry for Java: keytool (openssl 3.0 has no -jdktrust).
  "$(keytool_bin)" -importcert -noprompt -alias verity-local-ca -file ca.pem -storetype PKCS12 \
    -keystore truststore.p12 -storepass "$pass"
  rm -f ./*.csr ca.srl ext.cnf
  chmod 644 ca.pem broker.pem client.pem
}

ensure_tls() {
  [[ -f $TLS/.complete ]] && return 0
  command -v openssl >/dev/null || die "secure mode needs openssl (apt-get install -y openssl)"
  local t=$KRUN/tls.tmp.$$
  rm -rf "$t"; mkdir -p "$t"; chmod 700 "$t"
  say "generating a local CA, a broker and a client certificate into $TLS"
  if ! (cd "$t" && umask 077 && make_tls "$(rand_hex 16)") > "$LOGS/tls.log" 2>&1; then
    cat "$LOGS/tls.log" >&2; rm -rf "$t"; die "TLS material generation failed"
  fi
  touch "$t/.complete"
  # a SCRAM password kept from before stays (the data dir's credential matches it)
  [[ -f $TLS/scram-password ]] && cp -p "$TLS/scram-password" "$t/"
  rm -rf "$TLS"; mv "$t" "$TLS"
}

# The SCRAM password in effect: VERITY_KAFKA_SCRAM_PASSWORD, else the one kept in tls/, else new.
scram_password() {
  local p
  if [[ -n ${VERITY_KAFKA_SCRAM_PASSWORD:-} ]]; then p=$VERITY_KAFKA_SCRAM_PASSWORD
  elif [[ -s $TLS/scram-password ]]; then p=$(<"$TLS/scram-password")
  else p=$(rand_hex 24)
  fi
  [[ $p =~ ^[A-Za-z0-9._~-]+$ ]] || die "VERITY_KAFKA_SCRAM_PASSWORD: only [A-Za-z0-9._~-] allowed"
  [[ $SCRAM_USER =~ ^[A-Za-z0-9._-]+$ ]] || die "VERITY_KAFKA_SCRAM_USERNAME: only [A-Za-z0-9._-] allowed"
  SCRAM_PASSWORD=$p
}

# Kept in tls/scram-password (0600), the file `start` prints for callers to read; written only
# once the data dir is known to hold this credential.
keep_scram_password() {
  if [[ ! -f $TLS/scram-password || $(<"$TLS/scram-password") != "$SCRAM_PASSWORD" ]]; then
    (umask 077 && printf '%s\n' "$SCRAM_PASSWORD" > "$TLS/scram-password")
  fi
}

# What the SCRAM marker holds: the data dir's cluster id and a hash of the credential, so that
# neither a re-formatted data dir nor a changed password passes for the formatted one.
scram_mark() {
  local cid
  cid=$(sed -n 's/^cluster\.id=//p' "$DATA/meta.properties" 2>/dev/null || true)
  printf '%s %s\n' "$cid" "$(printf '%s:%s' "$SCRAM_USER" "$SCRAM_PASSWORD" | sha256sum | cut -d' ' -f1)"
}

check_scram_formatted() {
  [[ -f $SCRAMMARK && $(<"$SCRAMMARK") == "$(scram_mark)" ]] && return 0
  die "$DATA was formatted without SCRAM user $SCRAM_USER and this password (in plain mode, or with another password); start with VERITY_KAFKA_FRESH=1 (or run reset) for a new cluster"
}

# Java client settings for the SASL_SSL listener (e.g. kafka-topics --command-config ...).
write_client_properties() {
  local pass; pass=$(<"$TLS/store-password")
  (umask 077 && cat > "$TLS/client.properties") <<EOF_CLIENT
# Written by deploy/local/kafka.sh (secure mode): SASL_SSL on 127.0.0.1:$SPORT
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$SCRAM_USER" password="$SCRAM_PASSWORD";
ssl.truststore.type=PKCS12
ssl.truststore.location=$TLS/truststore.p12
ssl.truststore.password=$pass
EOF_CLIENT
}

# The secure mode's result lines (printed before the last line, the PLAINTEXT bootstrap).
print_secure() {
  local sport mport user
  { read -r sport mport; read -r user; } < "$SECUREFILE"
  echo "VERITY_KAFKA_SECURE_BOOTSTRAP=127.0.0.1:$sport"
  echo "VERITY_KAFKA_SECURE_USERNAME=$user"
  echo "VERITY_KAFKA_SECURE_PASSWORD_FILE=$TLS/scram-password"
  echo "VERITY_KAFKA_SECURE_CA_FILE=$TLS/ca.pem"
  echo "VERITY_KAFKA_MTLS_BOOTSTRAP=127.0.0.1:$mport"
  echo "VERITY_KAFKA_MTLS_CERT_FILE=$TLS/client.pem"
  echo "VERITY_KAFKA_MTLS_KEY_FILE=$TLS/client.key"
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
  # Secure mode: the SCRAM user goes into the bootstrap metadata (no broker round trip needed).
  local scram=()
  (( SECURE )) && scram=(--add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]")
  rm -f "$SCRAMMARK"
  if ! "$JAVA" "${HEAP[@]}" -Dlog4j2.configurationFile="$CONF/log4j2.properties" -Dkafka.logs.dir="$LOGS" \
       -cp "$LIB/*" kafka.tools.StorageTool format -t "$cid" -c "$KRUN/server.properties" --ignore-formatted \
       "${scram[@]}" > "$LOGS/format.log" 2>&1 9>&-; then
    cat "$LOGS/format.log" >&2
    die "storage format failed"
  fi
  if (( SECURE )); then scram_mark > "$SCRAMMARK"; fi
}

wipe_data() { say "wiping $DATA"; rm -rf "$DATA" "$SCRAMMARK"; }

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
    if (( SECURE )); then
      [[ -f $SECUREFILE ]] || die "the running broker (pid $pid) has no secure listeners; stop it first, or VERITY_KAFKA_FRESH=1"
      print_secure
    fi
    echo "VERITY_KAFKA_BOOTSTRAP=127.0.0.1:$rport"; return 0
  fi
  [[ ${VERITY_KAFKA_FRESH:-0} == 1 ]] && wipe_data
  local ports=("$PORT" "$CPORT")
  (( SECURE )) && ports+=("$SPORT" "$MPORT")
  for p in "${ports[@]}"; do port_busy "$p" && die "port $p on 127.0.0.1 is already in use (set VERITY_KAFKA_PORT)"; done
  fetch
  mkdir -p "$LOGS" "$DATA"
  rm -f "$SECUREFILE"
  if (( SECURE )); then ensure_tls; scram_password; fi
  render_config
  format_once
  if (( SECURE )); then
    check_scram_formatted; keep_scram_password; write_client_properties
    printf '%s %s\n%s\n' "$SPORT" "$MPORT" "$SCRAM_USER" > "$SECUREFILE"
  fi
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
    if grep -qs 'Kafka Server started' "$LOGS/server.log" && port_busy "$PORT" \
       && { (( ! SECURE )) || { port_busy "$SPORT" && port_busy "$MPORT"; }; }; then
      say "started (pid $pid) in $((SECONDS - t0)) s; logs in $LOGS"
      if (( SECURE )); then
        say "secure listeners: SASL_SSL (SCRAM-SHA-512) on 127.0.0.1:$SPORT, mutual TLS on 127.0.0.1:$MPORT"
        print_secure
      fi
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
  rm -f "$PIDFILE" "$SECUREFILE"
  say "stopped (pid $pid)"
}

stop() { abs_run; take_lock; stop_locked; }

status() {
  abs_run
  local pid
  if pid=$(running_pid); then
    local extra='' sport mport
    if [[ -f $SECUREFILE ]]; then
      read -r sport mport < "$SECUREFILE"
      extra=", SASL_SSL on 127.0.0.1:$sport, mutual TLS on 127.0.0.1:$mport"
    fi
    echo "kafka running (pid $pid) on 127.0.0.1:$(cat "$PORTFILE" 2>/dev/null || echo "?")$extra"; return 0
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
