#!/usr/bin/env bash
# The test command of the README: installs what is missing, then lint + the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
scripts/setup.sh
echo "+ ruff check ."
"$PYTHON" -m ruff check .
echo "+ pytest"
exec "$PYTHON" -m pytest -q "$@"
