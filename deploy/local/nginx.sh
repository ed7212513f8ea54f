#!/usr/bin/env bash
# The ingest load balancer on 127.0.0.1 for tests and development: Debian's nginx, run as an
# unprivileged process (nobody when started by root) with its own prefix under
# deploy/local/.run/nginx-$NGINX_PORT/ — no system service, nothing under /etc or /var.
#
#   deploy/local/nginx.sh start    render deploy/nginx/ingest.conf.template and start nginx (or, if
#                                  it is up, re-render and reload it), wait until it answers
#   deploy/local/nginx.sh reload   re-read the config and the cut-over map (what ingestctl does)
#   deploy/local/nginx.sh stop     stop it and wait until it is gone
#   deploy/local/nginx.sh status   exit 0 and say so if it is up, exit 3 if not
#   deploy/local/nginx.sh env      print `export` lines for what `ingestctl cutover` needs for this
#                                  nginx: eval "$(deploy/local/nginx.sh env)"
#
# Environment: NGINX_PORT (18880), EDGE_UPSTREAM (127.0.0.1:8080), LEGACY_UPSTREAM (127.0.0.1:9090),
# CUTOVER_NGINX_DIR (where ingestctl renders the map; default $RUN_DIR/cutover), NGINX_WORKERS (1),
# NGINX_MAX_BODY (16m), NGINX_START_TIMEOUT / NGINX_STOP_TIMEOUT (s, 10), LB_SHARED_SECRET (unset: not
# sent; give the edge the same value so it honours the mirror marking of this nginx, and only its).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
HOST=127.0.0.1
NGINX_PORT="${NGINX_PORT:-18880}"
EDGE_UPSTREAM="${EDGE_UPSTREAM:-127.0.0.1:8080}"
LEGACY_UPSTREAM="${LEGACY_UPSTREAM:-127.0.0.1:9090}"
NGINX_WORKERS="${NGINX_WORKERS:-1}"
NGINX_MAX_BODY="${NGINX_MAX_BODY:-16m}"
NGINX_START_TIMEOUT="${NGINX_START_TIMEOUT:-10}"
NGINX_STOP_TIMEOUT="${NGINX_STOP_TIMEOUT:-10}"
LB_SHARED_SECRET="${LB_SHARED_SECRET:-}"
RUN_DIR="$HERE/.run/nginx-$NGINX_PORT"
CUTOVER_NGINX_DIR="${CUTOVER_NGINX_DIR:-$RUN_DIR/cutover}"
CONF="$RUN_DIR/nginx.conf"
PID_FILE="$RUN_DIR/nginx.pid"
ERROR_LOG="$RUN_DIR/logs/error.log"
TEMPLATE="$ROOT/deploy/nginx/ingest.conf.template"

SCRIPT=nginx.sh
PROC_MATCH=nginx
# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"

nginx_bin() {
  if command -v nginx >/dev/null; then command -v nginx; elif [[ -x /usr/sbin/nginx ]]; then echo /usr/sbin/nginx; else return 1; fi
}

# Root never runs nginx here: the master and workers run as nobody, so they own their prefix.
as_nginx_user() {
  if [[ "$(id -u)" == 0 ]]; then setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; else "$@"; fi
}

valid_hostport() {
  [[ "$1" =~ ^[A-Za-z0-9._-]+:[0-9]{1,5}$ ]]
}

render() {
  valid_hostport "$EDGE_UPSTREAM" || die "EDGE_UPSTREAM=$EDGE_UPSTREAM is not host:port"
  valid_hostport "$LEGACY_UPSTREAM" || die "LEGACY_UPSTREAM=$LEGACY_UPSTREAM is not host:port"
  [[ "$NGINX_WORKERS" =~ ^[0-9]+$ ]] || die "NGINX_WORKERS=$NGINX_WORKERS is not a number"
  [[ "$NGINX_MAX_BODY" =~ ^[0-9]+[kmgKMG]?$ ]] || die "NGINX_MAX_BODY=$NGINX_MAX_BODY is not a size"
  [[ "$CUTOVER_NGINX_DIR" =~ ^/[A-Za-z0-9._/-]+$ ]] || die "CUTOVER_NGINX_DIR must be an absolute path of plain characters"
  # Rendered into a quoted nginx string by sed: no quotes, backslashes, | or & that would break either.
  [[ "$LB_SHARED_SECRET" =~ ^[A-Za-z0-9._~+/=-]*$ ]] || die "LB_SHARED_SECRET may only use A-Z a-z 0-9 . _ ~ + / = -"
  mkdir -p "$RUN_DIR/logs" "$RUN_DIR/tmp" "$CUTOVER_NGINX_DIR"
  # Until ingestctl renders the set, everyone is on legacy (the safe default).
  [[ -f "$CUTOVER_NGINX_DIR/cutover-map.conf" ]] || echo "# empty: every tenant on legacy" >"$CUTOVER_NGINX_DIR/cutover-map.conf"
  [[ -f "$CUTOVER_NGINX_DIR/cutover-generation.conf" ]] || echo 'default "0";' >"$CUTOVER_NGINX_DIR/cutover-generation.conf"
  local daemon=on
  sed -e "s|@@PREFIX@@|$RUN_DIR|g" -e "s|@@LISTEN@@|$HOST:$NGINX_PORT|g" \
    -e "s|@@EDGE_UPSTREAM@@|$EDGE_UPSTREAM|g" -e "s|@@LEGACY_UPSTREAM@@|$LEGACY_UPSTREAM|g" \
    -e "s|@@CUTOVER_DIR@@|$CUTOVER_NGINX_DIR|g" -e "s|@@WORKERS@@|$NGINX_WORKERS|g" \
    -e "s|@@MAX_BODY@@|$NGINX_MAX_BODY|g" -e "s|@@DAEMON@@|$daemon|g" \
    -e "s|@@LB_SHARED_SECRET@@|$LB_SHARED_SECRET|g" "$TEMPLATE" >"$CONF.tmp"
  grep -v '^[[:space:]]*#' "$CONF.tmp" | grep -q '@@' && die "unrendered placeholder left in $CONF.tmp"
  mv "$CONF.tmp" "$CONF"
  if [[ "$(id -u)" == 0 ]]; then
    chown -R nobody:nogroup "$RUN_DIR"
    chown nobody:nogroup "$CUTOVER_NGINX_DIR"
  fi
}

