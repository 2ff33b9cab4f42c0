"""Train one model from a recipe: `smista train --recipe configs/train/default.yaml`.

`train` reads top to bottom: recipe checks, tracking server check, seed, data set, tokenizer and
encoder, the encoder's optional masked-LM domain adaptation, multi-head model, the stock `Trainer`,
thresholds tuned on validation, save, evaluation on validation and test through the saved model,
MLflow logging and registration. The TF-IDF baseline (`kind: tfidf_baseline`) goes through the
same steps with its own fitting in between.

Runs unchanged under `torchrun --nproc_per_node N` (DDP): every process trains, only the main one
writes the data set, the model, and the MLflow run.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import torch
import torch.distributed
from transformers import AutoTokenizer, BertConfig, BertModel, DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

from data.dataset import data_hash
from data.taxonomy import Taxonomy, load_taxonomy
from training.errors import RecipeTaxonomyError
from training.evaluation.evaluate import EvaluationReport, evaluate_posts
from training.evaluation.report_files import write_report
from training.fitting import domain_adaptation, progress  # modules: tests swap adapt_encoder, EpochSummary for spies
from training.fitting.baseline import fit_baseline
from training.fitting.best_epoch import KeepBestEpoch
from training.fitting.blend import choose_blend_weights
from training.fitting.domain_adaptation import adaptation_texts, read_extra_texts
from training.fitting.encoders import (
    add_text_prefix,
    build_scratch_encoder,
    extend_vocabulary,
    load_pretrained_encoder,
    resolve_base_model,
)
from training.fitting.lean_vocabulary import round_to_float16, trim_vocabulary
from training.fitting.progress import MEAN_MACRO_F1, MlflowLiveMetrics, per_head_macro_f1
from training.fitting.thresholds import tune_thresholds
from training.fitting.training_data import TrainingData, check_validation_labels, prepare_training_data
from training.inference import model as model_code  # a module: tests swap build_model for a spy
from training.inference.blend_backend import BLEND_DIR
from training.inference.model import IGNORE_LABEL, head_specs, label_column
from training.inference.predict import Predictor
from training.inference.torch_backend import TransformerBackend
from training.label_profile import write_reference
from training.mlflow_access import check_tracking_server
from training.partial_labels import labelled_rows
from training.recipe import TrainRecipe, resolve_tracking_uri
from training.shipping.tracking import log_domain_adaptation, log_results, log_training_data, tracked_run

EVALUATED_SPLITS = ("validation", "test")



@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    model_dir: Path
    registered_version: str | None
    reports: dict[str, EvaluationReport]
    train_seconds: float


def train(recipe: TrainRecipe) -> RunResult | None:
    """Train, evaluate, save, log and register one model. Returns None on DDP processes other than
    the main one."""
    taxonomy = load_taxonomy(recipe.data.taxonomy)
    check_recipe_heads(recipe, taxonomy)
    tracking_uri = resolve_tracking_uri(recipe.tracking.tracking_uri)
    # Every process checks, so that under DDP none of them waits for a main process that stopped.
    check_tracking_server(tracking_uri)
    if recipe.transformer is not None and recipe.transformer.base_model is not None:
        resolve_base_model(recipe.transformer.base_model)  # a missing model fails here, before any work
    if recipe.kind == "tfidf_baseline":
        return train_baseline(recipe, taxonomy, tracking_uri)

    adaptation = recipe.transformer.domain_adaptation
    # Read now, like the base model above: a bad path fails before any data or model is loaded.
    extra_texts = read_extra_texts(adaptation.extra_texts) if adaptation is not None else []
    return train_transformer(recipe, taxonomy, tracking_uri, extra_texts)


def leave_process_group() -> None:
    """Under torchrun, tear down this process's process group when its work is done. Local, not a
    collective: the main process may still be saving and evaluating. `smista train` calls it after
    `train`, not `train` itself, so one process could still train several models.

    Left to interpreter exit, a rank now and then aborted ("terminate called without an active
    exception", exit -6) and failed the whole torchrun: in one CI run and in 1 of 6 standalone
    runs of tests/test_train_ddp.py on 2026-11-23; 9 of 9 passed with this.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def train_transformer(
    recipe: TrainRecipe, taxonomy: Taxonomy, tracking_uri: str, extra_texts: Sequence[str] = ()
) -> RunResult | None:
    """The transformer steps of `train`, in the module docstring's order: seed, data set, tokenizer
    and encoder, optional domain adaptation, multi-head model, the stock `Trainer`; then, on the main
    process only, thresholds tuned on validation, save, evaluation, MLflow logging and registration.
    Returns None on DDP processes other than the main one."""
    settings = recipe.transformer
    set_seed(recipe.seed)
    args = training_arguments(recipe, taxonomy)  # also sets up DDP when launched by torchrun
    is_main = args.process_index == 0
    run_name = shared_run_name(recipe, args.world_size)
    run_dir = Path(recipe.output_dir) / run_name
    args.output_dir = str(run_dir / "checkpoints")

    # The main process builds the data set and the scratch tokenizer first; the others load them.
    with args.main_process_first(desc="data set"):
        data = prepare_training_data(recipe.data, taxonomy, build=is_main)
    check_validation_labels(data, recipe.primary_head)
    with tracked_run(recipe, run_name, tracking_uri, run_dir / "model") if is_main else contextlib.nullcontext() as run:
        if is_main:
            log_training_data(data.data_hash, data.taxonomy.version, data.manifest)
        with args.main_process_first(desc="tokenizer"):
            encoder, tokenizer = encoder_and_tokenizer(settings, data, run_dir, is_main)
        if settings.domain_adaptation is not None:
            # After extend_vocabulary, so the new words are learned; outside main_process_first,
            # because every process trains together.
            adapt_to_domain(encoder, tokenizer, recipe, data, extra_texts, run_dir, is_main)
        tokenized = tokenize_splits(data, tokenizer, taxonomy, settings.max_length)
        model = build_multihead_model(encoder, taxonomy, data, settings)
        trainer, best_epoch = make_trainer(recipe, args, model, tokenizer, tokenized)
        train_seconds = run_trainer(trainer, recipe, args, len(tokenized["train"]), is_main)
        if not trainer.is_world_process_zero():
            return None
        model = trained_model(trainer, best_epoch, run_dir, train_seconds)
        blended = tune_on_validation(recipe, taxonomy, data, model, tokenizer)
        model_dir = save_run_model(recipe, model, tokenizer, blended, run_dir)
        return evaluate_and_record(recipe, data, run, run_dir, model_dir, run_name, train_seconds)


def encoder_and_tokenizer(settings, data: TrainingData, run_dir: Path, is_main: bool):
    """The encoder and its tokenizer: a pretrained one (its vocabulary optionally extended with
    words of the training texts) or a scratch one; with the recipe's text prefix, if any."""
    if settings.base_model is not None:
        encoder, tokenizer = load_pretrained_encoder(settings.base_model)
        if settings.extend_vocabulary:
            added = extend_vocabulary(encoder, tokenizer, data.texts("train"), settings.extend_vocabulary)
            if is_main:
                print(f"Vocabulary: added {len(added)} words of the training texts, e.g. {', '.join(added[:8])}", flush=True)
    else:
        encoder, tokenizer = scratch_encoder_shared(settings, data, run_dir)
    if settings.text_prefix:
        add_text_prefix(tokenizer, settings.text_prefix)
    return encoder, tokenizer


def tokenize_splits(data: TrainingData, tokenizer, taxonomy: Taxonomy, max_length: int):
    """Every split tokenized, with one label column per head (partial labels: IGNORE_LABEL)."""
    def encode(batch: dict) -> dict:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        for name, spec in taxonomy.fields.items():
            # Partial labels: unlabelled (null / -1 in the data set) becomes IGNORE_LABEL.
            if spec.is_multi_label:
                encoded[label_column(name)] = [
                    [IGNORE_LABEL] * len(spec.label_ids) if ids is None else multi_hot(ids, len(spec.label_ids))
                    for ids in batch[name]
                ]
            else:
                encoded[label_column(name)] = [IGNORE_LABEL if label < 0 else label for label in batch[name]]
        return encoded

    # keep_in_memory: no cache files written into the data set folder (shared by DDP processes).
    return data.dataset.map(
        encode, batched=True, remove_columns=data.dataset["train"].column_names, keep_in_memory=True
    )


def build_multihead_model(encoder, taxonomy: Taxonomy, data: TrainingData, settings):
    """The multi-head model on `encoder`, its losses weighted from the training split's label counts."""
    weighting = {name: settings.class_weighting.get(name, settings.default_class_weighting) for name in taxonomy.fields}
    model = model_code.build_model(
        encoder,
        taxonomy,
        data.label_counts("train"),
        data.labelled_sizes("train"),
        weighting,
        settings.head_loss_weights,
        settings.pooling,
        settings.classifier_dropout,
        settings.max_length,
    )
    if settings.freeze_word_embeddings:  # on the built model: build_model copies the encoder's weights
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    return model


def make_trainer(recipe: TrainRecipe, args, model, tokenizer, tokenized) -> tuple[Trainer, list[KeepBestEpoch]]:
    """The stock `Trainer`, and the KeepBestEpoch callback when the recipe selects the best epoch
    (an empty list otherwise)."""
    settings = recipe.transformer
    best_epoch = [KeepBestEpoch(best_epoch_metric(recipe))] if settings.select_best_epoch else []
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=per_head_macro_f1(model.config),
        callbacks=[progress.EpochSummary(recipe.primary_head), MlflowLiveMetrics(), *best_epoch],
        # The Trainer builds the learning-rate schedule around this optimizer as usual.
        optimizers=(adamw_with_head_learning_rate(model, settings), None),
    )
    return trainer, best_epoch


