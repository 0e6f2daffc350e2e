"""Hostile and broken inputs end in one clear ParseError, never another exception."""

from __future__ import annotations

import io
import json
import os

import orjson
import pytest

from ml.parsing import Limits, ParseError, parse
from tests.ml.parsing.helpers import FIXTURES, parse_bytes


def _error(data: bytes, **options: object) -> str:
    with pytest.raises(ParseError) as caught:
        parse_bytes(data, **options)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_empty_file() -> None:
    assert "empty" in _error(b"")


def test_whitespace_only() -> None:
    assert "only whitespace" in _error(b" \n\r\n\t\n")


def test_binary_renamed_txt() -> None:
    assert "binary" in _error(os.urandom(4096).replace(b"PK", b"pk") + b"\x00\x00")


def test_png_renamed_txt_says_what_it_is() -> None:
    assert "PNG image" in _error(b"\x89PNG\r\n\x1a\n" + os.urandom(512))


def test_wechat_database_says_what_it_is() -> None:
    assert "SQLite database" in _error(b"SQLite format 3\x00" + bytes(1000))


def test_invalid_utf8() -> None:
    data = b"2024-01-01 10:00:00 \xe5\xbc\xa0\xe4\xb8\x89\n\xc3\x28 broken \xff\n\n"
    assert "not text in a supported encoding" in _error(data)


def test_invalid_utf8_after_the_head() -> None:
    good = "".join(
        f"2024-01-01 10:{i // 60 % 60:02d}:{i % 60:02d} 张三\n你好\n\n" for i in range(12_000)
    ).encode()
    assert len(good) > 256 * 1024
    message = _error(good + b"2024-01-02 10:00:00 \xe5\xbc\n\xff\xfe\xfd\n\n")
    assert "stops being valid UTF-8" in message


def test_unknown_format_lists_what_was_tried() -> None:
    message = _error("这只是一段普通的文字，\n不是聊天记录。\n".encode())
    assert message.startswith("this is not a known export format; tried:")
    assert "memotrace_txt" in message and "chatlog_csv" in message


def test_json_of_another_shape() -> None:
    assert "not a known export format" in _error(b'{"hello": "world"}')


def test_truncated_html() -> None:
    page = (FIXTURES / "memotrace.html").read_bytes()
    cut = page[: page.index("displayname:'小明',title".encode())]
    assert "truncated" in _error(cut)


def test_html_truncated_before_its_messages() -> None:
    page = (FIXTURES / "memotrace.html").read_bytes()
    message = _error(page[: page.index(b"<script>")])
    assert "chatMessages" in message


@pytest.mark.parametrize("escape", ["\\u12", "\\u{}", "\\u"])
def test_html_with_a_broken_unicode_escape(escape: str) -> None:
    page = (FIXTURES / "memotrace.html").read_bytes()
    broken = page.replace("第一行".encode(), f"第一行{escape}".encode(), 1)
    assert broken != page
    message = _error(broken)
    assert "invalid \\u escape" in message
    assert "IndexError" not in message


@pytest.mark.parametrize("stamp", [b"1e30", b"NaN", b"Infinity", b"-1e20", b"true", b"'x'"])
def test_html_with_an_impossible_timestamp(stamp: bytes) -> None:
    page = (FIXTURES / "memotrace.html").read_bytes()
    broken = page.replace(b"timestamp:1704038400,", b"timestamp:" + stamp + b",", 1)
    assert broken != page
    assert "a MemoTrace message has no valid timestamp" in _error(broken)


def test_html_timestamps_in_milliseconds() -> None:
    page = (FIXTURES / "memotrace.html").read_bytes()
    seconds = parse_bytes(page)
    millis = parse_bytes(page.replace(b"timestamp:1704038400,", b"timestamp:1704038400000,"))
    assert millis == seconds


@pytest.mark.parametrize("time", ["nan", "inf", "1e400", "99999999999999999999"])
def test_json_with_an_impossible_time(time: str) -> None:
    item = json.loads((FIXTURES / "chatlog.json").read_text(encoding="utf-8"))[0]
    message = _error(json.dumps([dict(item, time=time)]).encode())
    assert message == f"a chatlog message has no valid time: {time!r}"


