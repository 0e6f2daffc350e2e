"""Accuracy and macro-F1 for single-label and multi-label predictions.

Macro-F1 averages the F1 of every value that occurs in the gold labels or the predictions, so
that a rare value weighs as much as a frequent one and inventing a value costs. A missing
prediction (None) is simply wrong. For topic (multi-label) accuracy is exact-set accuracy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ml.labeling.hits import Key


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float
    f1: dict[str, float]  # per value
    support: int


@dataclass(frozen=True)
class KeyMetrics:
    """How one key's head did on the held-out split (accuracy and macro_f1 None without one)."""

    key: Key
    labels: tuple[str, ...]
    train_size: int
    holdout_size: int
    accuracy: float | None = None
    macro_f1: float | None = None
    f1: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Metrics:
    train_size: int
    holdout_size: int
    keys: dict[Key, KeyMetrics]
    notes: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metrics:
        """The inverse of `to_dict`."""
        return cls(
            train_size=int(data["train_size"]),
            holdout_size=int(data["holdout_size"]),
            notes=tuple(data.get("notes", ())),
            keys={
                key: KeyMetrics(
                    key=key,
                    labels=tuple(m["labels"]),
                    train_size=int(m["train_size"]),
                    holdout_size=int(m["holdout_size"]),
                    accuracy=m["accuracy"],
                    macro_f1=m["macro_f1"],
                    f1=dict(m["f1"]),
                )
                for key, m in data["keys"].items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for the models table."""
        return {
            "train_size": self.train_size,
            "holdout_size": self.holdout_size,
            "notes": list(self.notes),
            "keys": {
                key: {
                    "labels": list(m.labels),
                    "train_size": m.train_size,
                    "holdout_size": m.holdout_size,
                    "accuracy": m.accuracy,
                    "macro_f1": m.macro_f1,
                    "f1": m.f1,
                }
                for key, m in self.keys.items()
            },
        }


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def single_label_scores(gold: Sequence[str], predicted: Sequence[str | None]) -> Scores:
    """Scores of one-value-per-item predictions against gold values."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        return Scores(0.0, 0.0, {}, 0)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        if g == p:
            tp[g] += 1
        else:
            fn[g] += 1
            if p is not None:
                fp[p] += 1
    labels = sorted(set(gold) | {p for p in predicted if p is not None})
    f1 = {label: round(_f1(tp[label], fp[label], fn[label]), 4) for label in labels}
    accuracy = sum(tp.values()) / len(gold)
    return Scores(round(accuracy, 4), round(sum(f1.values()) / len(f1), 4), f1, len(gold))


def multi_label_scores(
    gold: Sequence[frozenset[str]], predicted: Sequence[frozenset[str]]
) -> Scores:
    """Scores of label-set predictions; an item with no gold and no predicted label counts for
    accuracy only."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold label sets but {len(predicted)} predictions")
    if not gold:
        return Scores(0.0, 0.0, {}, 0)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    exact = 0
    for g, p in zip(gold, predicted, strict=True):
        exact += g == p
        tp.update(g & p)
        fp.update(p - g)
        fn.update(g - p)
    labels = sorted(set().union(*gold, *predicted))
    f1 = {label: round(_f1(tp[label], fp[label], fn[label]), 4) for label in labels}
    macro = sum(f1.values()) / len(f1) if f1 else 1.0
    return Scores(round(exact / len(gold), 4), round(macro, 4), f1, len(gold))
