"""Streamed text never splits a character and adds up to the full decode."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from tokenizers import pre_tokenizers

from ml.inference.detokenizer import IncrementalDetokenizer
from tests.ml.inference.support import TinyModels


@pytest.fixture(scope="module")
def tokenizer(tiny: TinyModels) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(Path(tiny.base))


def byte_tokens(tokenizer: Any, text: str) -> list[int]:
    """One byte-level token per UTF-8 byte of `text` (how an untrained model may emit it)."""
    [(mapped, _)] = pre_tokenizers.ByteLevel(
        add_prefix_space=False, use_regex=False
    ).pre_tokenize_str(text)
    return [tokenizer.convert_tokens_to_ids(char) for char in mapped]


def stream(tokenizer: Any, ids: list[int]) -> list[str]:
    detokenizer = IncrementalDetokenizer(tokenizer)
    return [*(detokenizer.push(token_id) for token_id in ids), detokenizer.flush()]


def test_a_character_split_over_three_tokens_comes_out_whole(tokenizer: Any) -> None:
    ids = byte_tokens(tokenizer, "谢")
    assert len(ids) == 3
    assert stream(tokenizer, ids) == ["", "", "谢", ""]


def test_mixed_text_streams_piece_by_piece(tokenizer: Any) -> None:
    ids = byte_tokens(tokenizer, "ok谢谢!")
    pieces = stream(tokenizer, ids)
    assert pieces == ["o", "k", "", "", "谢", "", "", "谢", "!", ""]


def test_incomplete_bytes_at_the_end_are_flushed_as_decode_shows_them(tokenizer: Any) -> None:
    ids = byte_tokens(tokenizer, "谢")[:2]
    pieces = stream(tokenizer, ids)
    assert pieces[:2] == ["", ""]
    assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True)


def test_special_tokens_are_skipped(tokenizer: Any) -> None:
    ids = [*tokenizer.encode("ok", add_special_tokens=False)]
    ids.insert(1, tokenizer.convert_tokens_to_ids("<|im_start|>"))
    assert "".join(stream(tokenizer, ids)) == "ok"


@pytest.mark.parametrize("seed", range(10))
def test_random_token_sequences_add_up_to_the_full_decode(tokenizer: Any, seed: int) -> None:
    rng = random.Random(seed)
    ids = [rng.randrange(len(tokenizer)) for _ in range(80)]
    pieces = stream(tokenizer, ids)
    assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True)
    # Only the last piece (the flush) may end in a replacement character: the others waited.
    assert not any(piece.endswith("\ufffd") for piece in pieces[:-1])
