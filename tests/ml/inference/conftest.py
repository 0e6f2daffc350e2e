"""Fixtures: two tiny bases and three LoRA adapters built locally (no downloads), and a
reference that answers with plain transformers / peft `generate`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from tests.ml.inference.support import Reference, TinyModels, make_adapter, make_lively_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    root = tmp_path_factory.mktemp("inference-models")
    base = make_lively_model(root / "base", seed=1)
    return TinyModels(
        base=base,
        other_base=make_lively_model(root / "other-base", seed=2),
        adapter_a=make_adapter(base, root / "adapter-a", seed=11),
        adapter_b=make_adapter(base, root / "adapter-b", seed=12),
        adapter_c=make_adapter(base, root / "adapter-c", seed=13),
    )


@pytest.fixture(scope="session")
def reference() -> Reference:
    return Reference()


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a busy machine the threads'
    barriers make every step wait for a descheduled core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
