#!/usr/bin/env bash
# Runs the Python tests (training/) in .venv, which scripts/python-env.sh makes from
# training/requirements.txt.
# PYTHON selects the interpreter used to create the venv (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f training/requirements.txt ]]; then
  echo "test-python: training/requirements.txt not found, skipping the Python tests"
  exit 0
fi
bash scripts/python-env.sh
exec .venv/bin/python -m pytest training/tests -q "$@"
