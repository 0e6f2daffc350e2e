"""The C readers (ml/parsing/_speedups.c) against their Python twins.

Both must give the same messages (every field, keys included) or the same error, whatever the
input and wherever the buffers end. The Python readers are the reference: the fixture corpus
pins their behaviour down, and these tests pin the C readers to them.
"""

from __future__ import annotations

import io
import random
import zipfile
from typing import Any

import pytest

from ml.parsing import ParsedMessage, ParseError, native, parse
from ml.parsing.formats import csvfmt, txt
from ml.parsing.limits import Limits

from .helpers import FIXTURES

try:
    from ml.parsing import _speedups  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - reported by test_the_native_readers_are_built
    _speedups = None

Outcome = list[ParsedMessage] | str


def test_the_native_readers_are_built() -> None:
    # `pip install -e .` (scripts/setup.sh) compiles them; without them parsing is 2-4x slower.
    assert _speedups is not None, "ml/parsing/_speedups.c is not built: run scripts/setup.sh"


@pytest.fixture
def outcomes(monkeypatch: pytest.MonkeyPatch) -> Any:
    """outcomes(data, chunk=None, **options) -> (native outcome, Python outcome)."""
    if _speedups is None:
        pytest.skip("the native readers are not built")

    def run(data: bytes, chunk: int | None = None, **options: Any) -> tuple[Outcome, Outcome]:
        results: list[Outcome] = []
        for reader in (_speedups, None):
            with monkeypatch.context() as patch:
                patch.setattr(native, "speedups", reader)
                if chunk is not None:
                    patch.setattr(txt, "CHUNK_CHARS", chunk)
                    patch.setattr(csvfmt, "CHUNK_CHARS", chunk)
                try:
                    results.append(list(parse(io.BytesIO(data), **options)))
                except ParseError as error:
                    results.append(f"ParseError: {error}")
        return results[0], results[1]

    return run


def _assert_same(pair: tuple[Outcome, Outcome]) -> Outcome:
    native_result, python_result = pair
    assert native_result == python_result
    return native_result


@pytest.mark.parametrize("name", ["memotrace.txt", "memotrace.csv"])
@pytest.mark.parametrize("chunk", [None, 7, 64, 1000])
def test_fixtures(outcomes: Any, name: str, chunk: int | None) -> None:
    data = (FIXTURES / name).read_bytes()
    result = _assert_same(outcomes(data, chunk))
    assert isinstance(result, list) and result
    _assert_same(outcomes(data, chunk, self_name="张三", tz="+05:45"))


# --- TXT -------------------------------------------------------------------------------------

_TXT_NAMES = ("张三", "李四", "O&#39;Brien", "Tom \\'T\\'", "", "  spaced", "😀 emoji")
_TXT_BODIES = (
    "你好",
    "好",
    "[图片]",
    "[微笑][微笑]",
    " leading space",
    "\tleading tab",
    "trailing spaces   ",
    "trailing ideographic\u3000",
    "two\nlines",
    "reply text\n引用:张三:the quoted",
    "「李四：quoted」\n- - - - - - - - - - - - - - -\nthe reply",
    "[链接]:title:A title\ndescription:d\nurl:https://example.com\nname:App",
    "line\n\n2020-01-01 00:00:00 an earlier time stays in the body",
    "line\n\n2023-13-01 00:00:00 not a real month",
    "emoji 😂 in the middle",
    "!bang",
)
_TXT_NOTICES = (
    "张三撤回了一条消息",
    '"李四" 拍了拍 "张三"',
    "你已添加了王五，现在可以开始聊天了。",
)


def _txt_export(rng: random.Random, count: int, start: int) -> bytes:
    epoch = start
    lines: list[str] = []
    for _ in range(count):
        epoch += rng.choice((0, 0, 1, 59, 3600, 86_399))
        stamp = _local(epoch)
        roll = rng.random()
        if roll < 0.1:
            lines.append(f"{stamp} {rng.choice(_TXT_NOTICES)}\n\n")
        else:
            space = rng.choice((" ", " ", "  "))
            gap = rng.choice(("\n\n", "\n\n", "\n \n", "\n\t\n\n"))
            lines.append(f"{stamp}{space}{rng.choice(_TXT_NAMES)}\n{rng.choice(_TXT_BODIES)}{gap}")
    return "".join(lines).encode()


