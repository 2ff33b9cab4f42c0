#!/usr/bin/env bash
# Issue #13: train and measure on real brand-page comments, one step per command.
#
#   bash scripts/brandpages.sh data                  # texts joined to our labels, 390 held out -> build/brandpages/
#   bash scripts/brandpages.sh sentiment [LIMIT]     # optional: sentiment-only posts of SENTIPOLC + FEEL-IT
#   bash scripts/brandpages.sh train [--set K=V ...] # configs/train/brandpages.yaml (seed + real), scored on the held-out
#   bash scripts/brandpages.sh seed-only [--set ...] # the default recipe (seed posts only), scored on the same held-out
#   bash scripts/brandpages.sh evaluate MODEL        # any trained model directory or models:/ URI on the held-out
#
# The held-out comments are never trained or tuned on: `train` refuses a held-out file that shares
# a post with its data set. Texts stay under build/ (the data set's licence: academic use, no
# redistribution). Variables: PYTHON, MULTIEMOTIONS_TSV, SENTIPOLC_CSV, FEEL_IT_CSV.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/offline-env.sh

PYTHON=${PYTHON:-.venv/bin/python}
TSV=${MULTIEMOTIONS_TSV:-../shared/datasets/multiemotions_it/multiemotions_it_public_part.tsv}
SENTIPOLC_CSV=${SENTIPOLC_CSV:-../shared/datasets/sentipolc16/training_set_sentipolc16_anon_rev.csv}
FEEL_IT_CSV=${FEEL_IT_CSV:-../shared/datasets/feel_it/feel_it_dataset.csv}
OUT=build/brandpages
HELD_OUT=$OUT/real-heldout.jsonl
smista() { "$PYTHON" -m smista "$@"; }

step=${1:?"usage: $0 data|sentiment|train|seed-only|evaluate"}
shift
case "$step" in
    data)
        mkdir -p "$OUT"
        "$PYTHON" scripts/multiemotions_posts.py --tsv "$TSV" --out "$OUT/posts-ads.jsonl"
        smista data join-labels --labels data/annotations/multiemotions_it/labels.jsonl \
            --posts "$OUT/posts-ads.jsonl" --id-prefix multiemotions- --output "$OUT/labelled-ads.jsonl"
        # Stratified by intent, fixed seed: the same 390 comments every time (the split of every
        # brand-page number in docs/BENCHMARKS.md).
        "$PYTHON" scripts/holdout_split.py "$OUT/labelled-ads.jsonl" --fraction 0.25 --seed 11 \
            --train "$OUT/real-train.jsonl" --held-out "$HELD_OUT" ;;
    sentiment)
        "$PYTHON" scripts/sentiment_only_posts.py --sentipolc "$SENTIPOLC_CSV" --feel-it "$FEEL_IT_CSV" \
            --out "$OUT/sentiment-only.jsonl" --limit "${1:-0}" ;;
    train) smista train --recipe configs/train/brandpages.yaml "$@" ;;
    seed-only)
        smista data build   # the default recipe trains on build/dataset: the seed posts, split as always
        smista train --recipe configs/train/default.yaml --set "data.held_out={real: $HELD_OUT}" "$@" ;;
    evaluate)
        model=${1:?"usage: $0 evaluate MODEL_DIR_OR_URI"}
        smista evaluate --model "$model" --file "$HELD_OUT" --output-dir "$OUT/evaluation/$(echo "$model" | tr -c 'A-Za-z0-9._-' '_')" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
esac
