"""The same export reads the same in every encoding and line ending people produce."""

from __future__ import annotations

import codecs

import pytest

from tests.ml.parsing.helpers import FIXTURES, parse_bytes, summary

TEXT_FIXTURES = [
    "memotrace.txt",
    "memotrace.csv",
    "chatlog.txt",
    "memotrace.html",
    "chatlog.json",
    "pywxdump.csv",
]


def _variants(text: str) -> dict[str, bytes]:
    crlf = text.replace("\n", "\r\n")
    return {
        "utf-8": text.encode("utf-8"),
        "utf-8 with BOM": codecs.BOM_UTF8 + text.encode("utf-8"),
        "utf-8 CRLF": crlf.encode("utf-8"),
        "gb18030": text.encode("gb18030"),
        "gb18030 CRLF": crlf.encode("gb18030"),
        "utf-16 with BOM": text.encode("utf-16"),
        "utf-16-le without BOM": text.encode("utf-16-le"),
        "utf-16-be without BOM": text.encode("utf-16-be"),
    }


@pytest.mark.parametrize("name", TEXT_FIXTURES)
def test_encodings_and_line_endings_give_the_same_messages(name: str) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8-sig")
    expected = summary(parse_bytes(text.encode("utf-8")))
    for label, data in _variants(text).items():
        assert summary(parse_bytes(data)) == expected, label


def test_gbk_export_without_emoji() -> None:
    data = "2024-01-01 10:00:00 张三\n你好，世界\n\n2024-01-01 10:00:01 李四\n再见\n\n".encode(
        "gbk"
    )
    assert [m.text for m in parse_bytes(data)] == ["你好，世界", "再见"]


def test_crlf_inside_a_multiline_body_becomes_lf() -> None:
    data = "2024-01-01 10:00:00 张三\r\n第一行\r\n第二行\r\n\r\n".encode()
    assert parse_bytes(data)[0].text == "第一行\n第二行"
