from __future__ import annotations

import json

import pytest

from data.jsonl import PostFileError, read_posts, write_posts
from tests.conftest import make_post


def test_raise_mode_stops_at_the_first_bad_line_with_its_number(validator, write_jsonl):
    path = write_jsonl("posts.jsonl", [make_post("a"), make_post("b"), "{not json", make_post("c", channel="fax")])
    with pytest.raises(PostFileError) as caught:
        read_posts(path, validator)
    assert str(caught.value).startswith(f"{path}:3: not valid JSON")
    assert len(caught.value.errors) == 1


def test_skip_mode_keeps_good_lines_and_reports_every_bad_one(validator, write_jsonl):
    rows = [make_post("a"), "{not json", make_post("b", text=" "), "", make_post("c"), make_post("d", channel="fax")]
    report = read_posts(write_jsonl("posts.jsonl", rows), validator, on_error="skip")
    assert [p.id for p in report.posts] == ["a", "c"]
    assert [(e.line_number, e.message.split(":")[0]) for e in report.errors] == [
        (2, "not valid JSON"),
        (3, "text"),
        (6, "channel"),
    ]


def test_duplicate_id_names_both_lines(validator, write_jsonl):
    path = write_jsonl("posts.jsonl", [make_post("a"), make_post("b"), make_post("a")])
    with pytest.raises(PostFileError, match=r":3: id: duplicate id 'a', first seen on line 1"):
        read_posts(path, validator)


def test_write_then_read_round_trips(validator, tmp_path):
    posts = [validator.validate(make_post(f"p{i}", text=f"Perché è così? àèìòù 😀 {i}")) for i in range(3)]
    path = tmp_path / "out" / "posts.jsonl"
    assert write_posts(path, posts) == 3
    assert read_posts(path, validator).posts == posts
    assert "😀" in path.read_text(encoding="utf-8")  # stored as UTF-8, not \\u escapes


def test_failed_write_leaves_the_previous_file_intact(validator, tmp_path):
    path = tmp_path / "posts.jsonl"
    write_posts(path, [validator.validate(make_post("old"))])
    before = path.read_text(encoding="utf-8")

    def exploding():
        yield validator.validate(make_post("new"))
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_posts(path, exploding())
    assert path.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["posts.jsonl"]  # no temporary file left behind
    assert json.loads(before)["id"] == "old"
