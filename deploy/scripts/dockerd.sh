#!/usr/bin/env bash
# A private Docker daemon for `make images` / `make deploy-check`, stopped by PID (never by name):
#   deploy/scripts/dockerd.sh start   install docker.io when missing (apt-get, as root), start dockerd with its own
#                                     data root, socket and pid file under build/docker/, wait for `docker info`
#   deploy/scripts/dockerd.sh stop    SIGTERM the PID in the pid file, wait for it to exit (SIGKILL after 30 s)
#   deploy/scripts/dockerd.sh env     print `export DOCKER_HOST=...` (eval "$(deploy/scripts/dockerd.sh env)")
# No bridge and no iptables: containers and builds use `--network host`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/build/docker"
SOCK="$DIR/docker.sock"
PIDFILE="$DIR/dockerd.pid"
LOG="$DIR/dockerd.log"
START_TIMEOUT_S="${DOCKERD_START_TIMEOUT_S:-60}"

say() { printf '==> %s\n' "$*"; }
die() { printf 'dockerd: %s\n' "$*" >&2; exit 1; }

running_pid() {  # the PID in the pid file when that process is alive, else nothing
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_docker() {
  command -v dockerd >/dev/null && command -v docker >/dev/null && return 0
  command -v apt-get >/dev/null || die "dockerd is missing and apt-get is unavailable: install Docker first"
  [[ "$(id -u)" == 0 ]] || die "dockerd is missing: run as root, or 'apt-get install docker.io' first"
  say "installing docker.io (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
}

start() {
  if pid="$(running_pid)"; then
    say "dockerd already running (pid $pid, $SOCK)"
    return 0
  fi
  install_docker
  [[ "$(id -u)" == 0 ]] || die "dockerd needs root"
  mkdir -p "$DIR/root" "$DIR/exec"
  rm -f "$SOCK" "$PIDFILE"
  say "starting dockerd (data root $DIR/root, socket $SOCK, log $LOG)"
  # setsid: the daemon outlives this script; stop() ends it by the PID written here
  setsid dockerd \
    --data-root "$DIR/root" \
    --exec-root "$DIR/exec" \
    --host "unix://$SOCK" \
    --pidfile "$DIR/dockerd.self.pid" \
    --storage-driver overlay2 \
    --iptables=false --ip-masq=false --bridge=none \
    >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until [[ -S "$SOCK" ]] && docker -H "unix://$SOCK" info >/dev/null 2>&1; do
    if ! running_pid >/dev/null; then
      tail -n 20 "$LOG" >&2 || true
      die "dockerd exited during start (log above, $LOG)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$LOG" >&2 || true
      stop
      die "dockerd did not answer within ${START_TIMEOUT_S}s (log above)"
    fi
    sleep 0.5
  done
  say "dockerd $(docker -H "unix://$SOCK" version --format '{{.Server.Version}}') up (pid $(cat "$PIDFILE"))"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PIDFILE"
    say "dockerd not running"
    return 0
  fi
  say "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "dockerd still running after 30 s: SIGKILL $pid"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 3600))
    fi
    sleep 0.3
  done
  rm -f "$PIDFILE" "$SOCK"
  say "dockerd stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export DOCKER_HOST=unix://$SOCK" ;;
  *) die "usage: $0 start|stop|env" ;;
esac
