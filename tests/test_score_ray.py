"""`smista score` on a real local Ray runtime (2 CPUs), as a user runs it (a subprocess): the same
results as `smista serve batch`, rejects with their line, a job killed midway resumed without
duplicates or gaps, another job's output refused, and the cores never oversubscribed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.routing_helpers import rome

pytest_plugins = ("tests.training_fixtures",)
pytestmark = pytest.mark.slow

TEXTS = [
    "La linea di casa non funziona da ieri, modem spento",
    "Bolletta doppia questo mese, voglio un rimborso",
    "Grazie mille, bravissimi come sempre!",
    "Vorrei attivare la nuova offerta fibra, quanto costa?",
    "Chiamatemi al 333 123 4567 per il contratto",
    "Ennesimo disservizio, vi lascio e passo alla concorrenza",
    "Ma chi ha scritto questa pubblicità? 😂",
]


def _posts(count: int) -> list[dict]:
    return [{"id": f"s-{n:04d}", "text": f"{TEXTS[n % len(TEXTS)]} ({n})", "channel": ("twitter", "facebook")[n % 2],
             "author": {"handle": f"@cliente{n % 37}"},
             "created_at": rome(f"2026-03-{10 + n % 5} {8 + n % 14:02d}:{n % 60:02d}").isoformat()}
            for n in range(count)]


def _score(inputs, output, model, *extra, timeout=300, **popen):
    command = [sys.executable, "-m", "smista", "score", *map(str, inputs), "--output", str(output), "--model", str(model),
               "--local-cpus", "2", *extra]
    if popen:
        return subprocess.Popen(command, **popen)
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _scored(output: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((output / "jsonl").glob("part-*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


def _assert_same_results(batch_lines: list[dict], scored: list[dict], same_model_version: bool = True) -> None:
    """Labels and routes identical, probabilities within 1e-6 (they are written rounded to 6 decimals,
    so one unit in the last place is the most a different padding may move them)."""
    assert [line["id"] for line in scored] == [line["id"] for line in batch_lines]
    for expected, got in zip(batch_lines, scored):
        assert got["route"] == expected["route"], got["id"]
        if same_model_version:
            assert got["model_version"] == expected["model_version"]
        for head, prediction in expected["predictions"].items():
            assert got["predictions"][head]["labels"] == prediction["labels"]
            assert got["predictions"][head]["probabilities"] == pytest.approx(prediction["probabilities"], abs=1.000001e-6)


def test_score_equals_serve_batch_on_jsonl_and_parquet(tiny_run, local_tracking_uri, write_jsonl, tmp_path):
    posts = _posts(240)
    rows = [*posts[:100], "{non è json", {**posts[3], "text": "stesso id, altro testo"}, *posts[100:]]
    rows.insert(50, {**posts[0], "channel": "fax", "id": "bad-channel"})
    source = write_jsonl("archive.jsonl", rows)
    env = {**os.environ, "MLFLOW_TRACKING_URI": local_tracking_uri}
    model = f"models:/smista-classifier/{tiny_run.registered_version}"

    batch_out = tmp_path / "batch.jsonl"
    batch = subprocess.run([sys.executable, "-m", "smista", "serve", "batch", str(source), "--output", str(batch_out),
                            "--model", model, "--keep-going", "--no-progress"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert batch.returncode == 1, batch.stderr  # the three bad lines
    batch_lines = [json.loads(line) for line in batch_out.read_text(encoding="utf-8").splitlines()]

    output = tmp_path / "scored"
    result = subprocess.run(
        [sys.executable, "-m", "smista", "score", str(source), "--output", str(output), "--model", model,
         "--local-cpus", "2", "--partition-size", "4K", "--format", "parquet,jsonl"],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 1, result.stderr  # rejects, and the exit status says so
    assert "Scored 240 posts" in result.stdout and "3 rejects" in result.stdout and "2 actors" in result.stdout
    assert "posts/s" in result.stderr and "part-00000 written" in result.stderr  # progress while it runs
    _assert_same_results(batch_lines, _scored(output))

    # Rejects: file, line and reason, the same lines `serve batch` reported.
    rejects = [json.loads(line) for path in sorted((output / "rejects").glob("*.jsonl"))
               for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(reject["line"], reject["reason"].split(":")[0]) for reject in rejects] == [
        (51, "channel"), (102, "not valid JSON"), (103, "id")]
    assert "duplicate id 's-0003', first seen on line 4" in rejects[2]["reason"]
    for reject in rejects:
        assert f"{source}:{reject['line']}:" in batch.stderr

    # The Parquet folder reads as one table, the model version a column.
    table = pq.read_table(output / "parquet")
    assert table.num_rows == 240 and set(table.column("model_version").to_pylist()) == {
        f"smista-classifier/{tiny_run.registered_version}"}
    assert sorted(table.column("id").to_pylist()) == sorted(line["id"] for line in batch_lines)
    summary = json.loads((output / "_summary.json").read_text())
    assert summary["scored"] == 240 and summary["rejected"] == 3 and summary["actors"] == 2

    # The same posts as Parquet input (a file URL), a directory model: the same results again.
    parquet_input = tmp_path / "archive.parquet"
    pq.write_table(pa.Table.from_pylist(posts), parquet_input, row_group_size=32)
    from_parquet = tmp_path / "from-parquet"
    result = _score([parquet_input.as_uri()], from_parquet, tiny_run.model_dir, "--format", "jsonl",
                    "--partition-size", "1")
    assert result.returncode == 0, result.stderr
    scored = _scored(from_parquet)
    _assert_same_results(batch_lines, scored, same_model_version=False)  # a directory is versioned by its name
    assert scored[0]["source"] == str(parquet_input) and [line["line"] for line in scored] == list(range(1, 241))


def test_a_job_killed_midway_resumes_without_duplicates_or_gaps(tiny_run, write_jsonl, tmp_path):
    posts = _posts(600)
    source = write_jsonl("archive.jsonl", posts)
    output = tmp_path / "scored"
    # Small partitions, one post per forward pass: slow enough to be killed in the middle.
    options = ("--partition-size", "2K", "--format", "jsonl", "--batch-size", "1", "--sort-window", "1", "--quiet")
    victim = _score([source], output, tiny_run.model_dir, *options, start_new_session=True,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = output / "_done"
    deadline = time.monotonic() + 240
    while len(list(done.glob("*.json"))) < 3 if done.is_dir() else True:
        assert victim.poll() is None, "the job ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(victim.pid, signal.SIGKILL)  # the driver and the local Ray runtime it started
    victim.wait(timeout=30)
    manifest = json.loads((output / "_manifest.json").read_text())
    finished_before = len(list(done.glob("*.json")))
    partitions = len(manifest["partitions"])
    assert 3 <= finished_before < partitions

    rerun = _score([source], output, tiny_run.model_dir, "--partition-size", "2K", "--format", "jsonl")
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming: {finished_before} of {partitions} partitions already done" in rerun.stderr
    assert f"{finished_before} done by an earlier run" in rerun.stdout
    scored = _scored(output)
    assert [line["id"] for line in scored] == [post["id"] for post in posts]  # every post once, in order
    assert not list(output.rglob(".tmp-*"))

    clean = tmp_path / "clean"
    assert _score([source], clean, tiny_run.model_dir, "--partition-size", "2K", "--format", "jsonl").returncode == 0
    assert [(line["id"], line["route"]) for line in scored] == [(line["id"], line["route"]) for line in _scored(clean)]

    # A finished job run again scores nothing; another model on the same output is refused.
    again = _score([source], output, tiny_run.model_dir, "--partition-size", "2K", "--format", "jsonl")
    assert again.returncode == 0 and "Scored 0 posts" in again.stdout
    other = _score([source], output, tiny_run.model_dir, "--partition-size", "4K", "--format", "jsonl")
    assert other.returncode == 2 and "other partition_bytes, partitions" in other.stderr
    # An input that changed since (a line appended) is not resumed over other bytes.
    with source.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(_posts(601)[-1]) + "\n")
    changed = _score([source], output, tiny_run.model_dir, "--partition-size", "2K", "--format", "jsonl")
    assert changed.returncode == 2 and "other partitions, sources" in changed.stderr


def test_more_threads_than_cores_is_refused_before_scoring(tiny_run, write_jsonl, tmp_path):
    source = write_jsonl("archive.jsonl", _posts(5))
    result = _score([source], tmp_path / "out", tiny_run.model_dir, "--actors", "2", "--threads-per-actor", "2")
    assert result.returncode == 2
    assert ("--actors 2 x --threads-per-actor 2 does not fit the Ray cluster (nodes with 2 CPUs hold 1 such actors)"
            in result.stderr)
    assert not (tmp_path / "out").exists()  # refused before anything was written
