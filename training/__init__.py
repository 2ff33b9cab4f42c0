"""Training: the multi-head model, its training, evaluation, registry and the predictor."""
