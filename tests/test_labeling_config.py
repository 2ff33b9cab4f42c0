from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from data.taxonomy import Taxonomy
from labeling.config import (
    RESERVED_HOTKEYS,
    LabelConfigError,
    assign_hotkeys,
    build_label_config,
    labels_to_result,
    result_to_labels,
)


@pytest.fixture(scope="module")
def config_root(taxonomy: Taxonomy) -> ET.Element:
    return ET.fromstring(build_label_config(taxonomy))


def test_post_text_channel_and_author_are_shown(config_root):
    texts = {t.get("name"): t.get("value") for t in config_root.findall(".//Text")}
    assert texts["text"] == "$text"
    # the only Text bound to task data is the post; the others are the fields' descriptions
    assert [name for name, value in texts.items() if value.startswith("$")] == ["text"]
    # channel, author, followers and date come in one prepared line above the post
    assert "$source_line" in [h.get("value") for h in config_root.findall(".//Header")]


def test_one_choices_per_field_single_or_multiple(config_root, taxonomy):
    choices = {c.get("name"): c for c in config_root.findall(".//Choices")}
    assert list(choices) == list(taxonomy.fields)
    for name, spec in taxonomy.fields.items():
        block = choices[name]
        assert block.get("toName") == "text"
        if spec.is_multi_label:
            assert block.get("choice") == "multiple" and block.get("required") is None
        else:
            assert block.get("choice") == "single-radio" and block.get("required") == "true"
    assert choices["business_action"].get("choice") == "multiple"


def test_choices_show_names_store_ids_and_hint_descriptions(config_root, taxonomy):
    for name, spec in taxonomy.fields.items():
        block = config_root.find(f".//Choices[@name='{name}']")
        rendered = block.findall("Choice")
        assert [c.get("alias") for c in rendered] == spec.label_ids
        assert [c.get("value") for c in rendered] == [label.name for label in spec.labels]
        for choice, label in zip(rendered, spec.labels):
            assert label.description in choice.get("hint")
            assert label.guidance in choice.get("hint")
    for name, spec in taxonomy.fields.items():
        assert config_root.find(f".//Text[@name='{name}_guida']").get("value") == spec.description


def test_hotkeys_are_unique_single_keys_and_avoid_label_studio_bindings(config_root, taxonomy):
    keys = [c.get("hotkey") for c in config_root.findall(".//Choice")]
    assert len(keys) == sum(len(spec.labels) for spec in taxonomy.fields.values())
    assert len(set(keys)) == len(keys)
    assert all(len(key) == 1 for key in keys)
    assert not set(keys) & RESERVED_HOTKEYS


def test_too_many_labels_for_the_keys_is_refused(taxonomy):
    raw = taxonomy.model_dump()
    label = raw["fields"]["intent"]["labels"][0]
    raw["fields"]["intent"]["labels"] += [{**label, "id": f"extra_{i}", "name": f"Extra {i}"} for i in range(20)]
    with pytest.raises(LabelConfigError, match="hotkeys"):
        assign_hotkeys(Taxonomy.model_validate(raw))


def test_special_characters_in_descriptions_are_escaped(taxonomy):
    raw = taxonomy.model_dump()
    raw["fields"]["sentiment"]["labels"][0]["description"] = 'Usa "virgolette" & <tag> senza rompere l\'XML'
    root = ET.fromstring(build_label_config(Taxonomy.model_validate(raw)))
    hint = root.find(".//Choices[@name='sentiment']/Choice").get("hint")
    assert hint.startswith('Usa "virgolette" & <tag>')


def test_labels_and_results_round_trip(taxonomy):
    labels = {"intent": "reclamo", "customer_type": "lamentoso", "business_action": ["disdetta", "lamentela"],
              "priority": "alta", "sentiment": "negativo"}
    result = labels_to_result(labels, taxonomy, scores={"intent": 0.61})
    assert result[0] == {"from_name": "intent", "to_name": "text", "type": "choices",
                         "value": {"choices": ["reclamo"]}, "score": 0.61}
    assert result_to_labels(result, taxonomy) == labels


def test_empty_multi_label_field_is_absent_in_results_and_empty_in_labels(taxonomy):
    labels = {"intent": "elogio", "customer_type": "advocate", "business_action": [], "priority": "bassa",
              "sentiment": "positivo"}
    result = labels_to_result(labels, taxonomy)
    assert "business_action" not in [item["from_name"] for item in result]
    assert result_to_labels(result, taxonomy)["business_action"] == []
