"""A lean model directory: only the vocabulary a Latin-script post can use, weights stored in fp16.

multilingual-e5-small's vocabulary has 250,002 pieces for about a hundred languages; its embedding
matrix is 384 MB of the 470 MB fp32 model. A piece that holds a letter of another script (Cyrillic,
CJK, Arabic, ...) can never be part of the segmentation of a text written in Latin letters, digits,
punctuation, symbols and emoji, so dropping those pieces (and their embedding rows) changes no
prediction on such a text. A post in another script still gets a prediction: its letters become
the unknown piece.

Why the segmentation is unchanged: a unigram tokenizer picks the best-scoring split of each word
among the pieces that occur in it; every piece occurring in a Latin-script word is kept, and so is
the lowest-scoring piece, from which the unknown-character score is derived.
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

LATIN = "latin"


def is_latin_piece(piece: str) -> bool:
    """True when no character of `piece` is a letter of a script other than Latin."""
    for char in piece:
        if unicodedata.category(char).startswith("L") and "LATIN" not in unicodedata.name(char, ""):
            return False
    return True


def _remap_ids(node, new_id: dict[int, int]):
    """The post-processor's special-token ids, remapped (TemplateProcessing: special_tokens.*.ids;
    Roberta/Bert processing: [token, id] pairs)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "ids" and isinstance(value, list):
                out[key] = [new_id[i] for i in value]
            elif key in ("sep", "cls") and isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
                out[key] = [value[0], new_id[value[1]]]
            else:
                out[key] = _remap_ids(value, new_id)
        return out
    if isinstance(node, list):
        return [_remap_ids(item, new_id) for item in node]
    return node


def trim_vocabulary(model, tokenizer, keep=is_latin_piece):
    """(model, tokenizer) keeping only the pieces `keep` accepts, the special tokens and the
    lowest-scoring piece; the embedding rows follow their pieces. `model` is a SmistaMultiHeadModel
    (changed in place and returned); `tokenizer` must be a unigram fast tokenizer (a new one is
    returned). Returns also the number of pieces kept."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    if state["model"]["type"] != "Unigram":
        raise ValueError(f"trimming the vocabulary needs a unigram tokenizer, this one is {state['model']['type']}")
    vocab = state["model"]["vocab"]
    scores = np.array([score for _, score in vocab])
    protected = {int(np.argmin(scores))} | {token["id"] for token in state["added_tokens"]} | set(tokenizer.all_special_ids)
    kept = [index for index, (piece, _) in enumerate(vocab) if index in protected or keep(piece)]
    new_id = {old: new for new, old in enumerate(kept)}
    state["model"]["vocab"] = [vocab[index] for index in kept]
    state["model"]["unk_id"] = new_id[state["model"]["unk_id"]]
    for token in state["added_tokens"]:
        token["id"] = new_id[token["id"]]
    state["post_processor"] = _remap_ids(state["post_processor"], new_id)
    backend = Tokenizer.from_str(json.dumps(state))
    trimmed_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=tokenizer.model_max_length,
        model_input_names=list(tokenizer.model_input_names),
        **{name: str(value) for name, value in tokenizer.special_tokens_map.items() if isinstance(value, str)},
    )

    encoder = model.encoder
    old = encoder.get_input_embeddings()
    pad = encoder.config.pad_token_id
    new_pad = new_id.get(pad) if pad is not None else None
    embeddings = torch.nn.Embedding(len(kept), old.embedding_dim, padding_idx=new_pad)
    with torch.no_grad():
        embeddings.weight.copy_(old.weight[torch.tensor(kept)])
    embeddings.weight.requires_grad_(old.weight.requires_grad)
    encoder.set_input_embeddings(embeddings)
    for config in {id(c): c for c in (encoder.config, model.config.encoder)}.values():
        if isinstance(config, dict):
            config["vocab_size"], config["pad_token_id"] = len(kept), new_pad
        else:
            config.vocab_size, config.pad_token_id = len(kept), new_pad
            for name in ("bos_token_id", "eos_token_id"):
                if getattr(config, name, None) is not None:
                    setattr(config, name, new_id[getattr(config, name)])
    return model, trimmed_tokenizer, len(kept)


def round_to_float16(model) -> None:
    """Round every floating weight to the nearest fp16 value, keeping fp32 tensors: the model then
    predicts exactly what its fp16 copy on disk will predict once loaded back as fp32."""
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(torch.float16).to(tensor.dtype))
