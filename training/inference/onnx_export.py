"""Export a saved smista transformer model to ONNX (fp32) and a dynamically quantised int8 copy, for
the faster CPU runtimes of `Predictor` (`runtime="onnx"` / `"onnx-int8"`, training/inference/onnx_backend.py).

    <model_dir>/onnx/model.onnx        every head in one graph, fp32
    <model_dir>/onnx/model.int8.onnx   the same graph, MatMul weights int8 (dynamic quantisation;
                                       the two most sensitive ones kept fp32, `QuantizationSettings`)
    <model_dir>/onnx/export.json       how and from what it was made (see `write_manifest`)

The graph takes `input_ids` and `attention_mask` (plus `token_type_ids` when the encoder's forward
accepts them; the predictor feeds zeros, as the torch path's default does), both int64 with dynamic
`batch` and `sequence` axes, and returns one output per taxonomy field, `probabilities_<field>`
([batch, labels]: softmax for single-label heads, sigmoid for multi-label ones), so the runtime
needs no post-processing beyond what `HeadSpec.decide` already does.

**Why `torch.onnx.export` and not optimum.** optimum's ONNX exporter (now the separate
`optimum-onnx`) cannot be installed beside the transformers we pin (the resolution check:
docs/BENCHMARKS.md, section "Why `torch.onnx.export` and not optimum"), and it only knows registered
architectures through an `OnnxConfig`; our `smista_multihead` model (shared encoder, five heads,
mean pooling) has none and would need a custom one anyway. So the graph is made by PyTorch's own
maintained exporter, `torch.onnx.export(dynamo=True)` (the torch.export-based one, default in
torch 2.13; it needs `onnxscript`), and quantised with onnxruntime's `quantize_dynamic`. Nothing is
written by hand.

**Staleness.** export.json records the size, mtime and SHA-256 of the source model's config.json
(heads, thresholds) and weight files, the export format version and the int8 settings. An export is
stale when a source file's content changed, a file appeared or went, or the format or settings
differ. Size and mtime only save work: a file whose size and mtime are unchanged is not re-hashed,
and one whose mtime moved but whose hash is the same (a copy) is still fresh. `ensure_export`
re-exports a missing or stale one; library versions are recorded but do not make an export stale
(ONNX files are portable across runtime versions).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

# Not AutoTokenizer: with transformers 5 importing it imports torch (2 s, 170 MB of RSS), which an ONNX
# server otherwise never loads; the fast tokenizer class reads the same tokenizer.json (same ids,
# tests/test_onnx_runtime.py).
from transformers import PreTrainedTokenizerFast

from data.atomic_files import replaced_atomically, write_text_atomically
from data.locations import BUILD_DIR
from training.errors import ModelLoadError
from training.file_hash import file_sha256
from training.inference.model_dir import max_length_of
from training.inference.onnx_backend import PROBABILITY_PREFIX, OnnxBackend, inference_session

ONNX_SUBDIR = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
MANIFEST_FILE = "export.json"
# Exports of models that live somewhere read-only or temporary (an MLflow download) go here, one
# folder per source content hash.
ONNX_CACHE_ROOT = BUILD_DIR / "onnx-cache"
# Bump when the graph's inputs/outputs or the export procedure change: older exports become stale.
# 2: eager attention in the graph (export_fp32).
EXPORT_FORMAT = 2
# ai.onnx opset of the graph. 20 is what torch 2.13's exporter picks by default; pinned so a torch
# upgrade does not change the exported graph silently. onnxruntime 1.32 runs up to opset 23.
OPSET = 20
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")
# fp32 export must reproduce torch's probabilities to this absolute tolerance, or the export fails.
VERIFY_TOLERANCE = 1e-4
LIBRARIES = ("torch", "transformers", "onnx", "onnxscript", "onnxruntime")


class OnnxExportError(RuntimeError):
    """The model cannot be exported, or the exported graph does not reproduce the torch model."""


@dataclass(frozen=True)
class QuantizationSettings:
    """Arguments of onnxruntime's `quantize_dynamic`, chosen on this project's 2-core AVX2 CPU (no
    VNNI) by agreement with the torch model's labels at equal speed: every s8 variant ran as fast.
    Activations are always u8 in dynamic mode.

    - op_types ("MatMul",) with `MatMulConstBOnly` (dynamic mode's default): the encoder's Linear
      MatMuls; products of two activations stay fp32 (quantising them gained nothing). `Gather`
      (the embedding table) would only shrink the file. The heads are `Gemm` nodes, left fp32.
    - weight_type "QInt8" (u8 activations x s8 weights): ORT's AVX2 U8S8 kernel, faster than u8
      weights. per_channel True: the best agreement. reduce_range False: 7-bit weights, the remedy
      for saturation on non-VNNI CPUs, cost agreement here for no speed.
    - keep_fp32: the MatMuls where int8 moves the probabilities most (the first two layers'
      feed-forward output projections) stay fp32, for a few percent of speed. A name that matches
      no MatMul of the graph (an encoder with other module names) keeps nothing in fp32; the
      manifest lists what was kept.

    Measurements: docs/BENCHMARKS.md, sections "Choosing the int8 settings (`QuantizationSettings`)"
    and "Which MatMuls stay fp32 (`QuantizationSettings.keep_fp32`)".
    """

    op_types: tuple[str, ...] = ("MatMul",)
    weight_type: str = "QInt8"  # "QInt8" (U8S8) or "QUInt8" (U8U8)
    per_channel: bool = True
    reduce_range: bool = False
    # Modules of SmistaMultiHeadModel (names as in named_modules()) whose MatMuls stay fp32.
    keep_fp32: tuple[str, ...] = ("encoder.encoder.layer.0.output.dense", "encoder.encoder.layer.1.output.dense")

    def as_dict(self) -> dict:
        data = asdict(self)
        data["op_types"] = list(self.op_types)
        data["keep_fp32"] = list(self.keep_fp32)
        return data


DEFAULT_QUANTIZATION = QuantizationSettings()


@dataclass
class ExportResult:
    onnx_dir: Path
    fp32_path: Path
    int8_path: Path
    exported: bool                     # False: a fresh export was already there
    seconds: dict[str, float] = field(default_factory=dict)   # export, verify, quantize, total
    manifest: dict = field(default_factory=dict)

    @property
    def sizes_mb(self) -> dict[str, float]:
        return {path.name: round(path.stat().st_size / 2**20, 1) for path in (self.fp32_path, self.int8_path)}


# --- where exports live and whether they are fresh -------------------------------------------------


def is_transformer_dir(model_dir: Path) -> bool:
    return (Path(model_dir) / "config.json").is_file()


def source_files(model_dir: Path) -> list[Path]:
    """The files an export is made from: config.json (heads, thresholds) and the weights."""
    model_dir = Path(model_dir)
    weights = sorted({path for pattern in WEIGHT_PATTERNS for path in model_dir.glob(pattern)})
    if not weights:
        raise ModelLoadError(f"{model_dir}: no weight file ({', '.join(WEIGHT_PATTERNS)}) to export")
    return [model_dir / "config.json", *weights]


def fingerprint(model_dir: Path, known: dict | None = None) -> dict[str, dict]:
    """name -> {size, mtime_ns, sha256} of the source files. With `known` (a previous fingerprint),
    a file whose size and mtime are unchanged keeps its recorded hash instead of being re-read."""
    result = {}
    for path in source_files(model_dir):
        stat = path.stat()
        entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        previous = (known or {}).get(path.name)
        if previous and previous.get("size") == entry["size"] and previous.get("mtime_ns") == entry["mtime_ns"]:
            entry["sha256"] = previous["sha256"]
        else:
            entry["sha256"] = file_sha256(path)
        result[path.name] = entry
    return result


def content_digest(model_dir: Path) -> str:
    """A short hash of the source files' contents (names the cache folder of an MLflow download)."""
    combined = hashlib.sha256()
    for name, entry in sorted(fingerprint(model_dir).items()):
        combined.update(f"{name}:{entry['sha256']}\n".encode())
    return combined.hexdigest()[:16]


def default_onnx_dir(model_dir: Path, temporary_source: bool = False) -> Path:
    """<model_dir>/onnx for a model directory we may write to; for a temporary one (an MLflow
    download) or a read-only one, build/onnx-cache/<content hash>, so the next load finds it."""
    model_dir = Path(model_dir)
    if not temporary_source and os.access(model_dir, os.W_OK):
        return model_dir / ONNX_SUBDIR
    return ONNX_CACHE_ROOT / content_digest(model_dir)


def read_manifest(onnx_dir: Path) -> dict | None:
    path = Path(onnx_dir) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def stale_reason(model_dir: Path, onnx_dir: Path, quantization: QuantizationSettings = DEFAULT_QUANTIZATION) -> str | None:
    """None when the export in `onnx_dir` is there and was made from `model_dir` as it is now, with
    these settings; else why it is not (missing, source changed, older format, other settings)."""
    onnx_dir = Path(onnx_dir)
    manifest = read_manifest(onnx_dir)
    if manifest is None:
        return f"no export in {onnx_dir} ({MANIFEST_FILE} missing or unreadable)"
    for name in (FP32_FILE, INT8_FILE):
        if not (onnx_dir / name).is_file():
            return f"{onnx_dir / name} is missing"
    if manifest.get("format") != EXPORT_FORMAT:
        return f"export format {manifest.get('format')} is not the current {EXPORT_FORMAT}"
    if manifest.get("quantization") != quantization.as_dict():
        return f"int8 settings changed ({manifest.get('quantization')} -> {quantization.as_dict()})"
    recorded = manifest.get("source", {}).get("files", {})
    current = fingerprint(model_dir, known=recorded)
    for name in sorted(set(recorded) | set(current)):
        if name not in current:
            return f"source file {name} is gone"
        if name not in recorded:
            return f"source file {name} is new since the export"
        if current[name]["sha256"] != recorded[name]["sha256"]:
            return f"source file {name} changed since the export (SHA-256 differs)"
    return None


# --- export -------------------------------------------------------------------------------------


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = installed_version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _wrapper(model):
    """A module whose forward takes the graph inputs positionally and returns the per-field
    probabilities as a tuple, in the config's field order."""
    import torch  # only a fresh export needs torch (2 s, 230 MB): a server loading a current export never does

    uses_token_types = "token_type_ids" in inspect.signature(model.encoder.forward).parameters

    class ProbabilitiesOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            output = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            probabilities = self.model.probabilities(output)
            return tuple(probabilities[name] for name in self.model.config.field_names)

    input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if uses_token_types else [])
    return ProbabilitiesOnly().eval(), input_names


