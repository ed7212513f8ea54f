#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1 for tests and
# development. No Docker and no tarball: the broker's jars come from Maven Central once (mvn), and
# are reused from deploy/local/.cache/kafka afterwards without touching the network.
#
#   deploy/local/kafka.sh fetch    download the jars if they are not cached yet
#   deploy/local/kafka.sh start    format a fresh data dir and start the broker in the background
#   deploy/local/kafka.sh stop     stop it and wait until it is gone
#   deploy/local/kafka.sh status   exit 0 and say so if it is up, exit 3 if not
#
# Environment: KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1), KAFKA_START_TIMEOUT (s, 120),
# KAFKA_STOP_TIMEOUT (s, 30), KAFKA_HEAP_OPTS (-Xms128m -Xmx512m), KAFKA_EXTRA_CONFIG (extra
# server.properties lines), KAFKA_CACHE_DIR (deploy/local/.cache/kafka).
#
# One node: services pointed at it need KAFKA_REPLICATION_FACTOR=1 KAFKA_MIN_INSYNC_REPLICAS=1 (the
# service defaults, 3 and 2, are for a real cluster). A small produce limit for tests:
# KAFKA_EXTRA_CONFIG='message.max.bytes=262144'.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
CACHE_DIR="${KAFKA_CACHE_DIR:-$HERE/.cache/kafka}"
POM="$HERE/kafka/pom.xml"
LIBS="$CACHE_DIR/libs"
RUN_DIR="$HERE/.run/kafka-$KAFKA_PORT"
PID_FILE="$RUN_DIR/kafka.pid"
LOG_FILE="$RUN_DIR/server.log"
DATA_DIR="$RUN_DIR/data"

SCRIPT=kafka.sh
PROC_MATCH="kafka\.Kafka"
# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"

cmd_fetch() {
  command -v java >/dev/null || die "java not found (Java 17+ is needed)"
  local stamp
  stamp="$(sha256sum "$POM" | cut -d' ' -f1)"
  # Fast path without mvn at all, so a warm cache never reaches for the network.
  if [[ -f "$LIBS/.complete" && "$(cat "$LIBS/.complete")" == "$stamp" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka jars)"
  mkdir -p "$CACHE_DIR"
  # Two starters racing (CI pre-warm and a test) must not both write into libs/.
  exec 9>"$CACHE_DIR/.lock"
  flock 9
  if [[ -f "$LIBS/.complete" && "$(cat "$LIBS/.complete")" == "$stamp" ]]; then
    exec 9>&-
    return 0
  fi
  local tmp="$LIBS.tmp.$$"
  rm -rf "$tmp"
  if ! mvn -q -B -f "$POM" -Dmaven.repo.local="$CACHE_DIR/m2" \
      dependency:copy-dependencies -DoutputDirectory="$tmp" >"$CACHE_DIR/mvn.log" 2>&1; then
    tail -n 30 "$CACHE_DIR/mvn.log" >&2
    rm -rf "$tmp"
    die "mvn could not fetch the Kafka jars (log: $CACHE_DIR/mvn.log)"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "mvn ran but no kafka_2.13 jar in $tmp"
  echo "$stamp" >"$tmp/.complete"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  # Closing releases the lock, and keeps the descriptor out of the broker this shell may start.
  exec 9>&-
  echo "kafka jars cached in $LIBS"
}

write_config() {
  cat >"$RUN_DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA_DIR
# Topics are created on purpose (ensureTopic); a typo must fail, not invent a topic.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=3
# One broker: every replication factor and ISR minimum must be 1, or the idempotent producer
# (InitProducerId needs the transaction state log) and consumer groups never become available.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
# Tests join and leave groups constantly; the default 3 s delay would add up to minutes.
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
  if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
    printf '%s\n' "$KAFKA_EXTRA_CONFIG" >>"$RUN_DIR/server.properties"
  fi

  cat >"$RUN_DIR/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
EOF
  # The storage tool dumps its whole config at INFO; when it fails only warnings and errors help.
  sed 's/^log4j.rootLogger=INFO/log4j.rootLogger=WARN/' "$RUN_DIR/log4j.properties" \
    >"$RUN_DIR/log4j-tools.properties"
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    if port_open "$KAFKA_PORT"; then
      echo "kafka already up on $HOST:$KAFKA_PORT"
      return 0
    fi
    die "a broker (pid $pid) is running from $RUN_DIR but not accepting on $KAFKA_PORT; run stop first"
  fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is already in use by another process"
  port_open "$KAFKA_CONTROLLER_PORT" && die "controller port $KAFKA_CONTROLLER_PORT is already in use"

  cmd_fetch >/dev/null

  rm -rf "$DATA_DIR"
  mkdir -p "$DATA_DIR"
  : >"$LOG_FILE"
  write_config

  local cp="$LIBS/*"
  local jvm=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:-UsePerfData -Djava.awt.headless=true
    "-Dkafka.logs.dir=$RUN_DIR")

  # A fresh cluster id per start: state never leaks between test runs. Passed with "=" because a
  # base64url id may start with "-", which the option parser would take for a flag.
  local cluster_id
  cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  if ! java -Xmx256m "${jvm[@]}" "-Dlog4j.configuration=file:$RUN_DIR/log4j-tools.properties" \
      -cp "$cp" kafka.tools.StorageTool format "--cluster-id=$cluster_id" -c "$RUN_DIR/server.properties" \
      >"$RUN_DIR/format.log" 2>&1; then
    cat "$RUN_DIR/format.log" >&2
    die "formatting KRaft storage in $DATA_DIR failed"
  fi

  # setsid: the broker outlives the shell or test runner that started it (stop is explicit), and
  # a Ctrl-C in that terminal does not reach it. It execs, so $! is the JVM's pid. 8>&-: the
  # broker must not inherit the port lock, or it would hold it for its whole life.
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of flags
  setsid java $KAFKA_HEAP_OPTS "${jvm[@]}" "-Dlog4j.configuration=file:$RUN_DIR/log4j.properties" \
    -cp "$cp" kafka.Kafka "$RUN_DIR/server.properties" \
    >>"$LOG_FILE" 2>&1 </dev/null 8>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"

  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      show_log_tail
      die "broker exited during startup"
    fi
    # The port opens before the broker has caught up with the metadata log; the log line is the
    # moment it serves requests.
    if grep -q 'Kafka Server started' "$LOG_FILE" && port_open "$KAFKA_PORT"; then
      echo "kafka up on $HOST:$KAFKA_PORT"
      return 0
    fi
    sleep 0.2
  done
  show_log_tail "$LOG_FILE"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  die "broker did not come up on $HOST:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s"
}

cmd_stop() {
  stop_server "$KAFKA_STOP_TIMEOUT"
  # The next start formats a new cluster anyway; keep only the logs for post-mortems.
  rm -rf "$DATA_DIR"
}

cmd_status() {
  local pid
  if pid="$(running_pid)" && port_open "$KAFKA_PORT"; then
    echo "kafka up on $HOST:$KAFKA_PORT (pid $pid)"
    return 0
  fi
  echo "kafka down on $HOST:$KAFKA_PORT"
  return 3
}

case "${1:-}" in
  start) with_port_lock "kafka-$KAFKA_PORT" cmd_start ;;
  stop) with_port_lock "kafka-$KAFKA_PORT" cmd_stop ;;
  status) cmd_status ;;
  fetch) cmd_fetch ;;
  *)
    echo "usage: $0 start|stop|status|fetch" >&2
    exit 2
    ;;
esac
