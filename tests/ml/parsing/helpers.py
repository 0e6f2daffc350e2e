"""Shared helpers for the parser tests."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ml.parsing import ParsedMessage, parse

FIXTURES = Path(__file__).parent / "fixtures"


def parse_bytes(data: bytes, **options: Any) -> list[ParsedMessage]:
    return list(parse(io.BytesIO(data), **options))


def parse_fixture(name: str, **options: Any) -> list[ParsedMessage]:
    with (FIXTURES / name).open("rb") as source:
        return list(parse(source, **options))


def summary(messages: list[ParsedMessage]) -> list[tuple[str, str, str, str, bool | None]]:
    """(sender, ISO timestamp, kind, text, is_self) of each message, for compact expectations."""
    return [(m.sender, m.timestamp.isoformat(), m.kind, m.text, m.is_self) for m in messages]
