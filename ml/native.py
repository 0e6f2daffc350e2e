"""Loading weft's optional C modules (each has Python twins that run where it is not built)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def optional_module(name: str, switch: str) -> ModuleType | None:
    """The compiled module `name`, or None where it is not built or `switch=0` turns it off.

    The switch (an environment variable) is there to compare with the Python twins.
    """
    if os.environ.get(switch, "1") == "0":
        return None
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - a machine without a C compiler
        return None
