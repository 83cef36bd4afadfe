#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) for kstream's
# integration tests. No Kafka tarball is needed: the broker jars come from
# Maven Central through internal/javaref/pom.xml.
#
#   scripts/kafka.sh fetch   copy the Kafka jars into .cache/kafka/libs (once per pom change)
#   scripts/kafka.sh up      start a fresh broker; prints its bootstrap address as the last line
#   scripts/kafka.sh down    stop the broker and delete its data
#   scripts/kafka.sh logs    print the tail of the broker log (LINES=n, default 200)
#   scripts/kafka.sh status  print the bootstrap address if the broker runs, else exit 1
#   scripts/kafka.sh stop    stop the broker but keep its data (KAFKA_STOP_SIGNAL=KILL: crash it)
#   scripts/kafka.sh start   start a stopped broker again on its data and ports
#
# Environment:
#   KAFKA_PORT             PLAINTEXT port to try first (default 39092)
#   KAFKA_CONTROLLER_PORT  CONTROLLER port to try first (default 39093)
#   KAFKA_HEAP             JVM heap flags (default "-Xms128m -Xmx1g")
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (default 90)
#   KSTREAM_KAFKA_CACHE    cache folder (default <repo>/.cache/kafka)
#   KAFKA_RUN_DIR          the broker's data, config and logs (default <cache>/run):
#                          another folder runs another broker from the same jars
#   KAFKA_STOP_SIGNAL      the signal stop sends first (default TERM)
#
# A busy port is replaced by a free one, so read the address from the output
# (or from .cache/kafka/run/brokers) instead of assuming 127.0.0.1:39092.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/internal/javaref/pom.xml"
CACHE="${KSTREAM_KAFKA_CACHE:-$ROOT/.cache/kafka}"
LIBS="$CACHE/libs"
STAMP="$LIBS/.kstream-stamp"
RUN="${KAFKA_RUN_DIR:-$CACHE/run}"
DATA="$RUN/data"
PIDFILE="$RUN/kafka.pid"
BROKERS_FILE="$RUN/brokers"
LOG="$RUN/server.log"
OUT="$RUN/kafka.out"
PROPS="$RUN/server.properties"
LOG4J="$RUN/log4j2.properties"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
# Kafka 4 prints this from KafkaRaftServer once the broker is registered and
# unfenced, i.e. ready for clients:
#   [KafkaRaftServer nodeId=1] Kafka Server started (kafka.server.KafkaRaftServer)
READY_RE='Kafka Server started \(kafka\.server\.KafkaRaftServer\)'

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

kafka_version() {
  local v
  v="$(sed -n 's:.*<kafka\.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</kafka\.version>.*:\1:p' "$POM" | head -n1)"
  [[ -n "$v" ]] || die "no <kafka.version> in $POM"
  printf '%s\n' "$v"
}

stamp_value() {
  printf 'kafka.version=%s pom.sha256=%s\n' "$(kafka_version)" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

fetched() {
  [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$(stamp_value)" ]] &&
    [[ -f "$LIBS/kafka_2.13-$(kafka_version).jar" ]]
}

cmd_fetch() {
  command -v mvn >/dev/null || die "mvn not found"
  command -v java >/dev/null || die "java not found"
  mkdir -p "$CACHE"
  # One fetch at a time per cache folder.
  exec 8>"$CACHE/.fetch.lock"
  flock 8 2>/dev/null || true
  if fetched; then
    log "Kafka $(kafka_version) jars already in $LIBS"
    return 0
  fi
  local version tmp attempt=1
  version="$(kafka_version)"
  tmp="$CACHE/libs.tmp.$$"
  log "fetching Kafka $version jars with Maven into $LIBS"
  while :; do
    rm -rf "$tmp"
    if mvn -B -ntp -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$CACHE/mvn.log" 2>&1; then
      break
    fi
    grep -E '^\[(ERROR|WARNING)\]' "$CACHE/mvn.log" | tail -n 30 >&2 || tail -n 30 "$CACHE/mvn.log" >&2
    if (( attempt >= 3 )); then
      rm -rf "$tmp"
      die "mvn dependency:copy-dependencies failed $attempt times"
    fi
    log "mvn failed (attempt $attempt), retrying in $((attempt * 5)) s"
    sleep $((attempt * 5))
    attempt=$((attempt + 1))
  done
  [[ -f "$tmp/kafka_2.13-$version.jar" ]] || die "kafka_2.13-$version.jar missing after fetch"
  stamp_value >"$tmp/.kstream-stamp"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
}

# port_busy PORT: true if something listens on PORT (any address) or accepts
# connections on 127.0.0.1:PORT.
port_busy() {
  local port="$1" hex f
  hex="$(printf '%04X' "$port")"
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r "$f" ]] || continue
    # fields: sl local_address rem_address st ...; st 0A = LISTEN
    if awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' "$f"; then
      return 0
    fi
  done
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    return 0
  fi
  return 1
}

