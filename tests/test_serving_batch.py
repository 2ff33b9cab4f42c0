"""`smista serve batch`: a JSONL archive classified and routed without a server, from the MLflow
registry, streaming one line per post, as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.routing_helpers import rome

pytest_plugins = ("tests.training_fixtures",)
pytestmark = pytest.mark.slow


def test_batch_scores_an_archive_from_the_registry(tiny_run, local_tracking_uri, write_jsonl, tmp_path):
    posts = [
        {"id": "a-1", "text": "Bolletta addebito fattura rimborso", "channel": "twitter",
         "created_at": rome("2026-03-10 10:00").isoformat()},
        {"id": "a-2", "text": "Modem linea internet, chiamatemi al 333 123 4567", "channel": "facebook",
         "created_at": rome("2026-03-10 23:30").isoformat()},
        "{not json",
        {"id": "a-3", "text": "Grazie bravissimi complimenti", "channel": "email"},
        {"id": "a-4", "text": "Offerta attivare preventivo abbonamento", "channel": "fax"},
    ]
    source = write_jsonl("archive.jsonl", posts)
    output = tmp_path / "out" / "routes.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "smista", "serve", "batch", str(source), "--output", str(output),
         "--model", f"models:/smista-classifier/{tiny_run.registered_version}", "--keep-going", "--chunk-size", "2"],
        capture_output=True, text=True, timeout=240, env={**os.environ, "MLFLOW_TRACKING_URI": local_tracking_uri},
    )
    assert result.returncode == 1, result.stderr  # bad lines were skipped: reported, and the exit code says so
    assert f"{source}:3: not valid JSON" in result.stderr
    assert f"{source}:5:" in result.stderr and "unknown channel 'fax'" in result.stderr
    assert "scoring" in result.stderr  # the progress bar
    assert "Scored 3 posts" in result.stdout and "2 bad lines skipped" in result.stdout

    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == ["a-1", "a-2", "a-3"]
    for line in lines:
        assert line["model_version"] == f"smista-classifier/{tiny_run.registered_version}"
        assert set(line["predictions"]) == {"intent", "customer_type", "business_action", "priority", "sentiment"}
        assert line["route"]["reasons"][0]["rule"] == "intent_owner"
    by_id = {line["id"]: line["route"] for line in lines}
    # Routed as of each post's own created_at (the shipped hours): every team that a tiny model can
    # send a post to is open on a Tuesday at 10:00 and closed at 23:30.
    assert by_id["a-1"]["out_of_hours"] is False and by_id["a-1"]["auto_reply"] is None
    late = by_id["a-2"]
    assert late["reply_channel"] == "private" and late["pii"] == ["phone"]
    assert late["out_of_hours"] and "Riapriamo domani alle" in late["auto_reply"]
    assert by_id["a-3"]["reply_channel"] == "private"  # an e-mail is answered privately


def test_a_batch_killed_midway_is_rerun_without_duplicates_or_gaps(tiny_run, write_jsonl, tmp_path):
    import signal
    import sqlite3
    import time

    posts = [{"id": f"k-{n:03d}", "text": f"La linea di casa {n} non funziona, bolletta {n}", "channel": "twitter",
              "author": {"handle": f"@cliente{n}"}, "created_at": rome("2026-03-10 10:00").isoformat()}
             for n in range(300)]
    source = write_jsonl("archive.jsonl", posts)
    output, database = tmp_path / "out" / "routes.jsonl", tmp_path / "store.db"

    def command(out, db):
        return [sys.executable, "-m", "smista", "serve", "batch", str(source), "--output", str(out),
                "--model", str(tiny_run.model_dir), "--database-url", f"sqlite:///{db}", "--chunk-size", "16",
                "--no-progress"]

    def stored(db) -> int:
        if not db.exists():
            return 0
        try:
            with sqlite3.connect(db) as connection:
                return connection.execute("SELECT count(*) FROM routed_posts").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet
            return 0

    victim = subprocess.Popen(command(output, database), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while stored(database) < 40:
        assert victim.poll() is None, "the batch ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    routed_before_kill = stored(database)
    assert 40 <= routed_before_kill < 300
    assert not output.exists()  # a killed run leaves no output file
    assert list(output.parent.glob(".routes.jsonl.partial-*"))  # only its partial file

    rerun = subprocess.run(command(output, database), capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(output.parent.glob(".routes.jsonl.partial-*"))
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [post["id"] for post in posts]  # every post once, in order
    assert stored(database) == 300  # nothing routed twice

    # The same as a run that was never interrupted.
    clean = tmp_path / "clean" / "routes.jsonl"
    subprocess.run(command(clean, tmp_path / "clean.db"), check=True, capture_output=True, timeout=240)
    # Equal but for the last digits of probabilities: the rerun predicts the killed chunk's remaining
    # posts in a smaller batch, and a matrix product of another shape may round its last bit otherwise.
    resumed = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    uninterrupted = [json.loads(line) for line in clean.read_text(encoding="utf-8").splitlines()]
    assert [without_numbers(line) for line in resumed] == [without_numbers(line) for line in uninterrupted]
    # Some figures are rounded to 4 decimals: a last-bit difference can move one by 1e-4.
    assert numbers(resumed) == pytest.approx(numbers(uninterrupted), abs=1.1e-4)


def without_numbers(record):
    """The record with every float replaced by a placeholder (ints, strings, labels and order kept)."""
    if isinstance(record, dict):
        return {key: without_numbers(value) for key, value in record.items()}
    if isinstance(record, list):
        return [without_numbers(value) for value in record]
    return "<float>" if isinstance(record, float) else record


def numbers(record) -> list[float]:
    """Every float of the record, in order."""
    if isinstance(record, dict):
        return [value for item in record.values() for value in numbers(item)]
    if isinstance(record, list):
        return [value for item in record for value in numbers(item)]
    return [record] if isinstance(record, float) else []