def test_truncated_json() -> None:
    data = (FIXTURES / "chatlog.json").read_bytes()
    assert "truncated" in _error(data[: len(data) // 2])


def test_csv_with_a_10_mb_field() -> None:
    header = b"localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent,StrTime\n"
    row = b'1,2,1,0,0,1704067200,2,"' + b"x" * (10 * 1024 * 1024) + b'",2024-01-01 08:00:00\n'
    message = _error(header + row)
    assert "longer than 1,000,000 characters" in message


def test_a_csv_field_limit_stays_with_its_parse() -> None:
    # csv.field_size_limit is one value for the process: a parse must not leave its own limit
    # there for the parses after it or beside it (in other threads, or interleaved as here).
    data = (FIXTURES / "pywxdump.csv").read_bytes()
    small = Limits(max_field_chars=8)
    beside = parse(io.BytesIO(data))
    first = next(beside)
    with pytest.raises(ParseError, match="longer than 8 characters"):
        list(parse(io.BytesIO(data), limits=small))
    assert [first, *beside] == parse_bytes(data)
    # Detection reads the header with the csv module too: "CreateTime" is longer than 8.
    assert parse_bytes(data)
    long_column = data.replace(b"CreateTime", b"CreateTime" + b"_" * 200, 1)
    with pytest.raises(ParseError, match="longer than 8 characters"):
        parse_bytes(long_column, limits=small)
    assert parse_bytes(long_column, format="pywxdump_csv")


def test_txt_with_an_endless_message() -> None:
    data = b"2024-01-01 10:00:00 A\nhi\n\n2024-01-01 10:00:01 B\n" + b"y" * 3_000_000
    assert "longer than" in _error(data)


def test_lines_without_end_are_refused_before_they_are_read_whole() -> None:
    # ChatLab JSONL and MemoTrace AI TXT read a line at a time: 3 MB without a newline fails
    # at the limit (the readers read at most one character past it).
    chatlab = (
        b'{"_type":"header","chatlab":{"version":"0.1"},"meta":{}}\n'
        b'{"_type":"message","timestamp":1700000000,"sender":"a","type":0,"content":"hi"}\n'
    )
    assert "line 3 of the ChatLab JSONL is longer than 1,000,000" in _error(
        chatlab + b"x" * 3_000_000
    )
    ai = b"*****2024-01-01*****\nAlice:hi\n" + b"y" * 3_000_000
    assert "longer than 1,000,000" in _error(ai)


def test_csv_record_with_too_many_fields() -> None:
    # One 300 KB record of empty fields: refused by its width, not read into a huge row.
    chatlog = b"Time,SenderName,Sender,TalkerName,Talker,Content\n2023-01-01 12:00:00,A,a,T,t,hi\n"
    memotrace = b"localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent\n"
    for data in (chatlog, memotrace):
        message = _error(data + b"," * 300_000 + b"\n")
        assert "has more than 500 fields" in message


def test_hostile_text_is_sniffed_in_linear_time() -> None:
    # Each of these once took minutes to sniff (a regular expression retrying every "[" or
    # "*" of a long line against the rest of it); sniffing reads 256 KiB of every upload.
    for data in (b"\n\n" + b"a [" * 70_000, b"\n\n" + b"a(b) [" * 35_000, b"*" * 210_000):
        assert "not a known export format" in _error(data)


def test_html_whose_text_holds_script_stays_text() -> None:
    messages = parse_bytes((FIXTURES / "memotrace.html").read_bytes())
    assert messages[1].text.startswith("<script>alert('x')</script>")
    assert messages[1].kind == "text"


def test_deeply_nested_json() -> None:
    first = (FIXTURES / "chatlog.json").read_bytes().rstrip()[:-1]  # drop the closing ]
    assert "too deeply" in _error(first + b', {"seq": 2, "contents": ' + b"[" * 200_000)
    assert "not a known export format" in _error(b"[" * 200_000)


def test_json_values_are_made_storable() -> None:
    row = {
        "seq": 10**30,
        "time": "2024-01-01T12:00:00+08:00",
        "talker": "a",
        "sender": "wxid_\ud800",
        "senderName": "张三",
        "isSelf": False,
        "type": 1,
        "subType": 0,
        "content": "hi \ud83d",
        "contents": {"n": 10**40, "f": float("nan")},
    }
    [message] = parse_bytes(json.dumps([row]).encode())
    assert message.text == "hi \ufffd"
    assert message.sender_id == "wxid_\ufffd"
    assert message.raw["n"] == str(10**40)
    assert message.raw["f"] is None
    assert len(message.key) <= 64
    orjson.dumps(message._asdict())


def test_export_with_no_messages() -> None:
    header = b"localId,TalkerId,Type,SubType,IsSender,CreateTime,Status,StrContent\n"
    assert "no messages found in this memotrace_csv" in _error(header)


def test_unknown_format_name_and_time_zone() -> None:
    data = (FIXTURES / "memotrace.txt").read_bytes()
    with pytest.raises(ParseError, match="unknown format"):
        parse(io.BytesIO(data), format="docx")
    with pytest.raises(ParseError, match="unknown time zone"):
        parse(io.BytesIO(data), tz="Mars/Olympus")


def test_forcing_the_wrong_format() -> None:
    data = (FIXTURES / "memotrace.txt").read_bytes()
    with pytest.raises(ParseError, match="not a csv export"):
        parse(io.BytesIO(data), format="csv")
    with pytest.raises(ParseError, match="not a zip archive"):
        parse(io.BytesIO(data), format="zip")


def test_small_field_limit_applies_to_json_elements() -> None:
    data = (FIXTURES / "chatlog.json").read_bytes()
    with pytest.raises(ParseError, match="longer than 50 characters"):
        list(parse(io.BytesIO(data), limits=Limits(max_field_chars=50)))
