"""Labels kept by row and text hash, joined with texts read from the data set's own file."""

from __future__ import annotations

import json

import pytest

from data.label_join import LabelJoinError, join_labels, read_row_labels, text_sha256
from smista.cli import main

TEXTS = {3: "Che bella pubblicità!", 7: "Il mio ordine non è mai arrivato", 9: "ahahah @amico guarda"}
FULL = {"intent": "elogio", "customer_type": "advocate", "business_action": [], "priority": "bassa", "sentiment": "positivo"}


def posts_file(tmp_path, texts=TEXTS):
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps({"id": f"me-{row}", "text": text, "channel": "facebook"}, ensure_ascii=False) + "\n"
                            for row, text in texts.items()), encoding="utf-8")
    return path


def labels_file(tmp_path, lines):
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_join_sets_full_and_partial_labels(tmp_path, taxonomy, validator):
    labels = labels_file(tmp_path, [
        {"row": 3, "text_sha256": text_sha256(TEXTS[3]), **FULL},
        {"row": 7, "text_sha256": text_sha256(TEXTS[7]), "sentiment": "negativo"},  # a sentiment-only post
    ])
    from data.jsonl import read_posts

    joined = join_labels(read_posts(posts_file(tmp_path), validator).posts, read_row_labels(labels, taxonomy.fields), "me-", validator)
    assert [post.id for post in joined] == ["me-3", "me-7"]
    assert joined[0].labels == FULL and joined[1].labels == {"sentiment": "negativo"}
    assert joined[0].text == TEXTS[3]


def test_cli_refuses_a_changed_text_naming_the_rows(tmp_path, capsys):
    labels = labels_file(tmp_path, [{"row": row, "text_sha256": text_sha256(text), **FULL} for row, text in TEXTS.items()])
    edited = {**TEXTS, 7: TEXTS[7] + " ", 9: TEXTS[9].upper()}
    output = tmp_path / "out.jsonl"
    code = main(["data", "join-labels", "--labels", str(labels), "--posts", str(posts_file(tmp_path, edited)),
                 "--id-prefix", "me-", "--output", str(output)])
    assert code == 2
    error = capsys.readouterr().err
    assert "2 row(s) have a text whose SHA-256 differs" in error and "rows 7, 9" in error
    assert not output.exists()  # nothing written


def test_cli_writes_the_joined_posts(tmp_path, capsys):
    labels = labels_file(tmp_path, [{"row": row, "text_sha256": text_sha256(text), **FULL} for row, text in TEXTS.items()])
    output = tmp_path / "out.jsonl"
    assert main(["data", "join-labels", "--labels", str(labels), "--posts", str(posts_file(tmp_path)),
                 "--id-prefix", "me-", "--output", str(output)]) == 0
    assert [json.loads(line)["labels"]["intent"] for line in output.read_text().splitlines()] == ["elogio"] * 3


@pytest.mark.parametrize(
    "lines, message",
    [
        ([{"row": 4, "text_sha256": "00", **FULL}], "1 labelled row(s) have no post with id me-<row>: rows 4"),
        ([{"row": 3, "text_sha256": "00", "colour": "red", **FULL}], "['colour'] are not taxonomy fields"),
        ([{"row": 3, "text_sha256": text_sha256(TEXTS[3]), **FULL}] * 2, "row 3 is labelled twice"),
        ([{"row": "3", "text_sha256": "00", **FULL}], '"row" (an integer)'),
        ([{"row": 3, "text_sha256": text_sha256(TEXTS[3]), **FULL, "intent": "saluti"}], "row 3:"),
    ],
)
def test_bad_label_files_are_refused_with_the_reason(tmp_path, capsys, lines, message):
    labels = labels_file(tmp_path, lines)
    code = main(["data", "join-labels", "--labels", str(labels), "--posts", str(posts_file(tmp_path)),
                 "--id-prefix", "me-", "--output", str(tmp_path / "out.jsonl")])
    assert code == 2
    assert message in capsys.readouterr().err
