"""`smista models ...`: what the commands do (their arguments are in smista/models_commands.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from data.taxonomy import load_taxonomy
from smista.arguments import dataclass_from_args
from training.errors import ModelLoadError, RegistryError
from training.evaluation.runtime_check import compare_runtimes, fastest_faithful_runtime
from training.inference.baseline_model import BASELINE_FILE
from training.inference.onnx_export import default_onnx_dir, ensure_export, export_model, stale_reason
from training.labelled_posts import read_labelled_posts
from training.mlflow_access import MLFLOW_URI_PREFIXES, download_model, local_model_dir
from training.shipping.promotion import PromotionPolicy
from training.shipping.registry import (
    SERVING_RUNTIME_TAG,
    format_comparison,
    promote,
    record_serving_runtime,
    summarize_versions,
)


def cmd_compare(args: argparse.Namespace) -> int:
    summaries = summarize_versions(args.versions, name=args.name, limit=args.limit, tracking_uri=args.tracking_uri)
    print(format_comparison(summaries, load_taxonomy(args.taxonomy).field_names))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
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
    model_dir, downloaded = _local_model_dir(args.model, args.tracking_uri)
    if (model_dir / BASELINE_FILE).is_file():
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
    taxonomy = load_taxonomy(args.taxonomy)
    posts = [post for path in args.posts for post in read_labelled_posts(path, taxonomy)]
    if args.max_f1_drop < 0:
        raise RegistryError(f"--max-f1-drop must be >= 0 (a macro-F1 drop from torch's), got {args.max_f1_drop}")
    if args.choose and not args.model.startswith("models:/"):
        raise RegistryError(f"--choose records the runtime on a registry version: give a models:/ URI, not {args.model!r}")
    comparison = compare_runtimes(args.model, posts, tracking_uri=args.tracking_uri, batch_size=args.batch_size,
                                  split=" + ".join(args.posts))
    print(comparison.format_table())
    if args.json_output:
        Path(args.json_output).write_text(json.dumps(comparison.to_dict(), indent=2), encoding="utf-8")
        print(f"Written to {args.json_output}")
    if args.choose:
        runtime, reasons = fastest_faithful_runtime(comparison, args.max_f1_drop)
        name, _, version = comparison.model_version.partition("/")
        why = f"{len(posts)} posts of {' + '.join(args.posts)}: " + "; ".join(reasons)
        record_serving_runtime(name, version, runtime, why)
        print(f"\nServing runtime of {name} version {version}: {runtime} (recorded as its {SERVING_RUNTIME_TAG} tag)")
        for reason in reasons:
            print(f"  {reason}")
    return 0


def _local_model_dir(source: str, tracking_uri: str | None) -> tuple[Path, bool]:
    """(local model directory, whether it is a temporary MLflow download)."""
    if source.startswith(MLFLOW_URI_PREFIXES):
        model_dir, _ = download_model(source, tracking_uri)
        return Path(model_dir), True
    return local_model_dir(source), False
