# Shared by deploy/local/{kafka,redis,nginx}.sh: process and port handling for the local servers
# tests start. Source it after setting SCRIPT (for messages), HOST, PID_FILE and PROC_MATCH (a
# pattern the server's /proc/<pid>/cmdline must contain, so a recycled pid is never mistaken for it).
# shellcheck shell=bash

die() {
  echo "$SCRIPT: $*" >&2
  exit 1
}

# bash's /dev/tcp: no nc/ss dependency. A refused connect on loopback returns at once.
port_open() {
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# The pid file alone is not proof: after a reboot or a crash the pid may belong to anything.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$PROC_MATCH" || return 1
  echo "$pid"
}

# stop_server TIMEOUT_SECONDS: TERM, wait up to the bound, then KILL (and its children).
stop_server() {
  local timeout="$1" pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$SCRIPT: $pid did not stop within ${timeout}s, killing it" >&2
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PID_FILE"
}

# with_port_lock NAME CMD...: two starters at once (parallel test files) must not both launch a
# server on one port; start, reload and stop of one port are serialized, and the second starter
# finds the first one's server running. The lock is fd 8: daemons must be started with 8>&-.
with_port_lock() {
  local name="$1"
  shift
  mkdir -p "$HERE/.run"
  exec 8>"$HERE/.run/$name.lock"
  flock 8
  "$@"
}

# show_log_tail FILE [LINES]
show_log_tail() {
  if [[ -f "$1" ]]; then
    echo "--- last lines of $1 ---" >&2
    tail -n "${2:-40}" "$1" >&2 || true
  fi
}

# apt_install PKG...: installs Debian packages non-interactively (as root, or through sudo -n).
# Shared by deps.sh and the server scripts that install their server on first use.
apt_install() {
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "$* not installed and there is no sudo to install it"
    sudo=(sudo -n)
  fi
  echo "$SCRIPT: installing $* with apt-get" >&2
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >&2
}