def run_trainer(trainer: Trainer, recipe: TrainRecipe, args, posts: int, is_main: bool) -> float:
    """Train on every process; returns the seconds it took."""
    if is_main:
        print(
            f"Training {recipe.name} on {args.world_size} process(es) ({args.device}), "
            f"{posts} posts, batch {recipe.transformer.per_device_train_batch_size} per process",
            flush=True,
        )
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def trained_model(trainer: Trainer, best_epoch: list[KeepBestEpoch], run_dir: Path, train_seconds: float):
    """The model to keep (with select_best_epoch: the best epoch's weights, KeepBestEpoch), once the
    Trainer's empty checkpoint folder is gone; says how long training took and which epoch was kept."""
    print(f"Trained in {train_seconds:.0f} s", flush=True)
    model = trainer.model
    if (run_dir / "checkpoints").exists():
        shutil.rmtree(run_dir / "checkpoints")  # the Trainer's output_dir: left empty, nothing is saved there
    if best_epoch:
        print(f"Kept epoch {best_epoch[0].best_epoch:.0f} ({best_epoch[0].metric} {best_epoch[0].best_score:.3f})", flush=True)
    return model


def tune_on_validation(recipe: TrainRecipe, taxonomy: Taxonomy, data: TrainingData, model, tokenizer):
    """Thresholds of the multi-head model tuned on validation (into its config), and the TF-IDF
    blend when the recipe asks for one: returns the fitted baseline, or None."""
    settings = recipe.transformer
    if settings.storage_dtype == "float16":
        round_to_float16(model)  # before the thresholds: they are tuned on what will be served
    validation = TransformerBackend(model, tokenizer, settings.max_length).probabilities(
        data.texts("validation"), settings.per_device_eval_batch_size
    )
    set_thresholds(model.config.heads, validation, data.targets("validation"))
    # Before trimming the vocabulary: the blend is chosen on the probabilities that will be served,
    # and trimming leaves Latin-script predictions unchanged (tests/test_lean_vocabulary.py).
    return fit_blend(recipe, taxonomy, data, model.config, validation) if settings.blend_tfidf is not None else None


