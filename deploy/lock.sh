#!/usr/bin/env bash
# Pin every dependency of requirements.txt and requirements-dev.txt, with hashes, into the locks
# (`make lock`), or, with --check (`make lock-check`, run by CI), fail when the locks and the
# requirements disagree. Pins already in a lock are kept unless a requirement needs otherwise;
# UPGRADE=--upgrade lifts them.
set -euo pipefail
cd "$(dirname "$0")/.."
uv="$PWD/.venv/bin/uv"
check=0
[ "${1:-}" = --check ] && check=1
if [ "$check" = 1 ]; then  # compile copies in a scratch folder (same relative paths), then compare
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
  cp requirements.txt requirements-dev.txt requirements.lock requirements-dev.lock "$out/"
  cd "$out"
fi
compile() {
  "$uv" pip compile -q --generate-hashes --python-version 3.11 \
    --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" ${UPGRADE:-} "$@"
}
compile requirements.txt -o requirements.lock
compile requirements-dev.txt -c requirements.lock -o requirements-dev.lock
if [ "$check" = 1 ]; then
  cd - >/dev/null
  for lock in requirements.lock requirements-dev.lock; do
    if ! diff -u "$lock" "$out/$lock" >&2; then
      echo "lock-check: $lock does not match the requirements: run \`make lock\` and commit" >&2
      exit 1
    fi
  done
  echo "lock-check: requirements.lock and requirements-dev.lock match the requirements"
fi
