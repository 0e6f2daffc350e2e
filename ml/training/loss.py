"""The summed cross-entropy over a batch's target tokens.

For the decoder architectures we know, the output head runs only on the hidden states that
predict a target: prompt positions never reach the vocabulary-sized projection, which is about a
quarter of a small model's compute (Qwen2.5-0.5B: 896 × 151,936) and most of its activation
memory. Other architectures go through their own forward (it may scale or cap the logits).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional

from ml.training.batching import Batch

LossFn = Callable[[Batch], torch.Tensor]
# Model types whose *ForCausalLM forward is exactly `lm_head(model(...).last_hidden_state)`.
_PLAIN_HEAD_TYPES = frozenset({"qwen2", "qwen3", "llama", "mistral"})


def summed_loss_fn(model: Any) -> LossFn:
    """A function from batch to the loss summed over its targets (divide by the count)."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = causal_lm.get_output_embeddings()
    decoder = getattr(causal_lm, "model", None)
    known = causal_lm.config.model_type in _PLAIN_HEAD_TYPES
    if known and head is not None and decoder is not None:
        return _targets_only(decoder, head)
    return _full_logits(model)


def _targets_only(decoder: Any, head: torch.nn.Module) -> LossFn:
    def loss(batch: Batch) -> torch.Tensor:
        hidden = decoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        states = hidden.last_hidden_state
        picked = states.reshape(-1, states.shape[-1]).index_select(0, batch.positions)
        logits = head(picked).float()
        return functional.cross_entropy(logits, batch.target_ids, reduction="sum")

    return loss


def _full_logits(model: Any) -> LossFn:
    def loss(batch: Batch) -> torch.Tensor:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        flat = logits.reshape(-1, logits.shape[-1]).index_select(0, batch.positions)
        return functional.cross_entropy(flat.float(), batch.target_ids, reduction="sum")

    return loss
