"""MLflow: where runs go, a fast reachability check, logging a trained model, loading one back.

The tracking URI comes from one place, `resolve_tracking_uri`: an explicit value (recipe or flag),
else $MLFLOW_TRACKING_URI, else a SQLite database under ./mlruns (artifacts under ./mlruns too).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from training.errors import TrackingServerError
from training.evaluation.evaluate import EvaluationReport
from training.mlflow_access import MLFLOW_ARTIFACT_KEY, health_failure
from training.recipe import TrainRecipe
from training.shipping.pyfunc import SmistaPyfuncModel

# What the logged model needs at load time, pinned to what is installed (inferring the list makes
# MLflow import and inspect the model, which took 20 s for sklearn models).
TRANSFORMER_REQUIREMENTS = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pydantic", "PyYAML", "mlflow")
BASELINE_REQUIREMENTS = ("scikit-learn", "scipy", "joblib", "numpy", "pydantic", "PyYAML", "mlflow")



def git_commit(repo_dir: Path) -> str:
    """HEAD's commit, with "-dirty" when tracked files have uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo_dir, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        # Recorded as such rather than hidden: a run from an export without .git has no commit.
        return "unknown (not a git checkout)"
    return commit + ("-dirty" if status else "")


def pinned_requirements(names: tuple[str, ...]) -> list[str]:
    return [f"{name}=={installed_version(name)}" for name in names]


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}: nested recipe sections as MLflow params."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return flat
    return {prefix: value}


