"""The one place for inference: load a trained model (transformer or TF-IDF baseline) from a
directory or an MLflow URI and predict every head for a batch of texts.

Serving, labeling (pre-annotation) and evaluation all go through `Predictor`, so they can never
disagree about how probabilities become labels. The backends (torch_backend, onnx_backend,
baseline_model, blend_backend) each run one kind of model; `Predictor` picks one when it loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.errors import ModelLoadError
from training.inference.baseline_model import BASELINE_FILE, BaselineBackend, BaselineModel
from training.inference.batching import token_ids
from training.inference.blend_backend import BlendBackend
from training.inference.heads import HeadPrediction, HeadSpec
from training.inference.model_dir import CONFIG_FILE, read_transformer_config
from training.inference.runtimes import check_runtime
from training.label_profile import read_reference
from training.mlflow_access import MLFLOW_URI_PREFIXES, download_model, local_model_dir


def blended_backend(transformer_backend, model_dir: Path, blend: dict):
    """The transformer's backend blended with the TF-IDF stored beside it (training/fitting/blend.py)."""
    baseline_dir = model_dir / blend["baseline"]
    if not (baseline_dir / BASELINE_FILE).is_file():
        raise ModelLoadError(f"{model_dir} blends its transformer with the TF-IDF in {baseline_dir}, which is missing")
    return BlendBackend(transformer_backend, BaselineBackend(BaselineModel.load(baseline_dir)), blend["weights"])


