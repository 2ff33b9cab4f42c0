"""What one post costs a smista transformer in arithmetic: forward FLOPs from the model's shape.

Speed figures are read against it (the bench divides the machine's measured fp32 matmul rate,
training/machine.py, by the FLOPs of a post to get the posts/s ceiling).
"""

from __future__ import annotations

from torch import nn


def model_flops(linear_params_per_token: int, head_params: int, layers: int, attention_width: int,
                tokens: float) -> float:
    """Forward FLOPs of one post of `tokens` tokens (a multiply-add is 2 FLOPs).

    Each Linear weight of the encoder (Q, K, V, output, both feed-forward layers) is multiplied
    once per token: 2 x weights x L. Attention adds per layer Q.K^T and softmax.V, each L x L x
    width multiply-adds: 4 x L^2 x width. The heads see one pooled vector: 2 x their weights.
    Embedding look-ups, layer norms, GELU, softmax and pooling are not matrix products and are not
    counted (a few percent at these sizes).
    """
    return 2.0 * linear_params_per_token * tokens + 4.0 * layers * attention_width * tokens**2 + 2.0 * head_params


def model_shape(model) -> dict[str, int]:
    """Counts `model_flops` needs, read from a SmistaMultiHeadModel (any encoder made of Linear layers)."""
    encoder = model.encoder
    config = model.config.encoder
    linear = sum(module.in_features * module.out_features for module in encoder.modules() if isinstance(module, nn.Linear))
    heads = sum(head.in_features * head.out_features for head in model.heads.values())
    head_size = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return {"linear_params_per_token": linear, "head_params": heads, "layers": config.num_hidden_layers,
            "attention_width": config.num_attention_heads * head_size}
