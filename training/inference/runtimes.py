"""How a model is run: the names every layer shares (CLI choices, serving settings, Predictor).

A transformer runs on PyTorch as trained, or as its ONNX export (training/inference/onnx_export.py)
under onnxruntime in fp32 or dynamically quantised to int8. A TF-IDF baseline runs on scikit-learn
whatever is asked, and accepts only "torch" (the default). This module imports nothing heavy, so the
serving settings and the CLI can read it at start-up.
"""

from __future__ import annotations

from training.errors import ModelLoadError

RUNTIMES = ("torch", "onnx", "onnx-int8")
BASELINE_RUNTIME = "sklearn"


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"unknown runtime {runtime!r}; expected one of: {', '.join(RUNTIMES)}")
    return runtime
