"""Fine-tuning datasets from chat messages: sessions, turns, filters, PII scrubbing, dedupe,
eval split and the prompt_completion / sharegpt / alpaca formats, written as a stream.

    stats = build_dataset(messages, DatasetSpec(persona=("张伟",)), train_file, eval_file)
"""

from ml.datasets.build import (
    DatasetInputError,
    DatasetStats,
    RenderedExample,
    build_dataset,
    iter_examples,
    preview,
)
from ml.datasets.formats import llamafactory_dataset_info
from ml.datasets.messages import KIND_PLACEHOLDERS, KINDS, DatasetMessage, MessageKind
from ml.datasets.pii import PII_TYPES, PLACEHOLDERS, Scrubber, ScrubberError, StreamMasker
from ml.datasets.spec import (
    FORMATS,
    DatasetFormat,
    DatasetSpec,
    DedupeOptions,
    Filters,
    LabelCondition,
    PiiOptions,
    SpecError,
    SplitOptions,
)

__all__ = [
    "FORMATS",
    "KINDS",
    "KIND_PLACEHOLDERS",
    "PII_TYPES",
    "PLACEHOLDERS",
    "DatasetFormat",
    "DatasetInputError",
    "DatasetMessage",
    "DatasetSpec",
    "DatasetStats",
    "DedupeOptions",
    "Filters",
    "LabelCondition",
    "MessageKind",
    "PiiOptions",
    "RenderedExample",
    "Scrubber",
    "ScrubberError",
    "SpecError",
    "SplitOptions",
    "StreamMasker",
    "build_dataset",
    "iter_examples",
    "llamafactory_dataset_info",
    "preview",
]
