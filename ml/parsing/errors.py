"""The one exception the parser lets out."""

from __future__ import annotations


class ParseError(Exception):
    """An export weft cannot read. ``str(error)`` is one human-readable line saying what is wrong.

    Raised for every unreadable input (empty, binary, undecodable, truncated, unknown format,
    archive limits exceeded) and for bad arguments (unknown format name or time zone), never any
    other exception type. It may be raised midway through iteration, after some messages were
    already yielded: a caller that stores messages treats the whole parse as failed then.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
