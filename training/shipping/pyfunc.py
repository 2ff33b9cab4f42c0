"""The MLflow pyfunc face of a smista model, for `mlflow models serve` / `mlflow.pyfunc.load_model`.

It wraps `Predictor`, so an MLflow user gets exactly what serving gets.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc

from training.inference.predict import Predictor
from training.mlflow_access import MLFLOW_ARTIFACT_KEY


class SmistaPyfuncModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.predictor = Predictor.load(context.artifacts[MLFLOW_ARTIFACT_KEY])

    def predict(self, context, model_input: list[str], params: dict[str, Any] | None = None):
        """One {field: {"labels", "probabilities", "confidence"}} per input text."""
        batch_size = int((params or {}).get("batch_size", 32))
        return [
            {name: {"labels": head.labels, "probabilities": head.probabilities, "confidence": head.confidence}
             for name, head in prediction.items()}
            for prediction in self.predictor.predict(list(model_input), batch_size=batch_size)
        ]
