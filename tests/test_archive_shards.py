"""Partitions of an archive (serving/archive_shards.py) and the partitioned output
(serving/partitioned_output.py): every line read once whatever the cut, its number right, the
output's columns and the refusal to resume another job. No Ray here: tests/test_score_ray.py runs it."""

from __future__ import annotations

import argparse
import json

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.archive_shards import MAX_LINE_BYTES, ArchiveError, expand_sources, plan_shards, read_shard
from serving.partitioned_output import ROUTE_COLUMNS, OutputMismatch, PartitionedOutput, flat_row, parquet_schema
from serving.ray_scoring import ScoreError, _check_output_outside_inputs
from serving.schemas import RouteDecision
from smista.score_commands import byte_size
from tests.conftest import make_post


def _numbered_lines(shards, validator):
    """(line number in the file, post id or reject reason) over all shards, numbered as the driver does."""
    seen, lines_before = [], {}
    for shard in shards:
        first = lines_before.get(shard.source, shard.first_row)
        read = read_shard(shard, validator)
        seen += [(first + number + 1, post.id) for number, post in read.posts]
        seen += [(first + number + 1, f"reject: {reason}") for number, reason, _ in read.rejects]
        lines_before[shard.source] = first + read.line_count
    return sorted(seen)


@pytest.mark.parametrize("partition_bytes", [1, 7, 64, 200, 333, 1 << 20])
def test_every_line_is_read_once_with_its_number_whatever_the_cut(tmp_path, validator, partition_bytes):
    lines = [json.dumps(make_post(f"p-{n}", text=f"testo {'lungo ' * (n % 7)}{n} è così")) for n in range(40)]
    lines[5] = "\u00a0 "          # blank lines (no-break spaces too) count as lines, and are skipped
    lines[12] = "{non json"       # a bad line is a reject, at its own number
    lines[20] = lines[20] + "\r"  # a Windows line end
    path = tmp_path / "posts.jsonl"
    path.write_bytes(("\n".join(lines)).encode())  # no newline after the last line
    shards = plan_shards([str(path)], partition_bytes)

    numbered = _numbered_lines(shards, validator)
    expected = [(n + 1, f"p-{n}") for n in range(40) if n not in (5, 12)]
    assert [item for item in numbered if not item[1].startswith("reject")] == expected
    assert [item[0] for item in numbered if item[1].startswith("reject")] == [13]
    assert [shard.index for shard in shards] == list(range(len(shards)))
    assert len(shards) == -(-path.stat().st_size // partition_bytes)


def test_invalid_utf8_is_a_reject_not_a_crash(tmp_path, validator):
    path = tmp_path / "posts.jsonl"
    path.write_bytes(json.dumps(make_post("ok")).encode() + b"\n" + b'{"id": "x\xff"}\n')
    read = read_shard(plan_shards([str(path)])[0], validator)
    assert [post.id for _, post in read.posts] == ["ok"]
    assert read.rejects[0][0] == 1 and "not valid UTF-8" in read.rejects[0][1]


def test_parquet_is_cut_along_row_groups_and_rows_keep_their_numbers(tmp_path, validator):
    rows = [make_post(f"q-{n}") for n in range(25)]
    rows[7]["channel"] = "fax"
    for row in rows:
        row.pop("labels")
    path = tmp_path / "posts.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4)
    shards = plan_shards([str(path)], partition_bytes=1)
    assert len(shards) == 7 and [(shard.start, shard.end) for shard in shards][:2] == [(0, 1), (1, 2)]
    assert [shard.first_row for shard in shards] == [0, 4, 8, 12, 16, 20, 24]

    numbered = _numbered_lines(shards, validator)
    assert [item for item in numbered if not item[1].startswith("reject")] == [
        (n + 1, f"q-{n}") for n in range(25) if n != 7]
    reject = [item for item in numbered if item[1].startswith("reject")]
    assert reject[0][0] == 8 and "unknown channel 'fax'" in reject[0][1]


def test_sources_are_expanded_sorted_and_checked(tmp_path):
    (tmp_path / "archive" / "2025").mkdir(parents=True)
    (tmp_path / "archive" / "_scored" / "_done").mkdir(parents=True)
    for name in ("b.jsonl", "a.jsonl", "2025/c.parquet", "notes.txt", ".a.jsonl.tmp-1.json",
                 "_scored/_manifest.json", "_scored/_done/part-00000.json"):
        (tmp_path / "archive" / name).write_bytes(b"{}\n")
    found = expand_sources([str(tmp_path / "archive")])
    # notes.txt is not an archive file; names starting with "_" or "." are markers and leftovers.
    assert [item.source.removeprefix(f"{tmp_path}/archive/") for item in found] == ["2025/c.parquet", "a.jsonl", "b.jsonl"]
    assert [item.size for item in found] == [3, 3, 3] and all(item.modified for item in found)
    # The same plan whatever the order of the inputs.
    files = [str(tmp_path / "archive" / "b.jsonl"), str(tmp_path / "archive" / "a.jsonl")]
    assert expand_sources(files) == expand_sources(files[::-1])
    assert len(expand_sources([f"file://{tmp_path}/archive/*.jsonl"])) == 2

    with pytest.raises(ArchiveError, match="no such file"):
        expand_sources([str(tmp_path / "missing.jsonl")])
    with pytest.raises(ArchiveError, match="unknown format"):
        expand_sources([str(tmp_path / "archive" / "notes.txt")])
    with pytest.raises(ArchiveError, match="input named twice"):
        expand_sources([str(tmp_path / "archive" / "a.jsonl"), str(tmp_path / "archive" / "a.jsonl")])


def test_a_remote_file_system_is_read_in_ranges_too(validator):
    """fsspec's own files (s3, gcs, memory...) rather than Python's: the same lines, the same numbers."""
    filesystem = fsspec.filesystem("memory")
    lines = [json.dumps(make_post(f"m-{n}", text=f"post remoto {'x' * (n * 13 % 90)}")) for n in range(30)]
    filesystem.pipe("/archive/remote.jsonl", ("\n".join(lines) + "\n").encode())
    shards = plan_shards(["memory:///archive/remote.jsonl"], partition_bytes=97)
    assert shards[0].source == "memory:///archive/remote.jsonl" and len(shards) > 10
    assert _numbered_lines(shards, validator) == [(n + 1, f"m-{n}") for n in range(30)]
    filesystem.rm("/archive", recursive=True)


def test_content_that_would_crash_a_writer_is_a_reject(tmp_path, validator):
    good = json.dumps(make_post("ok"))
    lines = [
        good,
        '{"id": "big", "text": "x", "channel": "twitter", "n": ' + "9" * 5000 + "}",   # int too large to parse
        "[" * 100000 + "]" * 100000,                                                     # nested too deep
        json.dumps(make_post("half", text="ciao ")).replace("ciao ", "ciao \\ud83d"),  # half a surrogate pair
        '{"id": "long", "text": "' + "y" * (MAX_LINE_BYTES + 10) + '"}',                 # past the line cap
        good.replace('"ok"', '"ok-2"'),
    ]
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = read_shard(plan_shards([str(path)], partition_bytes=1 << 30)[0], validator)
    assert [post.id for _, post in read.posts] == ["ok", "ok-2"]
    reasons = {number: reason for number, reason, _ in read.rejects}
    assert set(reasons) == {1, 2, 3, 4}
    assert reasons[1].startswith("not valid JSON") and reasons[2].startswith("not valid JSON")
    assert "lone surrogate" in reasons[3] and f"longer than {MAX_LINE_BYTES} bytes" in reasons[4]
    assert len(read.rejects[-1][2]) < 300  # the reject keeps an excerpt, not the megabyte


def test_a_parquet_row_python_cannot_hold_is_a_reject_and_the_others_stay(tmp_path, validator):
    table = pa.table({
        "id": ["r-1", "r-2", "r-3"], "text": ["uno", "due", "tre"], "channel": ["twitter"] * 3,
        "created_at": pa.array([0, 400_000 * 365 * 86400 * 10**6 // 1000, 10**12], type=pa.timestamp("ms", tz="UTC")),
    })
    path = tmp_path / "posts.parquet"
    pq.write_table(table, path)
    read = read_shard(plan_shards([str(path)])[0], validator)
    assert [post.id for _, post in read.posts] == ["r-1", "r-3"]
    assert read.rejects[0][0] == 1 and "unreadable row" in read.rejects[0][1]


def test_an_output_inside_the_inputs_is_refused(tmp_path):
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "a.jsonl").write_text("{}\n", encoding="utf-8")
    sources = expand_sources([str(tmp_path / "archive")])
    with pytest.raises(ScoreError, match="holds input files"):
        _check_output_outside_inputs(tmp_path, sources)
    _check_output_outside_inputs(tmp_path / "scored", sources)


def test_the_parquet_schema_has_a_column_for_every_route_field(taxonomy):
    assert set(ROUTE_COLUMNS) == set(RouteDecision.model_fields)
    names = parquet_schema(taxonomy.field_names).names
    for head in taxonomy.field_names:
        assert {f"{head}_labels", f"{head}_probabilities", f"{head}_confidence"} <= set(names)


def _record(post_id: str, heads) -> dict:
    return {
        "id": post_id, "source": "/archive/a.jsonl", "line": 3, "model_version": "smista-classifier/2",
        "taxonomy_version": "1", "routing_version": "1",
        "predictions": {head: {"labels": ["x"], "probabilities": {"x": 0.75, "y": 0.25}, "confidence": 0.75}
                        for head in heads},
        "route": {"action": "queue", "queue": "customer_care", "team": "customer_care", "priority": "alta",
                  "sla_deadline": "2026-03-10T10:30:00Z", "needs_human": False, "confidence_tier": "auto",
                  "reply_channel": "public", "out_of_hours": False, "auto_reply": None, "crisis": False,
                  "crisis_id": None, "pii": [], "reasons": [{"rule": "intent_owner", "effect": "e"}],
                  "suggested_reply": "Ciao, grazie!"},
        "history": {"contacts": 1, "last_intent": "fatturazione"},
    }


def test_a_partition_is_written_whole_and_read_back(tmp_path, taxonomy):
    heads = taxonomy.field_names
    output = PartitionedOutput(tmp_path / "out", ("parquet", "jsonl"), heads)
    output.prepare({"model_version": "smista-classifier/2"})
    (tmp_path / "out" / "parquet" / ".tmp-part-00000.parquet.dead").write_bytes(b"left by a killed run")
    output.prepare({"model_version": "smista-classifier/2"})  # the same job resumes: leftovers go
    assert not list((tmp_path / "out").rglob(".tmp-*"))

    assert output.done("part-00000") is None
    output.write("part-00000", [_record("a", heads), _record("b", heads)], [{"line": 9, "reason": "r"}],
                 {"line_count": 3, "scored": 2, "rejected": 1})
    assert output.done("part-00000") == {"line_count": 3, "scored": 2, "rejected": 1}
    assert list(output.written_ids("part-00000")) == [("a", "/archive/a.jsonl", 3), ("b", "/archive/a.jsonl", 3)]
    table = pq.read_table(tmp_path / "out" / "parquet" / "part-00000.parquet")
    row = table.to_pylist()[0]
    assert row["intent_probabilities"] == [("x", 0.75), ("y", 0.25)]
    assert row["sla_deadline"].isoformat() == "2026-03-10T10:30:00+00:00"
    assert json.loads(row["reasons"])[0]["rule"] == "intent_owner"
    assert json.loads(row["history"]) == {"contacts": 1, "last_intent": "fatturazione"}
    assert flat_row(_record("a", heads), heads)["queue"] == "customer_care"
    jsonl = (tmp_path / "out" / "jsonl" / "part-00000.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in jsonl] == ["a", "b"]


def test_an_output_of_another_job_is_refused_naming_what_differs(tmp_path, taxonomy):
    output = PartitionedOutput(tmp_path / "out", ("parquet",), taxonomy.field_names)
    output.prepare({"model_version": "smista-classifier/2", "partitions": 4})
    with pytest.raises(OutputMismatch, match="other model_version .*new --output"):
        output.prepare({"model_version": "smista-classifier/3", "partitions": 4})


def test_partition_sizes_read_like_people_write_them():
    assert byte_size("512K") == 512 * 1024 and byte_size("4M") == 4 << 20 and byte_size("1GiB") == 1 << 30
    assert byte_size("1000") == 1000
    for bad in ("0", "-1", "lots", "4T"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a size"):
            byte_size(bad)
