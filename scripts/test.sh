#!/usr/bin/env bash
# Runs the whole test suite. Creates ./.venv when no virtual environment is active, installs
# Veche with its test extras, installs Debian's chromium for the browser tests if missing,
# axe-core from the npm registry into .cache/axe, and the Debian packages the deployment tests
# drive (nginx, prometheus, systemd, openssl, iproute2) if missing.
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

# The deployment tests (tests/deploy) drive the tools an operator uses on deploy/: nginx, promtool
# (Debian's prometheus package), systemd-analyze (systemd), openssl and ip (iproute2).
missing=""
for pair in nginx:nginx promtool:prometheus systemd-analyze:systemd openssl:openssl ip:iproute2; do
  tool=${pair%%:*}
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing="$missing ${pair##*:}"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages for the deployment tests:$missing" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "the deployment tests need: sudo apt-get install$missing" >&2
    exit 1
  fi
fi

exec "$PY" -m pytest "$@"
