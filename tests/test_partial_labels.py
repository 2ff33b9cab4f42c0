"""Partial-label training end to end: posts labelled for one head only join the training split, each
head learns from and is scored on the posts labelled for it, and a held-out file is scored after
training (and refused before training if it overlaps the data set)."""

from __future__ import annotations

import random

import pytest

from data.taxonomy import load_taxonomy
from tests.training_helpers import REPO_ROOT, synthetic_posts, tiny_recipe, write_posts_file
from training.errors import RegistryError, TrainingDataError
from training.evaluation.runtime_check import compare_runtimes
from training.fitting.train import train
from training.inference.predict import Predictor
from training.labelled_posts import read_labelled_posts
from training.recipe import load_recipe
from training.shipping.promotion import PromotionPolicy
from training.shipping.registry import promote

# Words that appear only in the sentiment-only posts: the sentiment head can learn them from there
# alone, since no fully labelled post carries them.
POSITIVE = ["stupendo", "meraviglioso", "adorabile", "favoloso"]
NEGATIVE = ["schifoso", "vergognoso", "pessimo", "orribile"]


def sentiment_only_posts(count: int = 48) -> list[dict]:
    rng = random.Random(3)
    posts = []
    for i in range(count):
        positive = i % 2 == 0
        words = rng.sample(POSITIVE if positive else NEGATIVE, 2)
        posts.append({
            "id": f"senti-{i:04d}",
            "text": " ".join(words + [rng.choice(["oggi", "davvero", "qui"])]),
            "channel": "twitter",
            "labels": {"sentiment": "positivo" if positive else "negativo"},
        })
    return posts


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partial")
    posts = synthetic_posts(120, seed=5)
    for post in posts[80:]:
        post["id"] = post["id"].replace("syn-", "real-")
    held_out = synthetic_posts(24, seed=9)
    for index, post in enumerate(held_out):
        post["id"] = f"held-{index:04d}"
        if index % 2:  # half of the held-out posts carry an intent label only
            post["labels"] = {"intent": post["labels"]["intent"]}
    return {
        "inputs": write_posts_file(folder / "seed.jsonl", posts[:80]),
        "real": write_posts_file(folder / "real.jsonl", posts[80:]),
        "sentiment": write_posts_file(folder / "sentiment.jsonl", sentiment_only_posts()),
        "held_out": write_posts_file(folder / "held_out.jsonl", held_out),
        "folder": folder,
    }


def data_overrides(sources, name: str) -> list[str]:
    return [
        f"data.dataset_dir={sources['folder'] / name}",
        f"data.inputs=['{sources['inputs']}']",
        f"data.train_validation_inputs=['{sources['real']}']",
        f"data.train_only_inputs=['{sources['sentiment']}']",
        "data.partial_labels=true",
        f"data.held_out={{real: '{sources['held_out']}'}}",
    ]


