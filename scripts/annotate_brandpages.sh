#!/usr/bin/env bash
# The annotation loop of issue #13 on the MultiEmotions-It brand-ad comments, one step per command
# (docs/annotation.md tells the whole story, docs/labeling.md each `smista label` command).
#
#   bash scripts/annotate_brandpages.sh posts        # TSV -> build/multiemotions/posts-ads.jsonl (never committed)
#   bash scripts/annotate_brandpages.sh server       # Label Studio on 127.0.0.1:$PORT, in the background
#   bash scripts/annotate_brandpages.sh champion     # train the TF-IDF baseline, register it as @champion
#   bash scripts/annotate_brandpages.sh project      # create the project from the taxonomy
#   bash scripts/annotate_brandpages.sh select       # active learning: push the pool, most useful first, pre-annotated
#   bash scripts/annotate_brandpages.sh import       # the redacted import of the rest (idempotent)
#   bash scripts/annotate_brandpages.sh preannotate  # champion predictions on tasks that have none
#   bash scripts/annotate_brandpages.sh queue [N]    # print the next N posts to label, in task order
#   bash scripts/annotate_brandpages.sh submit       # the annotator's decisions -> annotations via the API
#   bash scripts/annotate_brandpages.sh export       # smista label export (incremental pull + data set build)
#   bash scripts/annotate_brandpages.sh labels       # -> data/annotations/multiemotions_it/ (labels by row and hash)
#   bash scripts/annotate_brandpages.sh stop         # stop the background server
#
# Variables: PYTHON (the project's venv python), MULTIEMOTIONS_TSV, PORT (8080), TYPES (ads|music|all),
# LABEL_STUDIO_* (defaults below are for a local, loopback-only server; set your own).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/offline-env.sh

PYTHON=${PYTHON:-.venv/bin/python}
TSV=${MULTIEMOTIONS_TSV:-../shared/datasets/multiemotions_it/multiemotions_it_public_part.tsv}
TYPES=${TYPES:-ads}
POOL=build/multiemotions/posts-$TYPES.jsonl
PORT=${PORT:-8080}
MODEL=${MODEL:-models:/smista-classifier@champion}
export MLFLOW_TRACKING_URI=${MLFLOW_TRACKING_URI:-sqlite:///$PWD/mlflow.db}
export LABEL_STUDIO_USERNAME=${LABEL_STUDIO_USERNAME:-admin@example.org}
export LABEL_STUDIO_PASSWORD=${LABEL_STUDIO_PASSWORD:-smista-local-only}
export LABEL_STUDIO_USER_TOKEN=${LABEL_STUDIO_USER_TOKEN:-smista-local-token-brandpages}
export LABEL_STUDIO_URL=${LABEL_STUDIO_URL:-http://127.0.0.1:$PORT}
export LABEL_STUDIO_API_KEY=${LABEL_STUDIO_API_KEY:-$LABEL_STUDIO_USER_TOKEN}
smista() { "$PYTHON" -m smista "$@"; }

step=${1:?"usage: $0 posts|server|champion|project|select|import|preannotate|queue|submit|export|labels|stop"}
case "$step" in
    posts) "$PYTHON" scripts/multiemotions_posts.py --tsv "$TSV" --out "$POOL" --types "$TYPES" ;;
    server)
        mkdir -p var
        nohup "$PYTHON" -m smista label server --port "$PORT" > var/label-studio-server.out 2>&1 &
        echo $! > var/label-studio-server.pid
        for _ in $(seq 180); do
            grep -q "^Ready" var/label-studio-server.out && break
            kill -0 "$(cat var/label-studio-server.pid)" 2>/dev/null || { cat var/label-studio-server.out; exit 1; }
            sleep 1
        done
        cat var/label-studio-server.out ;;
    stop) kill "$(cat var/label-studio-server.pid)" && rm var/label-studio-server.pid ;;
    champion)
        smista data build
        smista train --recipe configs/train/baseline.yaml
        smista models promote ;;   # the first version becomes @champion; later ones must beat it
    project) smista label project ;;
    select)
        smista label select --pool "$POOL" --model "$MODEL" --batch-size "${BATCH:-400}" \
            --uncertainty entropy --diversity mmr --diversity-weight 0.3 ;;
    import) smista label import "$POOL" ;;
    preannotate) smista label preannotate --model "$MODEL" ;;
    queue) "$PYTHON" scripts/multiemotions_annotations.py queue --tsv "$TSV" --n "${2:-40}" ;;
    submit) "$PYTHON" scripts/multiemotions_annotations.py submit ;;
    export) smista label export ;;
    labels) "$PYTHON" scripts/multiemotions_annotations.py labels --tsv "$TSV" --types "$TYPES" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
esac
