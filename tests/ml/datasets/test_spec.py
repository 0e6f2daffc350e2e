from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from ml.datasets import (
    DatasetSpec,
    DedupeOptions,
    Filters,
    LabelCondition,
    PiiOptions,
    SpecError,
    SplitOptions,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def full_spec() -> DatasetSpec:
    return DatasetSpec(
        format="sharegpt",
        persona=("张伟", "Zhang Wei"),
        system_prompt="你是张伟。",
        session_gap_seconds=600,
        merge_consecutive=False,
        max_context_turns=2,
        filters=Filters(
            labels=(
                LabelCondition("topic", "eq", ("工资纠纷",)),
                LabelCondition("sentiment", "ne", ("negative",), scope="message"),
                LabelCondition("intent", "not_in", ["ad", "spam"]),  # type: ignore[arg-type]
            ),
            senders=("小李",),
            exclude_senders=("客服",),
            since=datetime(2024, 1, 1, tzinfo=SHANGHAI),
            until=datetime(2024, 7, 1, tzinfo=UTC),
            non_text="placeholder",
            min_length=2,
            max_length=500,
        ),
        pii=PiiOptions(enabled=True, names=("王小明",)),
        dedupe=DedupeOptions(exact=True, near=False, min_chars=30),
        split=SplitOptions(eval_ratio=0.1, seed=42),
    )


def test_json_round_trip_is_exact_and_stable() -> None:
    spec = full_spec()
    text = spec.to_json()
    again = DatasetSpec.from_json(text)
    assert again == spec
    assert again.to_json() == text
    # canonical: sorted keys, compact, every field present
    obj = orjson.loads(text)
    assert list(obj) == sorted(obj)
    assert set(obj) == {
        "version",
        "format",
        "persona",
        "system_prompt",
        "session_gap_seconds",
        "merge_consecutive",
        "max_context_turns",
        "filters",
        "pii",
        "dedupe",
        "split",
    }
    assert " " not in text.replace("Zhang Wei", "")
    assert obj["filters"]["since"] == "2024-01-01T00:00:00+08:00"


def test_default_spec_round_trip_and_defaults() -> None:
    spec = DatasetSpec()
    assert DatasetSpec.from_json(spec.to_json()) == spec
    assert spec.format == "prompt_completion"
    assert spec.session_gap == timedelta(minutes=30)
    assert spec.merge_consecutive is True
    assert spec.pii.enabled is True
    assert spec.dedupe.exact and spec.dedupe.near


def test_partial_json_takes_defaults() -> None:
    spec = DatasetSpec.from_json('{"persona": ["张伟"], "filters": {"non_text": "placeholder"}}')
    assert spec == DatasetSpec(persona=("张伟",), filters=Filters(non_text="placeholder"))


def test_lists_and_single_strings_become_tuples_so_a_spec_is_hashable() -> None:
    assert LabelCondition("topic", "eq", "工资纠纷").values == ("工资纠纷",)  # type: ignore[arg-type]
    spec = DatasetSpec(
        persona=["张伟"],  # type: ignore[arg-type]
        filters=Filters(labels=[LabelCondition("topic", "in", ["a", "b"])]),  # type: ignore[arg-type]
    )
    assert spec.persona == ("张伟",)
    assert spec.filters.labels[0].values == ("a", "b")
    assert hash(spec) == hash(DatasetSpec.from_json(spec.to_json()))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[]", "spec"),
        ("{not json", "spec"),
        ('{"colour": 1}', "colour"),
        ('{"version": 2}', "version"),
        ('{"format": "csv"}', "format"),
        ('{"persona": "张伟"}', "persona"),
        ('{"persona": [""]}', "persona[0]"),
        ('{"session_gap_seconds": 0}', "session_gap_seconds"),
        ('{"session_gap_seconds": 1800.5}', "session_gap_seconds"),
        ('{"merge_consecutive": 1}', "merge_consecutive"),
        ('{"max_context_turns": true}', "max_context_turns"),
        ('{"max_context_turns": 65}', "max_context_turns"),
        ('{"system_prompt": "hi"}', "system_prompt"),
        ('{"filters": {"colour": 1}}', "filters.colour"),
        ('{"filters": {"labels": {}}}', "filters.labels"),
        (
            '{"filters": {"labels": [{"key": "t", "op": "like", "values": ["a"]}]}}',
            "filters.labels[0].op",
        ),
        (
            '{"filters": {"labels": [{"key": "t", "op": "eq", "values": ["a", "b"]}]}}',
            "filters.labels[0].values",
        ),
        (
            '{"filters": {"labels": [{"key": "t", "op": "in", "values": []}]}}',
            "filters.labels[0].values",
        ),
        ('{"filters": {"labels": [{"key": "t", "op": "in"}]}}', "filters.labels[0].values"),
        (
            '{"filters": {"labels": [{"key": " ", "op": "eq", "values": ["a"]}]}}',
            "filters.labels[0].key",
        ),
        (
            '{"filters": {"labels": [{"key": "t", "op": "eq", "values": ["a"], "scope": "x"}]}}',
            "filters.labels[0].scope",
        ),
        ('{"filters": {"since": "2024-01-01T00:00:00"}}', "filters.since"),
        ('{"filters": {"since": "yesterday"}}', "filters.since"),
        (
            '{"filters": {"since": "2024-02-01T00:00:00+08:00",'
            ' "until": "2024-01-01T00:00:00+08:00"}}',
            "filters.until",
        ),
        ('{"filters": {"non_text": "keep"}}', "filters.non_text"),
        ('{"filters": {"min_length": -1}}', "filters.min_length"),
        ('{"filters": {"min_length": 10, "max_length": 5}}', "filters.max_length"),
        ('{"filters": 5}', "filters"),
        ('{"filters": {"labels": 5}}', "filters.labels"),
        ('{"filters": {"labels": ["a"]}}', "filters.labels[0]"),
        ('{"pii": "x"}', "pii"),
        ('{"dedupe": []}', "dedupe"),
        ('{"split": null}', "split"),
        ('{"pii": {"names": ["王"]}}', "pii.names[0]"),
        ('{"pii": {"enabled": "yes"}}', "pii.enabled"),
        ('{"dedupe": {"min_chars": 2}}', "dedupe.min_chars"),
        ('{"dedupe": {"max_distance": 3}}', "dedupe.max_distance"),
        ('{"split": {"eval_ratio": 1}}', "split.eval_ratio"),
        ('{"split": {"eval_ratio": -0.1}}', "split.eval_ratio"),
        ('{"split": {"seed": -1}}', "split.seed"),
        (
            '{"persona": ["客服"], "filters": {"exclude_senders": ["客服"]}}',
            "filters.exclude_senders",
        ),
    ],
)
def test_bad_specs_name_the_field(text: str, field: str) -> None:
    with pytest.raises(SpecError) as caught:
        DatasetSpec.from_json(text)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert caught.value.message


