"""The optional C readers (``_speedups.c``), or None where they are not built.

``WEFT_PARSE_NATIVE=0`` turns them off, to compare with the Python readers.
"""

from __future__ import annotations

import os
from types import ModuleType

speedups: ModuleType | None
try:
    from ml.parsing import _speedups as speedups  # type: ignore[attr-defined,no-redef]
except ImportError:  # pragma: no cover - a machine without a C compiler
    speedups = None
if os.environ.get("WEFT_PARSE_NATIVE", "1") == "0":
    speedups = None
