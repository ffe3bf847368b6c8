#!/usr/bin/env bash
# The test command of the README: installs what is missing, then ruff, mypy (typed public API) and the
# whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
scripts/setup.sh
echo "+ ruff check ."
"$PYTHON" -m ruff check .
echo "+ mypy project_api/microtvm_api client/tvmc_micro"
"$PYTHON" -m mypy project_api/microtvm_api client/tvmc_micro
echo "+ pytest"
exec "$PYTHON" -m pytest -q "$@"
