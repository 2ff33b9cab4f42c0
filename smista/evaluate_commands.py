"""`smista evaluate`: score a model on a split of the data set or on any labelled JSONL file (arguments;
what it does is in smista/evaluate_handlers.py)."""

from __future__ import annotations

import argparse

from data.taxonomy import DEFAULT_TAXONOMY_PATH


def register(groups: argparse._SubParsersAction) -> None:
    command = groups.add_parser(
        "evaluate",
        help="Per-head accuracy, macro-F1, per-class scores, confusion matrix, calibration and coverage of a model.",
    )
    command.add_argument(
        "--model",
        required=True,
        help="Model directory or MLflow URI (models:/smista-classifier@champion, models:/smista-classifier/3, runs:/<id>/model).",
    )
    source = command.add_mutually_exclusive_group()
    source.add_argument("--split", default="test", choices=["train", "validation", "test"], help="Split of --dataset-dir to score.")
    source.add_argument("--file", default=None, help="Any JSONL file of labelled posts, instead of a split.")
    command.add_argument("--dataset-dir", default="build/dataset", help="Data set built by `smista data build`.")
    command.add_argument("--output-dir", default="build/evaluation", help="Where metrics.json and the PNG plots go.")
    command.add_argument("--no-plots", action="store_true", help="Write metrics.json only.")
    command.add_argument("--batch-size", type=int, default=32, help="Prediction batch size.")
    command.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for models:/ and runs:/ sources.")
    command.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    command.set_defaults(handler="smista.evaluate_handlers.cmd_evaluate")
