from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml.training import ChatEncoder, TrainingError, encode_dataset
from ml.training.batching import IGNORE_INDEX, collate
from tests.ml.training.support import write_jsonl

ONE_TURN = [
    {"role": "user", "content": "工资什么时候发"},
    {"role": "assistant", "content": "下周一"},
]
TWO_TURNS = [
    {"role": "system", "content": "你是小明"},
    {"role": "user", "content": "在吗"},
    {"role": "assistant", "content": "在"},
    {"role": "user", "content": "工资什么时候发"},
    {"role": "assistant", "content": "下周一"},
]


def targets_text(tokenizer: Any, ids: list[int], flags: list[bool]) -> str:
    return str(tokenizer.decode([i for i, f in zip(ids, flags, strict=True) if f]))


def test_loss_falls_on_the_reply_only(tokenizer: Any) -> None:
    encoder = ChatEncoder(tokenizer, max_seq_length=256)
    example = encoder.encode(ONE_TURN)
    assert example is not None

    prompt = encoder.prompt_ids(ONE_TURN[:1])
    assert example.ids[: len(prompt)] == prompt  # the context is exactly the inference prompt
    assert not any(example.targets[: len(prompt)])
    assert all(example.targets[len(prompt) :])
    assert targets_text(tokenizer, example.ids, example.targets) == "下周一<|im_end|>\n"
    # The whole example is what the chat template renders.
    whole = tokenizer.apply_chat_template(ONE_TURN, tokenize=False)
    assert tokenizer.decode(example.ids) == whole


def test_collated_labels_are_minus_100_over_prompt_and_padding(
    tokenizer: Any, tmp_path: Path
) -> None:
    rows = [
        {"prompt": "工资什么时候发", "completion": "下周一"},
        {"prompt": "你好", "completion": "你好呀，今天过得怎么样？明天下午三点开会"},
    ]
    encoder = ChatEncoder(tokenizer, max_seq_length=256)
    data = encode_dataset(write_jsonl(tmp_path / "d.jsonl", rows), encoder)

    batch = collate(data, np.array([0, 1]), tokenizer.pad_token_id)

    for row in range(2):
        ids, _ = data.example(row)
        labels = batch.labels[row].tolist()
        prompt_len = len(encoder.prompt_ids([{"role": "user", "content": rows[row]["prompt"]}]))
        assert labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
        assert labels[prompt_len : len(ids)] == ids[prompt_len:].tolist()
        assert labels[len(ids) :] == [IGNORE_INDEX] * (batch.labels.shape[1] - len(ids))
        assert batch.attention_mask[row].sum().item() == len(ids)
    # Target positions point at the hidden state before each labelled token.
    flat_labels = batch.labels[:, 1:].reshape(-1)
    width = batch.labels.shape[1]
    rows_, cols = batch.positions // width, batch.positions % width
    assert (batch.labels[rows_, cols + 1] == batch.target_ids).all()
    assert batch.targets == int((flat_labels != IGNORE_INDEX).sum())


def test_every_assistant_turn_of_a_conversation_is_a_target(tokenizer: Any) -> None:
    example = ChatEncoder(tokenizer, max_seq_length=256).encode(TWO_TURNS)
    assert example is not None

    assert targets_text(tokenizer, example.ids, example.targets) == (
        "在<|im_end|>\n下周一<|im_end|>\n"
    )


def test_a_template_that_rewrites_history_trains_on_the_last_reply(tokenizer: Any) -> None:
    forgetful = copy.deepcopy(tokenizer)
    # Earlier replies render as "…", as templates that drop old reasoning do.
    forgetful.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['role'] == 'assistant' and not loop.last %}…"
        "{% else %}{{ m['content'] }}{% endif %}"
        "<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    example = ChatEncoder(forgetful, max_seq_length=256).encode(TWO_TURNS)
    assert example is not None

    assert targets_text(forgetful, example.ids, example.targets) == "下周一<|im_end|>\n"


def test_without_a_chat_template_turns_are_lines_and_the_reply_ends_with_eos(
    tokenizer: Any,
) -> None:
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    encoder = ChatEncoder(plain, max_seq_length=256)

    example = encoder.encode(ONE_TURN)
    assert example is not None

    assert plain.decode(example.ids) == "工资什么时候发\n下周一<|im_end|>"
    assert targets_text(plain, example.ids, example.targets) == "\n下周一<|im_end|>"
    # The context is the prompt ml.inference gives such a model: the turns one per line.
    assert encoder.prompt_ids(ONE_TURN[:1]) == plain("工资什么时候发")["input_ids"]


def test_long_examples_are_cut_at_the_end_unless_that_cuts_the_whole_reply(
    tokenizer: Any,
) -> None:
    encoder = ChatEncoder(tokenizer, max_seq_length=24)
    long_reply = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "好" * 60}]
    long_prompt = [{"role": "user", "content": "你好" * 60}, {"role": "assistant", "content": "嗯"}]

    cut_end = encoder.encode(long_reply)
    cut_start = encoder.encode(long_prompt)

    assert cut_end is not None and cut_start is not None
    assert cut_end.truncated and cut_start.truncated
    assert len(cut_end.ids) == len(cut_start.ids) == 24
    assert cut_end.ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert tokenizer.decode(cut_start.ids).endswith("<|im_start|>assistant\n嗯<|im_end|>\n")


def test_encoding_a_file_counts_what_it_found(tokenizer: Any, tmp_path: Path) -> None:
    rows = [
        {"prompt": "你好", "completion": "嗯"},
        {"prompt": "你好" * 100, "completion": "嗯"},  # longer than the limit: cut at the start
        {"prompt": "明天", "completion": "好"},
    ]
    data = encode_dataset(
        write_jsonl(tmp_path / "d.jsonl", rows), ChatEncoder(tokenizer, max_seq_length=32)
    )

    assert len(data) == 3
    stats = data.stats
    assert stats.format == "prompt_completion"
    assert (stats.examples, stats.truncated, stats.skipped, stats.max_length) == (3, 1, 0, 32)
    assert stats.tokens == int(data.lengths.sum()) == len(data.tokens)
    assert stats.target_tokens == sum(int(data.example(i)[1][1:].sum()) for i in range(3))


def test_a_tokenizer_without_template_or_eos_is_refused(tokenizer: Any) -> None:
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    bare.eos_token = None
    with pytest.raises(TrainingError, match="neither a chat template nor an eos token"):
        ChatEncoder(bare, max_seq_length=32)
