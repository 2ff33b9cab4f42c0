"""`smista evaluate`: score a model on a split of the data set or on any labelled JSONL file."""

from __future__ import annotations

import argparse

from data.taxonomy import DEFAULT_TAXONOMY_PATH
from training.errors import USER_ERRORS  # noqa: F401  (read by smista.cli)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from data.taxonomy import load_taxonomy
    from training.evaluation.evaluate import check_taxonomy_matches, evaluate_posts
    from training.evaluation.report_files import write_report
    from training.inference.predict import Predictor
    from training.labelled_posts import read_labelled_posts

    taxonomy = load_taxonomy(args.taxonomy)
    path = Path(args.file) if args.file else Path(args.dataset_dir) / f"{args.split}.jsonl"
    posts = read_labelled_posts(path, taxonomy)
    predictor = Predictor.load(args.model, tracking_uri=args.tracking_uri)
    check_taxonomy_matches(predictor, taxonomy)
    report = evaluate_posts(predictor, posts, split=args.file or args.split, batch_size=args.batch_size)
    print(report.format_table())
    written = write_report(report, args.output_dir, plots=not args.no_plots)
    print(f"{report.posts_per_second:.0f} posts/s; metrics and plots in {args.output_dir} ({len(written)} files)")
    return 0


def register(groups: argparse._SubParsersAction) -> None:
    command = groups.add_parser(
        "evaluate",
        help="Per-head accuracy, macro-F1, per-class scores, confusion matrix, calibration and coverage of a model.",
    )
    command.add_argument(
        "--model",
        required=True,
        help="Model directory or MLflow URI (models:/smista-classifier@champion, models:/smista-classifier/3, runs:/<id>/model).",
    )
    source = command.add_mutually_exclusive_group()
    source.add_argument("--split", default="test", choices=["train", "validation", "test"], help="Split of --dataset-dir to score.")
    source.add_argument("--file", default=None, help="Any JSONL file of labelled posts, instead of a split.")
    command.add_argument("--dataset-dir", default="build/dataset", help="Data set built by `smista data build`.")
    command.add_argument("--output-dir", default="build/evaluation", help="Where metrics.json and the PNG plots go.")
    command.add_argument("--no-plots", action="store_true", help="Write metrics.json only.")
    command.add_argument("--batch-size", type=int, default=32, help="Prediction batch size.")
    command.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for models:/ and runs:/ sources.")
    command.add_argument("--taxonomy", default=str(DEFAULT_TAXONOMY_PATH), help="Taxonomy YAML file.")
    command.set_defaults(handler=cmd_evaluate)
