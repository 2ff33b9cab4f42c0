"""scripts/pii_benchmark.py: precision and recall per kind, and a label file that no longer matches
its texts is refused naming the rows."""

from __future__ import annotations

import hashlib
import importlib.util
import json

import pytest

from tests.training_helpers import REPO_ROOT


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("pii_benchmark", REPO_ROOT / "scripts" / "pii_benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_precision_and_recall_count_overlapping_spans_of_the_same_kind(benchmark):
    text = "Sono Mario Rossi, chiamate il 333 000 0000 o scrivete a @anna_b"
    gold = [{"start": 5, "end": 16, "kind": "person"}, {"start": 30, "end": 42, "kind": "phone"},
            {"start": 0, "end": 4, "kind": "person"}]  # a labelled span the detector misses
    table = benchmark.score([(text, gold), ("Tutto bene, grazie", [])], ["person", "phone", "handle"])
    assert table["person"] == {"labelled": 2, "predicted": 1, "precision": 1.0, "recall": 0.5}
    assert table["phone"] == {"labelled": 1, "predicted": 1, "precision": 1.0, "recall": 1.0}
    assert table["handle"] == {"labelled": 0, "predicted": 1, "precision": 0.0, "recall": None}


def test_the_planted_fakes_of_the_seed_posts_are_all_labelled(benchmark):
    items = benchmark.seed_posts()
    kinds = {span["kind"] for _, gold in items for span in gold}
    assert kinds == {"iban", "codice_fiscale", "card", "email", "phone"}


def test_labels_whose_text_changed_are_refused_naming_the_rows(benchmark, tmp_path, monkeypatch):
    tsv = tmp_path / "data.tsv"
    tsv.write_text("row\tcomment\n7\tciao Giulia\n8\taltro\n", encoding="utf-8")
    labels = tmp_path / "labels.jsonl"
    labels.write_text("\n".join(json.dumps(line) for line in [
        {"row": 7, "text_sha256": hashlib.sha256("ciao Giulia".encode()).hexdigest(), "spans": []},
        {"row": 8, "text_sha256": "0" * 64, "spans": []},
    ]) + "\n", encoding="utf-8")
    monkeypatch.setattr(benchmark, "LABELS", labels)
    with pytest.raises(benchmark.LabelError, match=r"rows \[8\]"):
        benchmark.real_comments(tsv)
