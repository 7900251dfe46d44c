#!/usr/bin/env bash
# Runs the demo network: 4 validators, 1 observer and the citizen gateway on this machine.
# Creates ./.venv when no virtual environment is active. Extra arguments go to `veche demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${VIRTUAL_ENV:-}" ]; then
  PY=python
else
  [ -x .venv/bin/python ] || python3 -m venv .venv
  PY=.venv/bin/python
fi
"$PY" -m pip install --quiet --upgrade pip >/dev/null
"$PY" -m pip install --quiet -e .

exec "$PY" -m node.cli demo "$@"
