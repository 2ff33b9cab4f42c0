"""`smista train`: train one model (transformer, TF-IDF baseline or distilled student) from a recipe;
`smista distill`: distil a trained model into a smaller one (arguments; what they do is in
smista/train_handlers.py)."""

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
    add_run_flags(command)
    command.set_defaults(handler="smista.train_handlers.cmd_train")
    register_distill(groups)


def add_run_flags(command: argparse.ArgumentParser) -> None:
    """--set, --tracking-uri and --no-register: how any training run's recipe is overridden and logged."""
    command.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Override a recipe field, dotted, value read as YAML; repeatable. E.g. --set transformer.learning_rate=3e-5",
    )
    command.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: recipe, $MLFLOW_TRACKING_URI, sqlite:///mlruns/mlflow.db).")
    command.add_argument("--no-register", action="store_true", help="Log the run but do not add a registry version.")


def register_distill(groups: argparse._SubParsersAction) -> None:
    command = groups.add_parser(
        "distill",
        help="Distil a trained model into a smaller student (fewer of its layers) and register it.",
        description="Train a student made of some of the teacher's encoder layers on the teacher's soft labels "
        "(recipe kind distillation, default configs/train/distill.yaml), then evaluate, log, register and compare it "
        "like any run; the teacher is recorded on the run and the registry version.",
    )
    command.add_argument("--teacher", default=None,
                         help="Model directory or MLflow URI to distil, e.g. models:/smista-classifier@champion "
                              "(default: the recipe's distillation.teacher).")
    command.add_argument("--recipe", default="configs/train/distill.yaml", help="Recipe of kind distillation (default: configs/train/distill.yaml).")
    command.add_argument("--layers", default=None, metavar="I,J,...",
                         help="Teacher layers (0-based) the student keeps, e.g. 2,5,8,11 (default: the recipe's).")
    add_run_flags(command)
    command.set_defaults(handler="smista.train_handlers.cmd_distill")
