#!/usr/bin/env bash
# The distributed image's build (deploy/k8s/Dockerfile), in a checkout with all dependencies
# installed: compiles services and packages to JavaScript in place of their TypeScript, points the
# workspace packages at it, drops dev dependencies and chDB (the distributed deployment stores in a
# ClickHouse server, CLICKHOUSE_URL). Leaves a tree that runs with plain `node`, no tsx.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

rm -rf build
pnpm exec tsc -p deploy/k8s/tsconfig.build.json
# Each .js lands beside the .ts it came from; the sources and tests go.
cp -r build/. .
rm -rf build
find services/*/src packages/*/src -name '*.ts' -delete
node deploy/k8s/compiled-exports.mjs
# A fresh production install (pnpm leaves dev dependencies in its virtual store when pruning).
rm -rf node_modules packages/*/node_modules services/*/node_modules
CI=true pnpm install --prod --frozen-lockfile --offline --ignore-scripts >/dev/null
# chDB (the engine, ~540 MB) is loaded only when CLICKHOUSE_URL is unset: without it the image is
# about a tenth of the size, and a sink writer without CLICKHOUSE_URL fails at start instead of
# writing to its pod's disk.
rm -rf node_modules/.pnpm/chdb@* node_modules/.pnpm/@chdb+* packages/storage/node_modules/chdb
echo "build-dist: compiled; chdb removed"
