"""Task-adaptive pre-training: masked-LM training of the encoder on the task's own texts before the
heads are fine-tuned (recipe section `transformer.domain_adaptation`).

The default encoder learnt English; continuing its masked-LM training on Italian posts (and on the
words `extend_vocabulary` added, whose embeddings start as mere averages) adapts it before the
classification heads start pulling on it.

No `AutoModelForMaskedLM`: the sentence-transformers checkpoints ship without an MLM head, and HF's
MaskedLM models project every position onto the whole vocabulary, the most expensive step on a CPU.
`MaskedLanguageModel` puts a small head on any encoder, projects only the masked positions (about
15%), and ties the projection to the input embeddings, so it adds no vocabulary-sized matrix. The
head is thrown away afterwards; the encoder passed in keeps the adapted weights.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments, set_seed

from training.errors import RecipeError
from training.inference.model import drop_pooler
from training.recipe import DomainAdaptation

FIELD = "transformer.domain_adaptation.extra_texts"
# Texts whose masked-LM loss is measured before and after, with one fixed masking: enough for a
# stable number, few enough to take seconds on a CPU.
LOSS_SAMPLE_SIZE = 256
WARMUP_SHARE = 0.1  # of the steps, with a linear learning-rate warmup
WEIGHT_DECAY = 0.01
LOGGING_SHARE = 0.1  # log the loss about ten times over the run


class MaskedLanguageModel(nn.Module):
    """`encoder` + a BERT-style MLM head (dense, GELU, LayerNorm, then a decoder tied to the input
    embeddings) that scores only the masked positions, i.e. those whose label is not -100."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        drop_pooler(encoder)
        config = encoder.config
        self.transform = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.GELU(),
            nn.LayerNorm(config.hidden_size, eps=getattr(config, "layer_norm_eps", 1e-12)),
        )
        self.decoder_bias = nn.Parameter(torch.zeros(encoder.get_input_embeddings().num_embeddings))

    def forward(self, input_ids, labels, attention_mask=None, token_type_ids=None) -> dict[str, torch.Tensor]:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state
        masked = labels != -100
        states = self.transform(hidden[masked])
        logits = F.linear(states, self.encoder.get_input_embeddings().weight, self.decoder_bias)
        # Sum over a clamped count rather than a mean: a batch with nothing masked gives 0, not NaN,
        # and still reaches every parameter (DDP needs a gradient for each of them on every step).
        loss = F.cross_entropy(logits, labels[masked], reduction="sum") / masked.sum().clamp(min=1)
        return {"loss": loss}


def read_extra_texts(paths: Sequence[str]) -> list[str]:
    """The posts of every file in `paths`, checked before any work so a bad path costs no training."""
    texts = []
    for path in paths:
        file_texts = _read_texts(Path(path))
        if not file_texts:
            raise RecipeError(f"recipe {FIELD}: {path} holds no texts (blank lines and empty texts do not count)")
        texts.extend(file_texts)
    return texts


def _read_texts(path: Path) -> list[str]:
    """.jsonl: the "text" field of each line; anything else: one post per line."""
    if not path.is_file():
        raise RecipeError(f"recipe {FIELD}: no such file {path}; fix the path or remove it from the list")
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix != ".jsonl":
        return [line.strip() for line in lines if line.strip()]
    texts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            text = json.loads(line).get("text")
        except (json.JSONDecodeError, AttributeError):
            text = None
        if not isinstance(text, str):
            raise RecipeError(f"recipe {FIELD}: {path}:{number} is not a JSON object with a \"text\" string")
        if text.strip():
            texts.append(text.strip())
    return texts


def adaptation_texts(train: Sequence[str], extra: Sequence[str], held_out: Sequence[str]) -> tuple[list[str], int]:
    """(texts to adapt on, how many extra texts were left out): the training texts and the extra
    texts, less any extra text equal to a held-out (validation or test) post."""
    held_out_set = {text.strip() for text in held_out}
    kept = [text for text in extra if text.strip() not in held_out_set]
    return list(train) + kept, len(extra) - len(kept)


