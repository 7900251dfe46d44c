#!/usr/bin/env bash
# Runs the whole test suite. Creates ./.venv when no virtual environment is active, installs
# Veche with its test extras, installs Debian's chromium for the browser tests if missing, and
# axe-core from the npm registry into .cache/axe.
set -euo pipefail
cd "$(dirname "$0")/.."

VECHE_EXTRAS="[test]"
. scripts/venv.sh

# Debian packages the browser tests need: a command, its package, and what it is for
need_debian() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's $2 for $3" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    echo "$3 need(s) $2: sudo apt-get install $2" >&2
    exit 1
  fi
}
need_debian chromium chromium "the browser tests"

# axe-core (the accessibility checks the browser tests load into each page) from the npm registry,
# into a cache folder that git ignores
AXE_DIR=.cache/axe
if [ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ]; then
  need_debian npm npm "axe-core"
  npm install --prefix "$AXE_DIR" --no-audit --no-fund --silent axe-core@4 >/dev/null
fi

exec "$PY" -m pytest "$@"
