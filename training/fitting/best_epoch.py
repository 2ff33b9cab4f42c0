"""Keep the best epoch's weights in memory, instead of the Trainer's checkpoint on disk.

The Trainer's own way (`save_strategy="epoch"` with `load_best_model_at_end`) writes the whole model
after every epoch and reads the best one back at the end: for the e5 default a 470 MB file per epoch,
of which 96M parameters are a word-embedding matrix that `freeze_word_embeddings` keeps fixed. Only
what training can change (the parameters that require a gradient) is copied here, so the frozen
matrix costs nothing, and no file is written.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback


class KeepBestEpoch(TrainerCallback):
    """After each evaluation, copy the trainable weights when `metric` (a key of compute_metrics,
    without "eval_") beats every earlier epoch; at the end of training, put the best copy back.

    Ties keep the earlier epoch, as the Trainer's `greater_is_better` comparison does. Under DDP every
    process computes the same gathered metrics, so every process keeps the same epoch.
    """

    def __init__(self, metric: str):
        self.metric = metric
        self.best_score: float | None = None
        self.best_epoch: float | None = None
        self._weights: dict[str, torch.Tensor] | None = None

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        key = f"eval_{self.metric}"
        if not metrics or key not in metrics:
            raise KeyError(f"select_best_epoch: validation gave no {self.metric!r} (got {', '.join(sorted(metrics or {}))})")
        score = float(metrics[key])
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch = score, state.epoch
            self._weights = {
                name: parameter.detach().to("cpu", copy=True)
                for name, parameter in model.named_parameters()
                if parameter.requires_grad
            }

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self._weights is None:
            return  # no evaluation ran: the last weights are all there is
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name, saved in self._weights.items():
                parameters[name].copy_(saved)
        self._weights = None  # free the copy: the model holds the weights now
