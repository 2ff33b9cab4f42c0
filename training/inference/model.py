"""One shared transformer encoder with a classification head per taxonomy field.

Single-label fields (intent, customer_type, priority, sentiment) get a softmax head trained with
cross-entropy; multi-label fields (business_action) a sigmoid head trained with binary
cross-entropy, whose per-label decision thresholds are tuned on validation after training and kept
in the config. Head sizes and label ids come from the taxonomy; the label maps, thresholds, class
weights and taxonomy version live in `config.json`, so `save_pretrained`/`from_pretrained` carry
everything a prediction needs.

The stock `Trainer` trains it: `forward` returns the summed multi-head loss when the label columns
(`labels_<field>`, see `label_column`) are passed, and the logits of every head as `logits_<field>`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.configuration_utils import SubConfigSpec

from data.taxonomy import Taxonomy
from training.inference.model_dir import MODEL_TYPE
from training.recipe import DEFAULT_MAX_LENGTH

# Cap for class weights: a class seen once in 900 posts would otherwise get a weight in the
# hundreds and its few examples would dominate every batch they appear in.
MAX_CLASS_WEIGHT = 20.0


IGNORE_LABEL = -100  # target of a post not labelled for a head (PyTorch's ignore_index default)


def label_column(field_name: str) -> str:
    return f"labels_{field_name}"


def logits_key(field_name: str) -> str:
    return f"logits_{field_name}"


def head_specs(taxonomy: Taxonomy) -> dict[str, dict]:
    """The `heads` entry of SmistaConfig, derived from the taxonomy (never written by hand)."""
    return {
        name: {"labels": list(spec.label_ids), "multi_label": spec.is_multi_label}
        for name, spec in taxonomy.fields.items()
    }


def class_weights(counts: Sequence[int], total: int, multi_label: bool, scheme: str) -> list[float]:
    """Loss weights per class from training counts.

    Single-label: balanced = total / (classes * count), the sklearn definition.
    Multi-label: the BCE pos_weight, balanced = negatives / positives per label.
    sqrt takes the square root of the balanced weight (a milder correction). A class absent from
    the training split gets weight 1: it never appears as a target, so its weight is unused for
    single-label heads, and for a multi-label head it keeps the plain BCE.
    """
    if scheme == "none":
        return [1.0] * len(counts)
    weights = []
    for count in counts:
        if count == 0:
            weights.append(1.0)
            continue
        balanced = (total - count) / count if multi_label else total / (len(counts) * count)
        if multi_label and balanced == 0:
            balanced = 1.0  # a label on every post: no negatives to balance against
        weight = math.sqrt(balanced) if scheme == "sqrt" else balanced
        weights.append(min(weight, MAX_CLASS_WEIGHT))
    return weights


def drop_pooler(encoder: nn.Module) -> None:
    """Remove the encoder's pooler (BERT's tanh layer over [CLS]), which neither the heads nor the
    masked-LM head use: left in place its parameters get no gradient, which DDP rejects."""
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None


class SmistaConfig(PreTrainedConfig):
    """Config of the multi-head model: the encoder's own config plus the heads and their label maps."""

    model_type = MODEL_TYPE
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    def __init__(
        self,
        encoder: PreTrainedConfig | dict | None = None,
        heads: dict[str, dict] | None = None,
        field_names: list[str] | None = None,
        pooling: str = "mean",
        classifier_dropout: float = 0.1,
        class_weights: dict[str, list[float]] | None = None,
        head_loss_weights: dict[str, float] | None = None,
        taxonomy_version: str | None = None,
        max_input_tokens: int = DEFAULT_MAX_LENGTH,
        **kwargs,
    ):
        # heads: field -> {"labels": [ids], "multi_label": bool, "thresholds": {id: float} (multi only)}
        self.encoder = encoder
        self.heads = heads or {}
        # config.json is written with sorted keys; the taxonomy's field order is kept here.
        self.field_names = list(field_names) if field_names is not None else list(self.heads)
        self.pooling = pooling
        self.classifier_dropout = classifier_dropout
        self.class_weights = class_weights or {}
        self.head_loss_weights = head_loss_weights or {}
        self.taxonomy_version = taxonomy_version
        # Not `max_length`: transformers reserves that name for generation settings.
        self.max_input_tokens = max_input_tokens
        super().__init__(**kwargs)


