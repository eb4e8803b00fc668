#!/usr/bin/env bash
# The images' smoke test (`make deploy-check` runs it after helm-check.sh; too slow and docker-bound for `make test`):
# dockerd (started here and stopped again by PID on exit, unless one was already running), the gateway and registry
# images (built by build-images.sh when missing), then tests/integration/test_images_smoke.py: PostgreSQL on the host,
# the registry container on it, a fake engine container, the gateway container serving a chat completion through
# to it with a prompt from the registry, and images started without their keys exiting with one clear line.
# Containers are removed by id, PostgreSQL is stopped by PID.
# Environment: PYTHON (default .venv/bin/python), LLMOPS_IMAGE_TAG (default latest).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-.venv/bin/python}"
SCRIPTS=deploy/scripts

# deploy/compose.yaml: `docker-compose config` (Debian's docker-compose v1, apt-get when missing) with the example env
# file, and once more without a secret (it must refuse, naming it); its gateway config through llmops' own loader
compose_check() {
  local dir=build/compose-check
  rm -rf "$dir" && mkdir -p "$dir/docker"
  cp deploy/compose.yaml "$dir/" && cp deploy/docker/gateway.compose.yaml "$dir/docker/"
  "$PYTHON" -c 'import sys, pathlib; from llmops.config.gateway import load_gateway_file as load; load(pathlib.Path(sys.argv[1]))' \
    deploy/docker/gateway.compose.yaml
  if ! command -v docker-compose >/dev/null && command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    printf '==> installing docker-compose (apt-get) to validate deploy/compose.yaml\n'
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      docker-compose) >/dev/null 2>&1 || true
  fi
  if ! command -v docker-compose >/dev/null; then
    printf '==> docker-compose unavailable: deploy/compose.yaml gets a YAML sanity check only\n'
    "$PYTHON" - deploy/compose.yaml <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
services = doc["services"]
assert set(services) == {"postgres", "registry", "engine", "gateway"}, sorted(services)
for name, svc in services.items():
    assert svc.get("image") and svc.get("healthcheck"), name
    for dep, cond in (svc.get("depends_on") or {}).items():
        assert dep in services and cond == {"condition": "service_healthy"}, (name, dep)
PY
    return 0
  fi
  cp deploy/docker/compose.env.example "$dir/.env"
  docker-compose -f "$dir/compose.yaml" config -q
  grep -v '^LLMOPS_GATEWAY_KEY=' deploy/docker/compose.env.example >"$dir/.env"
  local err
  if err="$(docker-compose -f "$dir/compose.yaml" config -q 2>&1)"; then
    printf 'smoke: deploy/compose.yaml accepted a missing LLMOPS_GATEWAY_KEY\n' >&2; exit 1
  fi
  [[ "$err" == *LLMOPS_GATEWAY_KEY* ]] || { printf 'smoke: unexpected compose error: %s\n' "$err" >&2; exit 1; }
  printf '==> deploy/compose.yaml: valid (docker-compose config); refuses a missing key, naming it\n'
}
compose_check

eval "$("$SCRIPTS/dockerd.sh" env)"
if ! docker info >/dev/null 2>&1; then
  "$SCRIPTS/dockerd.sh" start
  trap '"$SCRIPTS/dockerd.sh" stop' EXIT
fi
missing=()
for role in gateway registry; do
  docker image inspect "llmops/$role:${LLMOPS_IMAGE_TAG:-latest}" >/dev/null 2>&1 || missing+=("$role")
done
if ((${#missing[@]})); then
  printf '==> images missing (%s): building them\n' "${missing[*]}"
  "$SCRIPTS/build-images.sh" "${missing[@]}"
fi
printf '==> smoke test: tests/integration/test_images_smoke.py\n'
LLMOPS_DEPLOY_SMOKE=1 "$PYTHON" -m pytest tests/integration/test_images_smoke.py -q -p no:cacheprovider
