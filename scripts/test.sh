#!/usr/bin/env bash
# The test command: install (if needed), then run the whole suite, slow end-to-end tests included.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/offline-env.sh
exec .venv/bin/python -m pytest "$@"
