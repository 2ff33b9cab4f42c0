#!/usr/bin/env bash
# The main job on a fresh machine: install, build the data set from the bundled seed posts,
# then (as the training and serving stages land) train the default model, register it and serve it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source scripts/offline-env.sh
.venv/bin/smista data build
