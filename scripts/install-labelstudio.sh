#!/usr/bin/env bash
# Install the Label Studio server into its own virtual environment, .venv-labelstudio/.
# Why a separate venv: label-studio pins Django and friends (pyarrow, python-json-logger, pytz)
# that would otherwise bind the project's own environment. The project talks to it over HTTP only.
# Idempotent: skips the install when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

version=1.23.2
venv=${LABEL_STUDIO_VENV:-.venv-labelstudio}

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "install-labelstudio: Python 3.11 is required, $python is $("$python" --version 2>&1); set PYTHON=/path/to/python3.11" >&2
    exit 2
fi

stamp="$venv/.smista-labelstudio-stamp"
wanted="label-studio==$version $(sha256sum constraints-labelstudio.txt | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && [ -x "$venv/bin/label-studio" ]; then
    echo "install-labelstudio: $venv has label-studio $version"
    exit 0
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
echo "install-labelstudio: installing label-studio $version into $venv (about 2 minutes on a fresh machine)"
# constraints-labelstudio.txt locks every dependency, so a new release upstream cannot change
# what annotators run.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints-labelstudio.txt "label-studio==$version"
"$venv/bin/python" -m pip check
echo "$wanted" > "$stamp"