def log_model(model_dir: Path, kind: str, registered_model_name: str | None) -> str | None:
    """Log `model_dir` as an MLflow pyfunc model named "model" in the active run; register it when a
    name is given. Returns the new registry version (None when not registered)."""
    package_root = Path(__file__).resolve().parents[2]
    requirements = BASELINE_REQUIREMENTS if kind == "tfidf_baseline" else TRANSFORMER_REQUIREMENTS
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=SmistaPyfuncModel(),
        artifacts={MLFLOW_ARTIFACT_KEY: str(model_dir)},
        # The loader code travels with the model, so `mlflow models serve` works without smista installed.
        code_paths=[str(package_root / "training"), str(package_root / "data")],
        pip_requirements=pinned_requirements(requirements),
        registered_model_name=registered_model_name,
    )
    return None if info.registered_model_version is None else str(info.registered_model_version)


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """Where a person finds the run: the web UI for a server, the command to open one otherwise."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"run {run_id} in {tracking_uri} (browse with: mlflow ui --backend-store-uri {tracking_uri})"


def artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Artifacts of a new experiment in a SQLite store go next to the database file.

    MLflow's own default is ./mlruns of whatever folder the command runs in, which scatters
    artifacts of one store over several folders. A server decides for itself (None).
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///")).resolve()
    return (database.parent / "artifacts" / experiment).as_uri()


@contextmanager
def tracked_run(recipe: TrainRecipe, run_name: str, tracking_uri: str, model_dir: Path) -> Iterator[Any]:
    """Start an MLflow run for `recipe`, log what is known before training, print where it is.

    A run that raises is ended as FAILED, so a crash is visible in the UI too. A tracking server
    that stops answering during the run becomes a TrackingServerError naming it (see
    `tracking_lost`), and ending the run on a dead server does not hide the first error.
    """
    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(recipe.tracking.experiment) is None:
        mlflow.create_experiment(recipe.tracking.experiment, artifact_location=artifact_location(tracking_uri, recipe.tracking.experiment))
    experiment = mlflow.set_experiment(recipe.tracking.experiment)
    run = mlflow.start_run(run_name=run_name)
    try:
        print(f"MLflow: {run_url(tracking_uri, experiment.experiment_id, run.info.run_id)}", flush=True)
        resolved = recipe.model_dump(mode="json")
        mlflow.set_tags({"smista.kind": recipe.kind, "git_commit": git_commit(Path(__file__).resolve().parents[2])})
        # MLflow caps a param value at 6000 characters; recipe values are short.
        mlflow.log_params({key: str(value) for key, value in flatten("", resolved).items()})
        mlflow.log_dict(resolved, "recipe.yaml")
        yield run
    except MlflowException as exc:
        _end_run_quietly("FAILED")
        raise tracking_lost(tracking_uri, run.info.run_id, exc, model_dir) from None
    except BaseException:
        _end_run_quietly("FAILED")
        raise
    try:
        mlflow.end_run()
    except MlflowException as exc:
        raise tracking_lost(tracking_uri, run.info.run_id, exc, model_dir) from None


def _end_run_quietly(status: str) -> None:
    """End the active run; on a server that is gone this fails too, and the error that is already
    on its way matters more. MLflow pops its stack of active runs before calling the server, so
    nothing stays active in this process either way."""
    try:
        mlflow.end_run(status)
    except MlflowException:
        pass


def tracking_lost(uri: str, run_id: str, exc: Exception, model_dir: Path) -> Exception:
    """The error for an MLflow call that failed during a run: a TrackingServerError naming the URI
    when the server no longer answers, else `exc` itself (a real MLflow error, e.g. a bad value).

    Registration is the last step of a run (log_results), and MLflow creates a model version only
    after its files are uploaded; a server lost before that leaves no version, so the message can
    say that nothing was registered."""
    if health_failure(uri) is None:
        return exc
    saved = (f"The trained model is saved in {model_dir}." if (model_dir / "config.json").is_file() or (model_dir / "recipe.yaml").is_file()
             else "Training stopped before the model was saved.")
    return TrackingServerError(
        f"MLflow tracking server {uri} stopped answering during run {run_id} ({_short_cause(exc)}). Nothing was "
        f"registered: the run holds no model version (it may still show as RUNNING there). {saved} Start the server "
        "again (`smista mlflow server`) and rerun `smista train`."
    )


def _short_cause(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    first = message.splitlines()[0] if message else type(exc).__name__
    return first if len(first) <= 200 else first[:200] + "..."


def log_training_data(data_hash: str, taxonomy_version: str, manifest: dict) -> None:
    """The data set's hash, sizes and manifest on the active run."""
    mlflow.log_params({
        "data_hash": data_hash,
        "taxonomy_version": taxonomy_version,
        **{f"{split}_posts": size for split, size in manifest["sizes"].items()},
    })
    mlflow.set_tags({"data_hash": data_hash, "test_split_hash": manifest["split_hashes"]["test"]})
    mlflow.log_dict(manifest, "dataset/manifest.json")
    sizes = ", ".join(f"{split} {size}" for split, size in manifest["sizes"].items())
    print(f"Data set {data_hash} (taxonomy v{taxonomy_version}): {sizes}", flush=True)


def log_domain_adaptation(summary: dict[str, float]) -> None:
    """The masked-LM pre-training's numbers (texts, steps, loss before and after, seconds) as
    domain_adaptation_<name> metrics of the active run."""
    mlflow.log_metrics({f"domain_adaptation_{name}": float(value) for name, value in summary.items()})


def log_results(
    recipe: TrainRecipe,
    reports: dict[str, EvaluationReport],
    model_dir: Path,
    evaluation_dir: Path,
    train_seconds: float,
) -> str | None:
    """Log metrics, evaluation files and the model; register it. Returns the registry version."""
    metrics = {"train_seconds": train_seconds, "model_size_mb": directory_megabytes(model_dir)}
    metrics["inference_posts_per_second"] = reports["test"].posts_per_second
    for split, report in reports.items():
        metrics.update(report.metrics(split))
    mlflow.log_metrics(metrics)
    mlflow.log_artifacts(str(evaluation_dir), "evaluation")
    if not recipe.tracking.log_model:
        return None
    name = recipe.tracking.registered_model_name if recipe.tracking.register_model else None
    version = log_model(model_dir, recipe.kind, name)
    if version is not None:
        mlflow.set_tag("registered_version", f"{name}/{version}")
        print(f"Registered {name} version {version} (models:/{name}/{version})", flush=True)
    return version


def directory_megabytes(path: Path) -> float:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file()) / 1e6
