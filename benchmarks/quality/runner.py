"""Run a benchmark: read the data set, make the splits, train every model of the spec on them with
the product's own `train` (same loop, same evaluation, tracked in MLflow), and score the test posts
with the benchmark's metrics.

`smista benchmark run configs/benchmarks/<name>.yaml --data-dir <folder>` calls `run_benchmark`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml

from benchmarks.quality.loading import LoadedBenchmark, load_benchmark
from benchmarks.quality.results import BenchmarkResult, ModelResult
from benchmarks.quality.scores import compute_scores
from benchmarks.quality.spec import BenchmarkSpec, BenchmarkSpecError
from data.dataset import SPLITS, stratified_folds, stratified_holdout, write_dataset
from data.schema import Post
from training.fitting.train import train
from training.machine import machine_description
from training.recipe import TrainRecipe, load_recipe


def make_splits(spec: BenchmarkSpec, loaded: LoadedBenchmark, folds: int | None = None) -> dict[str, dict[str, list[Post]]]:
    """Split name ("official" or "fold-01", ...) -> {train, validation, test} posts.

    Official split: the test file as is, the validation posts held out of the training file.
    Cross-validation: each fold is the test split once; validation is held out of the other folds.
    """
    protocol = spec.protocol
    field = protocol.stratify_by
    if protocol.kind == "official_split":
        train, validation = stratified_holdout(loaded.posts["train"], field, protocol.validation_fraction, protocol.seed)
        return {"official": {"train": train, "validation": validation, "test": loaded.posts["test"]}}
    parts = stratified_folds(loaded.posts["all"], field, folds or protocol.folds, protocol.seed)
    splits = {}
    for index, test in enumerate(parts):
        rest = [post for other, part in enumerate(parts) if other != index for post in part]
        train, validation = stratified_holdout(rest, field, protocol.validation_fraction, protocol.seed)
        splits[f"fold-{index + 1:02d}"] = {"train": train, "validation": validation, "test": test}
    return splits


def benchmark_recipe(
    spec: BenchmarkSpec,
    model: str,
    split_name: str,
    dataset_dir: Path,
    taxonomy_path: Path,
    output_dir: Path,
    extra_overrides: list[str],
    tracking_uri: str | None,
) -> TrainRecipe:
    """The model's recipe pointed at the benchmark's data set and heads. Cross-validation folds log
    their metrics and evaluation but not the model (ten copies of a throw-away model)."""
    entry = spec.models[model]
    cross_validation = spec.protocol.kind == "cross_validation"
    run_name = f"{spec.name}-{model}" + (f"-{split_name}" if cross_validation else "")
    overrides = [
        *entry.overrides,
        *extra_overrides,
        f"name={run_name}",
        f"output_dir={output_dir / 'runs'}",
        "data.inputs=null",
        f"data.dataset_dir={dataset_dir}",
        f"data.taxonomy={taxonomy_path}",
        f"primary_head={spec.primary_head}",
        f"tracking.experiment=benchmark-{spec.name}",
        "tracking.register_model=false",
        f"tracking.log_model={str(not cross_validation).lower()}",
    ]
    if tracking_uri:
        overrides.append(f"tracking.tracking_uri={tracking_uri}")
    return load_recipe(entry.recipe, overrides)


def run_benchmark(
    spec: BenchmarkSpec,
    data_dir: str | Path,
    output_dir: str | Path = "build/benchmarks",
    models: list[str] | None = None,
    folds: int | None = None,
    overrides: dict[str, list[str]] | None = None,
    tracking_uri: str | None = None,
    keep_fold_models: bool = False,
) -> BenchmarkResult:
    """Train and score every selected model on the benchmark; write <output_dir>/<name>/results.json."""
    models = models or list(spec.models)
    unknown = [model for model in models if model not in spec.models]
    if unknown:
        raise BenchmarkSpecError(f"{spec.name}: unknown model(s) {unknown}; the spec has {', '.join(spec.models)}")
    overrides = overrides or {}
    unknown = [model for model in overrides if model not in spec.models]
    if unknown:
        raise BenchmarkSpecError(f"overrides for unknown model(s) {unknown}; the spec has {', '.join(spec.models)}")
    if folds is not None and spec.protocol.kind != "cross_validation":
        raise BenchmarkSpecError(f"{spec.name} uses the official split; --folds applies to cross-validation only")

    started = time.perf_counter()
    bench_dir = Path(output_dir) / spec.name
    loaded = load_benchmark(spec, data_dir)
    for role, count in loaded.skipped.items():
        if count:
            print(f"{spec.name}: left out {count} row(s) of the {role} file with no text", flush=True)
    taxonomy_path = bench_dir / "taxonomy.yaml"
    bench_dir.mkdir(parents=True, exist_ok=True)
    taxonomy_path.write_text(yaml.safe_dump(loaded.taxonomy.model_dump(mode="json"), sort_keys=False, allow_unicode=True), encoding="utf-8")

    splits = make_splits(spec, loaded, folds)
    dataset_dirs = {}
    for split_name, split in splits.items():
        dataset_dirs[split_name] = bench_dir / "data" / split_name
        write_dataset(split, loaded.taxonomy, dataset_dirs[split_name], {"benchmark": spec.name, "split": split_name, "protocol": spec.protocol.model_dump()})
    sizes = {split_name: {s: len(split[s]) for s in SPLITS} for split_name, split in splits.items()}
    print(f"{spec.name}: {len(splits)} split(s), e.g. {next(iter(sizes.values()))}", flush=True)

    results = {}
    for model in models:
        result = ModelResult(model=model, recipe=spec.models[model].recipe, overrides=[*spec.models[model].overrides, *overrides.get(model, [])])
        for split_name, dataset_dir in dataset_dirs.items():
            recipe = benchmark_recipe(spec, model, split_name, dataset_dir, taxonomy_path, bench_dir, overrides.get(model, []), tracking_uri)
            print(f"\n=== {spec.name}: {model} on {split_name} ===", flush=True)
            run = train(recipe)
            scores = compute_scores(spec, run.model_dir, splits[split_name]["test"], run.reports["test"])
            result.add_split(split_name, scores, run.reports["test"], run.train_seconds, run.run_id, str(run.run_dir))
            print(", ".join(f"{name} {value:.4f}" for name, value in scores.items()), flush=True)
            if spec.protocol.kind == "cross_validation" and not keep_fold_models:
                shutil.rmtree(run.model_dir)  # its metrics and evaluation files stay, in run_dir and MLflow
        results[model] = result

    results = {**earlier_results(bench_dir / "results.json", spec, sizes, results), **results}
    benchmark = BenchmarkResult(
        name=spec.name,
        description=spec.description,
        protocol=spec.protocol.model_dump(),
        sizes=sizes,
        scores=[score.model_dump() for score in spec.scores],
        models=results,
        machine=machine_description(),
        date=time.strftime("%Y-%m-%d"),
        wall_seconds=time.perf_counter() - started,
    )
    benchmark.write(bench_dir / "results.json")
    return benchmark


def earlier_results(path: Path, spec: BenchmarkSpec, sizes: dict, rerun: dict[str, ModelResult]) -> dict[str, ModelResult]:
    """Results of models not run this time, kept from an earlier run on the same splits, so that
    running one model at a time builds up the whole table."""
    if not path.is_file():
        return {}
    earlier = BenchmarkResult.read(path)
    if earlier.sizes != sizes or earlier.protocol != spec.protocol.model_dump():
        return {}
    return {name: result for name, result in earlier.models.items() if name not in rerun and name in spec.models}
