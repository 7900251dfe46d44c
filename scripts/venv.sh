# Sourced by demo.sh and test.sh: choose the Python of the active virtual environment, or create
# ./.venv and use it; then install Veche (editable) with the extras given as "$VECHE_EXTRAS".
if [ -n "${VIRTUAL_ENV:-}" ]; then
  PY=python
else
  [ -x .venv/bin/python ] || python3 -m venv .venv
  PY=.venv/bin/python
fi
"$PY" -m pip install --quiet --upgrade pip >/dev/null
"$PY" -m pip install --quiet -e ".${VECHE_EXTRAS:-}"
