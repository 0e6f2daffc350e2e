"""Turn a conversation into the prompt token ids a model expects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ml.inference.request import Message


def prompt_token_ids(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Render the messages with the tokenizer's chat template and tokenize them.

    The template ends with the assistant's turn opening (add_generation_prompt). The template
    writes its own special tokens, so tokenizing adds none. A tokenizer without a template (a
    plain base model) gets the messages' contents one per line, with its usual special tokens.
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [dict(message) for message in messages], add_generation_prompt=True, tokenize=False
        )
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer("\n".join(message["content"] for message in messages))["input_ids"]
    return [int(token_id) for token_id in ids]
