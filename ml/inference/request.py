"""A chat completion request: which model, which conversation, how to sample."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from ml.inference.errors import InvalidRequestError


class Message(TypedDict):
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion, validated on construction (raises InvalidRequestError).

    `base_model` is a local directory in save_pretrained layout (a full fine-tune is just another
    base). `adapter` is an optional local PEFT adapter directory applied on top of it;
    `adapter_id` names it for the engine's cache (defaults to the adapter's resolved path), so a
    re-downloaded adapter under the same id but a new directory is reloaded.

    `max_tokens=None` lets the completion run to the end of the model's context window.
    `temperature=0` decodes greedily; `seed` makes sampling reproducible on one device.
    """

    base_model: str | Path
    messages: Sequence[Message]
    adapter: str | Path | None = None
    adapter_id: str | None = None
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: Sequence[str] = field(default=())
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", _validated_messages(self.messages))
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
        if not all(isinstance(s, str) and s for s in stop):
            raise InvalidRequestError("stop sequences must be non-empty strings")
        object.__setattr__(self, "stop", stop)
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool)
            or not isinstance(self.max_tokens, int)
            or self.max_tokens < 1
        ):
            raise InvalidRequestError(
                f"max_tokens must be a positive integer, not {self.max_tokens!r}"
            )
        if not _is_real(self.temperature) or self.temperature < 0:
            raise InvalidRequestError(
                f"temperature must be a number of at least 0, not {self.temperature!r}"
            )
        if not _is_real(self.top_p) or not 0 < self.top_p <= 1:
            raise InvalidRequestError(
                f"top_p must be a number greater than 0 and at most 1, not {self.top_p!r}"
            )
        if self.seed is not None and (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or not -(2**63) <= self.seed < 2**64  # what torch's generators accept
        ):
            raise InvalidRequestError(f"seed must be a 64-bit integer, not {self.seed!r}")
        if self.adapter_id is not None and not self.adapter_id:
            raise InvalidRequestError("adapter_id must not be empty")
        if self.adapter_id is not None and self.adapter is None:
            raise InvalidRequestError("adapter_id is given but adapter (its directory) is not")


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _validated_messages(messages: object) -> tuple[Message, ...]:
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise InvalidRequestError("messages must be a non-empty list of {role, content}")
    validated: list[Message] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidRequestError(f"messages[{index}] must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role:
            raise InvalidRequestError(f"messages[{index}].role must be a non-empty string")
        if not isinstance(content, str):
            raise InvalidRequestError(f"messages[{index}].content must be a string")
        validated.append(Message(role=role, content=content))
    return tuple(validated)
