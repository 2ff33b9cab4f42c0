"""Distil a trained model into a smaller one: `smista distill --teacher <model>` (a recipe of kind
`distillation`, e.g. configs/train/distill.yaml).

The student is the teacher with fewer encoder layers: its embeddings, the chosen layers and the
heads are copied from the teacher, so it starts close to the teacher's decisions instead of from
nothing. It is then trained with the stock `Trainer` on the teacher's soft labels for every head
(logits divided by a temperature; KL divergence for single-label heads, binary cross-entropy for
multi-label ones), over the training posts, perturbed copies of them and any unlabelled texts
given, plus the usual loss on the gold labels where a post has them. Validation picks the epoch,
tunes the thresholds and the optional TF-IDF blend, as for any transformer; the student is then
evaluated, logged, registered and compared like any run, with its teacher recorded (MLflow tags,
and the recipe saved with the model).

Never trained on: validation, test and held-out posts, also when they appear among the extra
texts (left out, counted).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from mlflow import MlflowClient
from transformers import AutoModel, set_seed

from data.taxonomy import Taxonomy, load_taxonomy
from training.errors import RecipeError
from training.evaluation.evaluate import evaluate_posts
from training.fitting import train as training
from training.fitting.domain_adaptation import adaptation_texts, read_extra_texts
from training.fitting.training_data import TrainingData, check_validation_labels, prepare_training_data
from training.inference.model import IGNORE_LABEL, SmistaMultiHeadModel, drop_pooler, label_column, logits_key
from training.inference.predict import Predictor
from training.inference.torch_backend import TransformerBackend, load_torch_model
from training.label_profile import read_reference
from training.mlflow_access import MLFLOW_URI_PREFIXES, check_tracking_server, download_model, local_model_dir
from training.recipe import TrainRecipe, resolve_tracking_uri
from training.shipping.tracking import log_training_data, tracked_run

TEACHER_PREFIX = "teacher_"


def teacher_column(field_name: str) -> str:
    return f"{TEACHER_PREFIX}{logits_key(field_name)}"


@dataclass
class Teacher:
    model: SmistaMultiHeadModel
    tokenizer: object
    source: str          # as the recipe names it
    version: str         # registry version ("smista-classifier/3"), run id, or directory name
    model_dir: Path


def load_teacher(source: str, tracking_uri: str) -> Teacher:
    """The teacher's torch model (fp32) and tokenizer, from a directory or an MLflow URI."""
    if source.startswith(MLFLOW_URI_PREFIXES):
        model_dir, version = download_model(source, tracking_uri)
    else:
        model_dir = local_model_dir(source)
        version = model_dir.resolve().name
    if not (model_dir / "config.json").is_file():
        raise RecipeError(f"distillation.teacher {source!r}: {model_dir} holds no transformer (config.json); "
                          "a TF-IDF baseline cannot be distilled")
    model, tokenizer = load_torch_model(model_dir)
    return Teacher(model.eval(), tokenizer, source, version, model_dir)


