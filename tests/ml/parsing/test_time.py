"""Timestamps: aware, in the requested zone, right across DST changes and boundaries."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ml.parsing.clock import Clock, parse_time_text
from ml.parsing.keys import KeyMaker
from tests.ml.parsing.helpers import parse_bytes, parse_fixture

NEW_YORK = ZoneInfo("America/New_York")


def test_local_times_across_dst_changes() -> None:
    data = (
        b"2024-03-10 01:59:59 A\nbefore spring\n\n"
        b"2024-03-10 03:00:00 A\nafter spring\n\n"
        b"2024-11-03 00:59:00 A\nbefore fall\n\n"
        b"2024-11-03 01:30:00 A\nambiguous\n\n"
    )
    messages = parse_bytes(data, tz="America/New_York")
    offsets = [m.timestamp.utcoffset() for m in messages]
    assert offsets == [
        timedelta(hours=-5),
        timedelta(hours=-4),
        timedelta(hours=-4),
        timedelta(hours=-4),
    ]
    assert [m.timestamp.replace(tzinfo=None) for m in messages] == [
        datetime(2024, 3, 10, 1, 59, 59),
        datetime(2024, 3, 10, 3, 0, 0),
        datetime(2024, 11, 3, 0, 59, 0),
        datetime(2024, 11, 3, 1, 30, 0),
    ]


def test_epochs_across_a_dst_fold_match_fromtimestamp() -> None:
    header = "localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent\n"
    epochs = [1730611800 + step * 600 for step in range(12)]  # 01:30 EDT .. past 01:30 EST
    rows = "".join(f"{i},1,1,0,0,{epoch},2,m{i}\n" for i, epoch in enumerate(epochs))
    messages = parse_bytes((header + rows).encode(), tz="America/New_York")
    for message, epoch in zip(messages, epochs, strict=True):
        expected = datetime.fromtimestamp(epoch, NEW_YORK)
        assert message.timestamp == expected
        assert message.timestamp.utcoffset() == expected.utcoffset()
        assert message.timestamp.fold == expected.fold


def test_midnight_and_year_boundaries() -> None:
    messages = parse_fixture("memotrace.txt")
    assert messages[1].timestamp.isoformat() == "2023-12-31T23:59:59+08:00"
    assert messages[2].timestamp.isoformat() == "2024-01-01T00:00:00+08:00"
    slash = parse_fixture("memotrace_slash.txt")
    assert slash[-1].timestamp.isoformat() == "2024-01-06T00:00:00+08:00"


def test_fast_paths_make_the_same_keys_as_keymaker() -> None:
    for name in ("memotrace.txt", "memotrace.csv"):
        keys = KeyMaker()
        for message in parse_fixture(name):
            expected = keys.hashed(message.sender, int(message.timestamp.timestamp()), message.text)
            assert message.key == expected, name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1704038400, 1704038400.0),
        ("1704038400", 1704038400.0),
        (1704038400123, 1704038400.123),  # milliseconds, told apart by size
        ("1704038400123", 1704038400.123),
        ("2024-01-01 00:00:00", 1704038400),
        ("2024-01-01T00:00:00+08:00", 1704038400.0),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("-Infinity", None),
        ("1e400", None),
        (float("nan"), None),
        (float("inf"), None),
        (1e30, None),
        (10**400, None),
        ("99999999999999999999", None),
        ("²", None),  # a digit to str.isdigit, not to int()
        ("0001-01-01 00:00:00", None),  # year 0 in UTC
        ("9999-12-31T23:00:00-05:00", None),  # past the year 9999 in UTC
        (True, None),
    ],
)
def test_parse_time_text(value: object, expected: float | None) -> None:
    assert parse_time_text(Clock(ZoneInfo("Asia/Shanghai")), value) == expected
