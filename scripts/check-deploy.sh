#!/usr/bin/env bash
# Config checks for what ships under deploy/ and runs outside this repo's processes: every YAML and
# JSON parses, the envoy routes are consistent (deploy/envoy/validate.py), and — where promtool is
# installed — the Prometheus config, alert rules and their unit tests pass. Part of `pnpm test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml

python3 - <<'PY'
import glob, json, sys, yaml
bad = 0
for f in sorted(glob.glob('deploy/**/*.y*ml', recursive=True)):
    try:
        list(yaml.safe_load_all(open(f)))
    except Exception as e:  # noqa: BLE001
        print(f"{f}: {e}", file=sys.stderr); bad += 1
for f in sorted(glob.glob('deploy/**/*.json', recursive=True)):
    try:
        json.load(open(f))
    except Exception as e:  # noqa: BLE001
        print(f"{f}: {e}", file=sys.stderr); bad += 1
print(f"check-deploy: yaml/json parse: {'ok' if bad == 0 else f'{bad} bad'}")
sys.exit(1 if bad else 0)
PY

python3 deploy/envoy/validate.py

# Kubernetes manifests against the API schemas (kustomize build | kubeconform -strict).
bash scripts/check-k8s.sh

if command -v promtool >/dev/null; then
  promtool check rules deploy/prometheus/alerts.yml >/dev/null
  promtool test rules deploy/prometheus/alerts.test.yml >/dev/null
  echo "check-deploy: promtool rules and rule tests: ok"
else
  echo "check-deploy: promtool not installed; alert rules checked for YAML only"
fi
