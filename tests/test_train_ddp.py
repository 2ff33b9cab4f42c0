"""The same train command under torchrun: 2 CPU processes (gloo), and only the main one writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.training_helpers import REPO_ROOT, TINY_RECIPE, build_synthetic_dataset


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [[], ["transformer.freeze_word_embeddings=true", "transformer.storage_dtype=float16", "transformer.text_prefix='query: '"]],
    ids=["plain", "e5-options"],  # the default e5 recipe's options: a frozen parameter under DDP, fp16 saving
)
def test_two_process_ddp_training_logs_and_saves_once(tmp_path, options):
    dataset_dir = build_synthetic_dataset(tmp_path)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    torchrun = Path(sys.executable).parent / "torchrun"
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--standalone", "-m", "smista", "train", "--recipe", str(TINY_RECIPE),
         "--set", f"data.dataset_dir={dataset_dir}", "--set", f"output_dir={tmp_path / 'runs'}",
         "--set", "transformer.max_steps=4", *[arg for option in options for arg in ("--set", option)],
         "--tracking-uri", tracking_uri],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert output.count("Done: run ") == 1  # only the main process reports (and logs)
    assert output.count("MLflow: run ") == 1
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "model" / "model.safetensors").is_file()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("smista")
    logged = client.search_runs([experiment.experiment_id])
    assert len(logged) == 1 and logged[0].info.status == "FINISHED"
    assert [str(v.version) for v in client.search_model_versions("name = 'smista-classifier'")] == ["1"]
    assert "Training tiny on 2 process(es)" in output  # DDP really set up, not two independent trainings