# pick_port PREFERRED AVOID: prints PREFERRED if free, else (or if PREFERRED
# is 0) a free port below the kernel's ephemeral range that is not AVOID.
pick_port() {
  local want="$1" avoid="$2" p i
  if [[ "$want" != 0 && "$want" != "$avoid" ]] && ! port_busy "$want"; then
    printf '%s\n' "$want"
    return 0
  fi
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    if [[ "$p" != "$avoid" ]] && ! port_busy "$p"; then
      printf '%s\n' "$p"
      return 0
    fi
  done
  die "no free port found"
}

# our_pid: prints the PID of the broker started from this cache, if alive.
our_pid() {
  local pid
  [[ -f "$PIDFILE" ]] || return 1
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against PID reuse: it must be our kafka.Kafka with our properties.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$PROPS" || return 1
  printf '%s\n' "$pid"
}

write_config() {
  local port="$1" cport="$2"
  mkdir -p "$RUN"
  cat >"$PROPS" <<EOF
# Generated by scripts/kafka.sh: single-node KRaft test broker. Do not edit.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA

# One broker: every internal topic has one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1

# Topics are created explicitly by tests.
num.partitions=1
auto.create.topics.enable=false
delete.topic.enable=true

# Fast, small test broker.
group.initial.rebalance.delay.ms=0
offsets.topic.num.partitions=5
transaction.state.log.num.partitions=5
share.coordinator.state.topic.num.partitions=3
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.segment.bytes=16777216
log.index.size.max.bytes=1048576
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.backoff.ms=1000
log.initial.task.delay.ms=1000
# Consumer-protocol (KIP-848) groups: quicker heartbeats and failure detection.
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000
group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=15000
# Streams-protocol (KIP-1071) groups: the same.
group.streams.min.heartbeat.interval.ms=500
group.streams.heartbeat.interval.ms=1000
group.streams.min.session.timeout.ms=6000
group.streams.session.timeout.ms=15000
# Classic groups may use short session timeouts.
group.min.session.timeout.ms=1000
EOF
  cat >"$LOG4J" <<EOF
# Generated by scripts/kafka.sh.
status = warn
name = kstream-test-broker
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOG
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
}

