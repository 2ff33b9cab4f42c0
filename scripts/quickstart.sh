#!/usr/bin/env bash
# The main job on a fresh machine: install, build the data set from the bundled seed posts, train
# the TF-IDF baseline and the default transformer recipe, register both in MLflow, promote the
# better one to the alias @champion, and serve it on http://127.0.0.1:3000 (Ctrl-C stops it).
# About 15 minutes on 2 CPU cores (13 of them training the transformer), plus the install.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/offline-env.sh
smista=.venv/bin/smista

$smista data build

# The baseline first: the first registered version becomes the champion, and every later
# version has to beat it on the frozen test split to take its place.
$smista train --recipe configs/train/baseline.yaml
$smista models promote

$smista train --recipe configs/train/default.yaml
# promote exits 1 when it refuses (the challenger is not better); the champion then stays.
$smista models promote || echo "quickstart: the current champion stays (reasons above)"
$smista models compare

if [ -z "${SMISTA_API_KEYS:-}" ]; then
    SMISTA_API_KEYS=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))')
    export SMISTA_API_KEYS
    echo "quickstart: API key for this session (send it as X-API-Key): $SMISTA_API_KEYS"
fi
exec $smista serve --host 127.0.0.1 --port "${SMISTA_PORT:-3000}"
