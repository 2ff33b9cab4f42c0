"""Pre-annotation: attach the champion model's predictions to tasks, so annotators confirm or fix
instead of starting from nothing.

A push command rather than a Label Studio ML backend: the ML backend needs the separate
`label-studio-ml` server package and a long-running process beside Label Studio, and SDK 2.x
imports predictions in bulk just as well. The model sees the redacted text, exactly what annotators
see. Each prediction carries the model version and its scores (per field, the head's confidence;
overall, the least confident head), and the project is switched to that model version so Label
Studio shows its predictions in the labeling interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from data.taxonomy import Taxonomy
from labeling.client import LabelingError, LabelStudioClient
from labeling.config import labels_to_result

if TYPE_CHECKING:
    from training.inference.heads import HeadPrediction
    from training.inference.predict import Predictor


class ModelTaxonomyMismatchError(LabelingError):
    """The model was trained on another taxonomy version or lacks a field the interface shows."""


@dataclass
class PreannotationReport:
    model_version: str
    attached: int = 0
    already_predicted: int = 0
    skipped_annotated: int = 0
    task_ids: list[int] = field(default_factory=list)


def check_predictor(predictor: Predictor, taxonomy: Taxonomy) -> None:
    if str(predictor.taxonomy_version) != str(taxonomy.version):
        raise ModelTaxonomyMismatchError(
            f"model {predictor.model_version} predicts taxonomy v{predictor.taxonomy_version}, the project uses "
            f"v{taxonomy.version}: train a model on the current taxonomy first"
        )
    missing = [name for name in taxonomy.fields if name not in predictor.field_names]
    if missing:
        raise ModelTaxonomyMismatchError(f"model {predictor.model_version} has no head for {', '.join(missing)}")


def prediction_for(heads: dict[str, HeadPrediction], taxonomy: Taxonomy) -> tuple[list[dict[str, Any]], float]:
    """Label Studio `result` items and the overall score for one post's predictions."""
    labels = {
        name: (heads[name].labels if spec.is_multi_label else heads[name].labels[0])
        for name, spec in taxonomy.fields.items()
    }
    scores = {name: heads[name].confidence for name in taxonomy.fields}
    # The least confident head decides how much the whole pre-annotation can be trusted.
    return labels_to_result(labels, taxonomy, scores), round(min(scores.values()), 6)


def attach_predictions(
    client: LabelStudioClient,
    project_id: int,
    task_ids: Sequence[int],
    texts: Sequence[str],
    predictor: Predictor,
    taxonomy: Taxonomy,
    batch_size: int = 32,
) -> int:
    """Predict `texts` and attach one prediction to each task; returns how many were attached."""
    if len(task_ids) != len(texts):
        raise ValueError(f"{len(task_ids)} task ids for {len(texts)} texts")
    if not texts:
        return 0
    predictions = []
    for task_id, heads in zip(task_ids, predictor.predict(list(texts), batch_size=batch_size)):
        result, score = prediction_for(heads, taxonomy)
        predictions.append({"task": task_id, "result": result, "score": score, "model_version": predictor.model_version})
    client.import_predictions(project_id, predictions)
    # Label Studio shows the predictions of the project's model version as pre-annotations.
    client.update_project(project_id, model_version=predictor.model_version)
    return len(predictions)


def preannotate(
    client: LabelStudioClient,
    project_id: int,
    predictor: Predictor,
    taxonomy: Taxonomy,
    include_annotated: bool = False,
    batch_size: int = 32,
) -> PreannotationReport:
    """Attach predictions to every task that has none from this model version (idempotent)."""
    check_predictor(predictor, taxonomy)
    report = PreannotationReport(model_version=predictor.model_version)
    task_ids: list[int] = []
    texts: list[str] = []
    for task in client.iter_tasks(project_id, with_annotations=True):
        versions = {prediction.get("model_version") for prediction in task.get("predictions") or []}
        if predictor.model_version in versions:
            report.already_predicted += 1
            continue
        if task.get("annotations") and not include_annotated:
            report.skipped_annotated += 1
            continue
        task_ids.append(int(task["id"]))
        texts.append(task["data"]["text"])
    report.attached = attach_predictions(client, project_id, task_ids, texts, predictor, taxonomy, batch_size)
    report.task_ids = task_ids
    return report
