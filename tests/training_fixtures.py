"""Session fixtures of the training tests, loaded with `pytest_plugins = ("tests.training_fixtures",)`
so that each model is trained once per test session however many modules use it."""

from __future__ import annotations

import pytest

from tests.training_helpers import REPO_ROOT, build_synthetic_dataset, tiny_recipe
from training.recipe import load_recipe


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory):
    return build_synthetic_dataset(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def local_tracking_uri(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def tiny_run(synthetic_dataset, local_tracking_uri, tmp_path_factory):
    """The tiny transformer trained on the synthetic data, logged and registered (version 1)."""
    from training.fitting.train import train

    return train(tiny_recipe(synthetic_dataset, tmp_path_factory.mktemp("runs"), local_tracking_uri))


@pytest.fixture(scope="session")
def baseline_run(tiny_run, synthetic_dataset, local_tracking_uri, tmp_path_factory):
    """The TF-IDF baseline on the same data, logged and registered after the tiny model (version 2)."""
    from training.fitting.train import train

    recipe = load_recipe(
        REPO_ROOT / "configs" / "train" / "baseline.yaml",
        [f"data.dataset_dir={synthetic_dataset}", f"output_dir={tmp_path_factory.mktemp('runs')}",
         f"tracking.tracking_uri={local_tracking_uri}"],
    )
    return train(recipe)
