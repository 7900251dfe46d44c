#!/usr/bin/env bash
# Runs the whole test suite. Creates ./.venv when no virtual environment is active, installs
# Veche with its test extras, and installs Debian's chromium for the browser tests if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VECHE_EXTRAS="[test]"
. scripts/venv.sh

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the browser tests need Chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

exec "$PY" -m pytest "$@"