def _local(epoch: int) -> str:
    # Wall-clock text as an exporter in UTC+8 writes it; read back in other zones too.
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch + 8 * 3600))


@pytest.mark.parametrize("seed", range(12))
def test_generated_txt(outcomes: Any, seed: int) -> None:
    rng = random.Random(seed)
    data = _txt_export(rng, 120, 1_672_502_400)
    for chunk in (5, 33, 256, None):
        _assert_same(outcomes(data, chunk))
    _assert_same(outcomes(data, 97, self_name="李四"))
    # A zone with DST changes (hours with a fold or a gap go through fromtimestamp).
    _assert_same(outcomes(data, 128, tz="America/New_York"))


def test_txt_across_dst_changes(outcomes: Any) -> None:
    # Wall-clock times through the 2023 spring-forward gap and fall-back fold in New York.
    stamps = [
        "2023-03-12 01:59:59",
        "2023-03-12 02:30:00",  # does not exist
        "2023-03-12 03:00:00",
        "2023-11-05 00:59:00",
        "2023-11-05 01:30:00",  # happens twice
        "2023-11-05 01:30:00",
        "2023-11-05 02:00:00",
    ]
    data = "".join(f"{stamp} 张三\n第{n}条\n\n" for n, stamp in enumerate(stamps)).encode()
    for chunk in (11, None):
        result = _assert_same(outcomes(data, chunk, tz="America/New_York"))
        assert isinstance(result, list) and len(result) == len(stamps)


def test_txt_steps_back_into_a_repeated_hour(outcomes: Any) -> None:
    # After 01:50 EDT a 01:10 is the repeated hour's second pass (01:10 EST), and so is the
    # 01:20 after it; 01:05 would be earlier still, so it stays in the body before it.
    stamps = [
        "2023-11-05 00:59:00",
        "2023-11-05 01:50:00",
        "2023-11-05 01:10:00",
        "2023-11-05 01:20:00",
        "2023-11-05 01:05:00",
        "2023-11-05 02:05:00",
    ]
    data = "".join(f"{stamp} 张三\n第{n}条\n\n" for n, stamp in enumerate(stamps)).encode()
    expected = [
        ("第0条", "2023-11-05T00:59:00-04:00"),
        ("第1条", "2023-11-05T01:50:00-04:00"),
        ("第2条", "2023-11-05T01:10:00-05:00"),
        ("第3条\n\n2023-11-05 01:05:00 张三\n第4条", "2023-11-05T01:20:00-05:00"),
        ("第5条", "2023-11-05T02:05:00-05:00"),
    ]
    for chunk in (11, 40, 90, None):
        result = _assert_same(outcomes(data, chunk, tz="America/New_York"))
        assert isinstance(result, list)
        assert [(m.text, m.timestamp.isoformat()) for m in result] == expected
    # The general reader (slashed dates) follows the same rule.
    slashed = _assert_same(outcomes(data.replace(b"-", b"/"), tz="America/New_York"))
    assert isinstance(slashed, list)
    assert [(m.text.replace("/", "-"), m.timestamp.isoformat()) for m in slashed] == expected


