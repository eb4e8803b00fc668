#!/usr/bin/env bash
# `make images`: the llmops images, built here without a container registry:
#   1. dockerd (deploy/scripts/dockerd.sh start; stopped again on exit, failure included, if this script started it)
#   2. the base image llmops/base:bookworm (deploy/scripts/base-image.sh: debootstrap, docker import; reused)
#   3. wheels on the host (deploy/scripts/wheels.sh -> build/wheels/ROLE/, pinned by requirements/lock-cpu.txt)
#   4. each image with the legacy builder and --network host, from the context build/images/ROLE/; the image
#      installs with `pip install --no-index` only. Tags: llmops/ROLE:VERSION (llmops.__version__) and :latest.
#   5. a table of each image's size and build time (also in build/images/summary.txt)
#   deploy/scripts/build-images.sh [ROLE...]     default: gateway registry engine-cpu trainer
# Environment: BASE_IMAGE (default llmops/base:bookworm), PYTHON (default .venv/bin/python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-.venv/bin/python}"
export BASE_IMAGE="${BASE_IMAGE:-llmops/base:bookworm}"
SCRIPTS=deploy/scripts
OUT=build/images

say() { printf '==> %s\n' "$*"; }
die() { printf 'build-images: %s\n' "$*" >&2; exit 1; }

roles=("$@")
((${#roles[@]})) || roles=(gateway registry engine-cpu trainer)
for role in "${roles[@]}"; do
  [[ -f "deploy/docker/$role.Dockerfile" ]] || die "no deploy/docker/$role.Dockerfile"
done
[[ -x "$PYTHON" ]] || die "$PYTHON is missing: run 'make install' first"
VERSION="$("$PYTHON" -c 'import llmops; print(llmops.__version__)')"

eval "$("$SCRIPTS/dockerd.sh" env)"
if ! docker info >/dev/null 2>&1; then
  "$SCRIPTS/dockerd.sh" start
  trap '"$SCRIPTS/dockerd.sh" stop' EXIT
fi

t0=$SECONDS
"$SCRIPTS/base-image.sh"
say "base image: $((SECONDS - t0)) s"
t0=$SECONDS
"$SCRIPTS/wheels.sh" "${roles[@]}"
say "wheels: $((SECONDS - t0)) s"

mkdir -p "$OUT"
summary="$OUT/summary.txt"
printf '%-28s %10s %10s\n' IMAGE SIZE BUILD >"$summary.tmp"
for role in "${roles[@]}"; do
  ctx="$OUT/$role"
  rm -rf "$ctx"
  mkdir -p "$ctx/wheels"
  cp -l build/wheels/"$role"/*.whl build/wheels/llmops/*.whl "$ctx/wheels/" 2>/dev/null \
    || cp build/wheels/"$role"/*.whl build/wheels/llmops/*.whl "$ctx/wheels/"  # hard links where possible
  cp deploy/docker/entrypoint.py "$ctx/"
  tag="llmops/$role:$VERSION"
  say "docker build $tag (deploy/docker/$role.Dockerfile, context $ctx: $(du -sh "$ctx" | cut -f1))"
  t0=$SECONDS
  DOCKER_BUILDKIT=0 docker build --network host --force-rm -q \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "VERSION=$VERSION" \
    -f "deploy/docker/$role.Dockerfile" -t "$tag" -t "llmops/$role:latest" "$ctx" >"$OUT/$role.build.log" 2>&1 \
    || { tail -n 30 "$OUT/$role.build.log" >&2; die "docker build $tag failed (above; $OUT/$role.build.log)"; }
  took=$((SECONDS - t0))
  rm -rf "$ctx/wheels"
  docker image prune -f >/dev/null  # the install stage (wheels + venv, GBs for torch): only its copy is kept
  size="$(docker image inspect "$tag" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"
  printf '%-28s %10s %8d s\n' "$tag" "$size" "$took" | tee -a "$summary.tmp"
done
mv "$summary.tmp" "$summary"
say "images built (sizes are uncompressed, base layer included; $summary):"
cat "$summary"
