"""Detection: diagnose lists every attempt; forcing a format; the public names."""

from __future__ import annotations

import io
import json

from ml.parsing import FORMATS, detect, diagnose
from tests.ml.parsing.helpers import FIXTURES, parse_bytes, parse_fixture, summary


def test_formats_name_the_families_and_every_exact_format() -> None:
    assert FORMATS[:6] == ("auto", "txt", "html", "csv", "json", "zip")
    assert {
        "memotrace_txt",
        "memotrace_ai_txt",
        "chatlog_txt",
        "wechat_copy_txt",
        "memotrace_html",
        "pywxdump_html",
        "memotrace_csv",
        "pywxdump_csv",
        "chatlog_csv",
        "chatlog_json",
        "echotrace_json",
        "pywxdump_json",
        "chatlab_json",
        "chatlab_jsonl",
    } <= set(FORMATS)


def test_diagnose_reports_reasons() -> None:
    attempts = diagnose(io.BytesIO((FIXTURES / "chatlog.csv").read_bytes()))
    by_name = {attempt.format: attempt for attempt in attempts}
    assert by_name["chatlog_csv"].accepted
    assert "Time, SenderName" in by_name["chatlog_csv"].reason
    assert not by_name["memotrace_csv"].accepted
    assert "lacks" in by_name["memotrace_csv"].reason
    assert by_name["text"].reason == "decodes as UTF-8"
    assert attempts[-1].format == "auto" and attempts[-1].accepted


def test_diagnose_of_a_binary_file() -> None:
    attempts = diagnose(io.BytesIO(b"\x00\x01\x02" * 100))
    assert not attempts[-1].accepted
    assert "binary" in attempts[-1].reason


def test_forcing_an_exact_format() -> None:
    data = (FIXTURES / "memotrace.txt").read_bytes()
    assert summary(parse_bytes(data, format="memotrace_txt")) == summary(
        parse_fixture("memotrace.txt")
    )
    assert len(parse_bytes(data, format="txt")) == 12


def test_a_divider_in_a_message_is_not_an_ai_export() -> None:
    # MemoTrace's AI TXT opens with a day divider and writes each one after a blank line; the
    # same text inside another export is a message.
    rows = [
        {"seq": n, "time": f"2023-01-01T12:00:0{n}+08:00", "talker": "t", "sender": "s"}
        | {"senderName": "S", "content": text}
        for n, text in enumerate(["hi", "*****2023-01-01*****", "bye"])
    ]
    data = json.dumps(rows).encode()
    assert detect(io.BytesIO(data)) == "chatlog_json"
    assert [m.text for m in parse_bytes(data)] == ["hi", "*****2023-01-01*****", "bye"]
    for body in ("*****2023-01-01*****", "hi\n\n*****2023-01-01*****"):
        text = f"2023-01-01 12:00:00 Alice\n{body}\n\n2023-01-01 12:00:05 Bob\nyo\n"
        assert detect(io.BytesIO(text.encode())) == "memotrace_txt"
        assert [m.text for m in parse_bytes(text.encode())] == [body, "yo"]


def test_ai_dividers_count_only_on_a_line_of_their_own_after_a_blank_line() -> None:
    text = (
        "*****2024-01-01*****\n张三:看这个\n*****2024-01-02*****\n\n"
        "*****2024-01-03*****\n李四:好 *****2024-01-04*****\n"
    )
    assert detect(io.BytesIO(text.encode())) == "memotrace_ai_txt"
    assert summary(parse_bytes(text.encode())) == [
        ("张三", "2024-01-01T00:00:00+08:00", "text", "看这个\n*****2024-01-02*****", None),
        ("李四", "2024-01-03T00:00:00+08:00", "text", "好 *****2024-01-04*****", None),
    ]
