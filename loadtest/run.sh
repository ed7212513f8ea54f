#!/usr/bin/env bash
# Runs one k6 profile against a running stack (`pnpm start`): installs a pinned k6 if needed,
# creates fresh tenants with `pnpm ingestctl tenants add`, and runs loadtest/ingest.js.
#
#   loadtest/run.sh [smoke|steady|burst|noisy-neighbour] [extra k6 args...]
#   PROFILE=burst BATCH_SIZE=200 GZIP=1 loadtest/run.sh
#
# The stack must use the same tenants file as this script: pass the same INGEST_DATA_DIR (or
# TENANTS_FILE) and the same EDGE_PORT you gave `pnpm start`. See loadtest/README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
K6_VERSION="v1.8.1"
CACHE="$HERE/.cache"

PROFILE="${1:-${PROFILE:-smoke}}"
[ $# -gt 0 ] && shift
case "$PROFILE" in
  smoke | steady | burst | noisy-neighbour) ;;
  *)
    echo "unknown profile \"$PROFILE\": one of smoke, steady, burst, noisy-neighbour" >&2
    exit 2
    ;;
esac

EDGE_URL="${EDGE_URL:-http://127.0.0.1:${EDGE_PORT:-8080}}"
case "$EDGE_URL" in
  http://127.* | http://localhost* | http://\[::1\]*) ;;
  *)
    echo "EDGE_URL=$EDGE_URL is not a loopback address; load tests only target this machine" >&2
    exit 2
    ;;
esac

# --- k6 ---------------------------------------------------------------------------------------
# K6=/path/to/k6 overrides; otherwise the pinned build in loadtest/.cache/bin, built once with
# `go install` (a few minutes on 2 cores; needs Go >= 1.25 and the Go module proxy).
k6_bin() {
  if [ -n "${K6:-}" ]; then
    echo "$K6"
    return
  fi
  local bin="$CACHE/bin/k6"
  if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "k6 ${K6_VERSION} "; then
    echo "$bin"
    return
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "k6 is not installed and Go is not available to build it; install Go >= 1.25 or set K6=/path/to/k6" >&2
    exit 1
  fi
  echo "installing k6 ${K6_VERSION} into $CACHE/bin (go install, takes a few minutes)..." >&2
  mkdir -p "$CACHE/bin"
  GOBIN="$CACHE/bin" go install "go.k6.io/k6@${K6_VERSION}" >&2
  echo "$bin"
}
K6_BIN="$(k6_bin)"
"$K6_BIN" version >&2

# --- the stack --------------------------------------------------------------------------------
if ! curl -fsS -m 3 "$EDGE_URL/readyz" >/dev/null 2>&1; then
  echo "the edge at $EDGE_URL is not ready (GET /readyz failed)." >&2
  echo "start the stack first, e.g.:  INGEST_DATA_DIR=/tmp/k6-data pnpm start" >&2
  echo "and run this script with the same INGEST_DATA_DIR and EDGE_PORT." >&2
  exit 1
fi

RUN_ID="${RUN_ID:-$(date +%s)-$$}"
RUN_TAG="$(date +%s)"

# Creates a tenant (optionally with limits) and prints its API key.
add_tenant() {
  local out
  out="$(cd "$ROOT" && pnpm --silent ingestctl tenants add "$@" --json)"
  printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s.trim().split("\n").pop());if(!j.apiKey)process.exit(1);process.stdout.write(j.apiKey)})'
}

# The edge re-reads the tenants file about once a second; wait until the key is accepted.
wait_for_key() {
  local key="$1" code
  for _ in $(seq 1 20); do
    code="$(curl -s -o /dev/null -w '%{http_code}' -m 3 -X POST "$EDGE_URL/v2/ingest" \
      -H "authorization: Bearer $key" -H 'content-type: application/json' -d '[]' || true)"
    # 400 INGEST_ERR_EMPTY_BATCH means the key was accepted (and nothing was written).
    if [ "$code" != "401" ] && [ "$code" != "000" ]; then return 0; fi
    sleep 0.5
  done
  echo "the edge did not pick up the new key within 10 s; is it reading the same tenants file (INGEST_DATA_DIR / TENANTS_FILE)?" >&2
  exit 1
}

if [ -z "${API_KEY:-}" ]; then
  if [ "$PROFILE" = "noisy-neighbour" ]; then
    # The noisy tenant gets low limits so that its burst is clearly over them.
    API_KEY="$(add_tenant "k6-noisy-$RUN_TAG" --eps "${NOISY_EPS:-5000}" --rps "${NOISY_RPS:-50}")"
  else
    API_KEY="$(add_tenant "k6-$PROFILE-$RUN_TAG")"
  fi
  echo "created tenant for API_KEY (${API_KEY:0:11}…)" >&2
fi
if [ "$PROFILE" = "noisy-neighbour" ] && [ -z "${API_KEY_2:-}" ]; then
  API_KEY_2="$(add_tenant "k6-steady-$RUN_TAG")"
  echo "created tenant for API_KEY_2 (${API_KEY_2:0:11}…)" >&2
fi
wait_for_key "$API_KEY"
[ -n "${API_KEY_2:-}" ] && wait_for_key "$API_KEY_2"

mkdir -p "$CACHE/results"
SUMMARY="$CACHE/results/$PROFILE-$RUN_TAG.json"

export PROFILE EDGE_URL API_KEY RUN_ID
export API_KEY_2="${API_KEY_2:-}"
set +e
"$K6_BIN" run --summary-export "$SUMMARY" "$@" "$HERE/ingest.js"
rc=$?
set -e
echo "summary: $SUMMARY" >&2
exit $rc