nginx_cmd() {
  as_nginx_user "$(nginx_bin)" -p "$RUN_DIR" -c "$CONF" -e "$ERROR_LOG" "$@"
}

wait_generation_answer() {
  local deadline=$((SECONDS + NGINX_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if port_open "$NGINX_PORT" && running_pid >/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

cmd_start() {
  nginx_bin >/dev/null || apt_install nginx
  local pid
  if pid="$(running_pid)"; then
    render
    nginx_cmd -t -q || die "rendered config does not pass nginx -t"
    nginx_cmd -s reload
    echo "nginx already up on $HOST:$NGINX_PORT (pid $pid); config re-rendered and reloaded"
    return 0
  fi
  port_open "$NGINX_PORT" && die "port $NGINX_PORT is already in use by another process"
  render
  rm -f "$PID_FILE"
  : >"$ERROR_LOG"
  [[ "$(id -u)" == 0 ]] && chown nobody:nogroup "$ERROR_LOG"
  # 8>&-: the daemon must not inherit the port lock, or it would hold it for its whole life.
  nginx_cmd 8>&- || { tail -n 20 "$ERROR_LOG" >&2 || true; die "nginx failed to start"; }
  if wait_generation_answer; then
    echo "nginx up on $HOST:$NGINX_PORT (edge $EDGE_UPSTREAM, legacy $LEGACY_UPSTREAM)"
    return 0
  fi
  echo "--- last lines of $ERROR_LOG ---" >&2
  tail -n 30 "$ERROR_LOG" >&2 || true
  if pid="$(running_pid)"; then kill -KILL "$pid" 2>/dev/null || true; fi
  die "nginx did not come up on $HOST:$NGINX_PORT within ${NGINX_START_TIMEOUT}s"
}

cmd_reload() {
  running_pid >/dev/null || die "nginx on port $NGINX_PORT is not running"
  nginx_cmd -s reload
}

cmd_stop() {
  # TERM is nginx's fast shutdown: tests want the port back now, not after keep-alives drain.
  stop_server "$NGINX_STOP_TIMEOUT"
}

cmd_status() {
  local pid
  if pid="$(running_pid)" && port_open "$NGINX_PORT"; then
    echo "nginx up on $HOST:$NGINX_PORT (pid $pid)"
    return 0
  fi
  echo "nginx down on $HOST:$NGINX_PORT"
  return 3
}

# `export` lines: `eval "$(nginx.sh env)"` must put them in the environment of the commands that
# follow (pnpm ingestctl), not only in the shell; without NGINX_CONF there, ingestctl renders the
# map and reloads nothing.
cmd_env() {
  # printf repeats the format for each name/value pair; %q quotes a value for the shell.
  printf 'export %s=%q\n' \
    NGINX_BIN "$(nginx_bin || echo nginx)" \
    NGINX_PREFIX "$RUN_DIR" \
    NGINX_CONF "$CONF" \
    NGINX_ERROR_LOG "$ERROR_LOG" \
    NGINX_PID "$PID_FILE" \
    NGINX_URL "http://$HOST:$NGINX_PORT" \
    CUTOVER_NGINX_DIR "$CUTOVER_NGINX_DIR"
}

case "${1:-}" in
  start) with_port_lock "nginx-$NGINX_PORT" cmd_start ;;
  reload) with_port_lock "nginx-$NGINX_PORT" cmd_reload ;;
  stop) with_port_lock "nginx-$NGINX_PORT" cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 start|reload|stop|status|env" >&2
    exit 2
    ;;
esac
