"""Detection: diagnose lists every attempt; forcing a format; the public names."""

from __future__ import annotations

import io

from ml.parsing import FORMATS, diagnose
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
