"""Bounds that keep hostile uploads (zip bombs, endless fields) from exhausting the machine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits on archives and fields; the defaults suit real exports with room to spare.

    A real WeChat export compresses about 5-20x; a zip bomb expands by hundreds or thousands.
    """

    max_total_bytes: int = 4 * 1024**3
    """Uncompressed bytes read out of an archive, all members and nested archives together."""
    max_ratio: float = 200.0
    """Largest uncompressed/compressed ratio of one archive member (checked above 64 KiB)."""
    max_members: int = 50_000
    """Entries in one archive (media files included: a full export holds many)."""
    max_depth: int = 2
    """Archive nesting: 1 allows a plain zip, 2 a zip inside a zip."""
    max_field_chars: int = 1_000_000
    """Characters in one message, CSV field or JSON element."""
    max_csv_fields: int = 500
    """Fields in one CSV record (exports have about a dozen columns)."""
