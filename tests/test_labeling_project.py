from __future__ import annotations

import pytest
from labeling_doubles import FakeLabelStudio

from data.taxonomy import Taxonomy
from labeling.config import build_label_config, labels_to_result
from labeling.project import OrphanedAnnotationsError, ProjectNotFoundError, ensure_project, find_project_id

TITLE = "smista: prova"


def _without_label(taxonomy: Taxonomy, field: str, label_id: str) -> Taxonomy:
    raw = taxonomy.model_dump()
    raw["fields"][field]["labels"] = [label for label in raw["fields"][field]["labels"] if label["id"] != label_id]
    return Taxonomy.model_validate(raw)


def test_creation_is_idempotent(taxonomy):
    ls = FakeLabelStudio()
    first = ensure_project(ls, taxonomy, TITLE)
    second = ensure_project(ls, taxonomy, TITLE)
    assert (first.action, second.action) == ("created", "unchanged")
    assert first.project_id == second.project_id and len(ls.projects) == 1
    assert ls.projects[1]["label_config"] == build_label_config(taxonomy)


def test_changed_taxonomy_updates_the_config_when_nothing_is_orphaned(taxonomy):
    ls = FakeLabelStudio()
    ensure_project(ls, taxonomy, TITLE)
    smaller = _without_label(taxonomy, "intent", "lavoro")
    assert ensure_project(ls, smaller, TITLE).action == "updated"
    assert ls.projects[1]["label_config"] == build_label_config(smaller)


def test_change_that_would_orphan_annotations_is_refused_with_labels_named(taxonomy):
    ls = FakeLabelStudio()
    ensure_project(ls, taxonomy, TITLE)
    ls.import_tasks(1, [{"data": {"post_id": "p1", "text": "x"}}])
    labels = {"intent": "lavoro", "customer_type": "non_cliente", "business_action": [], "priority": "bassa",
              "sentiment": "neutro"}
    ls.create_annotation(1, labels_to_result(labels, taxonomy))
    before = ls.projects[1]["label_config"]
    with pytest.raises(OrphanedAnnotationsError, match=r"intent\.lavoro \(1 annotation\)"):
        ensure_project(ls, _without_label(taxonomy, "intent", "lavoro"), TITLE)
    assert ls.projects[1]["label_config"] == before


def test_missing_and_duplicate_titles_are_explained(taxonomy):
    ls = FakeLabelStudio()
    with pytest.raises(ProjectNotFoundError, match="smista label project"):
        find_project_id(ls, TITLE)
    ls.create_project(TITLE, "<View/>", "")
    ls.create_project(TITLE, "<View/>", "")
    with pytest.raises(ProjectNotFoundError, match="ids 1, 2"):
        ensure_project(ls, taxonomy, TITLE)
