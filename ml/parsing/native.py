"""The optional C readers (``_speedups.c``), or None where they are not built.

``WEFT_PARSE_NATIVE=0`` turns them off, to compare with the Python readers.
"""

from ml.native import optional_module

speedups = optional_module("ml.parsing._speedups", "WEFT_PARSE_NATIVE")
