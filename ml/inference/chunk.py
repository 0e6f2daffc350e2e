"""What a generation streams back: text pieces, then one final chunk with the outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

FinishReason = Literal["stop", "length", "cancelled", "error"]


class UsageDict(TypedDict):
    prompt_tokens: int
    completion_tokens: int


class ChunkDict(TypedDict):
    delta: str
    done: bool
    finish_reason: FinishReason | None
    usage: UsageDict | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request.

    completion_tokens counts every token generated, also the end-of-sequence token and the
    tokens of a stop sequence, whose text is not part of the output.
    """

    prompt_tokens: int
    completion_tokens: int

    def to_dict(self) -> UsageDict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of streamed output.

    Every chunk but the last carries a non-empty `delta` and `done=False`. The last one has
    `done=True`, an empty delta, the finish reason, the usage and, for finish "error", the
    error's message.
    """

    delta: str
    done: bool = False
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    error: str | None = None

    def to_dict(self) -> ChunkDict:
        """A JSON-ready dict, e.g. for publishing on a pub/sub channel."""
        return {
            "delta": self.delta,
            "done": self.done,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict() if self.usage is not None else None,
            "error": self.error,
        }
