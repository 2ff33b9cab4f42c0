"""Default paths come from one project folder: $SMISTA_HOME, else the checkout, else the current
directory (an installed smista run from a folder with its own configs/)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.training_helpers import REPO_ROOT

PRINT_DEFAULTS = (
    "import json; from data.locations import PROJECT_DIR; from data.taxonomy import DEFAULT_TAXONOMY_PATH; "
    "from data.dataset import SEED_DATA_DIR; "
    "print(json.dumps({'project': str(PROJECT_DIR), 'taxonomy': str(DEFAULT_TAXONOMY_PATH), 'seed': str(SEED_DATA_DIR)}))"
)


def defaults(cwd: Path, pythonpath: Path, home: str | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "SMISTA_HOME"}
    env["PYTHONPATH"] = str(pythonpath)
    if home is not None:
        env["SMISTA_HOME"] = home
    result = subprocess.run([sys.executable, "-c", PRINT_DEFAULTS], cwd=cwd, env=env, capture_output=True, text=True,
                            check=True, timeout=120)
    return json.loads(result.stdout)


def test_a_checkout_is_its_own_project_folder_wherever_the_command_runs(tmp_path):
    found = defaults(cwd=tmp_path, pythonpath=REPO_ROOT)
    assert found["project"] == str(REPO_ROOT)
    assert found["taxonomy"] == str(REPO_ROOT / "configs" / "taxonomy.yaml")
    assert found["seed"] == str(REPO_ROOT / "data" / "seed")


def test_smista_home_moves_every_default_but_the_shipped_seed_posts(tmp_path):
    home = tmp_path / "care-team"
    found = defaults(cwd=tmp_path, pythonpath=REPO_ROOT, home=str(home))
    assert found["project"] == str(home) and found["taxonomy"] == str(home / "configs" / "taxonomy.yaml")
    assert found["seed"] == str(REPO_ROOT / "data" / "seed")  # package data: travels with the code


def test_an_installed_copy_outside_a_checkout_uses_the_current_directory(tmp_path):
    site = tmp_path / "site-packages"
    shutil.copytree(REPO_ROOT / "data", site / "data", ignore=shutil.ignore_patterns("__pycache__"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    found = defaults(cwd=workdir, pythonpath=site)
    assert found["project"] == str(workdir.resolve())
    assert found["taxonomy"] == str(workdir.resolve() / "configs" / "taxonomy.yaml")
    assert found["seed"] == str(site / "data" / "seed")