def test_txt_inside_a_zip_marks_the_member(outcomes: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("chat/张三.txt", _txt_export(random.Random(3), 40, 1_700_000_000))
    result = _assert_same(outcomes(buffer.getvalue()))
    assert isinstance(result, list)
    assert {message.raw["member"] for message in result} == {"chat/张三.txt"}


def test_txt_errors_are_the_same(outcomes: Any) -> None:
    long_body = "2023-01-01 00:00:00 张三\n" + "很长" * 40 + "\n"
    for data, limits, expected in (
        (long_body.encode(), Limits(max_field_chars=50), "a message is longer than 50"),
        (b"\n" * 30 + long_body.encode(), Limits(max_field_chars=20), "no message header"),
    ):
        native_result, python_result = outcomes(data, 16, format="memotrace_txt", limits=limits)
        assert native_result == python_result
        assert isinstance(native_result, str) and expected in native_result


# --- CSV -------------------------------------------------------------------------------------

_CSV_HEADER = (
    "localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime,Remark,"
    "NickName,Sender\n"
)
_CSV_CONTENTS = (
    "你好",
    '"with, a comma"',
    '"with ""quotes"""',
    '"two\nlines"',
    '"after the quote"tail',
    'a "quote" inside',
    '""',
    "",
    "emoji 😂",
    "[微笑]",
)
_CSV_TYPES = (
    ("1", "0", None),
    ("3", "0", '"<?xml version=""1.0""?><msg><img md5=""abc"" /></msg>"'),
    ("34", "0", '"<msg><voicemsg voicelength=""3000"" /></msg>"'),
    ("10000", "0", "张三撤回了一条消息"),
    ("49", "57", '"<msg><appmsg><title>reply</title><type>57</type></appmsg></msg>"'),
    ("49", "2000", '"<msg><appmsg><wcpayinfo><feedesc>¥1.00</feedesc></wcpayinfo></appmsg></msg>"'),
    ("x", "", "odd type"),
)


def _csv_row(rng: random.Random, local_id: int, epoch: int) -> str:
    type_code, sub_code, content = rng.choice(_CSV_TYPES)
    if content is None:
        content = rng.choice(_CSV_CONTENTS)
    created = rng.choice(
        (str(epoch), str(epoch), str(epoch * 1000), _local(epoch), "٣٤٥", " " + str(epoch))
    )
    flag = rng.choice(("1", "0", "", "2"))
    remark, nick = rng.choice((("张三", "三"), ("", "李四"), ("", ""), ('"王,五"', "")))
    wxid = rng.choice(("wxid_a", "wxid_b", ""))
    fields = [
        str(local_id),
        "7",
        type_code,
        sub_code,
        flag,
        created,
        "2",
        content,
        _local(epoch),
        remark,
        nick,
        wxid,
    ]
    if rng.random() < 0.05:
        fields = fields[: rng.randint(9, 11)]  # a short row is padded with empty fields
    elif rng.random() < 0.05:
        fields.append("extra")
    return ",".join(fields) + rng.choice(("\n", "\n", "\n\n"))


@pytest.mark.parametrize("seed", range(12))
def test_generated_csv(outcomes: Any, seed: int) -> None:
    rng = random.Random(seed)
    rows = [_csv_row(rng, n, 1_672_502_400 + n * rng.randint(0, 90)) for n in range(80)]
    data = (_CSV_HEADER + "".join(rows)).encode()
    for chunk in (3, 50, 700, None):
        result = _assert_same(outcomes(data, chunk))
        assert isinstance(result, list) and len(result) >= 80
    _assert_same(outcomes(data, 211, self_name="李四", tz="Asia/Kathmandu"))
    _assert_same(outcomes(data.replace(b",", b"\t"), 64))
    # A row whose time cannot be read fails the export, the same way in both.
    broken = (_CSV_HEADER + "".join(rows[:40]) + "41,7,1,0,1,,2,hi,,张三,,w\n").encode()
    result = _assert_same(outcomes(broken, 50))
    assert result == "ParseError: a MemoTrace CSV row has no valid time: ''"


@pytest.mark.parametrize("seed", range(40))
def test_csv_tokenizing_fuzz(outcomes: Any, seed: int) -> None:
    # Arbitrary text where StrContent goes: quotes, commas and newlines in any order. Both
    # readers must cut it into the same records (or fail the same way).
    rng = random.Random(seed)
    alphabet = ('"', '"', ",", "\n", "a", "中", " ", "😂", "1")
    lines = [_CSV_HEADER]
    for n in range(rng.randint(1, 12)):
        garbage = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        lines.append(f"{n},7,1,0,1,{1_672_502_400 + n},2,{garbage},t,张三,,wxid_a\n")
    if rng.random() < 0.5:
        lines[-1] = lines[-1].rstrip("\n")
    data = "".join(lines).encode()
    for chunk in (2, 9, None):
        _assert_same(outcomes(data, chunk))


def test_csv_field_limit_errors_are_the_same(outcomes: Any) -> None:
    # With lines shorter than a piece too: the Python reader enforces the limit itself, not
    # through the process-wide csv.field_size_limit.
    for content in ("x" * 60, '"' + "y\n" * 40 + '"', '"q' + "z" * 70, '"' + '""' * 60 + '"'):
        data = (
            _CSV_HEADER + f"1,7,1,0,1,1672502400,2,ok,t,张三,,w\n2,7,1,0,1,1672502401,2,"
            f"{content},t,张三,,w\n"
        ).encode()
        for chunk in (None, 16):
            native_result, python_result = outcomes(data, chunk, limits=Limits(max_field_chars=50))
            assert native_result == python_result
            assert isinstance(native_result, str) and "longer than 50 characters" in native_result
    # A record longer than the limit whose fields all fit it is read.
    fits = '"' + "y\n" * 20 + '"'
    data = (_CSV_HEADER + f"1,7,1,0,1,1672502400,2,{fits},{'t' * 40},张三,,w\n").encode()
    for chunk in (None, 16):
        result = _assert_same(outcomes(data, chunk, limits=Limits(max_field_chars=50)))
        assert isinstance(result, list) and result[0].text == "y\n" * 20


def test_csv_time_falls_back_to_strtime_row_by_row(outcomes: Any) -> None:
    # An empty CreateTime is read from the row's own StrTime, also as the first row and in
    # consecutive rows (the Python reader once kept the first row's time, or the epoch 0).
    rows = (
        "1,7,1,0,1,,2,first,2023-05-01 10:00:00,张三,,w\n"
        "2,7,1,0,1,,2,second,2023-06-01 10:00:00,张三,,w\n"
        "3,7,1,0,1,1672502400,2,third,,张三,,w\n"
        "4,7,1,0,1,,2,fourth,2023-07-01 10:00:00,张三,,w\n"
    )
    for chunk in (None, 20):
        result = _assert_same(outcomes((_CSV_HEADER + rows).encode(), chunk))
        assert isinstance(result, list)
        assert [(m.text, m.timestamp.isoformat()) for m in result] == [
            ("first", "2023-05-01T10:00:00+08:00"),
            ("second", "2023-06-01T10:00:00+08:00"),
            ("third", "2023-01-01T00:00:00+08:00"),
            ("fourth", "2023-07-01T10:00:00+08:00"),
        ]


def test_csv_times_out_of_range_fall_back_to_strtime(outcomes: Any) -> None:
    # Digits past the year 9999 (even as milliseconds), NaN and infinities are no time.
    rows = "".join(
        f"{i},7,1,0,1,{created},2,m{i},2023-05-01 10:00:0{i},张三,,w\n"
        for i, created in enumerate(
            ("253402214399001", "999999999999999", "99999999999999999999", "nan", "1e400")
        )
    )
    ok = "9,7,1,0,1,253402214399000,2,last,,张三,,w\n"  # 9999-12-30 23:59:59 UTC, in ms
    for chunk in (None, 20):
        result = _assert_same(outcomes((_CSV_HEADER + rows + ok).encode(), chunk))
        assert isinstance(result, list)
        assert [m.timestamp.isoformat() for m in result] == [
            *(f"2023-05-01T10:00:0{i}+08:00" for i in range(5)),
            "9999-12-31T07:59:59+08:00",
        ]
    result = _assert_same(outcomes((_CSV_HEADER + ok.replace("000,", "001,")).encode()))
    assert result == "ParseError: a MemoTrace CSV row has no valid time: '253402214399001'"


def test_csv_records_with_too_many_fields_fail_the_same(outcomes: Any) -> None:
    first = "1,7,1,0,1,1672502400,2,ok,t,张三,,w\n"
    wide = (_CSV_HEADER + first + "a," * 100_000 + "\n").encode()  # 200 KB in one record
    for chunk in (None, 1000):
        result = _assert_same(outcomes(wide, chunk))
        assert result == (
            "ParseError: the CSV record on line 3 has more than 500 fields; the file is not a "
            "chat export or is damaged"
        )
    # Delimiters inside quotes do not count; the error names the line the record starts on.
    fourteen = '1,7,1,0,1,1672502400,2,"a,b,c\nd,e,f",t,张三,,w,x,y\n'
    fifteen = '2,7,1,0,1,1672502401,2,"a,\nb",t,张三,,w,x,y,z\n'
    long_first = '3,7,1,0,1,1672502402,2,"' + "x" * 30 + '",t,张三,,w,x,y,z\n'
    limits = Limits(max_field_chars=20, max_csv_fields=14)
    for chunk in (None, 3, 16, 50):
        result = _assert_same(outcomes((_CSV_HEADER + fourteen).encode(), chunk, limits=limits))
        assert isinstance(result, list) and result[0].text == "a,b,c\nd,e,f"
        result = _assert_same(
            outcomes((_CSV_HEADER + fourteen + fifteen).encode(), chunk, limits=limits)
        )
        assert isinstance(result, str) and "record on line 4 has more than 14 fields" in result
        # A field over the limit before the extra delimiter fails first.
        result = _assert_same(
            outcomes((_CSV_HEADER + fourteen + long_first).encode(), chunk, limits=limits)
        )
        assert isinstance(result, str) and "field on line 4 is longer than 20" in result


# --- JSON lines --------------------------------------------------------------------------------


def _orjson_lines(messages: list[ParsedMessage]) -> bytes:
    import orjson

    return b"".join(
        orjson.dumps(message._asdict(), option=orjson.OPT_APPEND_NEWLINE) for message in messages
    )


def test_json_lines_are_orjsons_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from ml.parsing.cli import encode_lines

    if _speedups is None:
        pytest.skip("the native readers are not built")
    shanghai, new_york = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")
    tricky = "".join(chr(code) for code in range(0x80)) + '"\\/\u2028\ufeff😂中文'
    whens = [
        datetime(2023, 1, 1, 8, tzinfo=shanghai),
        datetime(2023, 1, 1, 8, 0, 0, 5, tzinfo=shanghai),  # microseconds: orjson writes it
        datetime(1900, 1, 1, 8, tzinfo=shanghai),  # an offset with seconds (LMT)
        datetime(2023, 11, 5, 1, 30, tzinfo=new_york),
        datetime(2023, 11, 5, 1, 30, fold=1, tzinfo=new_york),
        datetime(2023, 6, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2023, 6, 1, tzinfo=UTC),
    ]
    raws: list[dict[str, Any]] = [
        {},
        {"local_id": "1", "chat_id": tricky},
        {"quote": {"sender": "张三", "text": "hi"}},
        {"n": 3, "ok": True},
    ]
    messages = [
        ParsedMessage(sender, sender_id, when, text, kind, is_self, raw, "h:1:2")
        for sender, sender_id, text, kind, is_self in (
            ("张三", None, "你好", "text", None),
            (tricky, "wxid_a", tricky, "image", True),
            ("", None, "", "system", False),
        )
        for when in whens
        for raw in raws
    ]
    messages += parse_fixture_messages()
    assert encode_lines(messages) == _orjson_lines(messages)
    monkeypatch.setattr(native, "speedups", None)
    assert encode_lines(messages) == _orjson_lines(messages)


def parse_fixture_messages() -> list[ParsedMessage]:
    messages: list[ParsedMessage] = []
    for name in ("memotrace.txt", "memotrace.csv", "chatlog.json", "pywxdump.csv"):
        with (FIXTURES / name).open("rb") as source:
            messages += parse(source)
    return messages
