"""Bad inputs stop `smista train` early with a message that names the problem (exit 2, no traceback)."""

from __future__ import annotations

import json
import time

import pytest

from smista.cli import main
from tests.training_helpers import TINY_RECIPE, free_port, synthetic_posts, write_posts_file


def run_train(capsys, *args: str) -> tuple[int, str]:
    code = main(["train", "--recipe", str(TINY_RECIPE), *args])
    return code, capsys.readouterr().err


def local_args(tmp_path) -> list[str]:
    return ["--set", f"output_dir={tmp_path / 'runs'}", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]


def with_inputs(tmp_path, posts: list[dict]) -> list[str]:
    source = write_posts_file(tmp_path / "posts.jsonl", posts)
    return ["--set", f"data.inputs=[{source}]", "--set", f"data.dataset_dir={tmp_path / 'dataset'}", *local_args(tmp_path)]


def test_single_class_training_split(tmp_path, capsys):
    posts = synthetic_posts(40)
    for post in posts:
        post["labels"]["intent"] = "elogio"
    code, err = run_train(capsys, *with_inputs(tmp_path, posts))
    assert code == 2
    assert "smista: error: the training split has a single class for 'intent' (elogio)" in err
    assert not (tmp_path / "runs").exists()


def test_empty_training_split_from_too_few_posts(tmp_path, capsys):
    code, err = run_train(capsys, *with_inputs(tmp_path, synthetic_posts(2)))
    assert code == 2
    assert "split 'train' is empty: 2 posts are too few" in err


def test_empty_training_split_in_a_built_data_set(tmp_path, capsys):
    from tests.training_helpers import build_synthetic_dataset

    dataset_dir = build_synthetic_dataset(tmp_path)
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    manifest["sizes"]["train"] = 0
    (dataset_dir / "manifest.json").write_text(json.dumps(manifest))
    code, err = run_train(capsys, "--set", f"data.dataset_dir={dataset_dir}", *local_args(tmp_path))
    assert code == 2
    assert f"the train split of {dataset_dir} is empty" in err


def test_label_id_missing_from_the_taxonomy_in_the_posts(tmp_path, capsys):
    posts = synthetic_posts(40)
    posts[5]["labels"]["intent"] = "lamentela_generica"
    code, err = run_train(capsys, *with_inputs(tmp_path, posts))
    assert code == 2
    assert "posts.jsonl:6:" in err and "unknown label id 'lamentela_generica'" in err


def test_label_id_missing_from_the_taxonomy_in_a_built_data_set(tmp_path, capsys):
    from tests.training_helpers import build_synthetic_dataset

    dataset_dir = build_synthetic_dataset(tmp_path)
    # A data set built with another taxonomy: its ClassLabel names an id this taxonomy lacks.
    for split in ("train", "validation", "test"):
        info_path = dataset_dir / "hf" / split / "dataset_info.json"
        info = json.loads(info_path.read_text())
        info["features"]["sentiment"]["names"] = ["negativo", "neutro", "entusiasta"]
        info_path.write_text(json.dumps(info))
    code, err = run_train(capsys, "--set", f"data.dataset_dir={dataset_dir}", *local_args(tmp_path))
    assert code == 2
    assert "label id(s) ['entusiasta'] of field 'sentiment'" in err and "missing from taxonomy v1" in err


def test_missing_data_set_says_how_to_build_it(tmp_path, capsys):
    code, err = run_train(capsys, "--set", f"data.dataset_dir={tmp_path / 'nothing'}", *local_args(tmp_path))
    assert code == 2 and "smista data build" in err


def test_unreachable_tracking_server_fails_fast_naming_the_uri(tmp_path, capsys):
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    code, err = run_train(capsys, "--tracking-uri", uri, "--set", f"output_dir={tmp_path}")
    assert code == 2
    assert time.monotonic() - started < 10
    assert f"MLflow tracking server {uri} is not reachable" in err and "smista mlflow server" in err


@pytest.mark.parametrize(
    "base_model, message",
    [
        ("nonexistent-org/nonexistent-bert", "base model 'nonexistent-org/nonexistent-bert' is not in the local Hugging Face cache"),
        ("./no/such/model", "base model './no/such/model': no such directory"),
        ("package:no_such_model_package", "Python package 'no_such_model_package' is not installed"),
    ],
)
def test_unknown_base_model_names_it_and_how_to_provide_it(tmp_path, capsys, monkeypatch, base_model, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    code, err = run_train(
        capsys, "--set", "transformer.from_scratch=null", "--set", f"transformer.base_model={base_model}", *local_args(tmp_path),
        "--set", "data.dataset_dir=build/does-not-matter",
    )
    assert code == 2
    assert message in err
    assert time.monotonic() - started < 10
    if base_model.startswith("nonexistent"):
        assert "hf download nonexistent-org/nonexistent-bert" in err and "save_pretrained" in err


def test_recipe_head_not_in_taxonomy(tmp_path, capsys):
    code, err = run_train(capsys, "--set", "transformer.class_weighting={intnet: balanced}", *local_args(tmp_path))
    assert code == 2 and "recipe class_weighting: ['intnet'] not in taxonomy v1" in err
