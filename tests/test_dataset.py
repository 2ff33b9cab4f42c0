from __future__ import annotations

import json
import math
import random

import pytest
from datasets import ClassLabel, Sequence, load_from_disk

from data.dataset import (
    BuildConfig,
    DatasetBuildError,
    allocate,
    build_dataset,
    data_hash,
    stratified_split,
)
from data.jsonl import PostFileError
from tests.conftest import make_post

INTENT_SIZES = {"informazioni": 23, "reclamo": 41, "elogio": 7, "lavoro": 5, "fuori_tema": 12}


@pytest.fixture
def posts(validator):
    rows = []
    for intent, size in INTENT_SIZES.items():
        rows += [make_post(f"{intent}-{i:03d}", intent=intent) for i in range(size)]
    return [validator.validate(row) for row in rows]


def _ids(splits):
    return {name: [p.id for p in members] for name, members in splits.items()}


def test_split_is_deterministic_and_ignores_input_order(posts):
    first = stratified_split(posts, "intent", 0.2, 0.1, seed=7)
    shuffled = posts[:]
    random.Random(99).shuffle(shuffled)
    assert _ids(stratified_split(shuffled, "intent", 0.2, 0.1, seed=7)) == _ids(first)
    assert _ids(stratified_split(posts, "intent", 0.2, 0.1, seed=8)) != _ids(first)


def test_split_partitions_every_post_exactly_once(posts):
    splits = stratified_split(posts, "intent", 0.2, 0.1, seed=7)
    all_ids = [pid for members in _ids(splits).values() for pid in members]
    assert sorted(all_ids) == sorted(p.id for p in posts)


def test_split_is_stratified_by_intent(posts):
    splits = stratified_split(posts, "intent", 0.2, 0.1, seed=7)
    total = len(posts)
    assert len(splits["test"]) == math.ceil(total * 0.2)  # at least 20%
    for intent, size in INTENT_SIZES.items():
        in_test = sum(p.labels["intent"] == intent for p in splits["test"])
        quota = size * len(splits["test"]) / total
        assert math.floor(quota) <= in_test <= math.ceil(quota), intent
        assert sum(p.labels["intent"] == intent for p in splits["train"]) > 0


def test_allocate_gives_floor_or_ceiling_and_the_exact_total():
    shares = allocate({"a": 10, "b": 3, "c": 7}, 7)
    assert sum(shares.values()) == 7
    for name, size in {"a": 10, "b": 3, "c": 7}.items():
        quota = size * 7 / 20
        assert math.floor(quota) <= shares[name] <= math.ceil(quota)


def test_data_hash_depends_on_content_not_order(posts, validator):
    assert data_hash(posts) == data_hash(list(reversed(posts)))
    changed = posts[:-1] + [validator.validate(make_post(posts[-1].id, text="testo diverso"))]
    assert data_hash(changed) != data_hash(posts)


def test_build_writes_classlabel_features_jsonl_and_manifest(tmp_path, write_jsonl, taxonomy):
    rows = [make_post(f"p{i:03d}", intent=intent) for i, intent in enumerate(list(INTENT_SIZES) * 8)]
    rows[0]["labels"]["business_action"] = ["rinnovo", "disdetta"]
    source = write_jsonl("seed.jsonl", rows)
    result = build_dataset(BuildConfig(inputs=[str(source)], output_dir=str(tmp_path / "out"), taxonomy=str(taxonomy_path())))

    dataset = load_from_disk(str(tmp_path / "out" / "hf"))
    assert set(dataset) == {"train", "validation", "test"}
    features = dataset["train"].features
    assert isinstance(features["intent"], ClassLabel) and features["intent"].names == taxonomy.label_ids("intent")
    assert isinstance(features["business_action"], Sequence)
    assert features["business_action"].feature.names == taxonomy.label_ids("business_action")
    first = next(row for split in dataset.values() for row in split if row["id"] == "p000")
    assert features["business_action"].feature.int2str(first["business_action"]) == ["rinnovo", "disdetta"]

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["data_hash"] == result.data_hash
    assert manifest["sizes"] == {s: len(dataset[s]) for s in dataset}
    assert sum(manifest["sizes"].values()) == len(rows)
    for split in ("train", "validation", "test"):
        lines = (tmp_path / "out" / f"{split}.jsonl").read_text().splitlines()
        assert len(lines) == len(dataset[split])
    assert result.counts["test"]["business_action"]["rinnovo"] + result.counts["train"]["business_action"]["rinnovo"] + result.counts["validation"]["business_action"]["rinnovo"] == 1


def taxonomy_path():
    from data.taxonomy import DEFAULT_TAXONOMY_PATH

    return DEFAULT_TAXONOMY_PATH


def test_missing_gold_label_names_file_line_and_field(tmp_path, write_jsonl):
    rows = [make_post("a"), make_post("b")]
    del rows[1]["labels"]["priority"]
    source = write_jsonl("seed.jsonl", rows)
    with pytest.raises(PostFileError, match=r"seed\.jsonl:2: labels: missing gold label\(s\) for priority"):
        build_dataset(BuildConfig(inputs=[str(source)], output_dir=str(tmp_path / "out")))


