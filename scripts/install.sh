#!/usr/bin/env bash
# Create .venv and install the project with the locked versions in constraints.txt.
# Idempotent: skips the install when pyproject.toml and constraints.txt have not changed since.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "install: Python 3.11 is required, $python is $("$python" --version 2>&1); set PYTHON=/path/to/python3.11" >&2
    exit 2
fi

# Label Studio lives in its own venv (.venv-labelstudio): its Django pins would bind ours.
PYTHON=$python bash scripts/install-labelstudio.sh

[ -x .venv/bin/python ] || "$python" -m venv .venv

stamp=.venv/.smista-install-stamp
wanted=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    echo "install: .venv is up to date"
    exit 0
fi

# torch is pinned to its CPU build (2.13.0+cpu). This machine image keeps that wheel in
# /opt/wheels; elsewhere it comes from PyTorch's CPU index. An unpinned torch would pull a
# multi-GB CUDA build.
pip_args=(--quiet --disable-pip-version-check -c constraints.txt)
if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
    pip_args+=(--find-links /opt/wheels)
else
    pip_args+=(--extra-index-url https://download.pytorch.org/whl/cpu)
fi
echo "install: installing into .venv (a few minutes on a fresh machine)"
.venv/bin/python -m pip install "${pip_args[@]}" -e '.[dev,ray]'
.venv/bin/python -m pip check
echo "$wanted" > "$stamp"
