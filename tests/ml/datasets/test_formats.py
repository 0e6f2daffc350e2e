"""Every format loaded back: by the rules LLaMA-Factory documents, and as a trainer reads it.

LLaMA-Factory (data/README.md and src/llamafactory/data/{parser,converter}.py) reads
dataset_info.json; when an entry has "columns", every column it does not name is unset. Alpaca:
instruction (+ "\\n" + input) is the user turn, output the reply, history a list of [user,
reply] pairs, system a string. Sharegpt: after an optional leading system message, user-side
tags sit at even positions and assistant-side tags at odd ones, with an even count; anything
else is dropped as "abnormal". The checks below state those rules independently of our code.
"""

from __future__ import annotations

from typing import Any

import pytest

from ml.datasets import FORMATS, Filters, SpecError, llamafactory_dataset_info
from tests.ml.datasets.chat import script
from tests.ml.datasets.helpers import records

MESSAGES = script(
    "小李: 在吗",
    "我: 在的",
    "小李: 明天开会吗",
    "小李: 几点",
    "我: 三点",
    "我: 会议室见",
    "小王: 我也去",
    "小李: <image>",
    "我: 好",
)

ALPACA_COLUMNS = {"prompt", "query", "response", "history", "system"}


def llamafactory_view(record: dict[str, Any], info: dict[str, Any]) -> list[dict[str, str]]:
    """The (system +) alternating turns LLaMA-Factory would train on, or an AssertionError."""
    columns = info.get("columns", {})
    for column in columns.values():
        assert column in record, f"column {column!r} missing"
    if info.get("formatting", "alpaca") == "alpaca":
        assert set(columns) <= ALPACA_COLUMNS
        turns = []
        system = record[columns["system"]] if "system" in columns else ""
        assert isinstance(system, str)
        if system:
            turns.append({"role": "system", "content": system})
        if "history" in columns:
            history = record[columns["history"]]
            assert isinstance(history, list)
            for pair in history:
                assert isinstance(pair, list) and len(pair) == 2
                assert all(isinstance(x, str) and x for x in pair)
                turns += [
                    {"role": "user", "content": pair[0]},
                    {"role": "assistant", "content": pair[1]},
                ]
        query = [record[columns["prompt"]]]
        if "query" in columns and record[columns["query"]]:
            query.append(record[columns["query"]])
        assert all(isinstance(q, str) for q in query) and query[0]
        turns.append({"role": "user", "content": "\n".join(query)})
        response = record[columns["response"]]
        assert isinstance(response, str) and response
        turns.append({"role": "assistant", "content": response})
        return turns
    assert info["formatting"] == "sharegpt"
    tags = info["tags"]
    messages = record[columns["messages"]]
    assert isinstance(messages, list) and messages
    turns = []
    if messages[0][tags["role_tag"]] == tags["system_tag"]:
        turns.append({"role": "system", "content": messages[0][tags["content_tag"]]})
        messages = messages[1:]
    assert len(messages) % 2 == 0
    for i, message in enumerate(messages):
        assert set(message) == {tags["role_tag"], tags["content_tag"]}
        expected = tags["user_tag"] if i % 2 == 0 else tags["assistant_tag"]
        assert message[tags["role_tag"]] == expected
        content = message[tags["content_tag"]]
        assert isinstance(content, str) and content
        turns.append({"role": "user" if i % 2 == 0 else "assistant", "content": content})
    return turns


def test_prompt_completion_is_the_seed_format_exactly() -> None:
    rows = records(MESSAGES)
    assert all(list(row) == ["prompt", "completion"] for row in rows)
    assert rows[1] == {
        "prompt": "用户: 在吗\n回复: 在的\n用户: 明天开会吗\n几点",
        "completion": "回复: 三点\n会议室见",
    }
    assert all(row["completion"].startswith("回复: ") for row in rows)
    assert all(line.startswith("用户: ") for row in rows for line in row["prompt"].split("\n")[:1])