class Predictor:
    model_version: str               # registry version, run id or directory name
    taxonomy_version: str
    field_names: list[str]

    def __init__(self, backend, heads: dict[str, HeadSpec], model_version: str, taxonomy_version: str, kind: str):
        self.backend = backend
        self.heads = heads
        self.field_names = list(heads)
        self.model_version = model_version
        self.taxonomy_version = taxonomy_version
        self.kind = kind  # "transformer" or "tfidf_baseline"
        # The drift reference saved with the model (training.label_profile); None for older models.
        self.reference_profile: dict | None = None
        # Where the model was loaded from (None when wrapped in memory); `downloaded`: a temporary
        # copy of an MLflow model, not a directory of the user's.
        self.model_dir: Path | None = None
        self.downloaded = False

    @property
    def runtime(self) -> str:
        """What runs the model: "torch", "onnx", "onnx-int8", or "sklearn" for the TF-IDF baseline."""
        return self.backend.runtime

    @classmethod
    def load(cls, source: str, tracking_uri: str | None = None, runtime: str = "torch",
             threads: int | None = None) -> Predictor:
        """Load from a local model directory, or an MLflow URI ("models:/smista-classifier@champion",
        "models:/smista-classifier/3", "runs:/<run_id>/model").

        model_version is "<registered name>/<version>" for a models:/ URI (an alias is resolved to
        its version), the run id for runs:/, the directory name for a local directory.

        runtime: "torch" (default), "onnx" or "onnx-int8" (transformer models only). For the ONNX
        runtimes a missing or stale export is made now (training/inference/onnx_export.py): into
        <model_dir>/onnx for a local directory, into build/onnx-cache/<content hash> for a model
        downloaded from MLflow.

        threads: intra-op threads of an onnxruntime session (default: every available core). The
        torch runtime uses torch's process-wide setting (`torch.set_num_threads`) instead.
        """
        check_runtime(runtime)
        if source.startswith(MLFLOW_URI_PREFIXES):
            model_dir, version = download_model(source, tracking_uri)
            return cls.from_directory(model_dir, model_version=version, runtime=runtime, downloaded=True,
                                      threads=threads)
        path = local_model_dir(source)
        return cls.from_directory(path, model_version=path.resolve().name, runtime=runtime, threads=threads)

    @classmethod
    def from_directory(cls, model_dir: str | Path, model_version: str, runtime: str = "torch",
                       downloaded: bool = False, threads: int | None = None) -> Predictor:
        predictor = cls._from_directory(Path(model_dir), model_version, runtime, downloaded, threads)
        predictor.reference_profile = read_reference(Path(model_dir))
        predictor.model_dir, predictor.downloaded = Path(model_dir), downloaded
        return predictor

    @classmethod
    def _from_directory(cls, model_dir: Path, model_version: str, runtime: str, downloaded: bool,
                        threads: int | None) -> Predictor:
        check_runtime(runtime)
        if (model_dir / BASELINE_FILE).is_file():
            if runtime != "torch":
                raise ModelLoadError(
                    f"model {model_version} ({model_dir}) is a TF-IDF baseline: runtime {runtime!r} runs exported "
                    "transformer models only; serve the baseline with runtime 'torch' (SMISTA_RUNTIME=torch), "
                    "which runs it on scikit-learn"
                )
            model = BaselineModel.load(model_dir)
            heads = {name: HeadSpec.from_config(name, spec) for name, spec in model.heads.items()}
            return cls(BaselineBackend(model), heads, model_version, model.taxonomy_version, "tfidf_baseline")
        if (model_dir / CONFIG_FILE).is_file():
            return cls.from_transformer_directory(model_dir, model_version, runtime=runtime, downloaded=downloaded,
                                                  threads=threads)
        raise ModelLoadError(
            f"model directory {model_dir} holds neither a transformer model (config.json) nor a baseline ({BASELINE_FILE})"
        )

    @classmethod
    def from_transformer_directory(cls, model_dir: Path, model_version: str, runtime: str = "torch",
                                   downloaded: bool = False, threads: int | None = None) -> Predictor:
        config_data = read_transformer_config(model_dir)
        # Each runtime imports only its own libraries: an ONNX server never loads torch (2 s and
        # 230 MB on import alone, measured 2026-12-07), a torch one never loads onnxruntime.
        if check_runtime(runtime) != "torch":
            from training.inference.onnx_export import onnx_backend_for

            backend = onnx_backend_for(model_dir, config_data, runtime, downloaded=downloaded, threads=threads)
            heads = {name: HeadSpec.from_config(name, config_data["heads"][name]) for name in config_data["field_names"]}
            predictor = cls(backend, heads, model_version, str(config_data.get("taxonomy_version")), "transformer")
        else:
            from training.inference.torch_backend import load_torch_model

            predictor = cls.from_transformer(*load_torch_model(model_dir), model_version)
        if config_data.get("blend"):
            predictor.backend = blended_backend(predictor.backend, model_dir, config_data["blend"])
        return predictor

    @classmethod
    def from_transformer(cls, model, tokenizer, model_version: str) -> Predictor:
        """Wrap an in-memory model (e.g. right after training, to tune thresholds)."""
        from training.inference.torch_backend import TransformerBackend  # torch: see from_transformer_directory

        config = model.config
        heads = {name: HeadSpec.from_config(name, config.heads[name]) for name in config.field_names}
        backend = TransformerBackend(model, tokenizer, config.max_input_tokens)
        return cls(backend, heads, model_version, str(config.taxonomy_version), "transformer")

    def predict_probabilities(self, texts: Sequence[str], batch_size: int = 32) -> dict[str, np.ndarray]:
        """field -> [posts, labels] probabilities, rows in input order."""
        if isinstance(texts, str):
            raise TypeError("predict takes a sequence of texts, not one string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not texts:
            return {name: np.zeros((0, len(head.labels)), dtype=np.float32) for name, head in self.heads.items()}
        return self.backend.probabilities(texts, batch_size)

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[dict[str, HeadPrediction]]:
        """One {field: HeadPrediction} per text, in input order."""
        probabilities = self.predict_probabilities(texts, batch_size)
        results: list[dict[str, HeadPrediction]] = [{} for _ in range(len(texts))]
        for name, head in self.heads.items():
            decisions, confidence = head.decide(probabilities[name])
            for row, result in enumerate(results):
                if head.multi_label:
                    labels = [label for label, chosen in zip(head.labels, decisions[row]) if chosen]
                else:
                    labels = [head.labels[decisions[row]]]
                result[name] = HeadPrediction(
                    labels=labels,
                    probabilities={label: float(p) for label, p in zip(head.labels, probabilities[name][row])},
                    confidence=float(confidence[row]),
                )
        return results

    def transformer_backend(self):
        """The backend that runs the transformer, inside a blend too; ModelLoadError for a TF-IDF baseline."""
        backend = getattr(self.backend, "transformer", self.backend)
        if not hasattr(backend, "tokenizer"):
            raise ModelLoadError(f"model {self.model_version} is a {self.kind}, not a transformer")
        return backend

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as the transformer reads it (special tokens in, truncated to its max length)."""
        backend = self.transformer_backend()
        return [len(ids) for ids in token_ids(backend.tokenizer, texts, backend.max_length)]
