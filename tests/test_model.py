"""The multi-head model: heads from the taxonomy, the loss the Trainer needs, save and load."""

from __future__ import annotations

import json

import pytest
import torch

from training.fitting.encoders import build_scratch_encoder
from training.inference.model import (
    IGNORE_LABEL,
    MAX_CLASS_WEIGHT,
    SmistaMultiHeadModel,
    build_model,
    class_weights,
    label_column,
)
from training.recipe import ScratchEncoder

TEXTS = ["la fibra non va da ieri", "grazie mille, gentilissimi", "vorrei attivare l'offerta luce",
         "mi avete addebitato due volte la bolletta"] * 5


@pytest.fixture(scope="module")
def tiny_model(taxonomy):
    encoder, tokenizer = build_scratch_encoder(
        ScratchEncoder(vocab_size=200, hidden_size=16, num_attention_heads=2, intermediate_size=32), TEXTS, 32
    )
    counts = {name: [1] * len(spec.label_ids) for name, spec in taxonomy.fields.items()}
    weighting = {name: "balanced" for name in taxonomy.fields}
    model = build_model(encoder, taxonomy, counts, dict.fromkeys(taxonomy.fields, 20), weighting, {"intent": 2.0}, "mean", 0.0, 32)
    return model.eval(), tokenizer


def labels_for(taxonomy, batch_size: int) -> dict[str, torch.Tensor]:
    return {
        label_column(name): torch.zeros(batch_size, len(spec.label_ids)) if spec.is_multi_label
        else torch.zeros(batch_size, dtype=torch.long)
        for name, spec in taxonomy.fields.items()
    }


def test_one_head_per_taxonomy_field_sized_from_the_taxonomy(tiny_model, taxonomy):
    model, tokenizer = tiny_model
    output = model(**tokenizer(TEXTS[:3], padding=True, return_tensors="pt"))
    assert list(output) == [f"logits_{name}" for name in taxonomy.fields]
    for name, spec in taxonomy.fields.items():
        assert output[f"logits_{name}"].shape == (3, len(spec.label_ids))
    assert model.config.heads["business_action"]["multi_label"] is True
    assert model.config.heads["intent"]["labels"] == taxonomy.label_ids("intent")


def test_loss_is_the_weighted_sum_of_the_heads(tiny_model, taxonomy):
    model, tokenizer = tiny_model
    batch = tokenizer(TEXTS[:4], padding=True, return_tensors="pt")
    labels = labels_for(taxonomy, 4)
    output = model(**batch, **labels)
    logits = {name: output[f"logits_{name}"] for name in taxonomy.fields}
    expected = 0.0
    for name, spec in taxonomy.fields.items():
        weight = getattr(model, f"class_weight_{name}")
        if spec.is_multi_label:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[name], labels[label_column(name)], pos_weight=weight)
        else:
            loss = torch.nn.functional.cross_entropy(logits[name], labels[label_column(name)], weight=weight)
        expected = expected + (2.0 if name == "intent" else 1.0) * loss
    assert torch.allclose(output["loss"], expected)
    output["loss"].backward()
    assert model.heads["intent"].weight.grad is not None


def test_unlabelled_posts_add_nothing_to_a_heads_loss(tiny_model, taxonomy):
    """Partial labels: IGNORE_LABEL targets drop out of a head's loss, so a batch where posts 2-3 are
    unlabelled for every head but sentiment gives the loss of posts 0-1 alone on those heads,
    scaled by their share of the batch (2 of 4)."""
    model, tokenizer = tiny_model
    batch = tokenizer(TEXTS[:4], padding=True, return_tensors="pt")
    full = labels_for(taxonomy, 4)
    for name, spec in taxonomy.fields.items():
        if name != "sentiment":
            full[label_column(name)][2:] = IGNORE_LABEL
    with torch.no_grad():
        partial = model(**batch, **full)["loss"]
        logits = model(**batch)
    expected = 0.0
    for name, spec in taxonomy.fields.items():
        rows = slice(None) if name == "sentiment" else slice(0, 2)
        weight = getattr(model, f"class_weight_{name}")
        target = full[label_column(name)][rows]
        if spec.is_multi_label:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[f"logits_{name}"][rows], target, pos_weight=weight)
        else:
            loss = torch.nn.functional.cross_entropy(logits[f"logits_{name}"][rows], target, weight=weight)
        share = 1.0 if name == "sentiment" else 0.5
        expected = expected + (2.0 if name == "intent" else 1.0) * share * loss
    assert torch.allclose(partial, expected)


