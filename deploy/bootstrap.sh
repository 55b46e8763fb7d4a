#!/usr/bin/env bash
# Install what calserv needs on a fresh Debian machine: redis-server, nginx, source-extractor (apt)
# and the Python venv (runtime only; CALSERV_DEV=1, as `make` sets, adds tests, lint and
# supervisord).
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v redis-server >/dev/null || need+=(redis-server)
# The buffering front end before gunicorn (slow clients hold nginx's connections, not gunicorn's
# threads): `make run` runs its own (deploy/nginx.sh), production a site (deploy/nginx/).
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v psql >/dev/null || need+=(postgresql-client)
# `ip netns`: the separate-hosts test (tests/test_separate_hosts.py) builds its network with it.
command -v ip >/dev/null || need+=(iproute2)
if [ ! -x /usr/local/bin/pg_ctl ] && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  need+=(postgresql)
fi
# The real Source Extractor: the image benchmark (bench/bench_image.py) runs it beside calserv,
# and the realistic calibration tests and bench render their frames through it.
command -v source-extractor >/dev/null || need+=(source-extractor)
# Headless Chromium for the browser tests (tests/web/test_browser_e2e.py); `make test` sets this.
if [ "${CALSERV_TEST_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null; then
  need+=(chromium)
fi
# npm installs axe-core (package.json), which the browser tests run on every page.
if [ "${CALSERV_TEST_BROWSER:-0}" = 1 ] && ! command -v npm >/dev/null; then
  need+=(npm)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: please install ${need[*]} (needs root)" >&2
    exit 1
  fi
  echo "bootstrap: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  # Debian starts its own redis/nginx on the default ports; calserv runs its own under ./var.
  for unit in redis-server nginx; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || service "$unit" stop >/dev/null 2>&1 || true
  done
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# Every package pinned with its hashes (`make lock`): production gets the runtime lock,
# `make` (CALSERV_DEV=1) the development one, plus the batch client from ./client.
# --no-deps: the lock already holds the whole dependency closure, so pip resolves nothing and
# what the index serves today cannot change what is installed (an extra such as dask[complete]
# would otherwise be resolved afresh, and a newer release breaks --require-hashes). `pip check`
# then proves the closure is complete and consistent.
pip_install() { .venv/bin/pip install -q --disable-pip-version-check --no-deps "$@"; }
if [ "${CALSERV_DEV:-0}" = 1 ]; then
  pip_install --require-hashes -r requirements-dev.lock
  # The venv's own setuptools builds it: no build dependency is fetched from the index.
  pip_install --no-build-isolation -e ./client
else
  pip_install --require-hashes -r requirements.lock
fi
.venv/bin/pip check --disable-pip-version-check >/dev/null || {
  .venv/bin/pip check --disable-pip-version-check >&2
  echo "bootstrap: the lock is incomplete or inconsistent (run \`make lock\`)" >&2
  exit 1
}
if [ "${CALSERV_TEST_BROWSER:-0}" = 1 ] && [ ! -f node_modules/axe-core/axe.min.js ]; then
  npm ci --no-audit --no-fund --silent
fi
