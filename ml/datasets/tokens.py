"""A tokenizer-free estimate of how many tokens a text costs to train on.

Counted as one token per non-ASCII character (a Chinese character, an emoji) plus one per four
ASCII characters. Real tokenizers differ: those whose vocabulary holds common Chinese words
spend fewer tokens per character, those that fall back to bytes spend more. Good for sizing a
training run, not for billing; the training job counts real tokens.
"""

from __future__ import annotations


def approx_tokens(text: str) -> int:
    ascii_chars = len(text.encode("ascii", "ignore"))
    return len(text) - ascii_chars + (ascii_chars + 3) // 4
