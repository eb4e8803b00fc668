#!/usr/bin/env bash
# The base image of every llmops image: Debian bookworm minbase (python3 = 3.11) built by debootstrap from Debian's
# archive and `docker import`ed as llmops/base:bookworm. Reused when the image exists; the root filesystem tar is
# cached in build/base/ (delete it, or `docker rmi llmops/base:bookworm`, to rebuild).
# Needs a running daemon (deploy/scripts/dockerd.sh start); installs debootstrap (apt-get, as root) when missing.
# Environment: BASE_IMAGE (default llmops/base:bookworm), DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BASE_IMAGE="${BASE_IMAGE:-llmops/base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
OUT="$ROOT/build/base"
TAR="$OUT/bookworm-rootfs.tar"
# python3-venv: the images' venv (it brings pip's wheel); libnuma1/libgomp1: vLLM's CPU build
PACKAGES=python3,python3-venv,ca-certificates,passwd,libnuma1,libgomp1

say() { printf '==> %s\n' "$*"; }
die() { printf 'base-image: %s\n' "$*" >&2; exit 1; }

[[ -n "${DOCKER_HOST:-}" ]] || eval "$("$ROOT/deploy/scripts/dockerd.sh" env)"
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  say "$BASE_IMAGE exists: reused"
  exit 0
fi

if [[ ! -s "$TAR" ]]; then
  [[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
  if ! command -v debootstrap >/dev/null; then
    command -v apt-get >/dev/null || die "debootstrap is missing and apt-get is unavailable"
    say "installing debootstrap (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  fi
  mkdir -p "$OUT"
  rootfs="$(mktemp -d "$OUT/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  say "debootstrap --variant=minbase bookworm ($MIRROR; ~30-60 s)"
  start=$SECONDS
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 \
    || { tail -n 20 "$OUT/debootstrap.log" >&2; die "debootstrap failed (log above, $OUT/debootstrap.log)"; }
  # caches and docs nobody reads in a container
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log "$rootfs"/debootstrap
  tar --numeric-owner -C "$rootfs" -cf "$TAR.tmp" .
  mv "$TAR.tmp" "$TAR"
  say "root filesystem: $TAR ($(du -h "$TAR" | cut -f1), $((SECONDS - start)) s)"
fi

docker import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase --include=$PACKAGES bookworm" \
  "$TAR" "$BASE_IMAGE" >/dev/null
say "imported $BASE_IMAGE ($(docker image inspect "$BASE_IMAGE" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}'))"
