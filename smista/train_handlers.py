"""`smista train`: what the command does (its arguments are in smista/train_commands.py)."""

from __future__ import annotations

import argparse

from training.fitting.train import leave_process_group, train
from training.recipe import load_recipe


def cmd_train(args: argparse.Namespace) -> int:
    overrides = list(args.set)
    if args.tracking_uri:
        overrides.append(f"tracking.tracking_uri={args.tracking_uri}")
    if args.no_register:
        overrides.append("tracking.register_model=false")
    try:
        result = train(load_recipe(args.recipe, overrides))
    finally:
        leave_process_group()  # under torchrun; nothing otherwise
    if result is not None:  # None on the non-main processes of a DDP run
        version = f", registered version {result.registered_version}" if result.registered_version else ""
        print(f"Done: run {result.run_id}{version}; model in {result.model_dir}")
    return 0
