#!/usr/bin/env bash
# Runs the Python tests (training/). Creates .venv from training/requirements.txt if missing.
# PYTHON selects the interpreter used to create the venv (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f training/requirements.txt ]]; then
  echo "test-python: training/requirements.txt not found, skipping the Python tests"
  exit 0
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "test-python: creating .venv and installing training/requirements.txt"
  "${PYTHON:-python3}" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r training/requirements.txt
fi
exec .venv/bin/python -m pytest training/tests -q "$@"
