"""Turn generated token ids into text one token at a time, never splitting a character."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

# What `decode` gives for bytes that do not (yet) form a whole UTF-8 character.
REPLACEMENT_CHARACTER = "\ufffd"


class Decoder(Protocol):
    def decode(self, token_ids: Sequence[int], *, skip_special_tokens: bool) -> str: ...


class IncrementalDetokenizer:
    """Streams the text of a growing token sequence.

    Decoding each token on its own breaks characters that span tokens (a Chinese character is
    three bytes, often three byte-level tokens) and drops the spaces that SentencePiece tokenizers
    attach to word starts. So this decodes a short window: the tokens last emitted (context) plus
    the new ones, and emits what the new ones add. While the window's text ends in U+FFFD the
    character may still be incomplete, so it waits for the next token. The concatenation of
    everything `push` and `flush` return equals `decode(all_ids, skip_special_tokens=True)`.
    """

    __slots__ = ("_ids", "_prefix_offset", "_read_offset", "_tokenizer")

    def __init__(self, tokenizer: Decoder) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix_offset = 0  # start of the context window
        self._read_offset = 0  # end of what has been emitted

    def push(self, token_id: int) -> str:
        """Add a token; return the text that is now final (often "", never half a character)."""
        self._ids.append(token_id)
        return self._advance(final=False)

    def flush(self) -> str:
        """Return whatever is held back (at the end of the stream, incomplete bytes included)."""
        return self._advance(final=True)

    def _advance(self, *, final: bool) -> str:
        if self._read_offset == len(self._ids):
            return ""
        decode = self._tokenizer.decode
        prefix_text = decode(
            self._ids[self._prefix_offset : self._read_offset], skip_special_tokens=True
        )
        new_text = decode(self._ids[self._prefix_offset :], skip_special_tokens=True)
        if not final and (
            len(new_text) <= len(prefix_text) or new_text.endswith(REPLACEMENT_CHARACTER)
        ):
            return ""
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._ids)
        return new_text[len(prefix_text) :]
