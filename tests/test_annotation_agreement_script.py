from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from data.taxonomy import load_taxonomy
from labeling.agreement import cohen_kappa

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "annotation_agreement.py"


def _script():
    spec = importlib.util.spec_from_file_location("annotation_agreement", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _labels(intent, actions, sentiment="neutro"):
    return {"intent": intent, "customer_type": "non_cliente", "business_action": actions, "priority": "bassa", "sentiment": sentiment}


def _write(path: Path, rows: dict[int, dict]) -> Path:
    path.write_text("".join(json.dumps({"row": row, **labels}) + "\n" for row, labels in rows.items()), encoding="utf-8")
    return path


def test_kappa_and_raw_agreement_on_shared_rows(tmp_path):
    first = {1: _labels("elogio", []), 2: _labels("reclamo", ["lamentela"]), 3: _labels("reclamo", ["lamentela", "disdetta"]),
             4: _labels("fuori_tema", []), 9: _labels("elogio", [])}
    second = {1: _labels("elogio", []), 2: _labels("fuori_tema", []), 3: _labels("reclamo", ["disdetta", "lamentela"]),
              4: _labels("fuori_tema", []), 7: _labels("reclamo", [])}
    module = _script()
    result = module.agreement(module.read_labels(_write(tmp_path / "a.jsonl", first)),
                              module.read_labels(_write(tmp_path / "b.jsonl", second)), load_taxonomy())
    assert result["rows_shared"] == 4
    intent = result["fields"]["intent"]
    expected = cohen_kappa(["elogio", "reclamo", "reclamo", "fuori_tema"], ["elogio", "fuori_tema", "reclamo", "fuori_tema"])
    assert intent["cohen_kappa"] == pytest.approx(expected)
    assert intent["raw_agreement"] == pytest.approx(0.75) and intent["disagreements"] == 1
    # business_action is measured label by label; the order inside the list does not matter
    assert result["fields"]["business_action.lamentela"]["disagreements"] == 1
    assert result["fields"]["business_action.disdetta"]["disagreements"] == 0
    assert result["fields"]["business_action.rinnovo"]["cohen_kappa"] is None
    assert result["whole_fields"]["business_action"]["disagreements"] == 1
    assert result["all_fields"]["rows_differing"] == 1


def test_refuses_rows_naming_different_texts(tmp_path):
    module = _script()
    a = {1: {**_labels("elogio", []), "text_sha256": "aa"}}
    b = {1: {**_labels("elogio", []), "text_sha256": "bb"}}
    with pytest.raises(SystemExit, match="text_sha256"):
        module.agreement(module.read_labels(_write(tmp_path / "a.jsonl", a)), module.read_labels(_write(tmp_path / "b.jsonl", b)), load_taxonomy())
