"""What a person watching a training run sees: a summary line per epoch, live metrics in MLflow,
and the per-head validation macro-F1 the Trainer computes after each epoch."""

from __future__ import annotations

import time

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from sklearn.metrics import f1_score
from transformers import TrainerCallback

from training.inference.model import IGNORE_LABEL

MEAN_MACRO_F1 = "mean_macro_f1"


def per_head_macro_f1(config):
    """compute_metrics for the Trainer: validation macro-F1 of every head ("<field>_macro_f1") and
    their mean over the heads ("mean_macro_f1").

    Multi-label heads are scored at a 0.5 threshold here; their tuned thresholds come after training.
    """
    heads, names = config.heads, list(config.field_names)  # the order of the model's outputs

    def compute(prediction) -> dict[str, float]:
        logits, labels = prediction.predictions, prediction.label_ids
        # The Trainer hands back a bare array, not a tuple, when there is a single head.
        if len(names) == 1:
            logits, labels = (logits,), (labels,)
        metrics = {}
        for name, head_logits, head_labels in zip(names, logits, labels):
            # Partial labels: only the posts labelled for this head (target not IGNORE_LABEL) count.
            multi = heads[name]["multi_label"]
            labelled = (head_labels[:, 0] if multi else head_labels) != IGNORE_LABEL
            if not labelled.any():
                continue  # no validation post labelled for this head: no score rather than a fake 0
            head_logits, head_labels = head_logits[labelled], head_labels[labelled]
            if multi:
                predicted = (head_logits > 0).astype(int)  # sigmoid(x) > 0.5
                gold = head_labels.astype(int)
                metrics[f"{name}_macro_f1"] = float(f1_score(gold, predicted, average="macro", zero_division=0))
            else:
                metrics[f"{name}_macro_f1"] = float(f1_score(head_labels, np.argmax(head_logits, axis=-1), average="macro"))
        metrics[MEAN_MACRO_F1] = float(np.mean(list(metrics.values())))
        return metrics

    return compute


class EpochSummary(TrainerCallback):
    """One line after each epoch's validation: losses, per-head macro-F1, time."""

    def __init__(self, primary_head: str):
        self.primary_head = primary_head
        self.started = time.perf_counter()
        self.last_train_loss: float | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_train_loss = logs["loss"]

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not state.is_world_process_zero or not metrics:
            return
        scores = " · ".join(
            f"{key.removeprefix('eval_').removesuffix('_macro_f1')} {value:.3f}"
            for key, value in metrics.items()
            if key.endswith("_macro_f1")
        )
        train_loss = f"{self.last_train_loss:.3f}" if self.last_train_loss is not None else "n/a"
        total = args.num_train_epochs if args.max_steps <= 0 else "?"
        print(
            f"\nepoch {state.epoch:.0f}/{total}: train loss {train_loss}, validation loss {metrics.get('eval_loss', float('nan')):.3f}, "
            f"validation macro-F1 {scores} ({time.perf_counter() - self.started:.0f} s)",
            flush=True,
        )


class MlflowLiveMetrics(TrainerCallback):
    """Send the Trainer's logs (training loss, validation metrics) to the active MLflow run as they come.

    Live metrics are a view, not a result: when the tracking server stops answering, training goes
    on without them (one warning), and the run's end, which logs and registers the model, decides
    (training.shipping.tracking.tracked_run turns a server still down then into a clear error)."""

    def __init__(self) -> None:
        self.stopped = False

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.stopped or not state.is_world_process_zero or not logs or mlflow.active_run() is None:
            return
        numeric = {
            key if key.startswith(("eval_", "train_")) else f"train_{key}": float(value)
            for key, value in logs.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        try:
            mlflow.log_metrics(numeric, step=state.global_step)
        except MlflowException as exc:
            self.stopped = True
            cause = (getattr(exc, "message", None) or str(exc)).splitlines()[0][:200]
            print(f"\nWarning: live metrics stopped, the tracking server did not take them ({cause}); "
                  "training goes on, the results are logged at the end", flush=True)
