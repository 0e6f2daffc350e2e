"""Find stop sequences in streamed text, also when one arrives split across several pieces."""

from __future__ import annotations

from collections.abc import Sequence


class StopStringMatcher:
    """Passes streamed text through until a stop sequence appears.

    Text that might be the beginning of a stop sequence is held back until the next piece shows
    whether it is one; so nothing of a stop sequence is ever emitted, and what is emitted equals
    the full text cut before the earliest stop sequence.
    """

    __slots__ = ("_held", "_longest", "_stops")

    def __init__(self, stops: Sequence[str]) -> None:
        if any(not stop for stop in stops):
            raise ValueError("stop sequences must be non-empty")
        self._stops = tuple(stops)
        self._longest = max((len(stop) for stop in self._stops), default=0)
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add a piece; return (text safe to emit, whether a stop sequence was reached)."""
        if not self._stops:
            return text, False
        buffer = self._held + text
        earliest = min(
            (index for index in map(buffer.find, self._stops) if index != -1), default=-1
        )
        if earliest != -1:
            self._held = ""
            return buffer[:earliest], True
        hold = self._partial_stop_length(buffer)
        self._held = buffer[len(buffer) - hold :]
        return buffer[: len(buffer) - hold], False

    def flush(self) -> str:
        """Return the held-back text (the stream ended without completing a stop sequence)."""
        held, self._held = self._held, ""
        return held

    def _partial_stop_length(self, buffer: str) -> int:
        """Length of the longest end of `buffer` that a stop sequence starts with."""
        for length in range(min(len(buffer), self._longest - 1), 0, -1):
            tail = buffer[-length:]
            if any(stop.startswith(tail) for stop in self._stops):
                return length
        return 0