def save_run_model(recipe: TrainRecipe, model, tokenizer, blended, run_dir: Path) -> Path:
    """<run_dir>/model: the model (its vocabulary trimmed when the recipe says so), the blend's
    baseline if any, and the recipe. Returns the directory."""
    settings = recipe.transformer
    if settings.lean_vocabulary == "latin":
        before = len(tokenizer)
        model, tokenizer, kept = trim_vocabulary(model, tokenizer)
        print(f"Vocabulary: kept {kept} of {before} pieces (Latin script)", flush=True)
    model_dir = run_dir / "model"
    save_model(model, tokenizer, model_dir, settings.storage_dtype)
    if blended is not None:
        blended.save(model_dir / BLEND_DIR)
    (model_dir / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
    return model_dir


def save_model(model, tokenizer, model_dir: Path, storage_dtype: str) -> None:
    """Save in `storage_dtype`; the model in memory stays fp32 (its values already fp16-exact when
    stored as fp16, see round_to_float16)."""
    dtype = getattr(torch, storage_dtype)
    model.to(dtype).save_pretrained(model_dir)
    model.to(torch.float32)
    tokenizer.save_pretrained(model_dir)


def fit_blend(recipe: TrainRecipe, taxonomy: Taxonomy, data: TrainingData, config, validation: dict[str, np.ndarray]):
    """Fit the TF-IDF baseline on the training split and choose each head's blend weight on
    validation (training/fitting/blend.py); the weights and the tuned thresholds go into `config`. Returns
    the baseline, to be saved in the model directory."""
    started = time.perf_counter()
    baseline = fit_baseline(data.texts("train"), data.targets("train"), head_specs(taxonomy),
                            recipe.transformer.blend_tfidf, taxonomy.version, recipe.seed)
    baseline_validation = baseline.predict_proba(data.texts("validation"))
    # The baseline's own thresholds too, so that its folder is a model that loads on its own.
    set_thresholds(baseline.heads, baseline_validation, data.targets("validation"))
    chosen = choose_blend_weights(config.heads, validation, baseline_validation, data.targets("validation"))
    config.blend = {"baseline": BLEND_DIR, "weights": {name: choice["weight"] for name, choice in chosen.items()}}
    for name, choice in chosen.items():
        print(f"Blend of {name}: {choice['weight']:.1f} x transformer + {1 - choice['weight']:.1f} x TF-IDF, validation "
              f"macro-F1 {choice['validation_macro_f1']:.3f} (transformer alone {choice['transformer_only_macro_f1']:.3f})",
              flush=True)
    print(f"Blend: TF-IDF fitted and weights chosen in {time.perf_counter() - started:.0f} s", flush=True)
    if mlflow.active_run() is not None:
        mlflow.log_params({f"blend_weight.{name}": choice["weight"] for name, choice in chosen.items()})
    return baseline


def adapt_to_domain(
    encoder, tokenizer, recipe: TrainRecipe, data: TrainingData, extra_texts: Sequence[str], run_dir: Path, is_main: bool
) -> None:
    """Masked-LM training of `encoder` on the training texts and the extra texts, never on the
    validation or test posts (their scores would then flatter the model)."""
    settings = recipe.transformer
    adaptation = settings.domain_adaptation
    held_out = data.texts("validation") + data.texts("test") + [post.text for posts in data.held_out.values() for post in posts]
    texts, left_out = adaptation_texts(data.texts("train"), extra_texts, held_out)
    if left_out and is_main:
        print(f"Domain adaptation: left out {left_out} extra texts that are validation or test posts", flush=True)
    summary = domain_adaptation.adapt_encoder(
        encoder, tokenizer, texts, adaptation, adaptation.max_length or settings.max_length, recipe.seed, run_dir / "domain_adaptation"
    )
    if is_main:
        log_domain_adaptation(summary)


def train_baseline(recipe: TrainRecipe, taxonomy: Taxonomy, tracking_uri: str) -> RunResult:
    np.random.seed(recipe.seed)
    run_name = shared_run_name(recipe, world_size=1)
    run_dir = Path(recipe.output_dir) / run_name
    data = prepare_training_data(recipe.data, taxonomy)
    check_validation_labels(data, recipe.primary_head)
    with tracked_run(recipe, run_name, tracking_uri, run_dir / "model") as run:
        log_training_data(data.data_hash, data.taxonomy.version, data.manifest)
        started = time.perf_counter()
        model = fit_baseline(
            data.texts("train"), data.targets("train"), head_specs(taxonomy), recipe.baseline, taxonomy.version, recipe.seed
        )
        train_seconds = time.perf_counter() - started
        print(f"Trained in {train_seconds:.1f} s", flush=True)
        set_thresholds(model.heads, model.predict_proba(data.texts("validation")), data.targets("validation"))
        model_dir = run_dir / "model"
        model.save(model_dir)
        (model_dir / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
        return evaluate_and_record(recipe, data, run, run_dir, model_dir, run_name, train_seconds)


def evaluate_and_record(
    recipe: TrainRecipe,
    data: TrainingData,
    run,
    run_dir: Path,
    model_dir: Path,
    run_name: str,
    train_seconds: float,
) -> RunResult:
    """Evaluate the saved model (exactly what will be served) on validation and test, then log and register it."""
    predictor = Predictor.from_directory(model_dir, model_version=run_name)
    evaluation_dir = run_dir / "evaluation"
    reports = {}
    for split in EVALUATED_SPLITS:
        report = evaluate_posts(predictor, data.posts(split), split)
        # Plots for the test split only: validation numbers steer tuning, test numbers are reported.
        write_report(report, evaluation_dir / split, plots=split == "test")
        print(report.format_table(), flush=True)
        reports[split] = report
    # The drift reference travels with the model (registered, downloaded, served): what its decisions
    # look like on posts like those it was made from.
    write_reference(model_dir, reports["test"].profile, {
        "split": "test", "posts": reports["test"].posts, "data_hash": data.data_hash,
        "train_label_counts": data.manifest.get("counts", {}).get("train", {}),
    })
    run_tags: dict[str, str] = {}
    for name in recipe.data.held_out:
        # Held-out sets (e.g. real annotated posts kept for measurement) are scored like test, as
        # heldout_<name>; prepare_training_data refused any that shares a post with the data set.
        split = f"heldout_{name}"
        report = evaluate_posts(predictor, data.held_out[name], split)
        run_tags[f"{split}_data_hash"] = data_hash(data.held_out[name])  # which posts, not just which path
        write_report(report, evaluation_dir / split, plots=True)
        print(report.format_table(), flush=True)
        reports[split] = report
    if run_tags:

        mlflow.set_tags(run_tags)
    version = log_results(recipe, reports, model_dir, evaluation_dir, train_seconds)
    print(f"Model saved in {model_dir}", flush=True)
    return RunResult(run.info.run_id, run_dir, model_dir, version, reports, train_seconds)


def set_thresholds(heads: dict[str, dict], validation_probabilities: dict[str, np.ndarray], validation_targets: dict[str, np.ndarray]) -> None:
    """Tune and store the decision thresholds of every multi-label head (in `heads`, in place)."""
    for name, spec in heads.items():
        if not spec["multi_label"]:
            continue
        labelled = labelled_rows(validation_targets[name])  # partial labels: only posts labelled for it
        tuned = tune_thresholds(validation_probabilities[name][labelled], validation_targets[name][labelled], spec["labels"])
        spec["thresholds"] = tuned.thresholds
        summary = ", ".join(f"{label} {value:.2f}" for label, value in tuned.thresholds.items())
        print(f"Thresholds of {name} (tuned on validation): {summary}", flush=True)
        if tuned.untuned:
            print(f"  no validation post has {', '.join(tuned.untuned)}: kept at 0.5", flush=True)


def check_recipe_heads(recipe: TrainRecipe, taxonomy: Taxonomy) -> None:
    """Head names in the recipe must be taxonomy fields (a typo would silently do nothing)."""
    named: dict[str, list[str]] = {"primary_head": [recipe.primary_head]}
    settings = recipe.transformer or recipe.baseline
    named["class_weighting"] = list(settings.class_weighting)
    if recipe.transformer is not None:
        named["head_loss_weights"] = list(recipe.transformer.head_loss_weights)
    for field_name, heads in named.items():
        unknown = [head for head in heads if head not in taxonomy.fields]
        if unknown:
            raise RecipeTaxonomyError(
                f"recipe {field_name}: {unknown} not in taxonomy v{taxonomy.version} (fields: {', '.join(taxonomy.fields)})"
            )
    if taxonomy.field(recipe.primary_head).is_multi_label:
        raise RecipeTaxonomyError(f"recipe primary_head: {recipe.primary_head!r} is multi-label; pick a single-label field")


def training_arguments(recipe: TrainRecipe, taxonomy: Taxonomy):
    settings = recipe.transformer
    return TrainingArguments(
        # Without use_cpu, accelerate does not set up multi-process (gloo) training on a machine
        # without a GPU: every torchrun process would train alone and think it is the main one.
        use_cpu=not torch.cuda.is_available(),
        output_dir=str(Path(recipe.output_dir) / "checkpoints"),  # replaced by the run's own folder
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.per_device_train_batch_size,
        per_device_eval_batch_size=settings.per_device_eval_batch_size,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_ratio,  # a float below 1 is a share of the total steps
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        eval_strategy="epoch",
        # With select_best_epoch the best epoch is kept in memory (training/fitting/best_epoch.py), not in
        # a checkpoint per epoch.
        save_strategy="no",
        ddp_find_unused_parameters=False,  # every parameter gets a gradient (the pooler is removed)
        logging_strategy="steps",
        logging_steps=settings.logging_steps,
        label_names=[label_column(name) for name in taxonomy.fields],
        report_to="none",  # MLflow logging is ours: one run with everything, from the main process only
        disable_tqdm=False,
        seed=recipe.seed,
    )


def best_epoch_metric(recipe: TrainRecipe) -> str:
    """The validation macro-F1 (a key of compute_metrics) that picks the epoch with select_best_epoch."""
    return MEAN_MACRO_F1 if recipe.transformer.best_epoch_metric == "mean" else f"{recipe.primary_head}_macro_f1"


def adamw_with_head_learning_rate(model, settings):
    """AdamW with the encoder at learning_rate and the heads at head_learning_rate.

    Biases and normalisation weights (the 1-D parameters) get no weight decay, as in the Trainer's
    own optimizer.
    """
    head_rate = settings.head_learning_rate or settings.learning_rate
    groups: dict[tuple[float, float], list] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        rate = head_rate if name.startswith("heads.") else settings.learning_rate
        decay = 0.0 if parameter.ndim == 1 else settings.weight_decay
        groups.setdefault((rate, decay), []).append(parameter)
    return torch.optim.AdamW(
        [{"params": params, "lr": rate, "weight_decay": decay} for (rate, decay), params in groups.items()],
        lr=settings.learning_rate,
        fused=True,  # one kernel per step instead of one per tensor: the Trainer's default too
    )


def shared_run_name(recipe: TrainRecipe, world_size: int) -> str:
    """<name>-<timestamp>, chosen by the main process so every DDP process writes to the same folder."""
    names = [f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"]
    if world_size > 1:

        torch.distributed.broadcast_object_list(names, src=0)
    return names[0]


def scratch_encoder_shared(settings, data: TrainingData, run_dir: Path):
    """A scratch encoder whose tokenizer is learnt once, by the main process, and loaded by the others.

    WordPiece training breaks ties in an order that can differ between processes; DDP processes
    with different vocabularies would silently train nonsense.
    """


    tokenizer_dir = run_dir / "scratch_tokenizer"
    if not tokenizer_dir.is_dir():
        encoder, tokenizer = build_scratch_encoder(settings.from_scratch, data.texts("train"), settings.max_length)
        tokenizer.save_pretrained(tokenizer_dir)
        encoder.config.save_pretrained(tokenizer_dir)
        return encoder, tokenizer
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return BertModel(BertConfig.from_pretrained(tokenizer_dir)), tokenizer


def multi_hot(indices, size: int) -> list[float]:
    vector = [0.0] * size
    for index in indices:
        vector[index] = 1.0
    return vector
