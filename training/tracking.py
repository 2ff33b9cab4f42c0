"""MLflow: where runs go, a fast reachability check, logging a trained model, loading one back.

The tracking URI comes from one place, `resolve_tracking_uri`: an explicit value (recipe or flag),
else $MLFLOW_TRACKING_URI, else a SQLite database under ./mlruns (artifacts under ./mlruns too).
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import ModelLoadError, TrackingServerError
from training.predict import MLFLOW_ARTIFACT_KEY
from training.recipe import DEFAULT_TRACKING_URI, TrainRecipe, resolve_tracking_uri

if TYPE_CHECKING:
    from training.evaluate import EvaluationReport
    from training.training_data import TrainingData

REACHABILITY_TIMEOUT_S = 5.0
# What the logged model needs at load time, pinned to what is installed (inferring the list makes
# MLflow import and inspect the model, which took 20 s for sklearn models).
TRANSFORMER_REQUIREMENTS = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pydantic", "PyYAML", "mlflow")
BASELINE_REQUIREMENTS = ("scikit-learn", "scipy", "joblib", "numpy", "pydantic", "PyYAML", "mlflow")



def health_failure(uri: str, timeout_s: float = REACHABILITY_TIMEOUT_S) -> str | None:
    """Why an HTTP tracking server does not answer /health now, or None when it does (or the URI
    is not HTTP): the one probe behind the check before a run and the diagnosis during one."""
    if not uri.startswith(("http://", "https://")):
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as response:
            if response.status != 200:
                return f"MLflow tracking server {uri} answered {response.status} on /health"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return (
            f"MLflow tracking server {uri} is not reachable ({reason}). Start one with `smista mlflow server`, "
            "or point MLFLOW_TRACKING_URI (or the recipe's tracking.tracking_uri) at a running server or at "
            f"a local database such as {DEFAULT_TRACKING_URI}."
        )
    return None


def check_tracking_server(uri: str, timeout_s: float = REACHABILITY_TIMEOUT_S) -> None:
    """Fail in seconds, naming the URI, when an HTTP tracking server does not answer.

    MLflow's own client retries with backoff for minutes before giving up; checking first means a
    typo in the URI costs seconds, not a training run. For a SQLite URI the database's folder is
    created, since SQLite will not create it.
    """
    if uri.startswith(("http://", "https://")):
        failure = health_failure(uri, timeout_s)
        if failure is not None:
            raise TrackingServerError(failure)
        # Once the server answered, keep MLflow's retries short: a server that dies mid-run should
        # stop the run within a minute, not after the default backoff of several minutes.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    elif uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def use_tracking_uri(explicit: str | None = None) -> str:
    """Resolve, check and activate the tracking URI; return it."""
    import mlflow

    uri = resolve_tracking_uri(explicit)
    check_tracking_server(uri)
    mlflow.set_tracking_uri(uri)
    return uri


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
    import mlflow

    from training.pyfunc import SmistaPyfuncModel

    package_root = Path(__file__).resolve().parent.parent
    requirements = TRANSFORMER_REQUIREMENTS if kind == "transformer" else BASELINE_REQUIREMENTS
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


def download_model(uri: str, tracking_uri: str | None = None) -> tuple[Path, str]:
    """(local model directory, model version) for an MLflow model URI."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    use_tracking_uri(tracking_uri)
    version = model_version_of(uri)
    try:
        logged = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except MlflowException as exc:
        raise ModelLoadError(f"model {uri!r} cannot be loaded from {mlflow.get_tracking_uri()}: {exc.message}") from None
    if not (logged / "MLmodel").is_file():
        raise ModelLoadError(f"{uri!r} is not an MLflow model (no MLmodel file in {logged})")
    artifacts = Model.load(str(logged)).flavors.get("python_function", {}).get("artifacts", {})
    if MLFLOW_ARTIFACT_KEY not in artifacts:
        raise ModelLoadError(f"{uri!r} was not logged by smista (no {MLFLOW_ARTIFACT_KEY!r} artifact)")
    return logged / artifacts[MLFLOW_ARTIFACT_KEY]["path"], version


def model_version_of(uri: str) -> str:
    """"smista-classifier/3" for models:/ URIs (aliases resolved), the run id for runs:/ URIs."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").split("/", 1)[0]
    if uri.startswith("models:/"):
        reference = uri.removeprefix("models:/").rstrip("/")
        client = MlflowClient()
        try:
            if "@" in reference:
                name, alias = reference.split("@", 1)
                return f"{name}/{client.get_model_version_by_alias(name, alias).version}"
            name, _, number = reference.partition("/")
            return f"{name}/{client.get_model_version(name, number).version}"
        except MlflowException as exc:
            raise ModelLoadError(f"model {uri!r}: {exc.message}") from None
    return uri


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
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(recipe.tracking.experiment) is None:
        mlflow.create_experiment(recipe.tracking.experiment, artifact_location=artifact_location(tracking_uri, recipe.tracking.experiment))
    experiment = mlflow.set_experiment(recipe.tracking.experiment)
    run = mlflow.start_run(run_name=run_name)
    try:
        print(f"MLflow: {run_url(tracking_uri, experiment.experiment_id, run.info.run_id)}", flush=True)
        resolved = recipe.model_dump(mode="json")
        mlflow.set_tags({"smista.kind": recipe.kind, "git_commit": git_commit(Path(__file__).resolve().parent.parent)})
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
    import mlflow
    from mlflow.exceptions import MlflowException

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


def log_training_data(data: TrainingData) -> None:
    import mlflow

    mlflow.log_params({
        "data_hash": data.data_hash,
        "taxonomy_version": data.taxonomy.version,
        **{f"{split}_posts": size for split, size in data.manifest["sizes"].items()},
    })
    mlflow.set_tags({"data_hash": data.data_hash, "test_split_hash": data.manifest["split_hashes"]["test"]})
    mlflow.log_dict(data.manifest, "dataset/manifest.json")
    sizes = ", ".join(f"{split} {size}" for split, size in data.manifest["sizes"].items())
    print(f"Data set {data.data_hash} (taxonomy v{data.taxonomy.version}): {sizes}", flush=True)


def log_domain_adaptation(summary: dict[str, float]) -> None:
    """The masked-LM pre-training's numbers (texts, steps, loss before and after, seconds) as
    domain_adaptation_<name> metrics of the active run."""
    import mlflow

    mlflow.log_metrics({f"domain_adaptation_{name}": float(value) for name, value in summary.items()})


def log_results(
    recipe: TrainRecipe,
    reports: dict[str, EvaluationReport],
    model_dir: Path,
    evaluation_dir: Path,
    train_seconds: float,
) -> str | None:
    """Log metrics, evaluation files and the model; register it. Returns the registry version."""
    import mlflow

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
