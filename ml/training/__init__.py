"""LoRA and full fine-tuning of causal language models on weft's JSONL datasets.

Pure domain code: files in, files out. `train` runs in the calling process; `TrainingProcess`
runs it in a child process that can be cancelled at once. Heavy imports (torch, transformers,
peft) happen when this package is imported: keep it out of the API process.
"""

from ml.training.adapters import adapter_base, is_adapter, load_trained, merge_adapter
from ml.training.artifacts import COMPLETE_MARKER, METRICS_FILE, MODEL_CARD, is_complete
from ml.training.config import TrainConfig
from ml.training.encoding import ChatEncoder, DatasetStats, EncodedDataset, encode_dataset
from ml.training.errors import TrainConfigError, TrainingCancelled, TrainingCrashed, TrainingError
from ml.training.formats import Chat, DatasetFormat, dataset_format, read_conversations
from ml.training.modeling import DEFAULT_TARGET_MODULES, default_target_modules
from ml.training.process import TrainingProcess
from ml.training.trainer import Event, TrainResult, train

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
