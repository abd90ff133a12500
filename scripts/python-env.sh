#!/usr/bin/env bash
# The project's Python environments, each created when missing and quick when current:
# - .venv: training/ (training/requirements.txt), for pytest and the training tools;
# - .venv-triton: the pinned Triton HTTP client (test/triton/requirements.txt) that
#   test/e2e/triton.test.ts drives the edge with, apart so that its pins (it caps ml-dtypes)
#   never change the training toolchain.
# `npm test` runs it before vitest (`npm run test:pyenv`), scripts/test-python.sh before pytest.
# PYTHON selects the interpreter used to create them (default: python3). Arguments name the
# environments to make (default: both).
set -euo pipefail
cd "$(dirname "$0")/.."

# venv DIR REQUIREMENTS: DIR holds exactly what REQUIREMENTS pins (a stamp records the file installed)
venv() {
  local dir=$1 requirements=$2 stamp=$1/.requirements.txt
  if [[ ! -f $requirements ]]; then
    echo "python-env: $requirements not found, no $dir to create" >&2
    exit 1
  fi
  if [[ ! -x $dir/bin/python ]]; then
    echo "python-env: creating $dir"
    "${PYTHON:-python3}" -m venv "$dir"
    "$dir/bin/pip" install --quiet --upgrade pip
  fi
  if ! cmp -s "$requirements" "$stamp"; then
    echo "python-env: installing $requirements into $dir"
    "$dir/bin/pip" install --quiet -r "$requirements"
    cp "$requirements" "$stamp"
  fi
}

# which: `training` (.venv), `triton` (.venv-triton); both by default (npm run bench asks for training only)
for which in "${@:-training triton}"; do
  for name in $which; do
    case $name in
      training) venv .venv training/requirements.txt ;;
      triton) venv .venv-triton test/triton/requirements.txt ;;
      *) echo "python-env: unknown environment '$name' (training, triton)" >&2; exit 2 ;;
    esac
  done
done
