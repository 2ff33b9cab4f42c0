"""`smista train`: train one model (transformer or TF-IDF baseline) from a recipe (arguments; what it
does is in smista/train_handlers.py)."""

from __future__ import annotations

import argparse


def register(groups: argparse._SubParsersAction) -> None:
    command = groups.add_parser(
        "train",
        help="Train a model from a recipe, evaluate it, log it to MLflow and register it.",
        description="Train a model from a recipe (configs/train/*.yaml): the data set is loaded (or built), "
        "the model trained, its multi-label thresholds tuned on validation, evaluated on validation and test, "
        "logged to MLflow and registered. Runs unchanged under `torchrun --nproc_per_node N -m smista train ...`.",
    )
    command.add_argument("--recipe", required=True, help="Recipe YAML, e.g. configs/train/default.yaml or configs/train/baseline.yaml.")
    command.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Override a recipe field, dotted, value read as YAML; repeatable. E.g. --set transformer.learning_rate=3e-5",
    )
    command.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: recipe, $MLFLOW_TRACKING_URI, sqlite:///mlruns/mlflow.db).")
    command.add_argument("--no-register", action="store_true", help="Log the run but do not add a registry version.")
    command.set_defaults(handler="smista.train_handlers.cmd_train")
