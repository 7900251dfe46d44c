#!/usr/bin/env bash
# Runs the whole test suite. Creates ./.venv when no virtual environment is active, installs
# Veche with its test extras, and installs the Debian packages the tests drive if missing
# (chromium; nginx, prometheus, systemd, openssl, iproute2 for the deployment tests).
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
