"""Accuracy and macro-F1."""

from __future__ import annotations

import pytest

from ml.labeling.metrics import multi_label_scores, single_label_scores


def test_single_label_perfect() -> None:
    scores = single_label_scores(["a", "b", "b"], ["a", "b", "b"])

    assert (scores.accuracy, scores.macro_f1, scores.support) == (1.0, 1.0, 3)


def test_macro_f1_weighs_rare_values_like_frequent_ones() -> None:
    gold = ["neutral"] * 8 + ["negative"] * 2
    predicted: list[str | None] = ["neutral"] * 10

    scores = single_label_scores(gold, predicted)

    assert scores.accuracy == 0.8
    assert scores.f1 == {"negative": 0.0, "neutral": pytest.approx(0.8889, abs=1e-4)}
    assert scores.macro_f1 == pytest.approx(0.4444, abs=1e-4)


def test_a_missing_prediction_is_wrong_but_invents_no_value() -> None:
    scores = single_label_scores(["a", "b"], ["a", None])

    assert scores.accuracy == 0.5
    assert scores.f1 == {"a": 1.0, "b": 0.0}


def test_multi_label_scores() -> None:
    gold = [frozenset({"工资"}), frozenset({"工资", "加班"}), frozenset()]
    predicted = [frozenset({"工资"}), frozenset({"工资"}), frozenset({"会议"})]

    scores = multi_label_scores(gold, predicted)

    assert scores.accuracy == pytest.approx(1 / 3, abs=1e-4)
    assert scores.f1 == {"会议": 0.0, "加班": 0.0, "工资": 1.0}
    assert scores.macro_f1 == pytest.approx(1 / 3, abs=1e-4)


def test_empty_and_mismatched_inputs() -> None:
    assert single_label_scores([], []).support == 0
    assert multi_label_scores([frozenset()], [frozenset()]).macro_f1 == 1.0
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        single_label_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="label sets"):
        multi_label_scores([frozenset()], [])
