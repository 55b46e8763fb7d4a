#!/usr/bin/env bash
# Start/stop the local PostgreSQL 15 and Redis that calserv uses, under $CALSERV_VAR_DIR (./var).
# PostgreSQL refuses to run as root, so when we are root it runs as the unprivileged `postgres` user.
# TCP logins need a password (scram-sha-256): the `calserv` role's is generated once into
# $CALSERV_VAR_DIR/pg-password (mode 600), where config.py reads it to build the database URL.
# Administration goes through the Unix socket in $CALSERV_VAR_DIR/run, which only the cluster's
# owner (and root) may open. A cluster made by an older version (trust) is upgraded in place.
# Usage: deploy/services.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/.."
VAR="${CALSERV_VAR_DIR:-$PWD/var}"
PG_PORT="${CALSERV_PG_PORT:-5433}"
REDIS_PORT="${CALSERV_REDIS_PORT:-6380}"
PG_BIN="${PG_BIN:-/usr/local/bin}"
[ -x "$PG_BIN/pg_ctl" ] || PG_BIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | tail -1)")"
PGDATA="$VAR/pg"
RUN="$VAR/run"
PG_PASSWORD_FILE="$VAR/pg-password"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_pg_user() {
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin postgres
  fi
}

pg_start() {
  ensure_pg_user
  mkdir -p "$VAR" "$RUN" "$VAR/log"
  chmod 755 "$VAR"
  if [ "$(id -u)" = 0 ]; then chown postgres "$RUN" "$VAR/log"; fi
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    [ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
    chmod 700 "$PGDATA"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth-host=scram-sha-256 --auth-local=trust \
      -E UTF8 --no-locale >/dev/null
  fi
  if [ ! -s "$PG_PASSWORD_FILE" ]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$PG_PASSWORD_FILE")
  fi
  chmod 600 "$PG_PASSWORD_FILE"
  local upgraded=0
  if grep -Eq '^host.*trust[[:space:]]*$' "$PGDATA/pg_hba.conf"; then  # a cluster from before
    as_pg sed -i -E '/^host/s/trust[[:space:]]*$/scram-sha-256/' "$PGDATA/pg_hba.conf"
    upgraded=1
  fi
  if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    echo "postgres: already running on 127.0.0.1:$PG_PORT"
  else
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$VAR/log/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k $RUN -c listen_addresses=127.0.0.1 -c unix_socket_permissions=0700 -c fsync=${CALSERV_PG_FSYNC:-on}" start >/dev/null
    echo "postgres: started on 127.0.0.1:$PG_PORT"
  fi
  local admin=(psql -h "$RUN" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1)
  "${admin[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname='calserv'" \
    | grep -q 1 || "${admin[@]}" -qc "CREATE ROLE calserv LOGIN"
  # CREATEDB: each test session makes (and drops) a database of its own.
  # On stdin, not in argv: a command line is visible to every local user.
  "${admin[@]}" -q <<<"ALTER ROLE calserv CREATEDB PASSWORD '$(cat "$PG_PASSWORD_FILE")'"
  if [ "$upgraded" = 1 ]; then
    "${admin[@]}" -tAc "SELECT pg_reload_conf()" >/dev/null
    echo "postgres: TCP logins now need the password in $PG_PASSWORD_FILE (scram-sha-256)"
  fi
  for db in ${CALSERV_DATABASES:-calserv calserv_test}; do
    "${admin[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" \
      | grep -q 1 || "${admin[@]}" -qc "CREATE DATABASE $db OWNER calserv"
  done
}

pg_stop() {
  if [ -s "$PGDATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null && echo "postgres: stopped"
  fi
}

REDIS_PASSWORD_FILE="$VAR/redis-password"

# The password travels in the environment (REDISCLI_AUTH), never in argv, which `ps` shows.
redis_cli() {
  if [ -s "$REDIS_PASSWORD_FILE" ]; then
    REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE")" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
  else
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
  fi
}

# Redis asks every client for the password generated once into $CALSERV_VAR_DIR/redis-password
# (mode 600, by `start`), where config.py reads it to build the Redis URL: another local user can
# neither read nor delete the queue. The configuration, password included, goes in on stdin.
redis_start() {
  mkdir -p "$VAR/redis" "$VAR/log" "$RUN"
  if redis_cli ping 2>/dev/null | grep -q PONG; then
    echo "redis: already running on 127.0.0.1:$REDIS_PORT"
    [ -s "$REDIS_PASSWORD_FILE" ] || echo "redis: it has no password (started by an older calserv): \`make stop\` and start it again to set one"
    return
  fi
  local auth=()
  [ -s "$REDIS_PASSWORD_FILE" ] && auth=("requirepass $(cat "$REDIS_PASSWORD_FILE")")
  printf '%s\n' "bind 127.0.0.1" "port $REDIS_PORT" "dir $VAR/redis" "appendonly yes" \
    "appendfsync everysec" "maxmemory-policy noeviction" "daemonize yes" \
    "pidfile $RUN/redis.pid" "logfile $VAR/log/redis.log" "protected-mode yes" "${auth[@]}" \
    | redis-server -
  for _ in $(seq 50); do redis_cli ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  redis_cli ping | grep -q PONG
  echo "redis: started on 127.0.0.1:$REDIS_PORT (AOF on, noeviction${auth:+, password in $REDIS_PASSWORD_FILE})"
}

# The Redis password, made once by `start` for a Redis it is about to start: a running Redis (and
# the clients connected to it) keeps the password it has, or its lack of one, until `make stop`.
redis_password() {
  if [ ! -s "$REDIS_PASSWORD_FILE" ] && ! redis_cli ping 2>/dev/null | grep -q PONG; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$REDIS_PASSWORD_FILE")
  fi
  [ ! -e "$REDIS_PASSWORD_FILE" ] || chmod 600 "$REDIS_PASSWORD_FILE"
}

redis_stop() {
  if redis_cli ping 2>/dev/null | grep -q PONG; then redis_cli shutdown >/dev/null 2>&1 || true; echo "redis: stopped"; fi
}

# This machine's own secret key and hashtag pepper (mode 600), which config.py reads when
# CALSERV_SECRET_KEY / CALSERV_HASHTAG_PEPPER are not set: the app, the workers and a CLI in a new
# shell all agree without anything exported. Production sets both in /etc/calserv/env instead.
local_secrets() {
  mkdir -p "$VAR"
  for name in secret-key hashtag-pepper; do
    [ -s "$VAR/$name" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$VAR/$name")
  done
}

case "${1:-}" in
  start) local_secrets; redis_password; pg_start; redis_start ;;
  secrets) local_secrets ;;
  stop) redis_stop & pg_stop; wait ;;  # both at once: Ctrl-C on `make run` ends in seconds
  status)
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status || true
    redis_cli ping || true ;;
  start-postgres) pg_start ;; stop-postgres) pg_stop ;;
  start-redis) redis_start ;; stop-redis) redis_stop ;;
  *) echo "usage: $0 start|stop|status|secrets|start-postgres|stop-postgres|start-redis|stop-redis" >&2; exit 2 ;;
esac