def test_bad_settings_and_inputs_are_refused(tmp_path, write_jsonl):
    source = write_jsonl("seed.jsonl", [make_post("a")])
    out = str(tmp_path / "out")
    with pytest.raises(DatasetBuildError, match="test_fraction must be between 0 and 1"):
        build_dataset(BuildConfig(inputs=[str(source)], output_dir=out, test_fraction=1.5))
    with pytest.raises(DatasetBuildError, match="must leave posts for training"):
        build_dataset(BuildConfig(inputs=[str(source)], output_dir=out, test_fraction=0.5, validation_fraction=0.5))
    with pytest.raises(DatasetBuildError, match="'business_action' is multi-label"):
        build_dataset(BuildConfig(inputs=[str(source)], output_dir=out, stratify_by="business_action"))
    with pytest.raises(DatasetBuildError, match="matches no file"):
        build_dataset(BuildConfig(inputs=[str(tmp_path / "*.nothing")], output_dir=out))
    with pytest.raises(DatasetBuildError, match="split 'train' is empty: 1 posts are too few"):
        build_dataset(BuildConfig(inputs=[str(source)], output_dir=out))


def test_same_id_in_two_files_is_refused(tmp_path, write_jsonl):
    first = write_jsonl("a.jsonl", [make_post("x")])
    second = write_jsonl("b.jsonl", [make_post("x")])
    with pytest.raises(DatasetBuildError, match=r"post id 'x' appears in both .*a\.jsonl and .*b\.jsonl"):
        build_dataset(BuildConfig(inputs=[str(first), str(second)], output_dir=str(tmp_path / "out")))


def sentiment_only(post_id: str, sentiment: str) -> dict:
    return make_post(post_id, text=f"testo solo sentiment {post_id}", labels={"sentiment": sentiment})


def test_partial_labels_are_refused_unless_asked_for_and_a_post_needs_one_label(tmp_path, write_jsonl):
    rows = [make_post(f"p{i:03d}", intent=intent) for i, intent in enumerate(list(INTENT_SIZES) * 4)]
    extra = write_jsonl("extra.jsonl", [sentiment_only("s1", "positivo")])
    source = write_jsonl("seed.jsonl", rows)
    with pytest.raises(PostFileError, match=r"extra\.jsonl:1: labels: missing gold label\(s\) for intent.*--partial-labels"):
        build_dataset(BuildConfig(inputs=[str(source)], train_only_inputs=[str(extra)], output_dir=str(tmp_path / "a")))
    bare = write_jsonl("bare.jsonl", [make_post("b1", labels={})])
    with pytest.raises(PostFileError, match=r"bare\.jsonl:1: labels: missing gold label\(s\) for intent, customer_type"):
        build_dataset(BuildConfig(inputs=[str(source)], train_only_inputs=[str(bare)], partial_labels=True,
                                  output_dir=str(tmp_path / "b")))


def test_partial_and_added_inputs_keep_the_test_split_and_mark_unlabelled_heads(tmp_path, write_jsonl, taxonomy):
    rows = [make_post(f"p{i:03d}", intent=intent) for i, intent in enumerate(list(INTENT_SIZES) * 8)]
    source = write_jsonl("seed.jsonl", rows)
    real = write_jsonl("real.jsonl", [make_post(f"r{i:03d}", intent=intent, text=f"commento vero {i}")
                                      for i, intent in enumerate(["elogio", "reclamo", "fuori_tema"] * 16)])
    sentiment = write_jsonl("sentiment.jsonl", [sentiment_only(f"s{i:03d}", ["positivo", "negativo"][i % 2]) for i in range(30)])
    plain = build_dataset(BuildConfig(inputs=[str(source)], output_dir=str(tmp_path / "plain")))
    mixed = build_dataset(BuildConfig(inputs=[str(source)], train_validation_inputs=[str(real)],
                                      train_only_inputs=[str(sentiment)], partial_labels=True,
                                      output_dir=str(tmp_path / "mixed")))

    ids = {split: {post.id for post in members} for split, members in mixed.splits.items()}
    assert ids["test"] == {post.id for post in plain.splits["test"]}  # the test split is the inputs' own
    real_validation = {i for i in ids["validation"] if i.startswith("r")}
    assert len(real_validation) == 6  # 48 / 8  # the inputs' 1-in-8 train:validation ratio
    assert {i for i in ids["train"] if i.startswith("r")} | real_validation == {f"r{i:03d}" for i in range(48)}
    assert {i for i in ids["train"] if i.startswith("s")} == {f"s{i:03d}" for i in range(30)}  # train only

    dataset = load_from_disk(str(tmp_path / "mixed" / "hf"))
    train = dataset["train"]
    assert train.features["labelled_heads"].feature.names == list(taxonomy.fields)
    row = train[train["id"].index("s001")]
    assert row["intent"] == -1 and row["priority"] == -1 and row["business_action"] is None
    assert train.features["sentiment"].int2str(row["sentiment"]) == "negativo"
    assert train.features["labelled_heads"].feature.int2str(row["labelled_heads"]) == ["sentiment"]
    full = train[train["id"].index("r001")]
    assert full["business_action"] == [] and len(full["labelled_heads"]) == len(taxonomy.fields)

    manifest = json.loads((tmp_path / "mixed" / "manifest.json").read_text())
    assert manifest["labelled"]["train"]["sentiment"] == len(train)
    assert manifest["labelled"]["train"]["intent"] == len(train) - 30
    assert mixed.counts["train"]["sentiment"]["positivo"] >= 15


def test_added_inputs_share_the_id_space(tmp_path, write_jsonl):
    source = write_jsonl("seed.jsonl", [make_post(f"p{i:03d}", intent=intent) for i, intent in enumerate(list(INTENT_SIZES) * 4)])
    clash = write_jsonl("real.jsonl", [make_post("p001", intent="elogio")])
    with pytest.raises(DatasetBuildError, match="'p001' appears in both"):
        build_dataset(BuildConfig(inputs=[str(source)], train_validation_inputs=[str(clash)], output_dir=str(tmp_path / "o")))
