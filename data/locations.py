"""Default locations: the project folder that holds configs/ and receives build/ and var/.

Every default path of smista (the taxonomy, the routing rules, data sets, model runs, the serving
database, Label Studio's data) is built here and nowhere else. The project folder is
$SMISTA_HOME when set; else the checkout this code runs from, when it is one (configs/ beside the
packages); else the current directory, so that an installed smista works from any folder holding
its own configs/. An explicit path on the command line or in a config always wins.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "SMISTA_HOME"
PACKAGE_DIR = Path(__file__).resolve().parent  # data/: the seed posts and name lists ship in it


def find_project_dir() -> Path:
    explicit = os.environ.get(HOME_VARIABLE, "").strip()
    if explicit:
        return Path(explicit).expanduser().resolve()
    checkout = PACKAGE_DIR.parent
    if (checkout / "configs" / "taxonomy.yaml").is_file():
        return checkout
    return Path.cwd().resolve()


PROJECT_DIR = find_project_dir()
CONFIGS_DIR = PROJECT_DIR / "configs"
BUILD_DIR = PROJECT_DIR / "build"  # what a command rebuilds: data sets, runs, caches, the serving store
VAR_DIR = PROJECT_DIR / "var"      # what a person's work leaves: Label Studio data, exports, selections
SCRIPTS_DIR = PROJECT_DIR / "scripts"
