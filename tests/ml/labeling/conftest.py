"""Shared fixtures: weft's labeled set and a tiny transformers encoder built locally."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ml.labeling.supervision import TrainingExample

os.environ.setdefault("HF_HUB_OFFLINE", "1")

GOLD = Path(__file__).parent / "data" / "gold.jsonl"


def gold_examples() -> list[TrainingExample]:
    """The hand-labeled Chinese workplace messages under data/gold.jsonl."""
    examples = []
    with GOLD.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            examples.append(
                TrainingExample(
                    row["text"], row["sentiment"], row["intent"], frozenset(row["topics"])
                )
            )
    return examples


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init Qwen2 (hidden size 64) whose tokenizer is trained on the labeled set."""
    from ml.tiny import make_tiny_model

    texts = [e.text for e in gold_examples()]
    return make_tiny_model(tmp_path_factory.mktemp("tiny-encoder"), texts, vocab_size=600)
