"""Values from JSON and JavaScript inputs made safe to serialise and store.

JSON can spell things no UTF-8 database or JSON encoder takes: lone surrogates ("\\ud800")
and integers beyond 64 bits. Text and raw values pass through here on their way out.
"""

from __future__ import annotations

import math
from typing import Any

_INT_LIMIT = 2**63


def text(value: str) -> str:
    """The string, with lone surrogates replaced by U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def json_value(value: Any, depth: int = 0) -> Any:
    """A JSON-serialisable copy: big integers as strings, NaN as None, odd types as text."""
    if isinstance(value, str):
        return text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_INT_LIMIT <= value < _INT_LIMIT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 32:
        return None
    if isinstance(value, dict):
        return {text(str(key)): json_value(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item, depth + 1) for item in value]
    return text(str(value))
