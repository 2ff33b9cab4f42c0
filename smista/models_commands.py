"""`smista models ...`: compare registered model versions and promote one to champion; export a
model to ONNX and check the ONNX runtimes against torch.

    smista models export-onnx --model DIR_OR_URI         fp32 + int8 ONNX files, sizes and export time
    smista models check-runtime --model DIR_OR_URI --posts LABELLED.jsonl [--taxonomy YAML]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from data.taxonomy import DEFAULT_TAXONOMY_PATH
from smista.arguments import add_dataclass_arguments, dataclass_from_args
from training.errors import USER_ERRORS  # noqa: F401  (read by smista.cli)
from training.recipe import REGISTERED_MODEL_NAME
from training.shipping.registry import CHAMPION_ALIAS, PromotionPolicy


def cmd_compare(args: argparse.Namespace) -> int:
    from data.taxonomy import load_taxonomy
    from training.shipping.registry import format_comparison, summarize_versions

    summaries = summarize_versions(args.versions, name=args.name, limit=args.limit, tracking_uri=args.tracking_uri)
    print(format_comparison(summaries, load_taxonomy(args.taxonomy).field_names))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from training.shipping.registry import promote

    policy = dataclass_from_args(PromotionPolicy, args)
    decision = promote(
        args.version, args.test_file, policy, name=args.name, alias=args.alias, taxonomy_path=args.taxonomy,
        tracking_uri=args.tracking_uri,
    )
    challenger = decision.challenger_version
    if decision.allowed:
        print(f"Promoted {args.name} version {challenger} to @{args.alias}:")
    else:
        print(
            f"Refused: {args.name} version {challenger} does not replace "
            f"version {decision.champion_version} as @{args.alias}:"
        )
    for reason in decision.reasons:
        print(f"  - {reason}")
    return 0 if decision.allowed else 1


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from training.inference.baseline_model import BASELINE_FILE
    from training.inference.onnx_export import default_onnx_dir, ensure_export, export_model, stale_reason

    model_dir, downloaded = _local_model_dir(args.model, args.tracking_uri)
    if (model_dir / BASELINE_FILE).is_file():
        from training.errors import ModelLoadError

        raise ModelLoadError(f"model {args.model!r} is a TF-IDF baseline: only transformer models export to ONNX")
    onnx_dir = Path(args.output_dir) if args.output_dir else default_onnx_dir(model_dir, temporary_source=downloaded)
    if args.force:
        result = export_model(model_dir, onnx_dir)
    else:
        reason = stale_reason(model_dir, onnx_dir)
        result = ensure_export(model_dir, onnx_dir)
        if not result.exported:
            print(f"Up to date: {onnx_dir} was exported from this model as it is now (use --force to export again).")
        else:
            print(f"Exporting: {reason}")
    manifest = result.manifest
    for path in (result.fp32_path, result.int8_path):
        print(f"  {path}  {path.stat().st_size / 2**20:.1f} MB")
    if result.exported:
        seconds = result.seconds
        print(f"Export took {seconds['total']:.1f} s (torch.onnx.export {seconds['export']:.1f} s, "
              f"check against torch {seconds['verify']:.1f} s, int8 quantisation {seconds['quantize']:.1f} s); "
              f"opset {manifest['opset']}, largest fp32 probability difference to torch "
              f"{manifest['fp32_max_abs_difference']:.1e}")
    print(f"Recorded in {result.onnx_dir / 'export.json'}")
    return 0


def cmd_check_runtime(args: argparse.Namespace) -> int:
    import json

    from data.taxonomy import load_taxonomy
    from training.evaluation.runtime_check import compare_runtimes
    from training.labelled_posts import read_labelled_posts

    taxonomy = load_taxonomy(args.taxonomy)
    posts = read_labelled_posts(args.posts, taxonomy)
    comparison = compare_runtimes(args.model, posts, tracking_uri=args.tracking_uri, batch_size=args.batch_size,
                                  split=str(args.posts))
    print(comparison.format_table())
    if args.json_output:
        Path(args.json_output).write_text(json.dumps(comparison.to_dict(), indent=2), encoding="utf-8")
        print(f"Written to {args.json_output}")
    return 0


def _local_model_dir(source: str, tracking_uri: str | None) -> tuple[Path, bool]:
    """(local model directory, whether it is a temporary MLflow download)."""
    from training.mlflow_access import MLFLOW_URI_PREFIXES, local_model_dir

    if source.startswith(MLFLOW_URI_PREFIXES):
        from training.mlflow_access import download_model

        model_dir, _ = download_model(source, tracking_uri)
        return Path(model_dir), True
    return local_model_dir(source), False


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
    compare.set_defaults(handler=cmd_compare)

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
    promote.set_defaults(handler=cmd_promote)

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
    export.set_defaults(handler=cmd_export_onnx)

    check = commands.add_parser(
        "check-runtime", help="Predict labelled posts with torch, onnx and onnx-int8: agreement with torch and macro-F1 per head.",
        description="Agreement = share of posts whose label(s) are identical to torch's (every label of a multi-label "
        "head). Macro-F1 against the gold labels (training/evaluation/evaluate.py), with the difference to torch.",
    )
    check.add_argument("--model", required=True, help="Model directory or MLflow URI.")
    check.add_argument("--posts", required=True, help="Labelled JSONL posts (e.g. build/dataset/test.jsonl).")
    check.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH),
                       help="Taxonomy YAML the posts are labelled with (default: configs/taxonomy.yaml; benchmark data sets have their own).")
    check.add_argument("--batch-size", type=int, default=32, help="Posts per model call (default: 32).")
    check.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for a models:/ or runs:/ URI.")
    check.add_argument("--json-output", default=None, help="Also write the comparison as JSON here.")
    check.set_defaults(handler=cmd_check_runtime)