class SmistaMultiHeadModel(PreTrainedModel):
    config_class = SmistaConfig
    config: SmistaConfig
    base_model_prefix = "encoder"
    # Attention is the encoder's; these let transformers pick SDPA for it, as it does for the
    # encoder alone.
    _supports_sdpa = True
    _supports_attention_backend = True
    # forward takes the label columns as keyword arguments; without this the Trainer would also
    # pass its loss kwargs (num_items_in_batch) into them.
    accepts_loss_kwargs = False

    def __init__(self, config: SmistaConfig):
        super().__init__(config)
        self.encoder = AutoModel.from_config(config.encoder)
        drop_pooler(self.encoder)  # the heads read the pooled hidden states, not BERT's pooler
        hidden_size = config.encoder.hidden_size
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(hidden_size, len(config.heads[name]["labels"])) for name in config.field_names}
        )
        for name in config.field_names:
            spec = config.heads[name]
            weights = config.class_weights.get(name) or [1.0] * len(spec["labels"])
            # Not persistent: the weights live in config.json and are rebuilt from it on load.
            self.register_buffer(f"class_weight_{name}", torch.tensor(weights, dtype=torch.float32), persistent=False)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # The encoder is initialised by its own class (transformers dispatches to it); ours are the
        # heads and the class-weight buffers. transformers' init functions skip tensors already
        # loaded from a checkpoint.
        if isinstance(module, nn.Linear) and any(module is head for head in self.heads.values()):
            std = getattr(self.config.encoder, "initializer_range", 0.02)
            init.normal_(module.weight, mean=0.0, std=std)
            init.zeros_(module.bias)
        elif module is self:
            for name in self.config.field_names:
                spec = self.config.heads[name]
                weights = self.config.class_weights.get(name) or [1.0] * len(spec["labels"])
                init.copy_(getattr(self, f"class_weight_{name}"), torch.tensor(weights, dtype=torch.float32))

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.config.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **labels: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """{"loss": summed weighted loss (only with labels), "logits_<field>": [batch, labels], ...}."""
        expected = {label_column(name) for name in self.config.field_names}
        unknown = set(labels) - expected
        if unknown:
            raise TypeError(f"unexpected inputs {sorted(unknown)}; label columns are {sorted(expected)}")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        encoder_inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            encoder_inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**encoder_inputs).last_hidden_state
        pooled = self.dropout(self.pool(hidden, attention_mask))
        logits = {name: head(pooled) for name, head in self.heads.items()}

        output: dict[str, torch.Tensor] = {}
        if labels:
            missing = expected - set(labels)
            if missing:
                raise TypeError(f"missing label columns {sorted(missing)}: pass all heads' labels or none")
            output["loss"] = self.multi_head_loss(logits, labels)
        output.update({logits_key(name): value for name, value in logits.items()})
        return output

    def multi_head_loss(self, logits: Mapping[str, torch.Tensor], labels: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = torch.zeros((), device=next(iter(logits.values())).device)
        for name in self.config.field_names:
            spec = self.config.heads[name]
            target = labels[label_column(name)]
            weight = getattr(self, f"class_weight_{name}")
            # Partial labels: a post not labelled for this head has IGNORE_LABEL as its target (every
            # position of a multi-label row); it adds nothing to this head's loss or its mean.
            # A batch with no labelled post still puts the head in the graph (times zero): DDP
            # requires every parameter to get a gradient in every step.
            # The head's mean over its labelled posts is scaled by their share of the batch: a fully
            # labelled batch is unchanged, and one labelled post among 16 weighs 1/16 of the
            # batch, not the whole of it (batches grouped by length may come from one source).
            labelled = (target[:, 0] if spec["multi_label"] else target) != IGNORE_LABEL
            share = labelled.float().mean()
            if not labelled.any():
                loss = logits[name].sum() * 0.0
            elif spec["multi_label"]:
                loss = share * F.binary_cross_entropy_with_logits(
                    logits[name][labelled], target[labelled].float(), pos_weight=weight
                )
            else:
                loss = share * F.cross_entropy(logits[name], target.long(), weight=weight, ignore_index=IGNORE_LABEL)
            total = total + self.config.head_loss_weights.get(name, 1.0) * loss
        return total

    def probabilities(self, output: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Softmax for single-label heads, sigmoid per label for multi-label heads."""
        return {
            name: torch.sigmoid(output[logits_key(name)])
            if self.config.heads[name]["multi_label"]
            else torch.softmax(output[logits_key(name)], dim=-1)
            for name in self.config.field_names
        }


def build_model(
    encoder: PreTrainedModel,
    taxonomy: Taxonomy,
    train_counts: Mapping[str, Sequence[int]],
    train_sizes: Mapping[str, int],
    weighting: Mapping[str, str],
    head_loss_weights: Mapping[str, float],
    pooling: str,
    classifier_dropout: float,
    max_length: int,
) -> SmistaMultiHeadModel:
    """A multi-head model for `taxonomy` whose encoder starts from `encoder`'s weights."""
    heads = head_specs(taxonomy)
    weights = {
        name: class_weights(train_counts[name], train_sizes[name], spec["multi_label"], weighting[name])
        for name, spec in heads.items()
    }
    config = SmistaConfig(
        encoder=encoder.config,
        heads=heads,
        field_names=list(taxonomy.fields),
        pooling=pooling,
        classifier_dropout=classifier_dropout,
        class_weights=weights,
        head_loss_weights=dict(head_loss_weights),
        taxonomy_version=taxonomy.version,
        max_input_tokens=max_length,
    )
    model = SmistaMultiHeadModel(config)
    # Built from the config and then loaded, rather than wrapping `encoder` itself, so that a new
    # model and one from from_pretrained are set up by the same path (attention implementation
    # included).
    missing, unexpected = model.encoder.load_state_dict(encoder.state_dict(), strict=False)
    unexpected = [key for key in unexpected if not key.startswith("pooler.")]
    if missing or unexpected:
        raise ValueError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")
    return model


# With these, AutoConfig/AutoModel (and AutoTokenizer, which reads config.json) know a saved smista
# model once this module is imported.
AutoConfig.register(SmistaConfig.model_type, SmistaConfig)
AutoModel.register(SmistaConfig, SmistaMultiHeadModel)
