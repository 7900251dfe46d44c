#!/usr/bin/env bash
# Runs the demo network: 4 validators, 1 observer and the citizen gateway on this machine.
# Creates ./.venv when no virtual environment is active. Extra arguments go to `veche demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

VECHE_EXTRAS="[gateway]"
. scripts/venv.sh

exec "$PY" -m node.cli demo "$@"
