#!/usr/bin/env bash
# Runs the whole test suite. Creates ./.venv when no virtual environment is active, installs
# Veche with its test extras, installs Debian's chromium for the browser tests if missing, and
# axe-core from the npm registry into .cache/axe.
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

# axe-core (the accessibility checks the browser tests load into each page) from the npm registry,
# into a cache folder that git ignores
AXE_DIR=.cache/axe
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing Debian's npm for axe-core" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    else
      echo "the browser tests need npm for axe-core: sudo apt-get install npm" >&2
      exit 1
    fi
  fi
  npm install --prefix "$AXE_DIR" --no-audit --no-fund --silent axe-core@4 >/dev/null
fi

exec "$PY" -m pytest "$@"
