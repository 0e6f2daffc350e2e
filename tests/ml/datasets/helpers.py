"""Building a dataset in memory and reading it back, for tests."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import orjson

from ml.datasets import (
    DatasetMessage,
    DatasetSpec,
    DatasetStats,
    DedupeOptions,
    SplitOptions,
    build_dataset,
)


def spec(**fields: Any) -> DatasetSpec:
    """A spec for tests: no eval split and no dedupe unless asked for."""
    fields.setdefault("split", SplitOptions(eval_ratio=0.0))
    fields.setdefault("dedupe", DedupeOptions(exact=False, near=False))
    return DatasetSpec(**fields)


def read_jsonl(data: bytes) -> list[dict[str, Any]]:
    assert data == b"" or data.endswith(b"\n")
    return [orjson.loads(line) for line in data.splitlines()]


def build(
    messages: Iterable[DatasetMessage], dataset_spec: DatasetSpec
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], DatasetStats, bytes, bytes]:
    train, evaluation = io.BytesIO(), io.BytesIO()
    stats = build_dataset(messages, dataset_spec, train, evaluation)
    return (
        read_jsonl(train.getvalue()),
        read_jsonl(evaluation.getvalue()),
        stats,
        train.getvalue(),
        evaluation.getvalue(),
    )


def records(messages: Iterable[DatasetMessage], **fields: Any) -> list[dict[str, Any]]:
    return build(messages, spec(**fields))[0]


def pairs(messages: Iterable[DatasetMessage], **fields: Any) -> list[tuple[str, str]]:
    return [(r["prompt"], r["completion"]) for r in records(messages, **fields)]