@pytest.fixture(scope="module")
def baseline_result(sources, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfidf")
    recipe = load_recipe(
        REPO_ROOT / "configs" / "train" / "baseline.yaml",
        [f"output_dir={folder}", f"tracking.tracking_uri=sqlite:///{folder}/mlflow.db",
         *data_overrides(sources, "ds-tfidf"), "tracking.register_model=true"],
    )
    return train(recipe), f"sqlite:///{folder}/mlflow.db"


def test_the_baseline_learns_sentiment_from_sentiment_only_posts(baseline_result):
    result, _ = baseline_result
    predictor = Predictor.from_directory(result.model_dir, model_version="partial")
    outputs = predictor.predict(["favoloso stupendo", "orribile schifoso"])
    assert [output["sentiment"].labels[0] for output in outputs] == ["positivo", "negativo"]
    held = result.reports["heldout_real"]
    assert held.posts == 24
    assert held.heads["intent"].posts == 24 and held.heads["sentiment"].posts == 12
    assert held.metrics("heldout_real")["heldout_real_sentiment_posts"] == 12
    assert any("sentiment: scored on the 12 of 24" in note for note in held.notes)


def test_runtime_check_and_promotion_on_partially_labelled_files(baseline_result, sources, tmp_path):
    result, tracking_uri = baseline_result
    posts = read_labelled_posts(sources["held_out"], load_taxonomy())
    comparison = compare_runtimes(str(result.model_dir), posts, runtimes=["torch"])
    assert "priority" in comparison.heads and "intent" in comparison.heads
    assert "intent" in comparison.format_table()
    # A gate file with no post labelled for some heads cannot compare every head: refused by name.
    intent_only = write_posts_file(tmp_path / "intent-only.jsonl", [
        {"id": f"g{i}", "text": f"bolletta addebito {i}", "channel": "twitter", "labels": {"intent": "fatturazione"}}
        for i in range(4)
    ])
    with pytest.raises(RegistryError, match="no post is labelled for customer_type, business_action, priority, sentiment"):
        promote(None, intent_only, PromotionPolicy(), tracking_uri=tracking_uri)


def test_heads_without_labelled_training_or_validation_posts_are_refused(tmp_path):
    full = synthetic_posts(40, seed=2)
    no_intent = [{**post, "id": post["id"].replace("syn-", "part-"),
                  "labels": {k: v for k, v in post["labels"].items() if k != "intent"}} for post in synthetic_posts(40, seed=4)]
    # Every post of inputs lacks intent; fully labelled posts join training only: validation has none.
    inputs = write_posts_file(tmp_path / "no-intent.jsonl", no_intent)
    extra = write_posts_file(tmp_path / "full.jsonl", full)
    recipe = tiny_recipe(tmp_path / "unused", tmp_path, f"sqlite:///{tmp_path}/mlflow.db",
                         f"data.dataset_dir={tmp_path / 'ds'}", f"data.inputs=['{inputs}']",
                         f"data.train_only_inputs=['{extra}']", "data.partial_labels=true")
    with pytest.raises(TrainingDataError, match="no validation post is labelled for intent"):
        train(recipe)
    without_training = tiny_recipe(tmp_path / "unused", tmp_path, f"sqlite:///{tmp_path}/mlflow.db",
                                   f"data.dataset_dir={tmp_path / 'ds2'}", f"data.inputs=['{inputs}']",
                                   "data.partial_labels=true")
    with pytest.raises(TrainingDataError, match="no training post is labelled for 'intent'"):
        train(without_training)


def test_a_transformer_trains_on_partial_labels_and_scores_the_held_out_set(sources, tmp_path):
    recipe = tiny_recipe(
        sources["folder"] / "unused", tmp_path, f"sqlite:///{tmp_path}/mlflow.db", *data_overrides(sources, "ds-tiny"),
        "tracking.register_model=false",
    )
    result = train(recipe)
    # validation holds the real posts' share (fully labelled); training holds the 48
    # sentiment-only posts, which no head but sentiment may count.
    assert result.reports["validation"].heads["intent"].posts == result.reports["validation"].posts
    held = result.reports["heldout_real"]
    assert set(held.heads) == set(result.reports["test"].heads)
    assert held.heads["business_action"].posts == 12
    assert 0.0 <= held.heads["intent"].macro_f1 <= 1.0
    assert (result.run_dir / "evaluation" / "heldout_real" / "metrics.json").is_file()


def test_a_held_out_file_overlapping_the_data_set_is_refused_before_training(sources, tmp_path):
    overlapping = write_posts_file(tmp_path / "overlap.jsonl", synthetic_posts(3, seed=5))  # ids syn-0000..2
    recipe = tiny_recipe(
        sources["folder"] / "unused",
        tmp_path,
        f"sqlite:///{tmp_path}/mlflow.db",
        *data_overrides(sources, "ds-overlap"),
        f"data.held_out={{real: '{overlapping}'}}",
        "tracking.register_model=false",
    )
    with pytest.raises(TrainingDataError, match=r"3 post\(s\) are also in the data set.*syn-0000"):
        train(recipe)
    assert not (tmp_path / "tiny").exists() or not any((tmp_path).glob("tiny-*/model"))
