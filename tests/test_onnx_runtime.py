"""The ONNX runtimes of the Predictor: export of the tiny model (training/inference/onnx_export.py), its
fp32 and int8 graphs against torch, stale-export detection, the SMISTA_RUNTIME setting, the
baseline's refusal, and the `smista models export-onnx` / `check-runtime` commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data.taxonomy import DEFAULT_TAXONOMY_PATH
from serving.settings import ServingSettings, SettingsError
from tests.training_helpers import SAMPLE_TEXTS, synthetic_posts
from training.errors import ModelLoadError
from training.inference import onnx_export
from training.inference.predict import Predictor
from training.inference.runtimes import RUNTIMES

pytest_plugins = ("tests.training_fixtures",)

TEXTS = [*SAMPLE_TEXTS, "Che tempo fa domani a Roma?", "bolletta grazie modem offerta"]
# Texts the tiny model never saw (another seed), plus the hand-written ones above.
CHECK_TEXTS = TEXTS + [post["text"] for post in synthetic_posts(120, seed=11)]


@pytest.fixture(scope="module")
def model_copy(tiny_run, tmp_path_factory):
    """A copy of the session's tiny model, so its onnx/ folder stays out of the shared one."""
    target = tmp_path_factory.mktemp("onnx-model") / "model"
    shutil.copytree(tiny_run.model_dir, target)
    return target


@pytest.fixture(scope="module")
def exported(model_copy):
    return onnx_export.export_model(model_copy)


@pytest.fixture(scope="module")
def predictors(model_copy, exported):
    return {runtime: Predictor.load(str(model_copy), runtime=runtime) for runtime in RUNTIMES}


def decisions(predictor, probabilities, head):
    chosen, _ = predictor.heads[head].decide(probabilities[head])
    return np.asarray(chosen).reshape(len(chosen), -1)


def test_export_writes_both_graphs_and_a_manifest(exported, model_copy, taxonomy):
    import onnx

    assert exported.onnx_dir == model_copy / "onnx"
    assert exported.fp32_path.is_file() and exported.int8_path.is_file()
    assert exported.int8_path.stat().st_size < exported.fp32_path.stat().st_size
    manifest = json.loads((model_copy / "onnx" / "export.json").read_text())
    assert manifest["opset"] == onnx_export.OPSET and manifest["format"] == onnx_export.EXPORT_FORMAT
    assert set(manifest["libraries"]) == set(onnx_export.LIBRARIES)
    assert manifest["quantization"] == onnx_export.DEFAULT_QUANTIZATION.as_dict()
    assert set(manifest["source"]["files"]) == {"config.json", "model.safetensors"}
    assert all(len(entry["sha256"]) == 64 for entry in manifest["source"]["files"].values())
    assert manifest["fp32_max_abs_difference"] < onnx_export.VERIFY_TOLERANCE

    graph = onnx.load(str(exported.fp32_path)).graph
    inputs = {value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim] for value in graph.input}
    assert {"input_ids", "attention_mask"} <= set(inputs) <= {"input_ids", "attention_mask", "token_type_ids"}
    for dims in inputs.values():  # dynamic batch and sequence axes
        assert all(isinstance(dim, str) and dim for dim in dims), inputs
    outputs = {value.name: value.type.tensor_type.shape.dim[1].dim_value for value in graph.output}
    assert outputs == {f"probabilities_{name}": len(taxonomy.label_ids(name)) for name in taxonomy.fields}
    assert onnx_export.stale_reason(model_copy, exported.onnx_dir) is None
    # Eager attention: the mask is built once and added to the scores, not applied in every layer
    # with SDPA's Where + IsNaN pass.
    operators = [node.op_type for node in graph.node]
    assert "IsNaN" not in operators and operators.count("Where") <= 1, sorted(set(operators))


def constant_fp32_matmuls(path) -> int:
    """MatMul nodes of a graph whose weights are an fp32 initializer (not quantised)."""
    import onnx

    graph = onnx.load(str(path)).graph
    weights = {tensor.name for tensor in graph.initializer if tensor.data_type == onnx.TensorProto.FLOAT}
    return sum(1 for node in graph.node if node.op_type == "MatMul" and node.input[1] in weights)