def _example_inputs(input_names: list[str], batch: int, length: int, vocab_size: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, max(6, min(vocab_size, 1000)), size=(batch, length), dtype=np.int64)
    mask = np.ones_like(ids)
    if batch > 1:
        mask[-1, length // 2:] = 0  # a padded row, so the mask path is exercised
        ids[-1, length // 2:] = 0
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {name: inputs[name] for name in input_names}


def export_fp32(model_dir: Path, output_path: Path) -> tuple[list[str], list[str], Callable]:
    """Export every head into one graph at `output_path`; returns (input names, output names, a
    function computing the torch model's probabilities for a feed, for verification)."""
    import torch  # only a fresh export needs torch, see _wrapper

    from training.inference.model import SmistaMultiHeadModel  # imports torch

    model = SmistaMultiHeadModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    # Eager attention, not SDPA, in the graph: the exporter writes SDPA's masking as Where + IsNaN
    # over every attention-score tensor, 12% of the int8 graph's time; eager attention adds the
    # mask instead. Same probabilities (1e-6); both ONNX variants 9% faster on batches of 64
    # (docs/BENCHMARKS.md, section "Serving runtimes: eager attention in the export, two int8 layers
    # kept fp32").
    model.set_attn_implementation("eager")
    wrapper, input_names = _wrapper(model)
    output_names = [PROBABILITY_PREFIX + name for name in model.config.field_names]
    example = _example_inputs(input_names, batch=2, length=16, vocab_size=model.config.encoder.vocab_size, seed=0)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic_shapes = {name: {0: batch, 1: sequence} for name in input_names}
    args = tuple(torch.from_numpy(example[name]) for name in input_names)
    # The exporter prints its progress to stdout and warns about axis names it renames: kept out of
    # the CLI's and the service's output, and shown only when the export fails.
    exporter_log = io.StringIO()
    torch_onnx_logger = logging.getLogger("torch.onnx")  # "torchvision is not installed. Skipping ..."
    level = torch_onnx_logger.level
    try:
        torch_onnx_logger.setLevel(logging.ERROR)
        with contextlib.redirect_stdout(exporter_log), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper, args, input_names=input_names, output_names=output_names, opset_version=OPSET,
                dynamic_shapes=dynamic_shapes, dynamo=True, external_data=False, optimize=True, verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; the message says what failed
        raise OnnxExportError(
            f"torch.onnx.export failed for {model_dir}: {type(exc).__name__}: {exc}\n{exporter_log.getvalue()[-3000:]}"
        ) from exc
    finally:
        torch_onnx_logger.setLevel(level)
    program.save(str(output_path), external_data=False)

    def reference(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            outputs = wrapper(*(torch.from_numpy(feed[name]) for name in input_names))
        return [value.numpy() for value in outputs]

    return input_names, output_names, reference


def verify_fp32(path: Path, input_names: list[str], reference: Callable, vocab_size: int) -> float:
    """Largest |probability difference| between the graph and torch on shapes other than the
    export example's (a single post, and a padded batch); raises past VERIFY_TOLERANCE."""
    session = inference_session(path)
    worst = 0.0
    for seed, (batch, length) in enumerate(((1, 7), (3, 40))):
        feed = _example_inputs(input_names, batch, length, vocab_size, seed=seed + 1)
        expected = reference(feed)
        got = session.run(None, feed)
        worst = max(worst, *(float(np.abs(e - g).max()) for e, g in zip(expected, got)))
    if worst > VERIFY_TOLERANCE:
        raise OnnxExportError(f"{path}: the ONNX graph differs from torch by {worst:.2e} (> {VERIFY_TOLERANCE})")
    return worst


def module_matmuls(graph_path: Path, modules: Sequence[str]) -> dict[str, list[str]]:
    """{module name: names of the graph's MatMul nodes that compute it}, read from the namespace the
    exporter records on each node (".../model.<module>: torch.nn.modules.linear.Linear/...")."""
    graph = onnx.load(str(graph_path), load_external_data=False).graph
    found: dict[str, list[str]] = {module: [] for module in modules}
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        namespace = next((entry.value for entry in node.metadata_props if entry.key == "namespace"), "")
        scopes = {scope.split(":")[0].strip() for scope in namespace.split("/")}
        for module in modules:
            if f"model.{module}" in scopes:  # the wrapper holds the model as `model`
                found[module].append(node.name)
    return found


def quantize_int8(fp32_path: Path, output_path: Path, settings: QuantizationSettings = DEFAULT_QUANTIZATION) -> list[str]:
    """Quantise `fp32_path` into `output_path`; returns the modules kept in fp32."""
    kept = {module: nodes for module, nodes in module_matmuls(fp32_path, settings.keep_fp32).items() if nodes}

    # quantize_dynamic logs a warning that the model was not pre-processed: its pre-processing
    # (symbolic shape inference and an ORT optimisation pass) made no measurable difference here.
    quantization_logger = logging.getLogger()
    level = quantization_logger.level
    quantization_logger.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            fp32_path, output_path,
            op_types_to_quantize=list(settings.op_types),
            per_channel=settings.per_channel,
            reduce_range=settings.reduce_range,
            weight_type=QuantType[settings.weight_type],
            nodes_to_exclude=[node for nodes in kept.values() for node in nodes],
        )
    finally:
        quantization_logger.setLevel(level)
    return sorted(kept)


def write_manifest(onnx_dir: Path, model_dir: Path, input_names: list[str], output_names: list[str],
                   quantization: QuantizationSettings, seconds: dict[str, float], max_difference: float,
                   kept_fp32: list[str]) -> dict:
    manifest = {
        "format": EXPORT_FORMAT,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exporter": "torch.onnx.export(dynamo=True)",
        "opset": OPSET,
        "libraries": library_versions(),
        "source": {"model_dir": str(Path(model_dir).resolve()), "files": fingerprint(model_dir)},
        "inputs": input_names,
        "outputs": output_names,
        "files": {FP32_FILE: "fp32", INT8_FILE: "int8 (dynamic quantisation)"},
        "quantization": quantization.as_dict(),
        "kept_fp32": kept_fp32,  # the keep_fp32 modules this graph has (the others match nothing)
        "fp32_max_abs_difference": max_difference,
        "seconds": seconds,
    }
    write_text_atomically(onnx_dir / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


@contextmanager
def _export_lock(onnx_dir: Path):
    """One exporter per folder at a time (two workers loading the same model)."""
    onnx_dir.mkdir(parents=True, exist_ok=True)
    with (onnx_dir / ".export.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def export_model(model_dir: str | Path, onnx_dir: str | Path | None = None,
                 quantization: QuantizationSettings = DEFAULT_QUANTIZATION) -> ExportResult:
    """Export `model_dir` (a saved SmistaMultiHeadModel) to fp32 and int8 ONNX, unconditionally."""
    model_dir = Path(model_dir)
    if not is_transformer_dir(model_dir):
        raise ModelLoadError(f"{model_dir}: no transformer model (config.json) to export to ONNX")
    onnx_dir = Path(onnx_dir) if onnx_dir is not None else default_onnx_dir(model_dir)
    with _export_lock(onnx_dir):
        return _export_locked(model_dir, onnx_dir, quantization)


def _export_locked(model_dir: Path, onnx_dir: Path, quantization: QuantizationSettings) -> ExportResult:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    vocab_size = int(config.get("encoder", {}).get("vocab_size", 1000))
    fp32_path, int8_path = onnx_dir / FP32_FILE, onnx_dir / INT8_FILE
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with replaced_atomically(fp32_path) as fp32_tmp, replaced_atomically(int8_path) as int8_tmp:
        input_names, output_names, reference = export_fp32(model_dir, fp32_tmp)
        seconds["export"] = round(time.perf_counter() - started, 2)
        mark = time.perf_counter()
        difference = verify_fp32(fp32_tmp, input_names, reference, vocab_size)
        seconds["verify"] = round(time.perf_counter() - mark, 2)
        mark = time.perf_counter()
        kept_fp32 = quantize_int8(fp32_tmp, int8_tmp, quantization)
        seconds["quantize"] = round(time.perf_counter() - mark, 2)
        seconds["total"] = round(time.perf_counter() - started, 2)
        # The manifest goes before the two files move in, and is written again after: a reader that
        # sees a manifest sees both files of the same export.
        (onnx_dir / MANIFEST_FILE).unlink(missing_ok=True)
    manifest = write_manifest(onnx_dir, model_dir, input_names, output_names, quantization, seconds, difference,
                              kept_fp32)
    return ExportResult(onnx_dir, fp32_path, int8_path, exported=True, seconds=seconds, manifest=manifest)


def ensure_export(model_dir: str | Path, onnx_dir: str | Path | None = None,
                  quantization: QuantizationSettings = DEFAULT_QUANTIZATION,
                  log: Callable[[str], None] | None = None) -> ExportResult:
    """The export of `model_dir` in `onnx_dir`, made now when it is missing or stale."""
    model_dir = Path(model_dir)
    if not is_transformer_dir(model_dir):
        raise ModelLoadError(f"{model_dir}: no transformer model (config.json) to export to ONNX")
    onnx_dir = Path(onnx_dir) if onnx_dir is not None else default_onnx_dir(model_dir)
    fp32_path, int8_path = onnx_dir / FP32_FILE, onnx_dir / INT8_FILE
    if stale_reason(model_dir, onnx_dir, quantization) is None:
        return ExportResult(onnx_dir, fp32_path, int8_path, exported=False, manifest=read_manifest(onnx_dir) or {})
    with _export_lock(onnx_dir):
        reason = stale_reason(model_dir, onnx_dir, quantization)  # another process may have just exported it
        if reason is None:
            return ExportResult(onnx_dir, fp32_path, int8_path, exported=False, manifest=read_manifest(onnx_dir) or {})
        if log is not None:
            log(f"exporting {model_dir} to ONNX in {onnx_dir}: {reason}")
        return _export_locked(model_dir, onnx_dir, quantization)


def onnx_backend_for(model_dir: Path, config_data: dict, runtime: str, downloaded: bool = False,
                     threads: int | None = None) -> OnnxBackend:
    """The ONNX backend of a saved model, exporting it first when the export is missing or stale."""
    export = ensure_export(model_dir, default_onnx_dir(model_dir, temporary_source=downloaded))
    return OnnxBackend(
        export.int8_path if runtime == "onnx-int8" else export.fp32_path,
        PreTrainedTokenizerFast.from_pretrained(model_dir),
        max_length=max_length_of(config_data),
        field_names=list(config_data["field_names"]),
        runtime=runtime,
        threads=threads,
    )
