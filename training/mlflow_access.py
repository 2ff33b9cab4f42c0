"""Reaching MLflow: resolve and check the tracking URI, and turn a model URI (models:/name@alias,
models:/name/N, runs:/id/model) into a local model directory.

Both inference (`Predictor.load` of an MLflow URI) and the training run's tracking use it, so it
sits below both. mlflow is imported in the functions that call it: importing it takes 2.2 s and
170 MB (2026-12-07, this project's 2-core machine), and a model loaded from a directory never needs it.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from training.errors import ModelLoadError, TrackingServerError
from training.recipe import DEFAULT_TRACKING_URI, resolve_tracking_uri

MLFLOW_URI_PREFIXES = ("models:/", "runs:/", "mlflow-artifacts:/")
# Name of the model directory inside the logged MLflow model (training/shipping/tracking.py logs it).
MLFLOW_ARTIFACT_KEY = "smista_model"
REACHABILITY_TIMEOUT_S = 5.0


def local_model_dir(source: str) -> Path:
    """`source` as a model directory; ModelLoadError when it is neither one nor an MLflow URI."""
    path = Path(source)
    if not path.is_dir():
        raise ModelLoadError(
            f"model {source!r}: no such directory, and not an MLflow URI (models:/name@alias, models:/name/N, runs:/id/model)"
        )
    return path


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
    import mlflow  # lazy: see the module docstring

    uri = resolve_tracking_uri(explicit)
    check_tracking_server(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def model_version_of(uri: str) -> str:
    """"smista-classifier/3" for models:/ URIs (aliases resolved), the run id for runs:/ URIs."""
    from mlflow import MlflowClient  # lazy: see the module docstring
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


def recorded_serving_runtime(uri: str, tracking_uri: str | None = None) -> str | None:
    """The runtime recorded on a registry version (tag serving_runtime, set by `smista models
    check-runtime --choose`) for a models:/ URI; None for anything else or an untagged version.
    The registry is the one `resolve_tracking_uri` names, as for loading the model itself."""
    if not uri.startswith("models:/"):
        return None  # before importing mlflow: a model directory never needs it
    from mlflow import MlflowClient  # lazy: see the module docstring

    use_tracking_uri(tracking_uri)
    name, _, number = model_version_of(uri).partition("/")
    return MlflowClient().get_model_version(name, number).tags.get("serving_runtime")


def download_model(uri: str, tracking_uri: str | None = None) -> tuple[Path, str]:
    """(local model directory, model version) for an MLflow model URI."""
    import mlflow  # lazy: see the module docstring
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
