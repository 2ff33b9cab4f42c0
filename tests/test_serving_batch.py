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