def test_a_batch_with_no_post_labelled_for_a_head_still_trains_the_others(tiny_model, taxonomy):
    model, tokenizer = tiny_model
    model.zero_grad()
    batch = tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    labels = labels_for(taxonomy, 2)
    labels[label_column("intent")][:] = IGNORE_LABEL
    labels[label_column("business_action")][:] = IGNORE_LABEL
    output = model(**batch, **labels)
    assert torch.isfinite(output["loss"])
    output["loss"].backward()
    # Every head is in the graph (DDP needs a gradient for each), the unlabelled ones with zeros.
    assert torch.count_nonzero(model.heads["intent"].weight.grad) == 0
    assert torch.count_nonzero(model.heads["business_action"].weight.grad) == 0
    assert torch.count_nonzero(model.heads["sentiment"].weight.grad) > 0
    model.zero_grad()


def test_partial_or_unknown_label_columns_are_refused(tiny_model, taxonomy):
    model, tokenizer = tiny_model
    batch = tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    with pytest.raises(TypeError, match="missing label columns"):
        model(**batch, labels_intent=torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="unexpected inputs"):
        model(**batch, labels_mood=torch.tensor([0, 1]))


def test_class_weights():
    assert class_weights([10, 30, 0], 40, multi_label=False, scheme="none") == [1.0, 1.0, 1.0]
    balanced = class_weights([10, 30, 0], 40, multi_label=False, scheme="balanced")
    assert balanced[0] == pytest.approx(40 / 30) and balanced[1] == pytest.approx(40 / 90) and balanced[2] == 1.0
    assert class_weights([10, 30, 0], 40, multi_label=False, scheme="sqrt")[0] == pytest.approx((40 / 30) ** 0.5)
    # multi-label: pos_weight = negatives / positives, capped at MAX_CLASS_WEIGHT
    assert class_weights([100, 10], 300, multi_label=True, scheme="balanced") == [2.0, MAX_CLASS_WEIGHT]


def test_save_and_load_keep_weights_label_maps_thresholds_and_taxonomy_version(tiny_model, taxonomy, tmp_path):
    model, tokenizer = tiny_model
    model.config.heads["business_action"]["thresholds"] = {label: 0.3 for label in taxonomy.label_ids("business_action")}
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = SmistaMultiHeadModel.from_pretrained(tmp_path).eval()
    batch = tokenizer(TEXTS[:4], padding=True, return_tensors="pt")
    for name in taxonomy.fields:
        assert torch.allclose(model(**batch)[f"logits_{name}"], loaded(**batch)[f"logits_{name}"])
        assert torch.equal(getattr(model, f"class_weight_{name}"), getattr(loaded, f"class_weight_{name}"))
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["taxonomy_version"] == taxonomy.version
    assert saved["field_names"] == list(taxonomy.fields)
    assert saved["heads"]["intent"]["labels"] == taxonomy.label_ids("intent")
    assert saved["heads"]["business_action"]["thresholds"]["disdetta"] == 0.3
    assert loaded.config.head_loss_weights == {"intent": 2.0}


def test_scratch_tokenizer_keeps_italian_accents():
    _, tokenizer = build_scratch_encoder(ScratchEncoder(vocab_size=150), ["perché è così", "perché no"] * 10, 16)
    assert "perché" in tokenizer.tokenize("Perché")