def test_sharegpt_is_openai_chat_messages_with_an_optional_system() -> None:
    rows = records(MESSAGES, format="sharegpt", system_prompt="你是张伟。")
    assert rows[1] == {
        "messages": [
            {"role": "system", "content": "你是张伟。"},
            {"role": "user", "content": "在吗"},
            {"role": "assistant", "content": "在的"},
            {"role": "user", "content": "明天开会吗\n几点"},
            {"role": "assistant", "content": "三点\n会议室见"},
        ]
    }
    without = records(MESSAGES, format="sharegpt")
    assert without[0] == {
        "messages": [{"role": "user", "content": "在吗"}, {"role": "assistant", "content": "在的"}]
    }


def test_alpaca_puts_earlier_turns_in_history() -> None:
    rows = records(MESSAGES, format="alpaca", system_prompt="你是张伟。")
    assert rows[1] == {
        "instruction": "明天开会吗\n几点",
        "input": "",
        "output": "三点\n会议室见",
        "system": "你是张伟。",
        "history": [["在吗", "在的"]],
    }
    assert records(MESSAGES, format="alpaca")[0]["system"] == ""


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("non_text", ["drop", "placeholder"])
def test_every_format_loads_in_llamafactory_and_means_the_same(format: str, non_text: str) -> None:
    system = "" if format == "prompt_completion" else "你是张伟。"
    rows = records(
        MESSAGES,
        format=format,
        system_prompt=system,
        filters=Filters(non_text=non_text),  # type: ignore[arg-type]
    )
    reference = records(MESSAGES, filters=Filters(non_text=non_text))  # type: ignore[arg-type]
    assert len(rows) == len(reference) == 3
    info = llamafactory_dataset_info(format, "train.jsonl")
    assert info["file_name"] == "train.jsonl"
    keys = {tuple(row) for row in rows}
    assert len(keys) == 1, "every line has the same columns (one schema for a JSON loader)"
    for row, seed in zip(rows, reference, strict=True):
        turns = llamafactory_view(row, info)
        if system:
            assert turns.pop(0) == {"role": "system", "content": system}
        # the same conversation as the seed format, whatever the format
        if format == "prompt_completion":
            assert turns[-1]["content"] == seed["completion"]
        else:
            assert "回复: " + turns[-1]["content"] == seed["completion"]
            lines = [
                ("用户: " if t["role"] == "user" else "回复: ") + t["content"] for t in turns[:-1]
            ]
            assert "\n".join(lines) == seed["prompt"]


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


def test_group_and_placeholder_content_survives_every_format() -> None:
    for format in FORMATS:
        rows = records(MESSAGES, format=format, filters=Filters(non_text="placeholder"))
        assert any("小王: 我也去\n小李: [图片]" in text for text in strings(rows[-1])), format


def test_dataset_info_entries_match_the_documented_shapes() -> None:
    assert llamafactory_dataset_info("alpaca", "d.jsonl") == {
        "file_name": "d.jsonl",
        "columns": {
            "prompt": "instruction",
            "query": "input",
            "response": "output",
            "system": "system",
            "history": "history",
        },
    }
    assert llamafactory_dataset_info("sharegpt", "d.jsonl") == {
        "file_name": "d.jsonl",
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    }
    assert llamafactory_dataset_info("prompt_completion", "d.jsonl") == {
        "file_name": "d.jsonl",
        "columns": {"prompt": "prompt", "response": "completion"},
    }
    with pytest.raises(SpecError):
        llamafactory_dataset_info("csv", "d.csv")


def test_lines_are_compact_utf8_json() -> None:
    from tests.ml.datasets.helpers import build, spec

    _, _, _, train, _ = build(MESSAGES, spec(format="sharegpt"))
    text = train.decode("utf-8")
    assert "\\u" not in text and "在吗" in text
    assert '{"messages":[{"role":"user","content":"在吗"}' in text
