"""LoRA and full fine-tuning of causal language models on weft's JSONL datasets.

Pure domain code: files in, files out. `train` runs in the calling process; `TrainingProcess`
runs it in a child process that can be cancelled at once.

Names are imported on first use, so that `from ml.training import TrainConfig` (to validate a
request in the API process) loads neither torch nor transformers; `train`, `TrainingProcess`
and the model helpers do.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml.training.adapters import adapter_base, is_adapter, load_trained, merge_adapter
    from ml.training.artifacts import COMPLETE_MARKER, METRICS_FILE, MODEL_CARD, is_complete
    from ml.training.config import TrainConfig
    from ml.training.encoding import ChatEncoder, DatasetStats, EncodedDataset, encode_dataset
    from ml.training.errors import (
        TrainConfigError,
        TrainingCancelled,
        TrainingCrashed,
        TrainingError,
    )
    from ml.training.formats import Chat, DatasetFormat, dataset_format, read_conversations
    from ml.training.modeling import DEFAULT_TARGET_MODULES, default_target_modules
    from ml.training.process import TrainingProcess
    from ml.training.trainer import Event, TrainResult, train

_EXPORTS = {
    "adapters": ("adapter_base", "is_adapter", "load_trained", "merge_adapter"),
    "artifacts": ("COMPLETE_MARKER", "METRICS_FILE", "MODEL_CARD", "is_complete"),
    "config": ("TrainConfig",),
    "encoding": ("ChatEncoder", "DatasetStats", "EncodedDataset", "encode_dataset"),
    "errors": ("TrainConfigError", "TrainingCancelled", "TrainingCrashed", "TrainingError"),
    "formats": ("Chat", "DatasetFormat", "dataset_format", "read_conversations"),
    "modeling": ("DEFAULT_TARGET_MODULES", "default_target_modules"),
    "process": ("TrainingProcess",),
    "trainer": ("Event", "TrainResult", "train"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "COMPLETE_MARKER",
    "DEFAULT_TARGET_MODULES",
    "METRICS_FILE",
    "MODEL_CARD",
    "Chat",
    "ChatEncoder",
    "DatasetFormat",
    "DatasetStats",
    "EncodedDataset",
    "Event",
    "TrainConfig",
    "TrainConfigError",
    "TrainResult",
    "TrainingCancelled",
    "TrainingCrashed",
    "TrainingError",
    "TrainingProcess",
    "adapter_base",
    "dataset_format",
    "default_target_modules",
    "encode_dataset",
    "is_adapter",
    "is_complete",
    "load_trained",
    "merge_adapter",
    "read_conversations",
    "train",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'ml.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ml.training.{module}"), name)
    globals()[name] = value
    return value
