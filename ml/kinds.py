"""The kinds of chat message weft knows (DESIGN.md): what the parser yields, what datasets,
the database and the API speak of."""

from __future__ import annotations

from typing import Final, Literal, get_args

MessageKind = Literal[
    "text",
    "image",
    "voice",
    "video",
    "file",
    "link",
    "sticker",
    "location",
    "call",
    "transfer",
    "red_packet",
    "system",
    "recall",
    "other",
]

# In DESIGN.md's order.
KINDS: Final[tuple[str, ...]] = get_args(MessageKind)
