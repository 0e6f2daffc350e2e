from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.training import TrainingError, dataset_format, read_conversations
from tests.ml.training.support import write_jsonl


def test_prompt_completion_is_one_user_and_one_assistant_turn(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "用户: 你好", "completion": "回复: 嗯"}])

    assert dataset_format(path) == "prompt_completion"
    assert list(read_conversations(path)) == [
        [{"role": "user", "content": "用户: 你好"}, {"role": "assistant", "content": "回复: 嗯"}]
    ]


def test_sharegpt_messages_keep_every_turn_and_drop_a_trailing_question(tmp_path: Path) -> None:
    messages = [
        {"role": "system", "content": "你是小明"},
        {"role": "user", "content": "在吗"},
        {"role": "assistant", "content": "在"},
        {"role": "user", "content": "吃了吗"},
        {"role": "assistant", "content": "吃了"},
        {"role": "user", "content": "好的"},
    ]
    path = write_jsonl(tmp_path / "d.jsonl", [{"messages": messages}])

    assert dataset_format(path) == "sharegpt"
    assert list(read_conversations(path)) == [messages[:-1]]


def test_sharegpt_conversations_with_from_and_value(tmp_path: Path) -> None:
    record = {
        "conversations": [
            {"from": "human", "value": "在吗"},
            {"from": "gpt", "value": "在"},
        ]
    }
    path = write_jsonl(tmp_path / "d.jsonl", [record])

    assert list(read_conversations(path)) == [
        [{"role": "user", "content": "在吗"}, {"role": "assistant", "content": "在"}]
    ]


def test_alpaca_with_system_history_and_input(tmp_path: Path) -> None:
    record = {
        "system": "你是小明",
        "history": [["早", "早上好"]],
        "instruction": "翻译",
        "input": "hello",
        "output": "你好",
    }
    path = write_jsonl(tmp_path / "d.jsonl", [record])

    assert dataset_format(path) == "alpaca"
    assert list(read_conversations(path)) == [
        [
            {"role": "system", "content": "你是小明"},
            {"role": "user", "content": "早"},
            {"role": "assistant", "content": "早上好"},
            {"role": "user", "content": "翻译\nhello"},
            {"role": "assistant", "content": "你好"},
        ]
    ]


def test_blank_lines_and_a_byte_order_mark_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    line = json.dumps({"prompt": "a", "completion": "b"})
    path.write_text("\ufeff" + line + "\n\n" + line + "\n", encoding="utf-8")

    assert len(list(read_conversations(path))) == 2


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"prompt": "a", "completion": "b"}', "{oops"], "line 2: not valid JSON"),
        (['{"text": "a"}'], "line 1: not a known dataset format"),
        (['{"prompt": "a", "completion": "b"}', '{"instruction": "a", "output": "b"}'],
         "line 2: expected prompt and completion keys"),
        (['{"prompt": "a", "completion": 3}'], "line 1: 'completion' must be a string"),
        (['{"messages": [{"role": "boss", "content": "a"}]}'],
         "line 1: message 0 has an unknown role"),
        (['{"messages": [{"role": "user", "content": "a"}]}'],
         "line 1: the conversation has no assistant"),
        (['{"messages": []}'], "line 1: expected a non-empty list under 'messages'"),
        (['{"instruction": "a", "output": "b", "history": [["q"]]}'],
         "line 1: history item 0 is not a [question, answer] pair"),
        (["[1, 2]"], "line 1: expected a JSON object"),
    ],
)  # fmt: skip
def test_bad_lines_raise_a_training_error_with_their_place(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(TrainingError) as raised:
        list(read_conversations(path))
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_a_missing_file_is_a_training_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="cannot read dataset"):
        list(read_conversations(tmp_path / "missing.jsonl"))


def test_an_empty_file_has_no_format(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n", encoding="utf-8")
    assert dataset_format(path) is None
    assert list(read_conversations(path)) == []
