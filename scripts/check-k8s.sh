#!/usr/bin/env bash
# Validates deploy/k8s against the Kubernetes API schemas: `kustomize build` (what `kubectl apply -k`
# applies), then kubeconform -strict (unknown fields are errors) for each Kubernetes version below.
# Part of `pnpm check:deploy`.
#
# Tools and schemas come from package registries, cached under deploy/local/.cache (bounded: each
# step has a timeout): kubeconform and kustomize from the Go module proxy, and the Kubernetes JSON
# schemas from the kubernetes-validate wheel on PyPI (kubeconform's default schema location is a
# GitHub repository, which this project's machines do not reach). The wheel's schemas point at a
# shared _definitions.json by an absolute URL; they are rewritten once, at unpacking, to refer to
# the file beside them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KUBECONFORM_VERSION=v0.7.0
KUSTOMIZE_VERSION=v5.7.1
SCHEMAS_VERSION=1.37.0 # the kubernetes-validate release
# The oldest Kubernetes minor still in upstream support and a current one.
K8S_VERSIONS=(1.32.0 1.35.0)

CACHE=deploy/local/.cache
BIN="$PWD/$CACHE/bin"
SCHEMAS="$PWD/$CACHE/k8s-schemas/$SCHEMAS_VERSION"
mkdir -p "$BIN"

need_go_tool() { # name module version
  local name="$1" module="$2" version="$3" stamp="$BIN/.$1-$3"
  [[ -x "$BIN/$name" && -f "$stamp" ]] && return 0
  command -v go >/dev/null || { echo "check-k8s: $name missing and no Go toolchain to build it" >&2; exit 1; }
  echo "check-k8s: installing $name $version from the Go module proxy" >&2
  GOBIN="$BIN" GOFLAGS=-mod=mod timeout 600 go install "$module@$version"
  touch "$stamp"
}
need_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
need_go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"

if [[ ! -f "$SCHEMAS/.complete" ]]; then
  echo "check-k8s: fetching Kubernetes schemas (kubernetes-validate $SCHEMAS_VERSION from PyPI)" >&2
  rm -rf "$SCHEMAS" && mkdir -p "$SCHEMAS"
  timeout 600 python3 -m pip download -q --no-deps --only-binary=:all: -d "$SCHEMAS/wheel" "kubernetes-validate==$SCHEMAS_VERSION"
  python3 - "$SCHEMAS" "${K8S_VERSIONS[@]}" <<'PY'
import glob, json, os, sys, zipfile
out, versions = sys.argv[1], sys.argv[2:]
wheel = glob.glob(os.path.join(out, 'wheel', '*.whl'))[0]
with zipfile.ZipFile(wheel) as z:
    for v in versions:
        prefix = f'kubernetes_validate/kubernetes-json-schema/v{v}-local-strict/'
        names = [n for n in z.namelist() if n.startswith(prefix) and n.endswith('.json')]
        if not names:
            sys.exit(f'check-k8s: kubernetes-validate has no schemas for Kubernetes {v}')
        dest = os.path.join(out, f'v{v}')
        os.makedirs(dest, exist_ok=True)
        for n in names:
            doc = json.loads(z.read(n))
            if isinstance(doc, dict):
                # The $id would make "/api/_definitions.json" an https URL kubeconform tries to fetch.
                doc.pop('$id', None)
            text = json.dumps(doc).replace('"/api/_definitions.json#', '"_definitions.json#')
            with open(os.path.join(dest, os.path.basename(n)), 'w') as f:
                f.write(text)
PY
  rm -rf "$SCHEMAS/wheel"
  touch "$SCHEMAS/.complete"
fi

rendered="$(mktemp --suffix=.yaml)"
bad="$(mktemp --suffix=.yaml)"
trap 'rm -f "$rendered" "$bad"' EXIT
"$BIN/kustomize" build deploy/k8s >"$rendered"

# Custom resources have no schema in the Kubernetes API: kubeconform skips the kinds listed here
# and scripts/check-k8s-crds.mjs checks them against their CRDs' schemas. Any other kind without a
# schema fails.
CRD_KINDS=monitoring.coreos.com/v1/PodMonitor
for v in "${K8S_VERSIONS[@]}"; do
  "$BIN/kubeconform" -strict -summary -output text -kubernetes-version "$v" -skip "$CRD_KINDS" \
    -schema-location "$SCHEMAS/{{ .NormalizedKubernetesVersion }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    "$rendered" | sed "s/^/check-k8s: Kubernetes $v: /"
done
python3 -c 'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))' "$rendered" |
  node scripts/check-k8s-crds.mjs

# Every image pinned to a tag (or digest), never latest.
if grep -nE '^\s*image:' "$rendered" | grep -vE 'image: [^ :]+(:[^ ]+|@sha256:[0-9a-f]+)$|:latest$' | grep -q .; then
  echo "check-k8s: an image without a tag:" >&2; grep -nE '^\s*image:' "$rendered" >&2; exit 1
fi
if grep -nE '^\s*image: .*:latest$' "$rendered"; then echo "check-k8s: an image tagged latest (pin a version)" >&2; exit 1; fi

# The check itself is checked: a manifest with a field the API does not have must fail it.
printf 'apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec: {maxUnavailable: 1, maxUnavailabel: 1}\n' >"$bad"
if "$BIN/kubeconform" -strict -kubernetes-version "${K8S_VERSIONS[0]}" \
  -schema-location "$SCHEMAS/{{ .NormalizedKubernetesVersion }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$bad" >/dev/null; then
  echo "check-k8s: a manifest with an unknown field passed validation; the schemas are not being applied" >&2
  exit 1
fi
echo "check-k8s: kubeconform -strict: ok"
