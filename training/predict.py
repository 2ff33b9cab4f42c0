"""The one place for inference: load a trained model (transformer or TF-IDF baseline) from a
directory or an MLflow URI and predict every head for a batch of texts.

Serving, labeling (pre-annotation) and evaluation all go through `Predictor`, so they can never
disagree about how probabilities become labels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.errors import ModelLoadError
from training.label_profile import read_reference

MLFLOW_URI_PREFIXES = ("models:/", "runs:/", "mlflow-artifacts:/")
# How a transformer model is run: PyTorch as trained, or its ONNX export (training/onnx_export.py)
# under onnxruntime, in fp32 or dynamically quantised to int8. A TF-IDF baseline runs on
# scikit-learn whatever is asked, and accepts only "torch" (the default).
RUNTIMES = ("torch", "onnx", "onnx-int8")
BASELINE_RUNTIME = "sklearn"
# Name of the model directory inside the logged MLflow model (see training/tracking.py).
MLFLOW_ARTIFACT_KEY = "smista_model"
BASELINE_FILE = "baseline.json"



@dataclass(frozen=True)
class HeadPrediction:
    labels: list[str]                # single-label head: exactly one id; multi-label: ids over threshold, may be empty
    probabilities: dict[str, float]  # every label id of the head -> probability
    confidence: float                # single: top probability; multi: the least certain per-label decision


@dataclass(frozen=True)
class HeadSpec:
    """How one head turns probabilities into labels."""

    name: str
    labels: list[str]
    multi_label: bool
    thresholds: list[float] | None = None  # multi-label heads only, one per label

    @classmethod
    def from_config(cls, name: str, spec: dict) -> HeadSpec:
        thresholds = None
        if spec["multi_label"]:
            tuned = spec.get("thresholds") or {}
            missing = [label for label in spec["labels"] if label not in tuned]
            if missing:
                raise ModelLoadError(f"head {name!r} has no decision threshold for {missing}: the model was saved before tuning")
            thresholds = [float(tuned[label]) for label in spec["labels"]]
        return cls(name=name, labels=list(spec["labels"]), multi_label=bool(spec["multi_label"]), thresholds=thresholds)

    def decide(self, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(decisions, confidence) for [posts, labels] probabilities.

        Single-label: decisions are the argmax indices, confidence the top probability.
        Multi-label: decisions are 0/1 per label (probability >= threshold); each decision is
        right with probability p (yes) or 1 - p (no), and the post's confidence is the least
        certain of its decisions.
        """
        if not self.multi_label:
            return probabilities.argmax(axis=1), probabilities.max(axis=1)
        decisions = probabilities >= np.asarray(self.thresholds)[None, :]
        certainty = np.where(decisions, probabilities, 1.0 - probabilities)
        return decisions.astype(int), certainty.min(axis=1)


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"unknown runtime {runtime!r}; expected one of: {', '.join(RUNTIMES)}")
    return runtime


def length_sorted_batches(tokenizer, texts: Sequence[str], max_length: int, batch_size: int, return_tensors: str):
    """(row indices, padded batch) chunks of `batch_size` texts, shortest first, each padded only to
    its own longest post. Sorting by length keeps padding small; callers put results back in input
    order by the indices."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        yield indices, tokenizer.pad([{"input_ids": encoded[i]} for i in indices], return_tensors=return_tensors)


class TransformerBackend:
    """Runs a SmistaMultiHeadModel: length-sorted batches, each padded to its own longest post."""

    runtime = "torch"

    def __init__(self, model, tokenizer, max_length: int):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    def probabilities(self, texts: Sequence[str], batch_size: int) -> dict[str, np.ndarray]:
        import torch

        config = self.model.config
        result = {name: np.zeros((len(texts), len(config.heads[name]["labels"])), dtype=np.float32) for name in config.field_names}
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            for indices, batch in length_sorted_batches(self.tokenizer, texts, self.max_length, batch_size, "pt"):
                batch = {key: value.to(device) for key, value in batch.items()}
                probabilities = self.model.probabilities(self.model(**batch))
                for name, values in probabilities.items():
                    result[name][indices] = values.float().cpu().numpy()
        return result


class BaselineBackend:
    """Runs the TF-IDF baseline (training/baseline.py)."""

    runtime = BASELINE_RUNTIME

    def __init__(self, model):
        self.model = model

    def probabilities(self, texts: Sequence[str], batch_size: int) -> dict[str, np.ndarray]:
        # One sparse matrix product per head; batching buys nothing here.
        return self.model.predict_proba(list(texts))


def blended_backend(transformer_backend, model_dir: Path, blend: dict):
    """The transformer's backend blended with the TF-IDF stored beside it (training/blend.py)."""
    from training.baseline import BaselineModel
    from training.blend import BlendBackend

    baseline_dir = model_dir / blend["baseline"]
    if not (baseline_dir / BASELINE_FILE).is_file():
        raise ModelLoadError(f"{model_dir} blends its transformer with the TF-IDF in {baseline_dir}, which is missing")
    return BlendBackend(transformer_backend, BaselineBackend(BaselineModel.load(baseline_dir)), blend["weights"])