def adapt_encoder(
    encoder, tokenizer, texts: Sequence[str], settings: DomainAdaptation, max_length: int, seed: int, output_dir: Path
) -> dict[str, float]:
    """Train `encoder` in place with the masked-LM objective on `texts`.

    Every DDP process must call it (the Trainer keeps their weights identical). Returns the summary
    that goes to MLflow: texts, steps, loss_before, loss_after (mean masked-LM loss per masked
    token on a fixed masking of a sample of the texts) and seconds.
    """
    set_seed(seed)  # the head starts random: the same seed, the same head and the same loss_before
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, return_special_tokens_mask=True)
    examples = [dict(zip(encoded.keys(), values)) for values in zip(*encoded.values())]
    model = MaskedLanguageModel(encoder)
    trainer = Trainer(
        model=model,
        args=_training_arguments(settings, seed, output_dir),
        train_dataset=examples,
        # The global RNG, seeded by the Trainer, draws the masks: a new masking every epoch.
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability),
    )
    fixed = _fixed_masking(examples, tokenizer, settings, seed)
    was_training, device = encoder.training, encoder.device
    loss_before = masked_lm_loss(model.to(trainer.args.device), fixed)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    loss_after = masked_lm_loss(model, fixed)
    encoder.to(device).train(was_training)
    shutil.rmtree(output_dir, ignore_errors=True)  # nothing is saved there, but the Trainer may create it
    summary = {
        "texts": len(examples),
        "steps": trainer.state.global_step,
        "loss_before": loss_before,
        "loss_after": loss_after,
        "seconds": seconds,
    }
    if trainer.is_world_process_zero():
        print(
            f"Domain adaptation: {len(examples):,} texts, {settings.epochs:g} epochs, "
            f"masked-LM loss {loss_before:.2f} -> {loss_after:.2f} in {seconds:.0f} s",
            flush=True,
        )
    return summary


def _fixed_masking(examples: list[dict], tokenizer, settings: DomainAdaptation, seed: int) -> list[dict]:
    """Batches of up to LOSS_SAMPLE_SIZE examples, masked once with a seeded generator, so that the
    losses before and after training are measured on the very same task."""
    sample = random.Random(seed).sample(examples, min(LOSS_SAMPLE_SIZE, len(examples)))
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability, seed=seed)
    size = settings.batch_size
    return [collator(sample[start : start + size]) for start in range(0, len(sample), size)]


def masked_lm_loss(model: MaskedLanguageModel, batches: list[dict]) -> float:
    """Mean cross-entropy per masked token over `batches`, without dropout."""
    device = next(model.parameters()).device
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            masked = int((batch["labels"] != -100).sum())
            loss = model(**{key: value.to(device) for key, value in batch.items()})["loss"]
            total, count = total + float(loss) * masked, count + masked
    return total / max(count, 1)


def _training_arguments(settings: DomainAdaptation, seed: int, output_dir: Path):
    return TrainingArguments(
        # Without use_cpu, accelerate does not set up multi-process (gloo) training on a machine
        # without a GPU (see training.fitting.train.training_arguments).
        use_cpu=not torch.cuda.is_available(),
        output_dir=str(output_dir),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size,
        # Texts of similar length batched together: less padding, faster on CPU (as in fine-tuning).
        train_sampling_strategy="group_by_length",
        weight_decay=WEIGHT_DECAY,
        warmup_steps=WARMUP_SHARE,  # a float below 1 is a share of the total steps
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="steps",
        logging_steps=LOGGING_SHARE,  # a float below 1 is a share of the total steps
        # The examples carry special_tokens_mask for the collator, which forward does not take.
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,  # every parameter gets a gradient (the pooler is removed)
        report_to="none",  # the summary goes to the run's MLflow run; the loss curve is printed
        seed=seed,
    )
