"""Test doubles for the labeling unit tests: an in-memory Label Studio and a predictor.

The real server is exercised by tests/test_labeling_integration.py; these doubles keep the unit
tests fast and let them look at exactly what would have been sent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from labeling.client import LabelStudioUnavailableError


class FakeLabelStudio:
    """The subset of LabelStudioClient that labeling/ uses, kept in memory."""

    url = "http://fake-label-studio"

    def __init__(self) -> None:
        self.projects: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.update_calls: list[int] = []
        self.down = False
        self._clock = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def _now(self) -> str:
        self._clock += timedelta(seconds=1)
        return self._clock.isoformat().replace("+00:00", "Z")

    def _check_up(self) -> None:
        if self.down:
            raise LabelStudioUnavailableError(f"Label Studio is not reachable at {self.url}")

    # projects
    def find_projects(self, title: str) -> list[dict[str, Any]]:
        self._check_up()
        return [copy.deepcopy(p) for p in self.projects.values() if p["title"] == title]

    def get_project(self, project_id: int) -> dict[str, Any]:
        self._check_up()
        return copy.deepcopy(self.projects[project_id])

    def create_project(self, title: str, label_config: str, description: str, **settings: Any) -> dict[str, Any]:
        self._check_up()
        project_id = len(self.projects) + 1
        self.projects[project_id] = {"id": project_id, "title": title, "label_config": label_config,
                                     "description": description, **settings}
        return copy.deepcopy(self.projects[project_id])

    def update_project(self, project_id: int, **changes: Any) -> dict[str, Any]:
        self._check_up()
        self.projects[project_id].update(changes)
        return copy.deepcopy(self.projects[project_id])

    # tasks
    def iter_tasks(self, project_id: int, *, updated_after: str | None = None, with_annotations: bool = True,
                   page_size: int = 500):
        self._check_up()
        for task_id in sorted(self.tasks):
            task = self.tasks[task_id]
            if task["project"] != project_id:
                continue
            if updated_after is not None and task["updated_at"] <= updated_after:
                continue
            shown = copy.deepcopy(task)
            shown["total_annotations"] = len(task["annotations"])
            if not with_annotations:
                shown.pop("annotations")
                shown.pop("predictions")
            yield shown

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
        self._check_up()
        ids = []
        for task in tasks:
            task_id = len(self.tasks) + 1
            self.tasks[task_id] = {"id": task_id, "project": project_id, "data": copy.deepcopy(task["data"]),
                                   "annotations": [], "predictions": [], "updated_at": self._now()}
            ids.append(task_id)
        return ids

    def update_task_data(self, task_id: int, data: dict[str, Any]) -> None:
        self._check_up()
        self.update_calls.append(task_id)
        self.tasks[task_id]["data"] = copy.deepcopy(data)
        self.tasks[task_id]["updated_at"] = self._now()

    def import_predictions(self, project_id: int, predictions: list[dict[str, Any]]) -> int:
        self._check_up()
        for prediction in predictions:
            self.tasks[prediction["task"]]["predictions"].append(copy.deepcopy(prediction))
        return len(predictions)

    def create_annotation(self, task_id: int, result: list[dict[str, Any]], completed_by: int = 1,
                          was_cancelled: bool = False) -> dict[str, Any]:
        self._check_up()
        task = self.tasks[task_id]
        annotation = {"id": sum(len(t["annotations"]) for t in self.tasks.values()) + 1, "result": result,
                      "completed_by": completed_by, "was_cancelled": was_cancelled}
        task["annotations"].append(annotation)
        task["updated_at"] = self._now()
        return copy.deepcopy(annotation)


@dataclass(frozen=True)
class FakeHead:
    labels: list[str]
    probabilities: dict[str, float]
    confidence: float


class FakePredictor:
    """Predicts from a text -> {field: probabilities} table; unknown texts get a fixed confident guess."""

    def __init__(self, taxonomy, table: dict[str, dict[str, dict[str, float]]] | None = None,
                 model_version: str = "fake/1"):
        self.taxonomy = taxonomy
        self.table = table or {}
        self.model_version = model_version
        self.taxonomy_version = taxonomy.version
        self.field_names = list(taxonomy.fields)
        self.calls: list[list[str]] = []

    def _confident(self, name: str) -> dict[str, float]:
        spec = self.taxonomy.fields[name]
        if spec.is_multi_label:
            return {label: 0.02 for label in spec.label_ids}
        rest = 0.02 / (len(spec.label_ids) - 1)
        return {label: (0.98 if i == 0 else rest) for i, label in enumerate(spec.label_ids)}

    def predict(self, texts, batch_size: int = 32):
        self.calls.append(list(texts))
        results = []
        for text in texts:
            heads = {}
            for name, spec in self.taxonomy.fields.items():
                probabilities = self.table.get(text, {}).get(name) or self._confident(name)
                if spec.is_multi_label:
                    labels = [label for label, p in probabilities.items() if p >= 0.5]
                    confidence = min(max(p, 1 - p) for p in probabilities.values())
                else:
                    labels = [max(probabilities, key=probabilities.get)]
                    confidence = max(probabilities.values())
                heads[name] = FakeHead(labels, probabilities, confidence)
            results.append(heads)
        return results