def test_int8_keeps_the_named_modules_in_fp32(exported, tmp_path):
    keep = onnx_export.DEFAULT_QUANTIZATION.keep_fp32
    assert json.loads((exported.onnx_dir / "export.json").read_text())["kept_fp32"] == sorted(keep)
    assert constant_fp32_matmuls(exported.fp32_path) > len(keep)  # the tiny encoder's Linear layers
    assert constant_fp32_matmuls(exported.int8_path) == len(keep)  # one MatMul per kept Linear

    # A name that matches no module keeps nothing: every weight MatMul is quantised.
    nothing = onnx_export.QuantizationSettings(keep_fp32=("encoder.no_such.module",))
    assert onnx_export.quantize_int8(exported.fp32_path, tmp_path / "all.onnx", nothing) == []
    assert constant_fp32_matmuls(tmp_path / "all.onnx") == 0


def test_every_runtime_says_which_it_is(predictors, baseline_run):
    assert {runtime: predictor.runtime for runtime, predictor in predictors.items()} == {r: r for r in RUNTIMES}
    assert Predictor.load(str(baseline_run.model_dir)).runtime == "sklearn"


def test_onnx_sessions_run_on_the_threads_asked_for(model_copy, exported):
    from training.machine import available_cores

    default = Predictor.load(str(model_copy), runtime="onnx-int8")
    assert default.backend.session.get_session_options().intra_op_num_threads == available_cores()
    assert not default.backend.session.get_session_options().enable_cpu_mem_arena  # memory given back after a batch
    one = Predictor.load(str(model_copy), runtime="onnx-int8", threads=1)
    assert one.backend.session.get_session_options().intra_op_num_threads == 1