def local_model_dir(source: str) -> Path:
    """`source` as a model directory; ModelLoadError when it is neither one nor an MLflow URI."""
    path = Path(source)
    if not path.is_dir():
        raise ModelLoadError(
            f"model {source!r}: no such directory, and not an MLflow URI (models:/name@alias, models:/name/N, runs:/id/model)"
        )
    return path


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
        runtimes a missing or stale export is made now (training/onnx_export.py): into
        <model_dir>/onnx for a local directory, into build/onnx-cache/<content hash> for a model
        downloaded from MLflow.

        threads: intra-op threads of an onnxruntime session (default: every available core). The
        torch runtime uses torch's process-wide setting (`torch.set_num_threads`) instead.
        """
        check_runtime(runtime)
        if source.startswith(MLFLOW_URI_PREFIXES):
            from training.tracking import download_model

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
            from training.baseline import BaselineModel

            model = BaselineModel.load(model_dir)
            heads = {name: HeadSpec.from_config(name, spec) for name, spec in model.heads.items()}
            return cls(BaselineBackend(model), heads, model_version, model.taxonomy_version, "tfidf_baseline")
        if (model_dir / "config.json").is_file():
            return cls.from_transformer_directory(model_dir, model_version, runtime=runtime, downloaded=downloaded,
                                                  threads=threads)
        raise ModelLoadError(
            f"model directory {model_dir} holds neither a transformer model (config.json) nor a baseline ({BASELINE_FILE})"
        )

    @classmethod
    def from_transformer_directory(cls, model_dir: Path, model_version: str, runtime: str = "torch",
                                   downloaded: bool = False, threads: int | None = None) -> Predictor:
        import torch
        from transformers import AutoTokenizer

        from training.model import SmistaConfig, SmistaMultiHeadModel

        config_data = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        if config_data.get("model_type") != SmistaConfig.model_type:
            raise ModelLoadError(
                f"{model_dir} holds a {config_data.get('model_type')!r} model, not a smista multi-head model"
            )
        if check_runtime(runtime) != "torch":
            from training.onnx_backend import OnnxBackend
            from training.onnx_export import default_onnx_dir, ensure_export

            export = ensure_export(model_dir, default_onnx_dir(model_dir, temporary_source=downloaded))
            heads = {name: HeadSpec.from_config(name, config_data["heads"][name]) for name in config_data["field_names"]}
            backend = OnnxBackend(
                export.int8_path if runtime == "onnx-int8" else export.fp32_path,
                AutoTokenizer.from_pretrained(model_dir),
                max_length=int(config_data.get("max_input_tokens", 128)),
                field_names=list(heads),
                runtime=runtime,
                threads=threads,
            )
            predictor = cls(backend, heads, model_version, str(config_data.get("taxonomy_version")), "transformer")
        else:
            model = SmistaMultiHeadModel.from_pretrained(model_dir, dtype=torch.float32)  # stored fp16 or fp32
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            predictor = cls.from_transformer(model, tokenizer, model_version)
        if config_data.get("blend"):
            predictor.backend = blended_backend(predictor.backend, model_dir, config_data["blend"])
        return predictor

    @classmethod
    def from_transformer(cls, model, tokenizer, model_version: str) -> Predictor:
        """Wrap an in-memory model (e.g. right after training, to tune thresholds)."""
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
