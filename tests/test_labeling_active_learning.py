from __future__ import annotations

import json
import math

import pytest
from conftest import make_post
from labeling_doubles import FakeHead, FakeLabelStudio, FakePredictor

from labeling.active_learning import (
    SelectionConfig,
    SelectionConfigError,
    head_uncertainty,
    run_selection,
    select_diverse,
)


def test_entropy_and_margin_of_single_label_heads():
    uniform = FakeHead(["a"], {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 1 / 3)
    certain = FakeHead(["a"], {"a": 1.0, "b": 0.0, "c": 0.0}, 1.0)
    split = FakeHead(["a"], {"a": 0.5, "b": 0.4, "c": 0.1}, 0.5)
    assert head_uncertainty(uniform, False, "entropy") == pytest.approx(1.0)
    assert head_uncertainty(certain, False, "entropy") == pytest.approx(0.0)
    expected = -(0.5 * math.log(0.5) + 0.4 * math.log(0.4) + 0.1 * math.log(0.1)) / math.log(3)
    assert head_uncertainty(split, False, "entropy") == pytest.approx(expected)
    assert head_uncertainty(split, False, "margin") == pytest.approx(0.9)  # 1 - (0.5 - 0.4)


def test_multi_label_heads_are_measured_label_by_label():
    head = FakeHead([], {"x": 0.5, "y": 0.0}, 0.5)
    assert head_uncertainty(head, True, "entropy") == pytest.approx(0.5)  # (1 bit + 0) / 2
    assert head_uncertainty(head, True, "margin") == pytest.approx(0.5)  # (1 + 0) / 2


def test_diversity_keeps_one_of_many_near_duplicates():
    outage = "Da stamattina niente internet a Milano, il modem lampeggia rosso"
    # the same complaint re-posted with small changes (case, punctuation)
    copies = [outage, outage + "!", outage.lower(), outage.upper(), outage.replace("rosso", "rosso."), outage]
    texts = copies + [
        "Come faccio la voltura del contratto luce?",
        "Il rimborso del biglietto non è ancora arrivato",
        "Cercate stagisti in marketing per l'estate?",
    ]
    # the duplicates are the most uncertain: without diversity they would fill the batch
    uncertainties = [0.95, 0.94, 0.93, 0.92, 0.91, 0.90, 0.6, 0.5, 0.4]
    plain, _ = select_diverse(texts, uncertainties, SelectionConfig(batch_size=3, diversity="none"))
    assert [pick.index for pick in plain] == [0, 1, 2]
    diverse, duplicates = select_diverse(texts, uncertainties, SelectionConfig(batch_size=3, candidate_factor=3))
    assert [pick.index for pick in diverse] == [0, 6, 7]
    assert duplicates == 5
    assert [pick.rank for pick in diverse] == [1, 2, 3]


def test_bad_settings_are_named():
    with pytest.raises(SelectionConfigError, match="uncertainty must be one of"):
        SelectionConfig(uncertainty="vibes").check()
    with pytest.raises(SelectionConfigError, match="diversity_weight"):
        SelectionConfig(diversity_weight=2).check()


def test_selection_pushes_in_rank_order_with_predictions_and_records_the_strategy(
    taxonomy, validator, write_jsonl, tmp_path
):
    unsure = {"intent": {label: 1 / len(taxonomy.label_ids("intent")) for label in taxonomy.label_ids("intent")}}
    posts = [make_post(f"p{i}", text=f"testo numero {i} sul servizio {'x' * i}") for i in range(6)]
    posts.append(make_post("p-known", text="già importato"))
    predictor = FakePredictor(taxonomy, table={posts[4]["text"]: unsure, posts[2]["text"]: {
        "intent": {label: (0.55 if label == "reclamo" else 0.45 / 10) for label in taxonomy.label_ids("intent")}}})
    ls = FakeLabelStudio()
    ls.create_project("smista", "<View/>", "")
    ls.import_tasks(1, [{"data": {"post_id": "p-known", "text": "già importato"}}])
    pool = write_jsonl("pool.jsonl", posts + ['{"id": "broken"'])

    config = SelectionConfig(batch_size=2, uncertainty="margin")
    result = run_selection(ls, 1, pool, predictor, validator, ["VeloFibra"], config, tmp_path / "selections")

    assert [pick["post_id"] for pick in result.picks] == ["p4", "p2"]
    assert result.already_in_project == 1 and result.errors[0].line_number == 8
    new_tasks = [ls.tasks[task_id] for task_id in sorted(ls.tasks)][1:]
    assert [task["data"]["post_id"] for task in new_tasks] == ["p4", "p2"]  # rank 1 gets the lower task id
    assert new_tasks[0]["data"]["selection"]["rank"] == 1
    assert new_tasks[0]["data"]["origin"] == "active_learning"
    assert new_tasks[0]["predictions"][0]["model_version"] == "fake/1"
    record = json.loads(result.record_path.read_text(encoding="utf-8"))
    assert record["strategy"]["uncertainty"] == "margin" and record["strategy"]["model_version"] == "fake/1"
    assert record["strategy"]["diversity"] == "mmr" and record["pool"]["bad_lines"] == 1
    assert [pick["post_id"] for pick in record["picks"]] == ["p4", "p2"]
