"""`smista models ...`: compare registered model versions and promote one to champion; export a
model to ONNX and check the ONNX runtimes against torch.

    smista models export-onnx --model DIR_OR_URI         fp32 + int8 ONNX files, sizes and export time
    smista models check-runtime --model DIR_OR_URI --posts LABELLED.jsonl [--taxonomy YAML]

The arguments; what the commands do is in smista/models_handlers.py.
"""

from __future__ import annotations

import argparse

from data.taxonomy import DEFAULT_TAXONOMY_PATH
from smista.arguments import add_dataclass_arguments
from training.recipe import REGISTERED_MODEL_NAME
from training.shipping.promotion import CHAMPION_ALIAS, PromotionPolicy


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default=REGISTERED_MODEL_NAME, help="Registered model name.")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db).")
    parser.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")


def register(groups: argparse._SubParsersAction) -> None:
    models = groups.add_parser("models", help="Compare registered model versions; promote one to champion; export to ONNX.")
    commands = models.add_subparsers(dest="command", required=True, metavar="<command>")

    compare = commands.add_parser(
        "compare", help="Side-by-side table of registered versions: per-head macro-F1, ECE, coverage, time, size, speed."
    )
    compare.add_argument("versions", nargs="*", help="Version numbers to compare (default: the newest --limit).")
    compare.add_argument("--limit", type=int, default=6, help="How many of the newest versions to show by default.")
    _common(compare)
    compare.set_defaults(handler="smista.models_handlers.cmd_compare")

    promote = commands.add_parser(
        "promote",
        help="Set the champion alias if the challenger beats the champion on the frozen test split.",
        description="Score the challenger and the current champion on the same test file; move the alias only "
        "if the primary metric improves by the margin and no head's macro-F1 drops beyond the tolerance. "
        "Exit 0 when promoted, 1 when refused (the reasons are printed).",
    )
    promote.add_argument("--version", default=None, help="Challenger version (default: the latest registered).")
    promote.add_argument("--test-file", default="build/dataset/test.jsonl", help="The frozen test split (labelled JSONL).")
    promote.add_argument("--alias", default=CHAMPION_ALIAS, help="Alias to move.")
    add_dataclass_arguments(promote, PromotionPolicy)
    _common(promote)
    promote.set_defaults(handler="smista.models_handlers.cmd_promote")

    export = commands.add_parser(
        "export-onnx", help="Export a transformer model to ONNX: fp32 and dynamically quantised int8, every head in one graph.",
        description="Writes model.onnx, model.int8.onnx and export.json into <model dir>/onnx (for an MLflow URI: "
        "build/onnx-cache/<content hash>, where `Predictor.load(..., runtime='onnx')` looks too). An export made "
        "from the model as it is now is kept unless --force.",
    )
    export.add_argument("--model", required=True, help="Model directory or MLflow URI (models:/smista-classifier@champion).")
    export.add_argument("--output-dir", default=None, help="Write here instead of the default folder.")
    export.add_argument("--force", action="store_true", help="Export again even if the export is up to date.")
    export.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for a models:/ or runs:/ URI.")
    export.set_defaults(handler="smista.models_handlers.cmd_export_onnx")

    check = commands.add_parser(
        "check-runtime", help="Predict labelled posts with torch, onnx and onnx-int8: agreement with torch and macro-F1 per head.",
        description="Agreement = share of posts whose label(s) are identical to torch's (every label of a multi-label "
        "head). Macro-F1 against the gold labels (training/evaluation/evaluate.py), with the difference to torch.",
    )
    check.add_argument("--model", required=True, help="Model directory or MLflow URI.")
    check.add_argument("--posts", required=True, nargs="+",
                       help="Labelled JSONL posts (e.g. build/dataset/test.jsonl); several files are scored together.")
    check.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH),
                       help="Taxonomy YAML the posts are labelled with (default: configs/taxonomy.yaml; benchmark data sets have their own).")
    check.add_argument("--batch-size", type=int, default=32, help="Posts per model call (default: 32).")
    check.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for a models:/ or runs:/ URI.")
    check.add_argument("--json-output", default=None, help="Also write the comparison as JSON here.")
    check.add_argument("--choose", action="store_true",
                       help="Record the fastest runtime whose macro-F1 is within --max-f1-drop of torch's on every head on "
                            "the registry version (tag serving_runtime): `smista serve` then uses it when no runtime is named. "
                            "Needs a models:/ URI.")
    check.add_argument("--max-f1-drop", type=float, default=0.015,
                       help="With --choose: largest macro-F1 drop from torch accepted on any head (default: 0.015, "
                            "the quality bound of a faster serving path).")
    check.set_defaults(handler="smista.models_handlers.cmd_check_runtime")