class DistillationStudent(SmistaMultiHeadModel):
    """The multi-head model whose loss, during distillation, also pulls each head towards the
    teacher's logits (`teacher_logits_<field>` inputs). Only for training: the student is saved and
    served as a plain SmistaMultiHeadModel (`plain_model`)."""

    temperature: float = 2.0
    soft_weight: float = 0.8

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, **inputs):
        teacher = {name: inputs.pop(teacher_column(name)) for name in self.config.field_names if teacher_column(name) in inputs}
        output = super().forward(input_ids, attention_mask, token_type_ids, **inputs)
        if not teacher:  # validation: the gold-label loss only
            return output
        soft = self.soft_loss(output, teacher)
        hard = output.get("loss")
        output["loss"] = soft if hard is None else self.soft_weight * soft + (1 - self.soft_weight) * hard
        return output

    def soft_loss(self, output: Mapping[str, torch.Tensor], teacher: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Sum over heads (weighted as the gold loss) of the divergence from the teacher at the
        temperature, times temperature² so its gradients keep their size as the temperature changes
        (Hinton et al., 2015)."""
        t = self.temperature
        total = torch.zeros((), device=input_device(output))
        for name in self.config.field_names:
            student_logits = output[logits_key(name)] / t
            teacher_logits = teacher[name].to(student_logits.dtype) / t
            if self.config.heads[name]["multi_label"]:
                loss = F.binary_cross_entropy_with_logits(student_logits, torch.sigmoid(teacher_logits))
            else:
                loss = F.kl_div(F.log_softmax(student_logits, dim=-1), F.log_softmax(teacher_logits, dim=-1),
                                reduction="batchmean", log_target=True)
            total = total + self.config.head_loss_weights.get(name, 1.0) * loss * t * t
        return total


def input_device(output: Mapping[str, torch.Tensor]) -> torch.device:
    return next(iter(output.values())).device


def plain_model(student: DistillationStudent) -> SmistaMultiHeadModel:
    """The trained student as the class every runtime loads (same config, same weights)."""
    model = SmistaMultiHeadModel(student.config)
    model.load_state_dict(student.state_dict())
    return model.eval()


def student_encoder(teacher: SmistaMultiHeadModel, layers: Sequence[int]):
    """A copy of the teacher's encoder keeping only `layers` (in order): the embeddings and those
    layers' weights are the teacher's."""
    config = copy.deepcopy(teacher.config.encoder)
    config.num_hidden_layers = len(layers)
    encoder = AutoModel.from_config(config)
    drop_pooler(encoder)  # as the teacher's: the heads read the pooled hidden states
    source = teacher.encoder.state_dict()
    state = {}
    for key, value in source.items():
        parts = key.split(".")
        if parts[:2] == ["encoder", "layer"]:
            old = int(parts[2])
            if old not in layers:
                continue
            parts[2] = str(list(layers).index(old))
        state[".".join(parts)] = value
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"student encoder does not fit the teacher's weights: missing {missing}, unexpected {unexpected}")
    return encoder


def build_student(teacher: Teacher, layers: Sequence[int], recipe: TrainRecipe, data: TrainingData) -> DistillationStudent:
    """The student: the teacher's embeddings, `layers` and heads; loss weighting from the recipe
    and the training split, as for any transformer."""
    base = training.build_multihead_model(student_encoder(teacher.model, layers), data.taxonomy, data, recipe.transformer)
    student = DistillationStudent(base.config)
    student.load_state_dict(base.state_dict())
    student.heads.load_state_dict(teacher.model.heads.state_dict())
    if recipe.transformer.freeze_word_embeddings:
        student.encoder.get_input_embeddings().weight.requires_grad_(False)
    settings = recipe.distillation
    student.temperature, student.soft_weight = settings.temperature, settings.soft_weight
    return student


def teacher_logits(teacher: Teacher, texts: Sequence[str], max_length: int, batch_size: int) -> dict[str, np.ndarray]:
    """field -> [texts, labels] logits of the teacher's transformer (no blend), rows in input order."""
    return TransformerBackend(teacher.model, teacher.tokenizer, max_length).logits(texts, batch_size)


def perturbed_copies(texts: Sequence[str], copies: int, seed: int) -> list[str]:
    """`copies` perturbed versions of each text: some words dropped, two neighbouring words swapped,
    or the start of the text joined to the end of another. The teacher labels them, so they only
    need to look like posts, not keep the original's labels. Deterministic for a seed."""
    rng = random.Random(seed)
    result: list[str] = []
    for _ in range(copies):
        for text in texts:
            words = text.split()
            kind = rng.randrange(3)
            if kind == 0 and len(words) > 2:
                kept = [word for word in words if rng.random() > 0.2] or words[:1]
                result.append(" ".join(kept))
            elif kind == 1 and len(words) > 1:
                at = rng.randrange(len(words) - 1)
                words[at], words[at + 1] = words[at + 1], words[at]
                result.append(" ".join(words))
            else:
                other = texts[rng.randrange(len(texts))].split()
                head = words[: max(1, len(words) // 2)]
                result.append(" ".join(head + other[len(other) // 2 :]))
    return result


def distillation_texts(recipe: TrainRecipe, data: TrainingData, extra_texts: Sequence[str]) -> tuple[list[str], int]:
    """The unlabelled texts the teacher labels (perturbed training posts and extra texts), none of
    them a validation, test or held-out post nor a training post (those keep their gold labels),
    each once; and how many were left out for being a validation, test or held-out post."""
    settings = recipe.distillation
    train_texts = data.texts("train")
    held_out = data.texts("validation") + data.texts("test") + [post.text for posts in data.held_out.values() for post in posts]
    candidates = perturbed_copies(train_texts, settings.augmented_copies, recipe.seed) + list(extra_texts)
    kept, left_out = adaptation_texts([], candidates, held_out)
    seen = {text.strip() for text in train_texts}
    texts = []
    for text in kept:
        if text.strip() and text.strip() not in seen:
            seen.add(text.strip())
            texts.append(text)
    return texts, left_out


def distillation_dataset(train: Dataset, extra: Sequence[str], tokenizer, taxonomy: Taxonomy, max_length: int,
                         logits: Mapping[str, np.ndarray]) -> Dataset:
    """The tokenized training split `train` (gold labels kept) followed by the unlabelled texts
    (every label IGNORE_LABEL), each row with the teacher's logits."""
    columns = {key: list(train[key]) for key in train.column_names}
    if extra:
        encoded = tokenizer(list(extra), truncation=True, max_length=max_length)
        for key in encoded:
            if key in columns:
                columns[key].extend(encoded[key])
        for name, spec in taxonomy.fields.items():
            blank = [IGNORE_LABEL] * len(spec.label_ids) if spec.is_multi_label else IGNORE_LABEL
            columns[label_column(name)].extend([blank] * len(extra))
    for name in taxonomy.fields:
        columns[teacher_column(name)] = logits[name].tolist()
    return Dataset.from_dict(columns)


def distill(recipe: TrainRecipe) -> training.RunResult:
    """Train, evaluate, log and register a student of `recipe.distillation.teacher` (one process):
    the teacher labels the texts, the stock Trainer fits the student to it, then the same validation
    tuning, saving, evaluation and registration as any transformer, with the teacher recorded and
    the student's agreement with it measured on every evaluated split."""
    taxonomy = load_taxonomy(recipe.data.taxonomy)
    training.check_recipe_heads(recipe, taxonomy)
    tracking_uri = resolve_tracking_uri(recipe.tracking.tracking_uri)
    check_tracking_server(tracking_uri)
    settings = recipe.distillation
    extra_texts = read_extra_texts(settings.extra_texts)  # a bad path fails before anything is loaded
    teacher = load_teacher(settings.teacher, tracking_uri)
    check_teacher_taxonomy(teacher, taxonomy)
    layers = settings.student_layers(teacher.model.config.encoder.num_hidden_layers)
    recipe = with_teacher_shape(recipe, teacher)
    set_seed(recipe.seed)
    args = training.training_arguments(recipe, taxonomy)
    if args.world_size > 1:
        raise RecipeError("kind 'distillation' runs in one process; run `smista distill` without torchrun")
    args.remove_unused_columns = False  # the teacher_* columns are inputs the forward signature does not name
    run_name = training.shared_run_name(recipe, 1)
    run_dir = Path(recipe.output_dir) / run_name
    args.output_dir = str(run_dir / "checkpoints")
    data = prepare_training_data(recipe.data, taxonomy)
    check_validation_labels(data, recipe.primary_head)
    check_teacher_data(teacher, data)
    with tracked_run(recipe, run_name, tracking_uri, run_dir / "model") as run:
        log_training_data(data.data_hash, data.taxonomy.version, data.manifest)
        record_teacher(teacher, layers)
        tokenizer = teacher.tokenizer
        tokenized = teacher_labelled_splits(recipe, data, teacher, extra_texts, layers)
        student = build_student(teacher, layers, recipe, data)
        teacher_dir = teacher.model_dir
        del teacher  # its weights are no longer needed: the memory goes to training
        trainer, best_epoch = training.make_trainer(recipe, args, student, tokenizer, tokenized)
        train_seconds = training.run_trainer(trainer, recipe, args, len(tokenized["train"]), True)
        model = plain_model(training.trained_model(trainer, best_epoch, run_dir, train_seconds))
        blended = training.tune_on_validation(recipe, taxonomy, data, model, tokenizer)
        model_dir = training.save_run_model(recipe, model, tokenizer, blended, run_dir)
        result = training.evaluate_and_record(recipe, data, run, run_dir, model_dir, run_name, train_seconds)
        # Before the comparison: the gate's student rule reads this tag, which must not hang on it.
        tag_registered_teacher(recipe, result, settings.teacher)
        compare_with_teacher(Predictor.from_directory(teacher_dir, settings.teacher), result, data)
        return result


def teacher_labelled_splits(recipe: TrainRecipe, data: TrainingData, teacher: Teacher, extra_texts: Sequence[str],
                            layers: Sequence[int]):
    """The tokenized splits, the training one extended with the unlabelled texts and carrying the
    teacher's logits for every row."""
    settings, max_length = recipe.distillation, recipe.transformer.max_length
    extra, left_out = distillation_texts(recipe, data, extra_texts)
    print(f"Distillation: a student of {len(layers)} layers (the teacher's {list(layers)}) of {teacher.version}; "
          f"{len(data.texts('train'))} training posts + {len(extra)} unlabelled texts labelled by the teacher"
          + (f" ({left_out} perturbed or extra texts left out: equal to validation, test or held-out posts)" if left_out else ""),
          flush=True)
    started = time.perf_counter()
    logits = teacher_logits(teacher, data.texts("train") + extra, max_length, settings.teacher_batch_size)
    print(f"Teacher labelled {len(data.texts('train')) + len(extra)} texts in {time.perf_counter() - started:.0f} s", flush=True)
    mlflow.log_metrics({"distillation_unlabelled_texts": len(extra), "distillation_left_out_texts": left_out})
    tokenized = training.tokenize_splits(data, teacher.tokenizer, data.taxonomy, max_length)
    tokenized["train"] = distillation_dataset(tokenized["train"], extra, teacher.tokenizer, data.taxonomy, max_length, logits)
    return tokenized


def compare_with_teacher(teacher: Predictor, result: training.RunResult, data: TrainingData) -> None:
    """The served teacher (its blend included) beside the student on every evaluated split: the
    teacher's macro-F1 per head, and the share of posts where both decide the same (MLflow metrics
    teacher_<split>_<head>_macro_f1 and agreement_<split>_<head>)."""
    student = Predictor.from_directory(result.model_dir, result.run_dir.name)
    metrics: dict[str, float] = {}
    for split in result.reports:
        posts = data.held_out[split.removeprefix("heldout_")] if split.startswith("heldout_") else data.posts(split)
        texts = [post.text for post in posts]
        teacher_report = evaluate_posts(teacher, posts, split)
        agreement = decision_agreement(teacher.predict(texts), student.predict(texts))
        print(f"Student against its teacher, {split} ({len(posts)} posts):", flush=True)
        for name, head in result.reports[split].heads.items():
            teacher_f1 = teacher_report.heads[name].macro_f1
            metrics[f"teacher_{split}_{name}_macro_f1"] = teacher_f1
            metrics[f"agreement_{split}_{name}"] = agreement[name]
            print(f"  {name:16s} macro-F1 student {head.macro_f1:.3f} teacher {teacher_f1:.3f} "
                  f"({head.macro_f1 - teacher_f1:+.3f}); same decision on {agreement[name]:.1%}", flush=True)
    mlflow.log_metrics(metrics)


def decision_agreement(first: Sequence[Mapping], second: Sequence[Mapping]) -> dict[str, float]:
    """head -> share of posts whose decided labels (all of them, for a multi-label head) are equal."""
    names = list(first[0]) if first else []
    return {name: float(np.mean([a[name].labels == b[name].labels for a, b in zip(first, second)])) for name in names}


def tag_registered_teacher(recipe: TrainRecipe, result: training.RunResult, teacher_source: str) -> None:
    """The registry version says whose student it is (the promotion gate reads it)."""
    if result.registered_version is None:
        return
    version = mlflow.get_run(result.run_id).data.tags.get("teacher_version", teacher_source)
    MlflowClient().set_model_version_tag(recipe.tracking.registered_model_name, result.registered_version, "teacher", version)


def check_teacher_taxonomy(teacher: Teacher, taxonomy: Taxonomy) -> None:
    config = teacher.model.config
    if str(config.taxonomy_version) != str(taxonomy.version) or list(config.field_names) != list(taxonomy.fields):
        raise RecipeError(
            f"distillation.teacher {teacher.source!r} was trained for taxonomy v{config.taxonomy_version} "
            f"(fields {', '.join(config.field_names)}), the recipe's is v{taxonomy.version} "
            f"(fields {', '.join(taxonomy.fields)}): distil a teacher of the same taxonomy"
        )


def check_teacher_data(teacher: Teacher, data: TrainingData) -> None:
    """The teacher must have been trained on this data set: the student starts from its weights, and
    a teacher whose training split held this data set's validation or test posts would flatter the
    student's scores. Its drift reference names the data set (training/label_profile.py)."""
    reference = read_reference(teacher.model_dir)
    trained_on = (reference or {}).get("source", {}).get("data_hash")
    if trained_on is not None and trained_on != data.data_hash:
        raise RecipeError(
            f"distillation.teacher {teacher.source!r} was trained on data set {trained_on}, the recipe's data set "
            f"({data.dataset_dir}) is {data.data_hash}: its training split may hold this data set's validation or "
            "test posts. Distil on the data set the teacher was trained on (rebuild it as then, or set data.dataset_dir)."
        )


def with_teacher_shape(recipe: TrainRecipe, teacher: Teacher) -> TrainRecipe:
    """The recipe with the teacher's pooling and max_length: the student reads posts as its teacher
    did. Saved with the model, so the recipe there says what the student is."""
    config = teacher.model.config
    shape = {"pooling": config.pooling, "max_length": config.max_input_tokens}
    for name, value in shape.items():
        if name in recipe.transformer.model_fields_set and getattr(recipe.transformer, name) != value:
            raise RecipeError(f"transformer.{name} {getattr(recipe.transformer, name)!r}: a student reads posts as its "
                              f"teacher does ({name} {value!r}); remove it from the recipe")
    transformer = recipe.transformer.model_copy(update=shape)
    return recipe.model_copy(update={"transformer": transformer})


def record_teacher(teacher: Teacher, layers: Sequence[int]) -> None:
    """The teacher on the MLflow run: as named, as resolved (an alias moves, a version does not)."""
    mlflow.set_tags({"teacher": teacher.source, "teacher_version": teacher.version,
                     "student_layers": ",".join(str(layer) for layer in layers)})
    mlflow.log_params({"teacher_version": teacher.version, "teacher_layers": teacher.model.config.encoder.num_hidden_layers})

