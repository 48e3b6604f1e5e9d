#!/usr/bin/env bash
# Local backing services for the integration tests, from Debian packages, on loopback only.
# (`mlops up` also uses Debian's prometheus and prometheus-pushgateway when they are installed.)
#
#   scripts/services.sh install   # apt-get install what is missing (idempotent, quiet)
#   scripts/services.sh start     # throwaway PostgreSQL + Redis, writes build/services/env
#   scripts/services.sh status    # exit 0 only if both are up
#   scripts/services.sh stop
#
# Data lives under build/services/ (delete it to start from scratch). The env file holds
# MLOPS_TEST_POSTGRES_URL (a generated password, never a default one) and MLOPS_TEST_REDIS_URL;
# integration tests read it. Ports are fixed and high so they do not clash with system services;
# override with MLOPS_SERVICES_PG_PORT / MLOPS_SERVICES_REDIS_PORT.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${MLOPS_SERVICES_DIR:-$ROOT/build/services}"
PG_PORT="${MLOPS_SERVICES_PG_PORT:-55432}"
REDIS_PORT="${MLOPS_SERVICES_REDIS_PORT:-56379}"
PG_DATA="$DIR/postgres"  # moved to /tmp by resolve_pg_data if the cluster owner can't reach it
PG_USER="mlops"
PG_DB="mlops"
REDIS_DIR="$DIR/redis"
ENV_FILE="$DIR/env"

# Debian package -> a file that proves it is usable (so "install" is a no-op when present).
PACKAGES=(
  "postgresql:/usr/lib/postgresql"
  "redis-server:/usr/bin/redis-server"
  "prometheus:/usr/bin/promtool"
  "prometheus-pushgateway:/usr/bin/prometheus-pushgateway"
  "chromium:/usr/bin/chromium"
  "chromium-driver:/usr/bin/chromedriver"
  "wrk:/usr/bin/wrk"
)

log() { echo "services: $*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

cmd_install() {
  local missing=() entry pkg probe
  for entry in "${PACKAGES[@]}"; do
    pkg="${entry%%:*}" probe="${entry#*:}"
    if [[ ! -e "$probe" ]] || ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null \
      | grep -q "ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "all packages present"
    return 0
  fi
  command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
  log "installing ${missing[*]}"
  # Package post-install scripts would start system-wide daemons (postgres on 5432, prometheus
  # on 9090); we run our own throwaway instances, so forbid that for the duration (policy-rc.d
  # is Debian's documented switch for it).
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"
    created_policy=1
  fi
  if [[ $created_policy -eq 1 ]]; then
    # shellcheck disable=SC2064  # expand now: the trap must remove exactly this file
    trap "as_root rm -f '$policy'" EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "installed ${missing[*]}"
}

pg_bin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [[ -n $bin ]] || die "PostgreSQL not installed — run: scripts/services.sh install"
  echo "$bin"
}

# PostgreSQL refuses to run as root, so the cluster belongs to an unprivileged user.
pg_owner() {
  if [[ $EUID -ne 0 ]]; then id -un; elif id postgres >/dev/null 2>&1; then echo postgres; else
    die "no 'postgres' user to own the cluster — run: scripts/services.sh install"
  fi
}

as_owner() {
  local owner
  owner="$(pg_owner)"
  if [[ $EUID -eq 0 ]]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}

# The cluster's owner must be able to reach its data dir; a checkout under a private home
# (e.g. /root, mode 700) is not reachable for `postgres`, so the cluster then lives in /tmp,
# under a name derived from this checkout's path (stable across start/status/stop).
resolve_pg_data() {
  [[ $EUID -eq 0 ]] || return 0
  id postgres >/dev/null 2>&1 || return 0
  mkdir -p "$DIR"
  if ! runuser -u postgres -- test -x "$DIR"; then
    PG_DATA="${TMPDIR:-/tmp}/mlops-services-$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)/postgres"
    mkdir -p "$(dirname "$PG_DATA")"
    chmod 755 "$(dirname "$PG_DATA")"
  fi
}

pg_running() { [[ -f "$PG_DATA/PG_VERSION" ]] && as_owner "$(pg_bin)/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

redis_running() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

start_postgres() {
  local bin owner password
  bin="$(pg_bin)"
  owner="$(pg_owner)"
  mkdir -p "$DIR"
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    rm -rf "$PG_DATA"
    mkdir -p "$PG_DATA"
    # A fresh random password per cluster; kept (mode 600) so restarts reuse it.
    password="$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
    (umask 077 && printf '%s\n' "$password" >"$DIR/postgres.password")
    # initdb needs an empty data dir and a password file its owner can read.
    local pwfile
    pwfile="$(dirname "$PG_DATA")/.initdb.pw"
    (umask 077 && cp "$DIR/postgres.password" "$pwfile")
    chown "$owner" "$pwfile" "$PG_DATA"
    chmod 700 "$PG_DATA"
    as_owner "$bin/initdb" -D "$PG_DATA" -U "$PG_USER" --pwfile="$pwfile" \
      --auth=scram-sha-256 --encoding=UTF8 --locale=C >"$DIR/initdb.log" 2>&1 \
      || die "initdb failed, see $DIR/initdb.log"
    rm -f "$pwfile"
  fi
  if ! pg_running; then
    # Socket in the data dir (not /var/run/postgresql, which may not exist or be shared).
    as_owner "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA" start >/dev/null \
      || die "PostgreSQL did not start, see $PG_DATA/server.log"
  fi
  password="$(cat "$DIR/postgres.password")"
  if ! PGPASSWORD="$password" "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres \
    -tAc "SELECT 1 FROM pg_database WHERE datname='$PG_DB'" | grep -q 1; then
    PGPASSWORD="$password" "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
  fi
  log "postgres up on 127.0.0.1:$PG_PORT"
}

start_redis() {
  command -v redis-server >/dev/null || die "redis-server not installed — run: scripts/services.sh install"
  mkdir -p "$REDIS_DIR"
  if ! redis_running; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$REDIS_DIR" --daemonize yes \
      --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
      --save "" --appendonly no >/dev/null
    for _ in $(seq 50); do redis_running && break; sleep 0.1; done
    redis_running || die "Redis did not start, see $REDIS_DIR/redis.log"
  fi
  log "redis up on 127.0.0.1:$REDIS_PORT"
}

write_env() {
  local password
  password="$(cat "$DIR/postgres.password")"
  touch "$ENV_FILE" && chmod 600 "$ENV_FILE"
  cat >"$ENV_FILE" <<EOF
MLOPS_TEST_POSTGRES_URL=postgresql://$PG_USER:$password@127.0.0.1:$PG_PORT/$PG_DB
MLOPS_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
EOF
  log "wrote $ENV_FILE"
}

cmd_start() {
  start_postgres
  start_redis
  write_env
}

cmd_stop() {
  if pg_running; then
    as_owner "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    log "postgres stopped"
  fi
  if redis_running; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    log "redis stopped"
  fi
}

cmd_status() {
  local ok=0
  if pg_running; then log "postgres: running on 127.0.0.1:$PG_PORT"; else log "postgres: stopped"; ok=1; fi
  if command -v redis-cli >/dev/null && redis_running; then
    log "redis: running on 127.0.0.1:$REDIS_PORT"
  else
    log "redis: stopped"
    ok=1
  fi
  return $ok
}

[[ "${1:-}" == install ]] || resolve_pg_data

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 {install|start|stop|status}" >&2
    exit 2
    ;;
esac
