#!/usr/bin/env bash
# `make run`: PostgreSQL + Redis under $CALSERV_VAR_DIR, then nginx, the web tier, a worker, the
# sweeper, beat (alert feeds) and Flower under supervisord (deploy/supervisord.conf), in the foreground. A process that dies is
# started again and nothing else stops. Once the web tier answers /healthz it prints what to do
# next. Ctrl-C (or SIGTERM) stops every process, then the PostgreSQL and Redis it started.
# Ports: PORT (web, 5000), FLOWER_PORT (5555), CALSERV_PG_PORT (5433), CALSERV_REDIS_PORT (6380).
set -euo pipefail
cd "$(dirname "$0")/.."
export CALSERV_VAR_DIR="${CALSERV_VAR_DIR:-$PWD/var}"
VAR="$CALSERV_VAR_DIR"
mkdir -p "$VAR/run" "$VAR/log"
mkdir -p "$VAR/run/web" && chmod 700 "$VAR/run/web"  # gunicorn's socket: for nginx (same user) only
# Flower's password, read by deploy/flower.sh only: no other process gets it in its environment.
if [ ! -s "$VAR/flower-auth" ]; then
  (umask 077; echo "${FLOWER_BASIC_AUTH:-admin:$(head -c 18 /dev/urandom | base64 | tr -d '/+=')}" \
    >"$VAR/flower-auth")
fi
unset FLOWER_BASIC_AUTH
export WEB_PORT="${PORT:-5000}" FLOWER_PORT="${FLOWER_PORT:-5555}"
export WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-2}"

deploy/services.sh start

supervisor="" helper=""
stop() {
  trap '' INT TERM
  [ -z "$helper" ] || kill "$helper" 2>/dev/null || true
  # supervisord stops every process at once, each with its own stop signal, and waits for them
  # (stopwaitsecs). It acts on a signal only when its poll of its files returns, up to 1 s later:
  # a connection to its socket makes that at once.
  if [ -n "$supervisor" ] && kill -0 "$supervisor" 2>/dev/null; then
    kill -TERM "$supervisor" 2>/dev/null || true
    curl -s -m 1 -o /dev/null --unix-socket "$VAR/run/supervisor.sock" http://supervisord/RPC2 \
      -d '<methodCall><methodName>supervisor.getAPIVersion</methodName></methodCall>' || true
    wait "$supervisor" 2>/dev/null || true
  fi
  # Only then PostgreSQL and Redis (both at once): the processes use them while they stop.
  deploy/services.sh stop || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

# The next steps, printed once the web tier answers (a background helper, stopped with the rest).
next_steps() {
  local url="http://127.0.0.1:$WEB_PORT" env=""
  # A shell that did not get this instance's settings needs them to reach it.
  [ "$VAR" = "$PWD/var" ] || env+="CALSERV_VAR_DIR=$VAR "
  [ "${CALSERV_PG_PORT:-5433}" = 5433 ] || env+="CALSERV_PG_PORT=$CALSERV_PG_PORT "
  [ "${CALSERV_REDIS_PORT:-6380}" = 6380 ] || env+="CALSERV_REDIS_PORT=$CALSERV_REDIS_PORT "
  for _ in $(seq 600); do
    if curl -fsS -m 2 -o /dev/null "$url/healthz" 2>/dev/null; then
      cat <<EOF

calserv is running: $url   (Ctrl-C stops everything)
  Flower        http://127.0.0.1:$FLOWER_PORT   user:password in $VAR/flower-auth
  First key     $env.venv/bin/flask --app web observatory add "My Telescope" --lon 20.81 --lat -32.38 --filters R,V
  An alert      $env.venv/bin/flask --app web alert add ivo://110610 --name Gaia16aye --ra 295.00471 --dec 30.13150
  Processes     CALSERV_VAR_DIR=$VAR .venv/bin/supervisorctl -c deploy/supervisord.conf status
  Then upload as README.md's "Using it" shows.

EOF
      return
    fi
    sleep 0.5
  done
  echo "calserv: the web tier did not answer $url/healthz within 5 minutes (see the log above)" >&2
}

.venv/bin/supervisord -c deploy/supervisord.conf &
supervisor=$!
next_steps &
helper=$!
wait "$supervisor"
