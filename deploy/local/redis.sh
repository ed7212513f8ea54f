#!/usr/bin/env bash
# A throwaway Redis on 127.0.0.1 for tests and development: no persistence, daemonized, state under
# deploy/local/.run/redis-$REDIS_PORT/.
#
#   deploy/local/redis.sh start    install redis-server if missing (apt-get), start it, wait for PONG
#   deploy/local/redis.sh stop     stop it and wait until it is gone
#   deploy/local/redis.sh status   exit 0 and say so if it is up, exit 3 if not
#
# Environment: REDIS_PORT (16379), REDIS_START_TIMEOUT (s, 20), REDIS_STOP_TIMEOUT (s, 10).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HOST=127.0.0.1
REDIS_PORT="${REDIS_PORT:-16379}"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-20}"
REDIS_STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-10}"
RUN_DIR="$HERE/.run/redis-$REDIS_PORT"
PID_FILE="$RUN_DIR/redis.pid"
LOG_FILE="$RUN_DIR/redis.log"

SCRIPT=redis.sh
PROC_MATCH=redis-server
# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"

ping_ok() {
  [[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    ping_ok || die "redis (pid $pid) from $RUN_DIR is running but does not answer PING"
    echo "redis already up on $HOST:$REDIS_PORT"
    return 0
  fi
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is already in use by another process"
  # redis-tools (redis-cli) comes with redis-server as a dependency.
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then apt_install redis-server; fi
  mkdir -p "$RUN_DIR"
  rm -f "$PID_FILE"
  : >"$LOG_FILE"

  # save "" and appendonly no: test state must never survive a restart (or fill the disk). 8>&-:
  # the daemon must not inherit the port lock, or it would hold it for its whole life.
  if ! redis-server --bind "$HOST" --port "$REDIS_PORT" --protected-mode yes \
      --save "" --appendonly no --dir "$RUN_DIR" \
      --daemonize yes --pidfile "$PID_FILE" --logfile "$LOG_FILE" >&2 8>&-; then
    die "redis-server failed to start"
  fi

  local deadline=$((SECONDS + REDIS_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ping_ok; then
      echo "redis up on $HOST:$REDIS_PORT"
      return 0
    fi
    sleep 0.1
  done
  echo "--- last lines of $LOG_FILE ---" >&2
  tail -n 30 "$LOG_FILE" >&2 || true
  if pid="$(running_pid)"; then kill -KILL "$pid" 2>/dev/null || true; fi
  die "redis did not answer PING on $HOST:$REDIS_PORT within ${REDIS_START_TIMEOUT}s"
}

cmd_stop() {
  stop_server "$REDIS_STOP_TIMEOUT"
}

cmd_status() {
  local pid
  if pid="$(running_pid)" && ping_ok; then
    echo "redis up on $HOST:$REDIS_PORT (pid $pid)"
    return 0
  fi
  echo "redis down on $HOST:$REDIS_PORT"
  return 3
}

case "${1:-}" in
  start) with_port_lock "redis-$REDIS_PORT" cmd_start ;;
  stop) with_port_lock "redis-$REDIS_PORT" cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