# start_once PORT CPORT: formats fresh storage and starts the broker; returns
# 0 when ready, 2 when a port was taken under us, 1 on any other failure.
start_once() {
  local port="$1" cport="$2" uuid
  rm -rf "$DATA"
  rm -f "$PIDFILE" "$BROKERS_FILE" "$LOG" "$OUT"
  mkdir -p "$DATA"
  write_config "$port" "$cport"
  local -a jvm=(java -Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$RUN" -cp "$LIBS/*")
  uuid="$("${jvm[@]}" kafka.tools.StorageTool random-uuid 2>>"$OUT" | tail -n1)"
  [[ -n "$uuid" ]] || { log "StorageTool random-uuid printed nothing"; return 1; }
  if ! "${jvm[@]}" kafka.tools.StorageTool format -t "$uuid" -c "$PROPS" --standalone >>"$OUT" 2>&1; then
    log "StorageTool format failed"
    return 1
  fi
  launch "$port" "$cport"
}

# launch PORT CPORT: starts the broker on the formatted storage and config
# of $RUN and waits until it is ready; returns as start_once does.
launch() {
  local port="$1" cport="$2" pid waited=0 from
  # Only the log lines written from now on tell whether this start is done.
  from=$(($(stat -c %s "$LOG" 2>/dev/null || echo 0) + 1))
  # shellcheck disable=SC2086 # KAFKA_HEAP is a list of flags
  nohup java ${KAFKA_HEAP:--Xms128m -Xmx1g} \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$RUN" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" >>"$OUT" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PIDFILE"
  log "broker starting (pid $pid, PLAINTEXT 127.0.0.1:$port, CONTROLLER 127.0.0.1:$cport)"
  while ((waited < START_TIMEOUT * 4)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      rm -f "$PIDFILE"
      if tail -c "+$from" "$LOG" 2>/dev/null | grep -q 'Address already in use' || grep -q 'Address already in use' "$OUT" 2>/dev/null; then
        return 2
      fi
      log "broker exited during startup"
      return 1
    fi
    if tail -c "+$from" "$LOG" 2>/dev/null | grep -q 'Address already in use'; then
      # A port was taken after pick_port; do not wait for the slow shutdown.
      stop_broker
      return 2
    fi
    if tail -c "+$from" "$LOG" 2>/dev/null | grep -Eq "$READY_RE" && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "127.0.0.1:$port" >"$BROKERS_FILE"
      return 0
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
  log "broker not ready after ${START_TIMEOUT} s"
  return 1
}

cmd_up() {
  local pid port cport rc attempt
  local want_port="${KAFKA_PORT:-39092}" want_cport="${KAFKA_CONTROLLER_PORT:-39093}"
  command -v java >/dev/null || die "java not found"
  if pid="$(our_pid)" && [[ -s "$BROKERS_FILE" ]]; then
    log "broker already running (pid $pid)"
    cat "$BROKERS_FILE"
    return 0
  fi
  fetched || cmd_fetch
  local t0=$SECONDS
  for attempt in 1 2 3; do
    port="$(pick_port "$want_port" "")"
    cport="$(pick_port "$want_cport" "$port")"
    rc=0
    start_once "$port" "$cport" || rc=$?
    if ((rc == 0)); then
      log "broker ready at 127.0.0.1:$port after $((SECONDS - t0)) s (log: $LOG)"
      cat "$BROKERS_FILE"
      return 0
    fi
    if ((rc == 2)); then
      log "port taken during startup, retrying with other ports"
      want_port=0 want_cport=0
      continue
    fi
    break
  done
  {
    echo "---- errors in $LOG ----"
    grep -E ' (ERROR|FATAL) |Exception' "$LOG" 2>/dev/null | tail -n 20 || true
    echo "---- tail of $LOG ----"
    tail -n 80 "$LOG" 2>/dev/null || true
    echo "---- tail of $OUT ----"
    tail -n 40 "$OUT" 2>/dev/null || true
  } >&2
  stop_broker
  die "Kafka broker did not start"
}

# stop_broker: KAFKA_STOP_SIGNAL (default TERM), wait up to 20 s, then KILL.
stop_broker() {
  local pid i sig="${KAFKA_STOP_SIGNAL:-TERM}"
  pid="$(our_pid)" || { rm -f "$PIDFILE"; return 0; }
  log "stopping broker (pid $pid, SIG$sig)"
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < 80; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker still running after 20 s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
  fi
  rm -f "$PIDFILE"
}

cmd_down() {
  if ! our_pid >/dev/null; then
    log "no broker running"
  fi
  stop_broker
  rm -rf "$DATA"
  rm -f "$BROKERS_FILE"
}

cmd_stop() {
  if ! our_pid >/dev/null; then
    log "no broker running"
  fi
  stop_broker
}

cmd_start() {
  local pid port cport
  if pid="$(our_pid)" && [[ -s "$BROKERS_FILE" ]]; then
    log "broker already running (pid $pid)"
    cat "$BROKERS_FILE"
    return 0
  fi
  [[ -f "$PROPS" && -d "$DATA" ]] || die "no stopped broker in $RUN (use up)"
  port="$(sed -n 's|^listeners=PLAINTEXT://127.0.0.1:\([0-9]*\),.*|\1|p' "$PROPS")"
  cport="$(sed -n 's|^listeners=.*CONTROLLER://127.0.0.1:\([0-9]*\)$|\1|p' "$PROPS")"
  [[ -n "$port" && -n "$cport" ]] || die "no listeners in $PROPS"
  if ! launch "$port" "$cport"; then
    grep -E ' (ERROR|FATAL) |Exception' "$LOG" 2>/dev/null | tail -n 20 >&2 || true
    stop_broker
    die "Kafka broker did not start again on 127.0.0.1:$port"
  fi
  log "broker ready again at 127.0.0.1:$port (log: $LOG)"
  cat "$BROKERS_FILE"
}

cmd_logs() {
  local n="${LINES:-200}"
  if [[ -f "$LOG" ]]; then
    tail -n "$n" "$LOG"
  else
    log "no broker log at $LOG"
  fi
  if [[ -s "$OUT" ]]; then
    echo "---- $OUT ----"
    tail -n 40 "$OUT"
  fi
}

cmd_status() {
  local pid
  if pid="$(our_pid)" && [[ -s "$BROKERS_FILE" ]]; then
    log "broker running (pid $pid)"
    cat "$BROKERS_FILE"
    return 0
  fi
  log "no broker running"
  return 1
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  up) cmd_up ;;
  down) cmd_down ;;
  logs) cmd_logs ;;
  status) cmd_status ;;
  stop) cmd_stop ;;
  start) cmd_start ;;
  *)
    echo "usage: $0 fetch|up|down|logs|status|stop|start" >&2
    exit 2
    ;;
esac
