from __future__ import annotations

import json

import pytest
from conftest import make_post
from labeling_doubles import FakeLabelStudio

from labeling.client import LabelStudioUnavailableError
from labeling.importer import DuplicateTasksError, import_file, import_posts

BRANDS = ["VeloFibra", "@Linkaria_IT"]

# Italian formats, each with what must never reach an annotator and the placeholder that replaces it.
PII_CASES = [
    ("Chiamatemi al 333 123 4567 entro sera", "333 123 4567", "[TELEFONO]"),
    ("il mio cell è +39 347.765.4321", "347.765.4321", "[TELEFONO]"),
    ("fisso 02-12345678 ufficio", "02-12345678", "[TELEFONO]"),
    ("scrivetemi a giulia.bianchi@esempio.it per favore", "giulia.bianchi@esempio.it", "[EMAIL]"),
    ("rimborso su IT60 X054 2811 1010 0000 0123 456 grazie", "IT60 X054 2811 1010 0000 0123 456", "[IBAN]"),
    ("il mio codice fiscale è RSSMRA80A01H501U", "RSSMRA80A01H501U", "[CODICE_FISCALE]"),
    ("addebito sulla carta 4111 1111 1111 1111 non autorizzato", "4111 1111 1111 1111", "[CARTA]"),
    ("chiedete a @giulia_b92 che ha lo stesso problema", "@giulia_b92", "[UTENTE]"),
]


@pytest.fixture
def ls() -> FakeLabelStudio:
    fake = FakeLabelStudio()
    fake.create_project("smista", "<View/>", "")
    return fake


@pytest.mark.parametrize(("text", "secret", "placeholder"), PII_CASES)
def test_personal_data_is_redacted_before_it_is_sent(ls, validator, write_jsonl, text, secret, placeholder):
    path = write_jsonl("posts.jsonl", [make_post("p1", text=text, author={"handle": "@mario_rossi_77", "followers": 5})])
    report = import_file(ls, 1, path, validator, BRANDS)
    sent = json.dumps(ls.tasks[1]["data"], ensure_ascii=False)
    assert secret not in sent
    assert "mario_rossi_77" not in sent  # the author is a private person too
    assert placeholder in ls.tasks[1]["data"]["text"]
    assert report.pii_counts["handle"] >= 1


def test_brand_handles_are_kept_and_labels_and_crm_ids_are_withheld(ls, validator, write_jsonl):
    post = make_post("p1", text="@VeloFibra ancora senza linea, cc @Linkaria_IT", customer_id="CRM-004512",
                     author={"handle": "@VeloFibra", "followers": 90000})
    import_file(ls, 1, write_jsonl("posts.jsonl", [post]), validator, BRANDS)
    data = ls.tasks[1]["data"]
    assert data["text"] == "@VeloFibra ancora senza linea, cc @Linkaria_IT"
    assert "Autore: @VeloFibra" in data["source_line"] and "90.000 follower" in data["source_line"]
    assert "labels" not in data["post"] and "customer_id" not in data["post"]
    assert data["post_id"] == "p1" and data["channel"] == "twitter"


def test_reimport_creates_no_duplicates(ls, validator, write_jsonl):
    path = write_jsonl("posts.jsonl", [make_post("p1"), make_post("p2")])
    first = import_file(ls, 1, path, validator, BRANDS)
    second = import_file(ls, 1, path, validator, BRANDS)
    assert first.created == ["p1", "p2"]
    assert second.created == [] and second.unchanged == ["p1", "p2"]
    assert len(ls.tasks) == 2 and ls.update_calls == []


def test_edited_post_updates_its_task_and_keeps_annotations(ls, validator, write_jsonl):
    import_file(ls, 1, write_jsonl("v1.jsonl", [make_post("p1", text="la fibra non va")]), validator, BRANDS)
    ls.create_annotation(1, [{"from_name": "intent", "to_name": "text", "type": "choices",
                              "value": {"choices": ["assistenza_tecnica"]}}])
    report = import_file(ls, 1, write_jsonl("v2.jsonl", [make_post("p1", text="la fibra non va da ieri")]),
                         validator, BRANDS)
    assert report.updated == ["p1"] and report.updated_with_annotations == ["p1"]
    assert len(ls.tasks) == 1
    assert ls.tasks[1]["data"]["text"] == "la fibra non va da ieri"
    assert len(ls.tasks[1]["annotations"]) == 1


def test_malformed_line_is_reported_by_number_and_the_rest_imported(ls, validator, write_jsonl):
    path = write_jsonl("posts.jsonl", [make_post("p1"), '{"id": "p2", "text": ', make_post("p3")])
    report = import_file(ls, 1, path, validator, BRANDS)
    assert report.created == ["p1", "p3"]
    assert [(e.line_number, "not valid JSON" in e.message) for e in report.errors] == [(2, True)]


def test_post_with_a_label_id_not_in_the_taxonomy_is_reported(ls, validator, write_jsonl):
    bad = make_post("p2")
    bad["labels"]["intent"] = "lamentela_generica"
    report = import_file(ls, 1, write_jsonl("posts.jsonl", [make_post("p1"), bad]), validator, BRANDS)
    assert report.created == ["p1"]
    assert report.errors[0].line_number == 2
    assert "labels.intent: unknown label id 'lamentela_generica'" in report.errors[0].message


def test_server_down_sends_nothing(ls, validator, write_jsonl):
    ls.down = True
    with pytest.raises(LabelStudioUnavailableError):
        import_file(ls, 1, write_jsonl("posts.jsonl", [make_post("p1")]), validator, BRANDS)
    assert ls.tasks == {}


def test_two_tasks_for_one_post_are_named(ls, validator):
    ls.import_tasks(1, [{"data": {"post_id": "p1", "text": "x"}}, {"data": {"post_id": "p1", "text": "x"}}])
    with pytest.raises(DuplicateTasksError, match=r"p1: tasks \[1, 2\]"):
        import_posts(ls, 1, [], validator, BRANDS)
