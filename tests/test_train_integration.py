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
from tests.training_helpers import REPO_ROOT, TINY_RECIPE, build_synthetic_dataset, free_port, tiny_recipe
from training.fitting.train import train
from training.inference.predict import Predictor

SERVER_START_TIMEOUT_S = 90


class MlflowServer:
    """`smista mlflow server` on a free loopback port, its store and artifacts in `folder`."""

    def __init__(self, folder, port: int | None = None):
        self.folder = folder
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = (folder / f"server-{self.port}.log").open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smista", "mlflow", "server", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{folder / 'server' / 'mlflow.db'}",
             "--artifacts-destination", str(folder / "server" / "artifacts")],
            cwd=REPO_ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"MLflow server did not start: {(folder / f'server-{self.port}.log').read_text()[-2000:]}")
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL the whole process group (uvicorn worker included): a crash, not a shutdown."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path)
    try:
        yield server.uri
    finally:
        server.stop()


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


@pytest.mark.slow
def test_tracking_server_killed_during_training_is_a_clear_error_and_registers_nothing(tmp_path, capsys, monkeypatch):
    from mlflow import MlflowClient

    import training.fitting.progress

    dataset_dir = build_synthetic_dataset(tmp_path)
    server = MlflowServer(tmp_path)
    try:
        class KillServerAfterFirstEpoch(training.fitting.progress.EpochSummary):
            def on_epoch_end(self, args, state, control, **kwargs):
                if state.epoch is not None and state.epoch <= 1:
                    server.kill()
                return super().on_epoch_end(args, state, control, **kwargs)

        monkeypatch.setattr(training.fitting.progress, "EpochSummary", KillServerAfterFirstEpoch)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # connection refused: no backoff wait
        code = main(["train", "--recipe", str(TINY_RECIPE), "--tracking-uri", server.uri,
                     "--set", f"data.dataset_dir={dataset_dir}", "--set", f"output_dir={tmp_path / 'runs'}",
                     "--set", "transformer.num_train_epochs=3"])
        captured = capsys.readouterr()
        assert code == 2, captured.err
        assert "Traceback" not in captured.err
        assert f"MLflow tracking server {server.uri} stopped answering during run" in captured.err
        assert "Nothing was registered" in captured.err and "smista mlflow server" in captured.err
        assert "Warning: live metrics stopped" in captured.out
        assert "epoch 3/3" in captured.out  # training went on without the server
        model_dirs = list((tmp_path / "runs").glob("*/model"))
        assert len(model_dirs) == 1 and f"The trained model is saved in {model_dirs[0]}" in captured.err
        assert (model_dirs[0] / "config.json").is_file()

        # The same store, served again: the run is there, no model version half made.
        server = MlflowServer(tmp_path, port=server.port)
        client = MlflowClient(server.uri)
        assert client.search_model_versions() == []
        runs = client.search_runs([client.get_experiment_by_name("smista").experiment_id])
        assert len(runs) == 1 and "registered_version" not in runs[0].data.tags
    finally:
        server.stop()
