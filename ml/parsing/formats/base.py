"""What every format shares: the parse context, sniff results and the format record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from ml.parsing import safe
from ml.parsing.clock import Clock
from ml.parsing.keys import KeyMaker
from ml.parsing.limits import Limits
from ml.parsing.model import ParsedMessage


@dataclass(slots=True)
class Context:
    """Settings and state of one parse, shared by the members of an archive."""

    clock: Clock
    self_name: str | None
    limits: Limits
    keys: KeyMaker = field(default_factory=KeyMaker)
    member: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    """Display names by wxid, where an archive carries them (PyWxDump's users.json)."""

    def is_self(self, sender: str) -> bool | None:
        return None if self.self_name is None else sender == self.self_name

    def message(
        self,
        sender: str,
        sender_id: str | None,
        epoch: float,
        text: str,
        kind: str,
        is_self: bool | None,
        raw: dict[str, Any],
        server_id: str | None = None,
        *,
        untrusted: bool = False,
    ) -> ParsedMessage:
        """A message; ``untrusted`` values (decoded JSON) are made safe to store first."""
        if is_self is None and self.self_name is not None and kind not in ("system", "recall"):
            is_self = sender == self.self_name
        if self.member is not None:
            raw["member"] = self.member
        if untrusted:
            sender, text = safe.text(sender), safe.text(text)
            sender_id = safe.text(sender_id) if sender_id is not None else None
            raw = safe.json_value(raw)
            server_id = safe.text(server_id) if server_id is not None else None
        key = (
            KeyMaker.server(server_id) if server_id else self.keys.hashed(sender, int(epoch), text)
        )
        return ParsedMessage(
            sender, sender_id, self.clock.datetime(epoch), text, kind, is_self, raw, key
        )

    def json_message(
        self,
        sender: str,
        sender_id: str | None,
        epoch: float,
        text: str,
        kind: str,
        is_self: bool | None,
        raw: dict[str, Any],
        server_id: str | None = None,
    ) -> ParsedMessage:
        """A message from decoded JSON or JavaScript, whose values may not be storable as is."""
        return self.message(
            sender, sender_id, epoch, text, kind, is_self, raw, server_id, untrusted=True
        )


@dataclass(frozen=True, slots=True)
class Sniff:
    accepted: bool
    reason: str
    score: int = 0
    hint: Any = None


def accept(reason: str, score: int = 1000, hint: Any = None) -> Sniff:
    return Sniff(True, reason, score, hint)


def reject(reason: str) -> Sniff:
    return Sniff(False, reason)


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    family: str
    sniff: Callable[[str], Sniff]
    parse: Callable[[TextIO, Context, Any], Iterator[ParsedMessage]]
    description: str
