"""The three dataset formats, one JSON object per line, and how LLaMA-Factory reads each.

An example is a list of turns (role, content) that alternate user / assistant, start with a
user turn and end with the persona's reply; a system prompt, if any, is kept apart.

- prompt_completion, the seed's format: {"prompt": "用户: ...", "completion": "回复: ..."}.
  Earlier turns go into the prompt, one per line, each behind its speaker's prefix:
  "用户: 在吗\\n回复: 在的\\n用户: 明天开会吗"; the completion is the reply behind "回复: ".
- sharegpt, OpenAI chat messages: {"messages": [{"role": "system" | "user" | "assistant",
  "content": ...}, ...]}, the system message first when there is one.
- alpaca: {"instruction": last user turn, "input": "", "output": reply, "system": system prompt
  or "", "history": [[user, reply], ...] for the earlier turns}.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson

from ml.datasets.native import speedups
from ml.datasets.spec import FORMATS, SpecError

Turn = tuple[str, str]  # (role, content), role "user" or "assistant"

USER_PREFIX: Final = "用户: "
REPLY_PREFIX: Final = "回复: "


def render(format: str, system: str, turns: Sequence[Turn]) -> dict[str, Any]:
    """One example as the JSON object of `format`; `turns` alternate and end with the reply."""
    if format == "prompt_completion":
        return {
            "prompt": "\n".join(
                [
                    (USER_PREFIX if role == "user" else REPLY_PREFIX) + content
                    for role, content in turns[:-1]
                ]
            ),
            "completion": REPLY_PREFIX + turns[-1][1],
        }
    if format == "sharegpt":
        messages = [{"role": "system", "content": system}] if system else []
        messages.extend({"role": role, "content": content} for role, content in turns)
        return {"messages": messages}
    if format == "alpaca":
        earlier = turns[:-2]
        return {
            "instruction": turns[-2][1],
            "input": "",
            "output": turns[-1][1],
            "system": system,
            "history": [[earlier[i][1], earlier[i + 1][1]] for i in range(0, len(earlier), 2)],
        }
    raise SpecError("format", f"must be one of {', '.join(FORMATS)}, not {format!r}")


def render_line_py(format: str, system: str, turns: list[Turn]) -> bytes:
    """One example as its JSONL line: `render`'s object as orjson writes it, newline included.

    `render_line` is this function, or its C twin (ml/datasets/_speedups.c) where that is built.
    """
    return orjson.dumps(render(format, system, turns), option=orjson.OPT_APPEND_NEWLINE)


def _render_line_native(format: str, system: str, turns: list[Turn]) -> bytes:
    line: bytes | None = speedups.render_line(format, system, turns)  # type: ignore[union-attr]
    # None: something only render() handles, or refuses with a clear error.
    return line if line is not None else render_line_py(format, system, turns)


render_line = _render_line_native if speedups is not None else render_line_py


def llamafactory_dataset_info(format: str, file_name: str) -> dict[str, Any]:
    """The entry for LLaMA-Factory's data/dataset_info.json that reads `file_name` in `format`.

    Put it under a dataset name of your choice: {"weft_chat": llamafactory_dataset_info(...)}.
    prompt_completion is read as alpaca with the prompt as instruction and the completion as
    output (the 用户: / 回复: prefixes are then part of what the model learns, as in the seed).
    """
    if format == "prompt_completion":
        return {"file_name": file_name, "columns": {"prompt": "prompt", "response": "completion"}}
    if format == "sharegpt":
        return {
            "file_name": file_name,
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
    if format == "alpaca":
        return {
            "file_name": file_name,
            "columns": {
                "prompt": "instruction",
                "query": "input",
                "response": "output",
                "system": "system",
                "history": "history",
            },
        }
    raise SpecError("format", f"must be one of {', '.join(FORMATS)}, not {format!r}")
