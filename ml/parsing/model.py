"""What the parser yields: messages, and for ``--diagnose`` the formats it tried."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from ml.kinds import KINDS

__all__ = ["KINDS", "Attempt", "ParsedMessage"]


class ParsedMessage(NamedTuple):
    """One chat message, whatever the export it came from.

    ``sender`` is a display name ("" for system notices), ``sender_id`` the wxid or other id
    where the format has one. ``timestamp`` is timezone-aware. ``kind`` is one of :data:`KINDS`;
    for non-text kinds ``text`` is a readable placeholder such as ``[图片]`` or
    ``[链接] title``. ``is_self`` is None where neither the format nor the caller says who
    "you" are. ``raw`` is JSON-serializable: what the source says beyond the text. ``key`` is
    stable across overlapping exports: ``id:<server id>`` where the exporter has one, else
    ``h:<epoch>:<crc of sender and text>``; at most 64 characters.

    A named tuple, so that the native readers (``_speedups.c``) can build one without calling
    Python code; ``_asdict()`` gives the JSON record.
    """

    sender: str
    sender_id: str | None
    timestamp: datetime
    text: str
    kind: str
    is_self: bool | None
    raw: dict[str, Any]
    key: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One format tried during detection: accepted or not, and why."""

    format: str
    accepted: bool
    reason: str