def test_an_onnx_predictor_as_serving_loads_it_never_imports_torch(model_copy, exported, taxonomy):
    """What a Classifier worker does with an ONNX runtime (the exported model, its tokenizer, the
    thread setting), in a fresh process: torch stays out of it, 170 MB of RSS it would hold for nothing.
    Two paths used to import it: AutoTokenizer (transformers 5 imports torch with it) and the
    torch.set_num_threads call made for every runtime."""
    script = (
        "import sys\n"
        "from data.taxonomy import load_taxonomy\n"
        "from serving.model_source import load_checked_predictor\n"
        f"predictor = load_checked_predictor({str(model_copy)!r}, load_taxonomy(), 'onnx-int8', threads=1)\n"
        "predictor.predict(['bolletta doppia, voglio il rimborso'])\n"
        "print('torch' in sys.modules, predictor.runtime)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["False", "onnx-int8"]


def test_onnx_tokenizer_gives_the_ids_of_the_saved_one(model_copy, exported):
    from transformers import AutoTokenizer

    backend = Predictor.load(str(model_copy), runtime="onnx").backend
    reference = AutoTokenizer.from_pretrained(model_copy)
    texts = [*CHECK_TEXTS, "Привет 日本 🎉 @utente #tag https://esempio.it", "x" * 3000]
    assert backend.tokenizer(texts, truncation=True, max_length=64)["input_ids"] == \
        reference(texts, truncation=True, max_length=64)["input_ids"]


def test_onnx_fp32_reproduces_torch_in_input_order(predictors):
    torch_probabilities = predictors["torch"].predict_probabilities(CHECK_TEXTS, batch_size=8)
    for batch_size in (1, 3, 64):  # length-sorted chunks of any size, results back in input order
        onnx_probabilities = predictors["onnx"].predict_probabilities(CHECK_TEXTS, batch_size=batch_size)
        for head, values in torch_probabilities.items():
            np.testing.assert_allclose(onnx_probabilities[head], values, atol=1e-5, err_msg=head)
    torch_results = predictors["torch"].predict(TEXTS)
    onnx_results = predictors["onnx"].predict(TEXTS, batch_size=2)
    for expected, got in zip(torch_results, onnx_results, strict=True):
        assert {head: p.labels for head, p in got.items()} == {head: p.labels for head, p in expected.items()}


def test_int8_labels_mostly_agree_with_torch(predictors):
    torch_probabilities = predictors["torch"].predict_probabilities(CHECK_TEXTS)
    int8_probabilities = predictors["onnx-int8"].predict_probabilities(CHECK_TEXTS)
    for head in predictors["torch"].heads:
        same = np.all(decisions(predictors["torch"], torch_probabilities, head)
                      == decisions(predictors["onnx-int8"], int8_probabilities, head), axis=1)
        # Quantisation moves probabilities a little (about 0.1 at most on this model); labels stay.
        assert same.mean() >= 0.95, (head, same.mean())
        assert np.abs(int8_probabilities[head] - torch_probabilities[head]).max() < 0.25, head
        assert not np.allclose(int8_probabilities[head], torch_probabilities[head], atol=1e-6), "int8 is not fp32"


def test_a_changed_model_makes_the_export_stale_and_load_exports_again(tiny_run, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_run.model_dir, model_dir)
    first = onnx_export.export_model(model_dir)
    assert onnx_export.ensure_export(model_dir).exported is False  # fresh: kept

    # A copy with new mtimes but the same contents is still fresh (hashes decide).
    os.utime(model_dir / "model.safetensors", ns=(1, 1))
    assert onnx_export.stale_reason(model_dir, first.onnx_dir) is None

    # New thresholds in config.json: stale, and loading an onnx runtime exports again.
    config = json.loads((model_dir / "config.json").read_text())
    head = next(name for name, spec in config["heads"].items() if spec["multi_label"])
    config["heads"][head]["thresholds"] = {label: 0.99 for label in config["heads"][head]["labels"]}
    (model_dir / "config.json").write_text(json.dumps(config))
    reason = onnx_export.stale_reason(model_dir, first.onnx_dir)
    assert reason is not None and "config.json changed" in reason
    predictor = Predictor.load(str(model_dir), runtime="onnx")
    assert predictor.heads[head].thresholds == [0.99] * len(config["heads"][head]["labels"])
    assert onnx_export.stale_reason(model_dir, first.onnx_dir) is None
    manifest = json.loads((first.onnx_dir / "export.json").read_text())
    assert manifest["source"]["files"]["config.json"]["sha256"] != first.manifest["source"]["files"]["config.json"]["sha256"]

    # Other int8 settings, a missing file or a newer export format: stale too.
    other = onnx_export.QuantizationSettings(per_channel=not onnx_export.DEFAULT_QUANTIZATION.per_channel)
    assert "int8 settings changed" in onnx_export.stale_reason(model_dir, first.onnx_dir, other)
    (first.onnx_dir / onnx_export.INT8_FILE).unlink()
    assert "model.int8.onnx is missing" in onnx_export.stale_reason(model_dir, first.onnx_dir)


def test_a_registry_uri_is_exported_into_the_cache(tiny_run, local_tracking_uri, monkeypatch, tmp_path):
    monkeypatch.setattr(onnx_export, "ONNX_CACHE_ROOT", tmp_path / "onnx-cache")
    uri = f"models:/smista-classifier/{tiny_run.registered_version}"
    predictor = Predictor.load(uri, tracking_uri=local_tracking_uri, runtime="onnx-int8")
    assert predictor.runtime == "onnx-int8" and predictor.model_version == f"smista-classifier/{tiny_run.registered_version}"
    [cached] = list((tmp_path / "onnx-cache").iterdir())
    assert (cached / onnx_export.INT8_FILE).is_file() and (cached / onnx_export.MANIFEST_FILE).is_file()
    # The next load (a new download) finds the same export by content hash.
    mtime = (cached / onnx_export.MANIFEST_FILE).stat().st_mtime_ns
    Predictor.load(uri, tracking_uri=local_tracking_uri, runtime="onnx")
    assert (cached / onnx_export.MANIFEST_FILE).stat().st_mtime_ns == mtime


def test_a_baseline_with_an_onnx_runtime_is_a_clear_error(baseline_run):
    for runtime in ("onnx", "onnx-int8"):
        with pytest.raises(ModelLoadError, match=f"is a TF-IDF baseline: runtime '{runtime}' runs exported transformer"):
            Predictor.load(str(baseline_run.model_dir), runtime=runtime)
    assert not (baseline_run.model_dir / "onnx").exists()


def test_an_unknown_runtime_names_the_choices(tiny_run):
    with pytest.raises(ModelLoadError, match="unknown runtime 'tensorrt'; expected one of: torch, onnx, onnx-int8"):
        Predictor.load(str(tiny_run.model_dir), runtime="tensorrt")


def test_runtime_setting(tmp_path):
    base = {"SMISTA_REQUIRE_API_KEY": "false"}
    unset = ServingSettings.from_env(base)
    # Unset: the runtime recorded on the registry version, else torch (serving/model_source.py).
    assert unset.runtime is None and "SMISTA_RUNTIME" not in unset.to_env()
    assert "runtime=recorded on the model version, else torch" in unset.describe()
    settings = ServingSettings.from_env({**base, "SMISTA_RUNTIME": "onnx-int8"})
    assert settings.runtime == "onnx-int8" and "runtime=onnx-int8" in settings.describe()
    assert ServingSettings.from_env({**base, **settings.to_env()}).runtime == "onnx-int8"
    with pytest.raises(SettingsError) as error:
        ServingSettings.from_env({**base, "SMISTA_RUNTIME": "tensorrt"})
    assert "SMISTA_RUNTIME: unknown runtime 'tensorrt'; expected one of: torch, onnx, onnx-int8" in str(error.value)


def test_export_onnx_command_prints_sizes_and_time(tiny_run, tmp_path, capsys):
    from smista.cli import main

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_run.model_dir, model_dir)
    assert main(["models", "export-onnx", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert f"{model_dir / 'onnx' / 'model.onnx'}  " in out and f"{model_dir / 'onnx' / 'model.int8.onnx'}  " in out
    assert " MB" in out and "Export took" in out and "opset 20" in out
    assert main(["models", "export-onnx", "--model", str(model_dir)]) == 0
    assert "Up to date" in capsys.readouterr().out


def test_check_runtime_command_compares_every_runtime_per_head(model_copy, exported, synthetic_dataset, taxonomy, capsys):
    from smista.cli import main

    posts = synthetic_dataset / "test.jsonl"
    assert main(["models", "check-runtime", "--model", str(model_copy), "--posts", str(posts),
                 "--taxonomy", str(DEFAULT_TAXONOMY_PATH)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("head"))
    assert "torch F1" in header and "onnx agree" in header and "onnx-int8 agree" in header and "delta" in header
    for head in taxonomy.fields:
        [row] = [line for line in lines if line.split() and line.split()[0] == head]
        torch_f1, onnx_agree, onnx_f1, onnx_delta, int8_agree, int8_f1, int8_delta = row.split()[1:]
        assert onnx_agree == "1.000" and onnx_f1 == torch_f1 and float(onnx_delta) == 0.0
        assert float(int8_agree) >= 0.9 and abs(float(int8_delta)) <= 0.1
    assert "posts/s" in out and "largest probability difference to torch" in out


def test_check_runtime_of_a_baseline_compares_scikit_learn_alone(baseline_run, synthetic_dataset, taxonomy):
    """A TF-IDF champion (the main job's first) has no ONNX runtime: the comparison says so, and the
    runtime chosen for it is torch (scikit-learn), instead of an error."""
    from training.evaluation.runtime_check import compare_runtimes, fastest_faithful_runtime
    from training.labelled_posts import read_labelled_posts

    posts = read_labelled_posts(synthetic_dataset / "test.jsonl", taxonomy)
    comparison = compare_runtimes(str(baseline_run.model_dir), posts)
    assert comparison.kind == "tfidf_baseline" and list(comparison.runtimes) == ["torch"]
    assert comparison.runtimes["torch"].runtime == "sklearn"
    assert "runs on scikit-learn only" in comparison.format_table()
    assert fastest_faithful_runtime(comparison, 0.015)[0] == "torch"
