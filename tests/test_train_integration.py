"""End to end against a real MLflow tracking server on 127.0.0.1 (SQLite in a temporary folder):
train the tiny model, check the run through the MLflow client, register and promote it, then train
a deliberately worse one and check that promote refuses, saying why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from smista.cli import main
from tests.training_helpers import REPO_ROOT, build_synthetic_dataset, free_port, tiny_recipe
from training.predict import Predictor
from training.train import train

SERVER_START_TIMEOUT_S = 90


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "smista", "mlflow", "server", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}",
         "--artifacts-destination", str(tmp_path / "server" / "artifacts")],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"MLflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        # The server runs in its own session: stop its whole process group (uvicorn worker included).
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.mark.slow
def test_train_log_register_promote_and_refuse_a_worse_model(mlflow_server, tmp_path, capsys):
    from mlflow import MlflowClient

    dataset_dir = build_synthetic_dataset(tmp_path)
    good = train(tiny_recipe(dataset_dir, tmp_path / "runs", mlflow_server))
    assert good.registered_version == "1"
    assert f"MLflow: {mlflow_server}/#/experiments/" in capsys.readouterr().out

    client = MlflowClient(mlflow_server)
    run = client.get_run(good.run_id)
    assert run.info.status == "FINISHED"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["kind"] == "transformer" and params["transformer.learning_rate"] == "0.003"
    assert params["data_hash"] == json.loads((dataset_dir / "manifest.json").read_text())["data_hash"]
    assert params["taxonomy_version"] == "1"
    assert tags["git_commit"] and tags["test_split_hash"]
    for head in ("intent", "customer_type", "business_action", "priority", "sentiment"):
        for metric in ("accuracy", "macro_f1", "ece", "coverage_at_90", "coverage_at_95"):
            assert f"test_{head}_{metric}" in metrics and f"validation_{head}_{metric}" in metrics
    assert metrics["train_seconds"] > 0 and metrics["model_size_mb"] > 0 and metrics["inference_posts_per_second"] > 0
    assert metrics["test_intent_macro_f1"] > 0.5  # the synthetic intents are easy
    assert len(client.get_metric_history(good.run_id, "train_loss")) >= 2  # live training curve
    artifacts = {item.path for item in client.list_artifacts(good.run_id)}
    assert {"recipe.yaml", "dataset", "evaluation"} <= artifacts
    test_files = {item.path for item in client.list_artifacts(good.run_id, "evaluation/test")}
    assert {"evaluation/test/metrics.json", "evaluation/test/confusion_intent.png",
            "evaluation/test/reliability_intent.png", "evaluation/test/coverage_intent.png"} <= test_files

    promote = ["models", "promote", "--tracking-uri", mlflow_server, "--test-file", str(dataset_dir / "test.jsonl")]
    assert main(promote) == 0
    first = capsys.readouterr().out
    assert "Promoted smista-classifier version 1 to @champion" in first and "first promotion" in first
    assert client.get_model_version_by_alias("smista-classifier", "champion").version == "1"
    champion = Predictor.load("models:/smista-classifier@champion", tracking_uri=mlflow_server)
    assert champion.model_version == "smista-classifier/1"
    assert champion.predict(["Grazie, complimenti"])[0]["intent"].labels == ["elogio"]

    # Deliberately worse: one optimizer step instead of twelve epochs.
    worse = train(tiny_recipe(dataset_dir, tmp_path / "runs", mlflow_server, "transformer.max_steps=1"))
    assert worse.registered_version == "2"
    assert main(promote) == 1
    refusal = capsys.readouterr().out
    assert "Refused: smista-classifier version 2 does not replace version 1 as @champion" in refusal
    assert "intent_macro_f1" in refusal and "needs at least +0.0050" in refusal
    assert "head intent regresses" in refusal
    assert client.get_model_version_by_alias("smista-classifier", "champion").version == "1"

    assert main(["models", "compare", "--tracking-uri", mlflow_server]) == 0
    table = capsys.readouterr().out
    assert "v1 @champion" in table and "v2" in table
