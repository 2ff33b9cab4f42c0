"""`smista train` and `smista distill`: what the commands do (their arguments are in
smista/train_commands.py)."""

from __future__ import annotations

import argparse
import json

from training.errors import RecipeError
from training.fitting.distillation import distill
from training.fitting.train import leave_process_group, train
from training.recipe import TrainRecipe, load_recipe


def cmd_train(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe, tracking_overrides(args))
    try:
        # A distillation recipe trains through `smista train` too: one command for every recipe.
        result = distill(recipe) if recipe.kind == "distillation" else train(recipe)
    finally:
        leave_process_group()  # under torchrun; nothing otherwise
    report(result)
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    overrides = tracking_overrides(args)
    if args.teacher:
        overrides.append(f"distillation.teacher={quoted(args.teacher)}")
    if args.layers:
        overrides.append(f"distillation.layers=[{args.layers}]")
    recipe: TrainRecipe = load_recipe(args.recipe, overrides)
    if recipe.kind != "distillation":
        raise RecipeError(f"smista distill: recipe {args.recipe} is of kind {recipe.kind!r}; give a recipe of kind "
                          f"distillation (e.g. configs/train/distill.yaml), or train it with `smista train --recipe {args.recipe}`")
    report(distill(recipe))
    return 0


def tracking_overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.set)
    if args.tracking_uri:
        overrides.append(f"tracking.tracking_uri={quoted(args.tracking_uri)}")
    if args.no_register:
        overrides.append("tracking.register_model=false")
    return overrides


def quoted(value: str) -> str:
    """A command-line value as a YAML string: overrides are read as YAML, where a value such as
    "models:/x@y" could read as something else. A JSON string is a YAML string."""
    return json.dumps(value)


def report(result) -> None:
    if result is not None:  # None on the non-main processes of a DDP run
        version = f", registered version {result.registered_version}" if result.registered_version else ""
        print(f"Done: run {result.run_id}{version}; model in {result.model_dir}")
