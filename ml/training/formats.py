"""Reading train.jsonl / eval.jsonl in the formats the dataset builder writes, as chat turns.

Three formats, detected per file from its first record and then required of every line:

- prompt/completion: `{"prompt": "用户: ...", "completion": "回复: ..."}` becomes one user turn
  and one assistant turn, both verbatim;
- sharegpt: OpenAI chat messages `{"messages": [{"role": ..., "content": ...}]}`, as the
  dataset builder writes them, and also ShareGPT's own
  `{"conversations": [{"from": "human", "value": ...}]}`;
- Alpaca: `{"instruction", "input", "output", "history", "system"}` where history is a list of
  `[question, answer]` pairs; instruction and input are joined with a newline, as LLaMA-Factory
  does.

Every assistant turn is a training target. The file is streamed: one line in memory at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from ml.training.errors import TrainingError

DatasetFormat = Literal["prompt_completion", "sharegpt", "alpaca"]
Chat = list[dict[str, str]]

_ROLES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
}


def detect_format(record: dict[str, Any]) -> DatasetFormat | None:
    """The format a record is in, or None when it matches none."""
    if "messages" in record or "conversations" in record:
        return "sharegpt"
    if "instruction" in record and "output" in record:
        return "alpaca"
    if "prompt" in record and "completion" in record:
        return "prompt_completion"
    return None


def _records(path: Path) -> Iterator[tuple[DatasetFormat, Chat]]:
    fmt: DatasetFormat | None = None
    try:
        handle = path.open(encoding="utf-8-sig")
    except OSError as exc:
        raise TrainingError(f"cannot read dataset {path}: {exc.strerror or exc}") from None
    with handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, start=1):  # noqa: B007 (used in except)
                if not line.strip():
                    continue
                record = _parse_line(line)
                if fmt is None:
                    fmt = detect_format(record)
                    if fmt is None:
                        raise _BadRecord(
                            "not a known dataset format: expected prompt/completion, "
                            "sharegpt (messages or conversations) or alpaca "
                            f"(instruction/output) keys, found {sorted(record)}"
                        )
                yield fmt, _CONVERTERS[fmt](record)
        except _BadRecord as exc:
            raise TrainingError(f"{path}, line {lineno}: {exc}") from None
        except UnicodeDecodeError:
            raise TrainingError(f"{path}, line {lineno + 1}: not UTF-8 text") from None


def dataset_format(path: str | Path) -> DatasetFormat | None:
    """The format of a dataset file, from its first record; None when the file has none."""
    for chat_format, _ in _records(Path(path)):
        return chat_format
    return None


def read_conversations(path: str | Path) -> Iterator[Chat]:
    """Yield each record of a JSONL dataset as chat turns; raise `TrainingError` on a bad line."""
    for _, record in _records(Path(path)):
        yield record


class _BadRecord(Exception):
    """A line that does not hold a valid example; turned into a TrainingError with its place."""


def _parse_line(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _BadRecord(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise _BadRecord(f"expected a JSON object, found {type(record).__name__}")
    return record


def _text(record: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        shown = "missing" if value is None else f"a {type(value).__name__}"
        raise _BadRecord(f"{key!r} must be a string, but it is {shown}")
    return value


def _from_prompt_completion(record: dict[str, Any]) -> Chat:
    if detect_format(record) != "prompt_completion":
        raise _BadRecord("expected prompt and completion keys, as the file's first line has")
    return [
        {"role": "user", "content": _text(record, "prompt")},
        {"role": "assistant", "content": _text(record, "completion")},
    ]


def _from_messages(record: dict[str, Any]) -> Chat:
    items = record.get("messages", record.get("conversations"))
    if not isinstance(items, list) or not items:
        raise _BadRecord("expected a non-empty list under 'messages' (or 'conversations')")
    chat: Chat = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _BadRecord(f"message {i} is not an object")
        role_key, content_key = ("role", "content") if "role" in item else ("from", "value")
        raw_role = item.get(role_key)
        role = _ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise _BadRecord(f"message {i} has an unknown role {raw_role!r}")
        content = item.get(content_key)
        if not isinstance(content, str):
            raise _BadRecord(f"message {i} ({role}) has no text {content_key!r}")
        chat.append({"role": role, "content": content})
    return _ending_with_assistant(chat)


def _from_alpaca(record: dict[str, Any]) -> Chat:
    if detect_format(record) != "alpaca":
        raise _BadRecord("expected instruction and output keys, as the file's first line has")
    chat: Chat = []
    system = _text(record, "system", required=False)
    if system:
        chat.append({"role": "system", "content": system})
    history = record.get("history") or []
    if not isinstance(history, list):
        raise _BadRecord("'history' must be a list of [question, answer] pairs")
    for i, pair in enumerate(history):
        if not (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(t, str) for t in pair)
        ):
            raise _BadRecord(f"history item {i} is not a [question, answer] pair of strings")
        chat.append({"role": "user", "content": pair[0]})
        chat.append({"role": "assistant", "content": pair[1]})
    instruction = _text(record, "instruction")
    extra = _text(record, "input", required=False)
    prompt = f"{instruction}\n{extra}" if instruction and extra else instruction or extra
    chat.append({"role": "user", "content": prompt})
    chat.append({"role": "assistant", "content": _text(record, "output")})
    return chat


def _ending_with_assistant(chat: Chat) -> Chat:
    # Turns after the last assistant reply teach nothing: drop them.
    last = max((i for i, m in enumerate(chat) if m["role"] == "assistant"), default=-1)
    if last < 0:
        raise _BadRecord("the conversation has no assistant message to learn from")
    return chat[: last + 1]


_CONVERTERS = {
    "prompt_completion": _from_prompt_completion,
    "sharegpt": _from_messages,
    "alpaca": _from_alpaca,
}
