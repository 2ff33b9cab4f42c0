"""Partitions of an archive (serving/archive_shards.py) and the partitioned output
(serving/partitioned_output.py): every line read once whatever the cut, its number right, the
output's columns and the refusal to resume another job. No Ray here: tests/test_score_ray.py runs it."""

from __future__ import annotations

import argparse
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.archive_shards import ArchiveError, expand_sources, plan_shards, read_shard
from serving.partitioned_output import ROUTE_COLUMNS, OutputMismatch, PartitionedOutput, flat_row, parquet_schema
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
    lines[5] = ""                 # blank lines count as lines, and are skipped
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
    for name in ("b.jsonl", "a.jsonl", "2025/c.parquet", "notes.txt"):
        (tmp_path / "archive" / name).write_bytes(b"")
    names = [source.rsplit("/", 1)[-1] for source, _, _ in expand_sources([str(tmp_path / "archive")])]
    assert names == ["c.parquet", "a.jsonl", "b.jsonl"]  # notes.txt is not an archive file
    assert len(expand_sources([f"file://{tmp_path}/archive/*.jsonl"])) == 2

    with pytest.raises(ArchiveError, match="no such file"):
        expand_sources([str(tmp_path / "missing.jsonl")])
    with pytest.raises(ArchiveError, match="unknown format"):
        expand_sources([str(tmp_path / "archive" / "notes.txt")])
    with pytest.raises(ArchiveError, match="input named twice"):
        expand_sources([str(tmp_path / "archive" / "a.jsonl"), str(tmp_path / "archive" / "a.jsonl")])


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
                  "crisis_id": None, "pii": [], "reasons": [{"rule": "intent_owner", "effect": "e"}]},
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
