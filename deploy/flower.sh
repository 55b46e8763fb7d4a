#!/bin/sh
# Flower with its password in its own environment only: FLOWER_BASIC_AUTH=user:password, read by
# Flower itself (never on the command line, which every local user can read with `ps`). Under
# `make run` it comes from $CALSERV_VAR_DIR/flower-auth (mode 600, made by deploy/run.sh), so no
# other process started by supervisord has it; systemd gives it to Flower alone
# (EnvironmentFile=/etc/calserv/flower.env in calserv-flower.service).
# Usage: deploy/flower.sh [celery flower options]
set -eu
cd "$(dirname "$0")/.."
if [ -z "${FLOWER_BASIC_AUTH:-}" ]; then
  FLOWER_BASIC_AUTH="$(cat "${CALSERV_VAR_DIR:-$PWD/var}/flower-auth")"
fi
export FLOWER_BASIC_AUTH
exec .venv/bin/python -m workers.flower "$@"
