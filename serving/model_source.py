"""Load the Predictor that serving uses, and refuse one that does not fit the taxonomy.

A model trained on another taxonomy version would return label ids the routing rules were not
checked against; failing at start-up is better than routing on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from data.errors import UserError
from data.taxonomy import Taxonomy
from training.inference.predict import Predictor
from training.mlflow_access import (
    MLFLOW_URI_PREFIXES,
    local_model_dir,
    model_version_of,
    recorded_serving_runtime,
    use_tracking_uri,
)

if TYPE_CHECKING:
    from training.inference.predict import Predictor

# The Predictor sorts the texts of a call by length and pads each chunk of this many to its own
# longest. Measured with MiniLM on 2 cores (posts of 75 tokens on average): chunks of 8 ran
# 88 posts/s, 16 ran 84, 32 ran 67, 64 ran 42: past a few thousand tokens the activations no
# longer fit in the cache.
PREDICT_CHUNK = 8


def pin_model(source: str, tracking_uri: str | None = None) -> tuple[str, str]:
    """(what to load, its model version) with an alias resolved now: workers that each load
    `models:/smista-classifier@champion` while the alias moves would score with two models.
    The version is the one Predictor.load reports for the same source."""
    if source.startswith("models:/"):
        use_tracking_uri(tracking_uri)
        version = model_version_of(source)
        return f"models:/{version}", version
    if source.startswith(MLFLOW_URI_PREFIXES):
        use_tracking_uri(tracking_uri)
        return source, model_version_of(source)
    path = local_model_dir(source).resolve()
    return str(path), path.name


def serving_runtime_for(source: str) -> str:
    """The runtime a registry version was measured best served with (its serving_runtime tag), for a
    models:/ URI; torch for anything else."""
    return recorded_serving_runtime(source) or "torch"


class ModelMismatchError(UserError, RuntimeError):
    """The loaded model does not predict the taxonomy the service validates against."""


def load_checked_predictor(source: str, taxonomy: Taxonomy, runtime: str | None = "torch",
                           threads: int | None = None) -> Predictor:
    """The Predictor of `source` run by `runtime` (torch, onnx, onnx-int8: see training/inference/predict.py)
    on `threads` threads (default: every core), checked against the taxonomy the service validates with.
    runtime None: the one recorded on the registry version (`serving_runtime_for`), else torch."""
    if runtime is None:
        runtime = serving_runtime_for(source)
    if threads is not None and runtime == "torch":
        # Here, and for torch only: an ONNX server that imported torch just to set this held 170 MB
        # more in its Classifier worker (931 against 766 MB at peak, e5 student, 2026-12-08).
        import torch

        # Process-wide, for the torch runtime; the ONNX runtimes take theirs per session.
        torch.set_num_threads(threads)
    predictor = Predictor.load(source, runtime=runtime, threads=threads)
    if predictor.taxonomy_version != taxonomy.version:
        raise ModelMismatchError(
            f"model {source!r} ({predictor.model_version}) was trained on taxonomy v{predictor.taxonomy_version}, "
            f"but the service uses v{taxonomy.version}: serve a model trained on this taxonomy"
        )
    if sorted(predictor.field_names) != sorted(taxonomy.field_names):
        raise ModelMismatchError(
            f"model {source!r} predicts heads {predictor.field_names}, the taxonomy has {taxonomy.field_names}"
        )
    for field_name in taxonomy.field_names:
        model_labels = predictor.heads[field_name].labels
        if model_labels != taxonomy.label_ids(field_name):
            raise ModelMismatchError(
                f"model {source!r} head {field_name!r} has labels {model_labels}, "
                f"the taxonomy has {taxonomy.label_ids(field_name)}"
            )
    return predictor
