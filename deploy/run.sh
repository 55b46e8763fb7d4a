#!/usr/bin/env bash
# Run the Procfile (web, worker, beat, flower) in the foreground; Ctrl-C stops it and the
# PostgreSQL + Redis that `make run` started.
set -euo pipefail
cd "$(dirname "$0")/.."
VAR="${CALSERV_VAR_DIR:-$PWD/var}"
mkdir -p "$VAR/run"
if [ -z "${FLOWER_BASIC_AUTH:-}" ]; then
  [ -s "$VAR/flower-auth" ] || (umask 077; echo "admin:$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" > "$VAR/flower-auth")
  FLOWER_BASIC_AUTH="$(cat "$VAR/flower-auth")"
fi
export FLOWER_BASIC_AUTH WEB_PORT="${PORT:-5000}"
cleanup() { deploy/services.sh stop || true; }
trap cleanup EXIT
echo "calserv: web http://127.0.0.1:$WEB_PORT  flower http://127.0.0.1:${FLOWER_PORT:-5555} (user:password in $VAR/flower-auth)"
.venv/bin/honcho start -f Procfile