def test_a_nested_value_that_is_not_an_object_says_so() -> None:
    with pytest.raises(SpecError) as caught:
        DatasetSpec.from_json('{"filters": 5}')
    assert str(caught.value) == "filters: must be a JSON object, not a number"


def test_direct_construction_validates_too() -> None:
    with pytest.raises(SpecError, match="timezone-aware"):
        Filters(since=datetime(2024, 1, 1))
    with pytest.raises(SpecError, match="exactly one value"):
        LabelCondition("sentiment", "ne", ("a", "b"))
    with pytest.raises(SpecError) as caught:
        DatasetSpec(format="prompt_completion", system_prompt="你是张伟")
    assert caught.value.field == "system_prompt"


@pytest.mark.parametrize(
    ("condition", "labels", "expected"),
    [
        (LabelCondition("topic", "eq", ("工资纠纷",)), {"topic": ["工资纠纷", "工作"]}, True),
        (LabelCondition("topic", "eq", ("工资纠纷",)), {"topic": ["工作"]}, False),
        (LabelCondition("topic", "eq", ("工资纠纷",)), {}, False),
        (LabelCondition("sentiment", "ne", ("negative",)), {"sentiment": ["negative"]}, False),
        (LabelCondition("sentiment", "ne", ("negative",)), {"sentiment": ["positive"]}, True),
        (LabelCondition("sentiment", "ne", ("negative",)), {}, True),
        (LabelCondition("topic", "in", ("a", "b")), {"topic": ["b"]}, True),
        (LabelCondition("topic", "in", ("a", "b")), {"topic": ["c"]}, False),
        (LabelCondition("topic", "not_in", ("a", "b")), {"topic": ["c"]}, True),
        (LabelCondition("topic", "not_in", ("a", "b")), {"topic": ["c", "a"]}, False),
    ],
)
def test_label_condition_semantics(
    condition: LabelCondition, labels: dict[str, list[str]], expected: bool
) -> None:
    assert condition.matches(labels) is expected
