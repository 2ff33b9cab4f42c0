#!/usr/bin/env bash
# The main job on a fresh machine: install, build the data set from the bundled seed posts, train
# the TF-IDF baseline and the default transformer recipe, register both in MLflow, promote the
# better one to the alias @champion, choose the runtime it is served with, and serve it on
# http://127.0.0.1:3000 (Ctrl-C stops it).
# About 30 minutes on 2 CPU cores (most of them training the transformer), plus the install.
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
# The runtime the champion is served with: the fastest of torch, ONNX fp32 and ONNX int8 whose
# macro-F1 stays within 1.5 points of torch's on every head of the test split, recorded on its
# registry version; `smista serve` below runs it without being told.
$smista models check-runtime --model models:/smista-classifier@champion --posts build/dataset/test.jsonl --choose

if [ -z "${SMISTA_API_KEYS:-}" ]; then
    SMISTA_API_KEYS=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))')
    export SMISTA_API_KEYS
    echo "quickstart: API key for this session (send it as X-API-Key): $SMISTA_API_KEYS"
fi
exec $smista serve --host 127.0.0.1 --port "${SMISTA_PORT:-3000}"
