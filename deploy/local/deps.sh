#!/usr/bin/env bash
# Installs the Debian packages the integration tests start or call (Redis, nginx, zstd, Java and
# Maven for the Kafka broker, promtool for the alert rule tests, an old clickhouse-server for the version check), only those missing. Safe to run
# repeatedly; quiet when all present.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPT=deps.sh
# shellcheck source=deploy/local/lib.sh
source "$HERE/lib.sh"

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v zstd >/dev/null || missing+=(zstd)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
# promtool ships in Debian's prometheus package; the server runs the documented remote_write
# config in e2e/prometheus-server.integration.test.ts.
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
# Debian's clickhouse-server is 18.16, older than the minimum the store supports: the version check's
# test starts it on private ports to see the start refused (packages/storage server-version test).
command -v clickhouse-server >/dev/null || [[ -x /usr/sbin/clickhouse-server ]] || missing+=(clickhouse-server)
if ((${#missing[@]} > 0)); then apt_install "${missing[@]}"; fi
