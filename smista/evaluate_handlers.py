"""`smista evaluate`: what the command does (its arguments are in smista/evaluate_commands.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from data.taxonomy import load_taxonomy
from training.evaluation.evaluate import check_taxonomy_matches, evaluate_posts
from training.evaluation.report_files import write_report
from training.inference.predict import Predictor
from training.labelled_posts import read_labelled_posts


def cmd_evaluate(args: argparse.Namespace) -> int:
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
