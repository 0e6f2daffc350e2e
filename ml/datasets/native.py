"""The optional C helpers of the dataset builder (``_speedups.c``), or None where not built.

``WEFT_DATASET_NATIVE=0`` turns them off, to compare with their Python twins.
"""

from ml.native import optional_module

speedups = optional_module("ml.datasets._speedups", "WEFT_DATASET_NATIVE")
