"""Tiny local models, built once per session, and dataset files for the training tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml.tiny import DEFAULT_TEXTS, make_tiny_model
from tests.ml.training.support import PAIRS, pair_rows, write_jsonl


@pytest.fixture(scope="package", autouse=True)
def _offline_single_threaded() -> Iterator[None]:
    """No hub; one torch thread here and in spawned children (OMP_NUM_THREADS is inherited).

    Tiny models gain nothing from a second thread, and on a busy two-core machine OpenMP's
    spinning threads made the same run 10-20x slower.
    """
    import torch

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [*DEFAULT_TEXTS, *(text for pair in PAIRS for text in pair)]
    return make_tiny_model(tmp_path_factory.mktemp("models") / "qwen2", texts)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "llama", architecture="llama")


@pytest.fixture(scope="session")
def tokenizer(tiny_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", pair_rows())
