from __future__ import annotations

import json
import os
import stat

import pytest
from conftest import make_post
from labeling_doubles import FakeLabelStudio

from labeling.client import LabelStudioUnavailableError
from labeling.config import labels_to_result
from labeling.export import ExportConfig, ExportError, latest_tasks, project_exports_dir, pull, rebuild
from labeling.importer import import_posts

INTENTS = ["informazioni", "assistenza_tecnica", "fatturazione", "reclamo", "elogio"]


def _labels(intent: str, actions=(), priority="normale") -> dict:
    return {"intent": intent, "customer_type": "cliente_attivo", "business_action": list(actions),
            "priority": priority, "sentiment": "neutro"}


@pytest.fixture
def project(taxonomy, validator):
    """A fake project with 10 imported posts, each annotated once (two per intent)."""
    ls = FakeLabelStudio()
    ls.create_project("smista", "<View/>", "")
    posts = [validator.validate(make_post(f"p{i:02d}", intent=INTENTS[i % 5])) for i in range(10)]
    report = import_posts(ls, 1, posts, validator, [])
    for post in posts:
        ls.create_annotation(report.task_ids[post.id], labels_to_result(post.labels, taxonomy), completed_by=1)
    return ls, report.task_ids


def _config(tmp_path, **overrides) -> ExportConfig:
    return ExportConfig(exports_dir=str(tmp_path / "raw"), output_dir=str(tmp_path / "dataset"), **overrides)


def test_export_builds_the_data_set_the_training_command_reads(project, taxonomy, tmp_path):
    ls, _ = project
    config = _config(tmp_path)
    first = pull(ls, 1, config.exports_dir)
    report = rebuild(1, config)
    assert first.task_count == 10 and report.labelled_posts == 10
    output = tmp_path / "dataset"
    assert {"hf", "train.jsonl", "validation.jsonl", "test.jsonl", "manifest.json", "labelled.jsonl",
            "labeling_report.json"} <= {p.name for p in output.iterdir()}
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["data_hash"] == report.data_hash
    assert manifest["config"]["output_dir"] == str(output)  # not the staging folder it was built in
    labelled = [json.loads(line) for line in (output / "labelled.jsonl").read_text().splitlines()]
    assert labelled[0]["labels"]["intent"] == "informazioni" and "customer_id" not in labelled[0]
    from datasets import load_from_disk

    dataset = load_from_disk(str(output / "hf"))
    assert sum(len(split) for split in dataset.values()) == 10
    assert dataset["train"].features["intent"].names == taxonomy.label_ids("intent")


def test_pulls_are_incremental_and_raw_files_immutable(project, taxonomy, tmp_path):
    ls, task_ids = project
    config = _config(tmp_path)
    first = pull(ls, 1, config.exports_dir)
    assert pull(ls, 1, config.exports_dir).path is None  # nothing changed
    ls.create_annotation(task_ids["p03"], labels_to_result(_labels("reclamo"), taxonomy), completed_by=2)
    second = pull(ls, 1, config.exports_dir)
    assert second.task_count == 1
    assert not os.stat(first.path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    tasks, used = latest_tasks(project_exports_dir(config.exports_dir, 1))
    assert used == [first.path.name, second.path.name]
    assert len(tasks[task_ids["p03"]]["annotations"]) == 2  # the later pull's version wins


def test_disagreements_are_flagged_and_agreement_measured(project, taxonomy, tmp_path):
    ls, task_ids = project
    ls.create_annotation(task_ids["p00"], labels_to_result(_labels("reclamo"), taxonomy), completed_by=2)
    ls.create_annotation(task_ids["p01"], labels_to_result(_labels("assistenza_tecnica"), taxonomy), completed_by=2)
    ls.create_annotation(task_ids["p01"], labels_to_result(_labels("reclamo"), taxonomy), completed_by=3)
    config = _config(tmp_path)
    pull(ls, 1, config.exports_dir)
    report = rebuild(1, config)
    assert [item["post_id"] for item in report.disagreements] == ["p00"]
    assert report.disagreements[0]["votes"] == {"intent": {"informazioni": 1, "reclamo": 1}}
    assert report.labelled_posts == 9  # p01 resolved 2 to 1, p00 left out
    assert report.agreement["intent"]["items"] == 2
    flagged = (tmp_path / "dataset" / "disagreements.jsonl").read_text().splitlines()
    assert json.loads(flagged[0])["task_id"] == task_ids["p00"]


def test_annotation_with_a_label_outside_the_taxonomy_is_rejected_by_name(project, taxonomy, tmp_path):
    ls, task_ids = project
    result = labels_to_result(_labels("reclamo"), taxonomy)
    result[0]["value"]["choices"] = ["lamentela_generica"]
    ls.tasks[task_ids["p02"]]["annotations"] = [{"id": 99, "result": result, "completed_by": 1, "was_cancelled": False}]
    config = _config(tmp_path)
    pull(ls, 1, config.exports_dir)
    report = rebuild(1, config)
    assert [(r.post_id, "unknown label id 'lamentela_generica'" in r.reason) for r in report.rejected] == [("p02", True)]
    assert report.labelled_posts == 9


def test_skipped_annotations_do_not_count(project, tmp_path):
    ls, task_ids = project
    ls.tasks[task_ids["p04"]]["annotations"][0]["was_cancelled"] = True
    config = _config(tmp_path)
    pull(ls, 1, config.exports_dir)
    report = rebuild(1, config)
    assert report.unlabelled_tasks == 1 and report.labelled_posts == 9


def test_server_down_writes_nothing(project, tmp_path):
    ls, _ = project
    ls.down = True
    config = _config(tmp_path)
    with pytest.raises(LabelStudioUnavailableError):
        pull(ls, 1, config.exports_dir)
    assert not (tmp_path / "raw").exists()


def test_rebuild_without_pulls_says_what_to_do(tmp_path):
    with pytest.raises(ExportError, match="no raw pulls"):
        rebuild(1, _config(tmp_path))


def test_full_pull_drops_tasks_deleted_in_label_studio(project, tmp_path):
    ls, task_ids = project
    config = _config(tmp_path)
    pull(ls, 1, config.exports_dir)
    del ls.tasks[task_ids["p09"]]
    pull(ls, 1, config.exports_dir, full=True)
    assert rebuild(1, config).labelled_posts == 9
