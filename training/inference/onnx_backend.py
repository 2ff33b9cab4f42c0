"""Run an exported smista model (training/inference/onnx_export.py) with onnxruntime on the CPU: the backend of
`Predictor` for runtime "onnx" (fp32 graph) and "onnx-int8" (dynamically quantised graph).

Same contract as `TransformerBackend.probabilities`: length-sorted chunks of `batch_size` posts,
each padded only to its own longest post, results back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from training.errors import ModelLoadError
from training.inference.batching import length_sorted_batches
from training.machine import available_cores

# The graph's output for a head: probabilities_<field> (training/inference/onnx_export.py names them).
PROBABILITY_PREFIX = "probabilities_"


def inference_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session: intra-op threads = available cores, one inter-op thread (the
    graph is a chain: nothing to run side by side), every graph optimisation on."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No memory arena: the arena keeps the largest batch's activations for the life of the session
    # (an e5 student's int8 session grew by 333 MB after one 64-post chunk, 35 MB without it), and
    # malloc serves chunks of 8 about as fast (docs/BENCHMARKS.md, "The distilled student").
    options.enable_cpu_mem_arena = False
    # Intra-op threads keep onnxruntime's default of spinning a moment after each run. Turned off
    # (session.intra_op.allow_spinning=0), MiniLM ran 3-7% slower in one process and, in the
    # service (two processes on 2 cores), single posts took about 2 ms less at p50 while 64-post
    # requests ran about 4% slower (int8): within the noise of a shared machine, so not worth a knob.
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"onnxruntime cannot load {path}: {exc}") from exc


class OnnxBackend:
    """Runs the exported graph: one session, every head's probabilities in one call per chunk."""

    def __init__(self, model_path: str | Path, tokenizer, max_length: int, field_names: Sequence[str],
                 runtime: str = "onnx", threads: int | None = None):
        self.model_path = Path(model_path)
        self.session = inference_session(self.model_path, threads)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.runtime = runtime
        self.input_names = [node.name for node in self.session.get_inputs()]
        outputs = [node.name for node in self.session.get_outputs()]
        expected = [PROBABILITY_PREFIX + name for name in field_names]
        if sorted(outputs) != sorted(expected):
            raise ModelLoadError(f"{self.model_path}: outputs {outputs} do not match the model's heads {expected}")
        self.output_fields = [name.removeprefix(PROBABILITY_PREFIX) for name in outputs]
        self.label_counts = {
            name: int(node.shape[1]) for name, node in zip(self.output_fields, self.session.get_outputs())
        }

    def probabilities(self, texts: Sequence[str], batch_size: int) -> dict[str, np.ndarray]:
        result = {name: np.zeros((len(texts), count), dtype=np.float32) for name, count in self.label_counts.items()}
        for indices, batch in length_sorted_batches(self.tokenizer, texts, self.max_length, batch_size, "np"):
            input_ids = np.asarray(batch["input_ids"], dtype=np.int64)
            feed = {"input_ids": input_ids, "attention_mask": np.asarray(batch["attention_mask"], dtype=np.int64)}
            if "token_type_ids" in self.input_names:
                # One segment per post: all zeros, as the torch path's default.
                feed["token_type_ids"] = np.zeros_like(input_ids)
            for name, values in zip(self.output_fields, self.session.run(None, feed)):
                result[name][indices] = values
        return result
