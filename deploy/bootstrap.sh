#!/usr/bin/env bash
# Install what calserv needs on a fresh Debian machine: redis-server, source-extractor (apt) and
# the Python venv (runtime only; CALSERV_DEV=1, as `make` sets, adds tests, lint and honcho).
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v redis-server >/dev/null || need+=(redis-server)
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
  # Debian starts its own redis/postgres on the default ports; calserv runs its own under ./var.
  systemctl disable --now redis-server >/dev/null 2>&1 || service redis-server stop >/dev/null 2>&1 || true
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
# Every package pinned with its hashes (`make lock`): production gets the runtime lock,
# `make` (CALSERV_DEV=1) the development one, plus the batch client from ./client.
if [ "${CALSERV_DEV:-0}" = 1 ]; then
  .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.lock
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e ./client
else
  .venv/bin/pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
fi
if [ "${CALSERV_TEST_BROWSER:-0}" = 1 ] && [ ! -f node_modules/axe-core/axe.min.js ]; then
  npm ci --no-audit --no-fund --silent
fi
